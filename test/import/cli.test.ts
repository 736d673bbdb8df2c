/**
 * `runledger import` as a subprocess: reports and exit codes (0 clean, 1 some invalid,
 * 2 fatal), --json as the last line, stdin, CSV with --map, --from-postgres, dry runs,
 * and an import killed mid-way (SIGKILL, then SIGINT) that a re-run finishes without a
 * duplicate.
 */
import { randomBytes } from 'node:crypto';

import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { ImportReport } from '../../src/import/index.js';
import { openLedger, startServer } from '../../src/index.js';
import { type CliStore, cliStore, collect, runCli, spawnCli, waitForOutput } from '../cli/cli.js';
import { BACKEND, dropSchemas, freshStore, PG_URL } from '../helpers.js';
import { at, jsonl, outcome, tempFiles } from './support.js';

let store: CliStore;
const files = tempFiles();
const cli = (args: string[], input?: string) => runCli([...store.args, 'import', ...args], input === undefined ? {} : { input });
/** The last line of stdout, as the report. */
const lastJson = (stdout: string) => JSON.parse(stdout.trim().split('\n').at(-1)!) as ImportReport & { error?: { code: string } };

beforeAll(() => {
  store = cliStore();
});
afterAll(async () => {
  store.cleanup();
  files.cleanup();
  await dropSchemas();
});

/** Counts straight from the store (the CLI must have exited: an embedded directory has one user at a time). */
async function stored(source: string): Promise<{ runs: number; distinctSourceIds: number }> {
  const ledger = store.dataDir
    ? await openLedger({ dataDir: store.dataDir })
    : await openLedger({ url: PG_URL, schema: store.schema, poolSize: 1 });
  try {
    const { rows } = await ledger.database.query<{ runs: number | string; ids: number | string }>(
      'select count(*) as runs, count(distinct source_id) as ids from runs where source = $1',
      [source],
    );
    return { runs: Number(rows[0].runs), distinctSourceIds: Number(rows[0].ids) };
  } finally {
    await ledger.close();
  }
}

const records = (n: number, prefix: string, job = 'cli-import') =>
  jsonl(
    Array.from({ length: n }, (_, i) => ({
      sourceId: `${prefix}-${i}`,
      job,
      subject: `s-${i % 5}`,
      startedAt: at(i),
      finishedAt: at(i + 1),
    })),
  );

describe(`runledger import (${BACKEND})`, () => {
  it('exit 0 with a readable report; a re-run reports every row as a duplicate; --json is one object on the last line', async () => {
    const path = files.write('ok.jsonl', records(30, 'ok'));
    const first = await cli([path, '--source', 'cli-ok', '--chunk-size', '10']);
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(
      /^import from .*ok\.jsonl as source cli-ok\nread 30 {2}inserted 30 {2}duplicates 0 {2}skipped by cutover 0 {2}invalid 0\n.*3 chunks, longest chunk \d+ms\n$/,
    );

    const again = await cli([path, '--source', 'cli-ok', '--json']);
    expect(again.code).toBe(0);
    expect(again.stdout.trim().split('\n')).toHaveLength(1);
    expect(lastJson(again.stdout)).toMatchObject({
      read: 30,
      inserted: 0,
      duplicates: 30,
      skippedCutover: 0,
      invalid: 0,
      interrupted: false,
    });
    expect(await stored('cli-ok')).toEqual({ runs: 30, distinctSourceIds: 30 });
  });

  it('exit 1 when some records are invalid: they are listed with line numbers (all of them with --json), the rest imported', async () => {
    const lines = [...records(3, 'inv'), '{oops', JSON.stringify({ sourceId: 'no-job', finishedAt: at(1) }), ...records(2, 'inv2'), 'null'];
    const path = files.write('invalid.jsonl', lines);
    const human = await cli([path, '--source', 'cli-inv', '--show-invalid', '2', '--dry-run']);
    expect(human.code).toBe(1);
    expect(human.stdout).toMatch(/^dry run \(nothing written\): /);
    expect(human.stdout).toMatch(
      /invalid records:\n {2}line 4: not valid JSON.*\n {2}line 5 sourceId no-job: job is required.*\n {2}… and 1 more \(--json lists them all\)/,
    );
    expect(await stored('cli-inv')).toEqual({ runs: 0, distinctSourceIds: 0 });

    const json = await cli([path, '--source', 'cli-inv', '--json']);
    expect(json.code).toBe(1);
    const report = lastJson(json.stdout);
    expect(report).toMatchObject({ read: 8, inserted: 5, invalid: 3 });
    expect(report.invalidRecords.map((i) => i.line)).toEqual([4, 5, 8]);
    expect(await stored('cli-inv')).toEqual({ runs: 5, distinctSourceIds: 5 });
  });

  it('exit 2 on a fatal error, naming what to fix', async () => {
    const ok = files.write('fatal.jsonl', records(2, 'fatal'));
    const cases: [string[], RegExp][] = [
      [[`${files.dir}/nope.jsonl`, '--source', 's'], /cannot read .*nope\.jsonl/],
      [
        [ok, '--source', 's', '--cutover', 'yesterday'],
        /cutover must be auto, none or an ISO 8601 time such as 2026-01-31T12:00:00Z; got "yesterday"/,
      ],
      [[ok, '--source', 's', '--chunk-size', '5000'], /--chunk-size must be a whole number 1–1000; got "5000"/],
      [[ok, '--source', 's', '--map', 'a=colour'], /"colour" is not a target/],
      [[ok], /required option '--source <name>' not specified/],
      [['--source', 's'], /give a file to import/],
      [['-', '--source', 's'], /reading stdin needs --format jsonl or --format csv/],
      [
        ['--source', 's', '--from-postgres', 'postgres://127.0.0.1:1/none', '--query', 'select 1', '--key', 'id'],
        /cannot connect to the legacy PostgreSQL/,
      ],
    ];
    for (const [args, message] of cases) {
      const r = await cli(args);
      expect({ args, code: r.code }).toEqual({ args, code: 2 });
      expect(r.stderr).toMatch(message);
    }
  });

  it('reads stdin with --format, and CSV with --map and --set; a dry run reports what the real run then does', async () => {
    const viaStdin = await cli(['-', '--format', 'jsonl', '--source', 'cli-stdin', '--json'], records(4, 'in').join('\n'));
    expect(viaStdin.code).toBe(0);
    expect(lastJson(viaStdin.stdout)).toMatchObject({ from: 'stdin', inserted: 4 });

    const csv = files.write('legacy.csv', [
      'id,agent_url,tested_at,passed,score,user_id',
      '1,https://a.example,2025-01-01 10:00:00,completed,0.5,3',
      '2,https://a.example,2025-01-02 10:00:00,failed,0.1,4',
      '3,https://b.example,not a time,completed,1,5',
      '1,https://a.example,2025-01-01 10:00:00,completed,0.5,3',
    ]);
    const args = [
      csv,
      '--source',
      'cli-csv',
      '--map',
      'id=sourceId,agent_url=subject,tested_at=startedAt,passed=status,score=statistics.score,user_id=',
      '--set',
      'job=compliance-check',
      '--set',
      'trigger=owner_test',
      '--chunk-size',
      '2',
      '--json',
    ];
    const dry = await cli([...args, '--dry-run']);
    expect(await stored('cli-csv')).toEqual({ runs: 0, distinctSourceIds: 0 });
    const real = await cli(args);
    expect([dry.code, real.code]).toEqual([1, 1]);
    expect(lastJson(dry.stdout).dryRun).toBe(true);
    expect(outcome(lastJson(dry.stdout))).toEqual(outcome(lastJson(real.stdout)));
    expect(lastJson(real.stdout)).toMatchObject({ read: 4, inserted: 2, duplicates: 1, invalid: 1 });
    expect(await stored('cli-csv')).toEqual({ runs: 2, distinctSourceIds: 2 });
  });

  it('--from-postgres reads a legacy table in keyset chunks', async () => {
    const schema = `legacy_${randomBytes(5).toString('hex')}`;
    const admin = new pg.Client({ connectionString: PG_URL });
    await admin.connect();
    try {
      await admin.query(`create schema ${schema}`);
      await admin.query(`create table ${schema}.history (id int primary key, agent text, tested_at timestamptz)`);
      await admin.query(
        `insert into ${schema}.history select i, 'agent-' || (i % 3), timestamptz '2025-01-01Z' + i * interval '1 hour' from generate_series(1, 250) i`,
      );
      const r = await cli([
        '--from-postgres',
        PG_URL,
        '--query',
        `select id, agent, tested_at from ${schema}.history`,
        '--key',
        'id',
        '--map',
        'id=sourceId,agent=subject,tested_at=finishedAt',
        '--set',
        'job=pg-history',
        '--source',
        'cli-pg',
        '--chunk-size',
        '100',
        '--json',
      ]);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(lastJson(r.stdout)).toMatchObject({ read: 250, inserted: 250, chunks: 3, from: expect.stringMatching(/^postgres:\/\//) });
      expect(await stored('cli-pg')).toEqual({ runs: 250, distinctSourceIds: 250 });
    } finally {
      await admin.query(`drop schema if exists ${schema} cascade`);
      await admin.end();
    }
  });
});

describe(`runledger import --server (${BACKEND})`, () => {
  it('sends each chunk as POST /v1/imports; a chunk too large for the server is split, not lost', async () => {
    const ledger = await freshStore();
    // Small enough that a 200-record chunk is refused (413) and must be split.
    const server = await startServer({ ledger, port: 0, auth: 'off', reapIntervalS: 0, logger: false, webRoot: false, bodyLimit: 16_384 });
    try {
      const path = files.write('server.jsonl', records(200, 'srv'));
      const r = await runCli(['--server', server.url, 'import', path, '--source', 'via-server', '--chunk-size', '200', '--json']);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(lastJson(r.stdout)).toMatchObject({ read: 200, inserted: 200, chunks: 1 });
      const again = await runCli(['--server', server.url, 'import', path, '--source', 'via-server', '--json']);
      expect(lastJson(again.stdout)).toMatchObject({ inserted: 0, duplicates: 200 });
      const { rows } = await ledger.database.query<{ n: number | string }>(`select count(*) as n from runs where source = 'via-server'`);
      expect(Number(rows[0].n)).toBe(200);
    } finally {
      await server.close();
      await ledger.close();
    }
  });
});

describe(`an interrupted import, re-run (${BACKEND})`, () => {
  const N = 3000;
  const path = () => files.write('big.jsonl', records(N, 'big', 'big-import'));
  // Slow chunks, so that the import is surely still going when it is stopped.
  const slow = ['--chunk-size', '100', '--sleep-ms', '150', '--progress'];

  it('killed (SIGKILL) mid-way: the committed chunks stay, and a re-run adds the rest without a duplicate', async () => {
    const file = path();
    const child = spawnCli([...store.args, 'import', file, '--source', 'killed', ...slow]);
    const done = collect(child);
    await waitForOutput(child, /chunk 3:/, 'stderr');
    child.kill('SIGKILL');
    const killed = await done;
    expect(killed.signal).toBe('SIGKILL');
    const partial = await stored('killed');
    expect(partial.runs).toBeGreaterThanOrEqual(300);
    expect(partial.runs).toBeLessThan(N);
    // Whole chunks only: the chunk in flight was rolled back, not half-written.
    expect(partial.runs % 100).toBe(0);

    const rerun = await cli([file, '--source', 'killed', '--json']);
    expect(rerun.code).toBe(0);
    expect(lastJson(rerun.stdout)).toMatchObject({ read: N, duplicates: partial.runs, inserted: N - partial.runs, invalid: 0 });
    expect(await stored('killed')).toEqual({ runs: N, distinctSourceIds: N });
  });

  it('stopped with Ctrl-C (SIGINT): finishes the chunk in flight, reports, exits 130; a re-run finishes', async () => {
    const file = path();
    const child = spawnCli([...store.args, 'import', file, '--source', 'sigint', '--json', ...slow]);
    const done = collect(child);
    await waitForOutput(child, /chunk 2:/, 'stderr');
    child.kill('SIGINT');
    const stopped = await done;
    expect(stopped.code).toBe(130);
    expect(stopped.stderr).toMatch(/stopping after the chunk in flight/);
    const report = lastJson(stopped.stdout);
    expect(report.interrupted).toBe(true);
    expect(report.inserted).toBeLessThan(N);
    expect(await stored('sigint')).toEqual({ runs: report.inserted, distinctSourceIds: report.inserted });

    const rerun = await cli([file, '--source', 'sigint', '--json']);
    expect(rerun.code).toBe(0);
    expect(lastJson(rerun.stdout)).toMatchObject({ duplicates: report.inserted, inserted: N - report.inserted });
    expect(await stored('sigint')).toEqual({ runs: N, distinctSourceIds: N });
  });
});
