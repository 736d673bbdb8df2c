/**
 * The recipes under examples/ are runnable documents; here each runs as its own process,
 * exactly as a reader would run it, on the selected backend. A recipe asserts its own
 * claims (node:assert), so a broken guarantee fails its run.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';

import { BACKEND, dropSchemas, freshSchema, PG_URL } from '../helpers.js';

const run = promisify(execFile);
const dirs: string[] = [];

async function backendEnv(): Promise<Record<string, string>> {
  if (BACKEND === 'postgres') {
    const schema = freshSchema();
    const client = new pg.Client({ connectionString: PG_URL });
    await client.connect();
    await client.query(`create schema "${schema}"`);
    await client.end();
    const url = new URL(PG_URL);
    url.searchParams.set('options', `-c search_path=${schema}`);
    return { DATABASE_URL: url.toString() };
  }
  const dir = await mkdtemp(join(tmpdir(), 'runledger-example-'));
  dirs.push(dir);
  return { RUNLEDGER_DATA_DIR: dir };
}

async function runExample(file: string) {
  const env: Record<string, string | undefined> = { ...process.env, ...(await backendEnv()) };
  delete env[BACKEND === 'postgres' ? 'RUNLEDGER_DATA_DIR' : 'DATABASE_URL'];
  if (file.endsWith('.sh')) {
    // The shell recipe uses the default ./.runledger of its working directory (or DATABASE_URL).
    const cwd = env.RUNLEDGER_DATA_DIR ?? process.cwd();
    return run('bash', [join(process.cwd(), 'examples', file)], { env, cwd, timeout: 300_000 });
  }
  return run(process.execPath, ['--import', 'tsx', join('examples', file)], { env, timeout: 300_000 });
}

afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
  await dropSchemas();
});

describe(`recipes (${BACKEND})`, { timeout: 300_000 }, () => {
  it('1: two agent workflows for one repository keep their own outputs; a dead worker is timed out', async () => {
    const { stdout } = await runExample('01-agent-workflow.ts');
    expect(stdout).toMatch(/timed_out \(no heartbeat/);
    expect(stdout).toContain('recipe 1 ok');
  });

  it('2: a checkpoint with its diff manifest survives a restart and verifies', async () => {
    const { stdout } = await runExample('02-checkpoints.ts');
    expect(stdout).toContain('"diff_based":true');
    expect(stdout).toContain('recipe 2 ok');
  });

  it('3: a shell pipeline tracks its runs idempotently, keeps notes, fails clearly without a database', async () => {
    const { stdout } = await runExample('03-shell-pipeline.sh');
    expect(stdout).toMatch(/misconfigured: error: database url must start with postgres/);
    expect(stdout).toContain('notes kept: Initial extraction run');
    expect(stdout).toContain('recipe 3 ok');
  });

  it('4: compliance checks feed one history; legacy rows backfilled from PostgreSQL with dry run, cutover and a no-op re-run', async () => {
    const { stdout } = await runExample('04-compliance-checks.ts');
    expect(stdout).toContain('import: inserted 4, skipped by cutover 1; re-run inserted 0');
    expect(stdout).toContain('recipe 4 ok');
  });

  it('5: each week records its execution id; the weeks missing one are listed', async () => {
    const { stdout } = await runExample('05-execution-ids.ts');
    expect(stdout).toContain('weeks missing an execution id: 2026-W03');
    expect(stdout).toContain('recipe 5 ok');
  });
});
