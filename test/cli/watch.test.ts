/**
 * `runledger watch`: prints the change feed, one change per line (JSON with --json), from
 * --after; bad --types is a usage error naming the allowed types. On PostgreSQL the watcher
 * also follows changes written by another process while it runs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { Change } from '../../src/index.js';
import { dropSchemas, onPostgres } from '../helpers.js';
import { type CliStore, cliStore, collect, runCli, spawnCli, waitForOutput } from './cli.js';

let store: CliStore;
const cli = (...args: string[]) => runCli([...store.args, ...args]);

beforeAll(() => {
  store = cliStore();
});
afterAll(async () => {
  store.cleanup();
  await dropSchemas();
});

const parse = (stdout: string) =>
  stdout
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Change);

describe('runledger watch', { timeout: 240_000 }, () => {
  it('prints the feed from --after 0, filtered by --types and --job, and exits after --count', async () => {
    const a = (await cli('start', '--job', 'watched', '--subject', 's')).stdout.trim();
    expect((await cli('complete', a)).code).toBe(0);
    const b = (await cli('start', '--job', 'other')).stdout.trim();
    expect((await cli('fail', b, '--message', 'boom')).code).toBe(0);

    const all = await cli('watch', '--after', '0', '--count', '3', '--json');
    expect(all.code).toBe(0);
    expect(parse(all.stdout).map((c) => [c.type, c.runId])).toEqual([
      ['run.finished', a],
      ['subject.changed', a],
      ['run.finished', b],
    ]);
    const filtered = await cli('watch', '--after', '0', '--count', '1', '--json', '--types', 'run.finished', '--job', 'other');
    expect(parse(filtered.stdout).map((c) => c.runId)).toEqual([b]);
    const human = await cli('watch', '--after', '0', '--count', '1', '--types', 'subject.changed');
    expect(human.stdout).toMatch(/subject\.changed {2}watched {2}s {2}\S+ {2}- → completed/);
  });

  it('bad --types is an error naming what is allowed', async () => {
    const r = await cli('watch', '--types', 'run.exploded', '--count', '1');
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('run.exploded');
    expect(r.stderr).toContain('run.finished');
  });

  // An embedded data directory is held by one process (the watcher): another writer needs PostgreSQL.
  it.skipIf(!onPostgres)('follows changes another process writes while it runs', async () => {
    // From the start, but of a job with no changes yet: whenever it starts, the first it prints is the live one.
    const child = spawnCli([...store.args, 'watch', '--json', '--count', '1', '--after', '0', '--job', 'live', '--types', 'run.finished']);
    const done = collect(child);
    const id = (await cli('start', '--job', 'live')).stdout.trim();
    await cli('complete', id);
    await waitForOutput(child, /run\.finished/);
    const r = await done;
    expect(r.code).toBe(0);
    expect(parse(r.stdout).map((c) => c.runId)).toEqual([id]);
  });
});
