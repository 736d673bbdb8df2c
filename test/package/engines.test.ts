/**
 * `engines` in package.json is a promise about which Node versions runledger runs on. It is
 * true only if every package that gets installed with it (dependencies and, for a checkout,
 * development tools) accepts every one of those versions: otherwise `npm ci` warns
 * EBADENGINE and the package may use what the older Node lacks. The lock file records each
 * package's own `engines`, so this reads it rather than node_modules.
 */
import { readFileSync } from 'node:fs';

import semver from 'semver';
import { describe, expect, it } from 'vitest';

const root = new URL('../../', import.meta.url);
const pkg = JSON.parse(readFileSync(new URL('package.json', root), 'utf8')) as { engines: { node: string } };
const lock = JSON.parse(readFileSync(new URL('package-lock.json', root), 'utf8')) as {
  packages: Record<string, { version?: string; engines?: { node?: string } | string[] }>;
};

describe('supported Node versions', () => {
  it('package.json names a range, and this Node is in it (the suite runs on a supported version)', () => {
    expect(semver.validRange(pkg.engines.node), pkg.engines.node).not.toBeNull();
    expect(semver.satisfies(process.versions.node, pkg.engines.node), `Node ${process.versions.node} vs ${pkg.engines.node}`).toBe(true);
  });

  it('every locked package accepts every Node version that package.json promises', () => {
    const refusing: string[] = [];
    for (const [path, entry] of Object.entries(lock.packages)) {
      if (!path) continue; // the root: runledger itself
      const node = Array.isArray(entry.engines) ? undefined : entry.engines?.node;
      if (node === undefined || node.trim() === '' || node === '*') continue;
      if (!semver.validRange(node) || !semver.subset(pkg.engines.node, node))
        refusing.push(`${path.replace(/^.*node_modules\//, '')}@${entry.version}: node ${node}`);
    }
    expect(refusing, `packages that do not accept every Node in ${pkg.engines.node}`).toEqual([]);
  });
});
