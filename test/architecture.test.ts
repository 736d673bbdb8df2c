/**
 * The rooms of src/ and which rooms each may import (docs/design.md, "Where new code
 * goes"). An import that climbs back up — core reaching for the ledger, the client for the
 * server — fails here, with the file and the import named.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

import { describe, expect, it } from 'vitest';

const SRC = resolve(import.meta.dirname, '../src');

const MAY_IMPORT: Record<string, string[]> = {
  core: [],
  generated: [],
  store: ['core', 'generated'],
  ledger: ['core', 'store'],
  import: ['core', 'ledger', 'store'],
  client: ['core'],
  server: ['core', 'ledger', 'store'],
  cli: ['core', 'store', 'ledger', 'import', 'client', 'server'],
};

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sourceFiles(join(dir, e.name)) : /\.tsx?$/.test(e.name) ? [join(dir, e.name)] : [],
  );
}

const roomOf = (file: string) => relative(SRC, file).split('/')[0];

describe('architecture', () => {
  it('every room of src/ is known', () => {
    const rooms = readdirSync(SRC, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name)
      .sort();
    expect(rooms).toEqual(Object.keys(MAY_IMPORT).sort());
  });

  it('no import climbs back up: each room imports only the rooms below it', () => {
    const climbing: string[] = [];
    for (const file of sourceFiles(SRC)) {
      const room = roomOf(file);
      if (!(room in MAY_IMPORT)) continue; // src/index.ts: the public surface re-exports every room
      for (const [, spec] of readFileSync(file, 'utf8').matchAll(/from '(\.[^']+)'/g)) {
        const target = roomOf(resolve(dirname(file), spec));
        if (target !== room && !MAY_IMPORT[room].includes(target)) climbing.push(`${relative(SRC, file)} imports ${spec}`);
      }
    }
    expect(climbing).toEqual([]);
  });

  it('no import circle between files (type-only imports included: each is a dependency to untangle)', () => {
    const graph = new Map<string, string[]>();
    for (const file of sourceFiles(SRC)) {
      const deps = [...readFileSync(file, 'utf8').matchAll(/from '(\.[^']+)'/g)].map(([, spec]) =>
        resolve(dirname(file), spec).replace(/\.js$/, '.ts'),
      );
      graph.set(
        file,
        deps.filter((d) => d !== file),
      );
    }
    const circles: string[] = [];
    const state = new Map<string, 'open' | 'done'>();
    const visit = (file: string, path: string[]) => {
      if (state.get(file) === 'done') return;
      if (state.get(file) === 'open') {
        circles.push([...path.slice(path.indexOf(file)), file].map((f) => relative(SRC, f)).join(' → '));
        return;
      }
      state.set(file, 'open');
      for (const dep of graph.get(file) ?? []) if (graph.has(dep)) visit(dep, [...path, file]);
      state.set(file, 'done');
    };
    for (const file of graph.keys()) visit(file, []);
    expect(circles).toEqual([]);
  });
});
