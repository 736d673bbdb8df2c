/**
 * Without --data-dir a command uses the nearest `.runledger` in its folder or a parent (as
 * git finds `.git`), and a command that creates a new ledger says so on stderr, with where.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { runCli, tempDir } from './cli.js';

const project = tempDir();
afterAll(() => project.cleanup());

describe('the default data directory', { timeout: 120_000 }, () => {
  it('is found from a subfolder; creating one is announced with its path', async () => {
    const deeper = join(project.dir, 'src', 'jobs');
    mkdirSync(deeper, { recursive: true });
    const started = await runCli(['start', '--job', 'walk-up'], { cwd: project.dir });
    expect(started.code).toBe(0);
    expect(started.stderr).toContain(`runledger: creating a new embedded ledger at ${join(project.dir, '.runledger')}`);
    const id = started.stdout.trim();

    // From a subfolder: the same ledger, and nothing is created.
    const listed = await runCli(['runs', 'ls', '--json'], { cwd: deeper });
    expect(listed.stderr).toBe('');
    const parsed = JSON.parse(listed.stdout) as { id: string }[] | { runs: { id: string }[] };
    expect((Array.isArray(parsed) ? parsed : parsed.runs).map((r) => r.id)).toEqual([id]);

    // RUNLEDGER_DATA_DIR names another one (new: announced).
    const other = join(project.dir, 'elsewhere');
    const viaEnv = await runCli(['runs', 'ls'], { cwd: deeper, env: { RUNLEDGER_DATA_DIR: other } });
    expect(viaEnv.stderr).toContain(`creating a new embedded ledger at ${other}`);
    expect(viaEnv.stdout.toLowerCase()).toContain('no runs');
  });
});
