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
  const env = { ...process.env, ...(await backendEnv()) };
  delete (env as Record<string, string | undefined>)[BACKEND === 'postgres' ? 'RUNLEDGER_DATA_DIR' : 'DATABASE_URL'];
  return run(process.execPath, ['--import', 'tsx', join('examples', file)], { env, timeout: 120_000 });
}

afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
  await dropSchemas();
});

describe(`recipes (${BACKEND})`, () => {
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

  it('5: each week records its execution id; the weeks missing one are listed', async () => {
    const { stdout } = await runExample('05-execution-ids.ts');
    expect(stdout).toContain('weeks missing an execution id: 2026-W03');
    expect(stdout).toContain('recipe 5 ok');
  });
});
