/**
 * Import sources: CSV with --map (dotted targets, JSON cells, empty cells, constants),
 * JSONL from a stream, and a legacy PostgreSQL table read in keyset chunks. The legacy
 * table lives in a fresh schema of the `test` database whatever the ledger's backend.
 */
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';

import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { jsonlSource, parseColumnMap, runImport } from '../../src/import/index.js';
import type { OpenedLedger } from '../../src/index.js';
import { BACKEND, dropSchemas, freshLedger, PG_URL } from '../helpers.js';
import { countRuns, tempFiles } from './support.js';

let ledger: OpenedLedger;
const files = tempFiles();
const legacySchema = `legacy_${randomBytes(5).toString('hex')}`;
let legacy: pg.Client;

beforeAll(async () => {
  ledger = await freshLedger();
  legacy = new pg.Client({ connectionString: PG_URL });
  await legacy.connect();
  await legacy.query(`create schema ${legacySchema}`);
});
afterAll(async () => {
  await ledger?.close();
  await legacy?.query(`drop schema if exists ${legacySchema} cascade`);
  await legacy?.end();
  await dropSchemas();
  files.cleanup();
});

const MAP = [
  'id=sourceId,agent_url=subject,tested_at=startedAt,finished=finishedAt,verdict=status',
  'score=statistics.score,details=params,run_ref=externalIds.legacy.runId,owner=actor,user_id=,comment=notes',
];

describe(`import from CSV with --map (${BACKEND})`, () => {
  it('renames columns, fills dotted targets, parses JSON cells and numbers, leaves empty cells out, applies constants', async () => {
    const path = files.write('history.csv', [
      'id,agent_url,tested_at,finished,verdict,score,details,run_ref,owner,user_id,comment',
      '101,https://a.example,2025-01-01 10:00:00,2025-01-01 10:00:04.250,completed,0.93,"{""suite"":""v2"",""depth"":3}",R-101,alice,7,"first line',
      'second line, with a comma"',
      '102,https://b.example,2025-01-02T10:00:00+02:00,2025-01-02T08:00:09Z,failed,0,,,,8,',
      '103,https://c.example,2025-01-03 10:00:00.5+00,,completed,12,not json,R-103,bob,9,',
      '104,https://d.example,yesterday,,completed,1,,,,,',
      '105,https://e.example,2025-01-05 10:00:00,2025-01-05 10:00:01,completed,3,{},R-105,carol,10,"unterminated',
    ]);
    const r = await runImport(ledger, {
      source: 'agent_test_history',
      from: { file: path },
      map: MAP,
      set: ['job=compliance-check', 'trigger=owner_test', 'tags.migrated=2026-05'],
      cutover: 'none',
    });
    expect(r).toMatchObject({ read: 5, inserted: 2, invalid: 3 });
    expect(r.invalidRecords.map((i) => [i.line, i.sourceId])).toEqual([
      [5, '103'],
      [6, '104'],
      [7, null],
    ]);
    expect(r.invalidRecords[0].message).toMatch(/params: not valid JSON/);
    expect(r.invalidRecords[1].message).toMatch(/startedAt must be an ISO 8601 time.*got "yesterday"/);
    expect(r.invalidRecords[2].message).toMatch(/not valid CSV: Quote Not Closed/);

    const { runs } = await ledger.listRuns({ job: 'compliance-check', limit: 10 });
    const bySource = Object.fromEntries(runs.map((run) => [run.sourceId, run]));
    expect(bySource['101']).toMatchObject({
      subject: 'https://a.example',
      trigger: 'owner_test',
      actor: 'alice',
      status: 'completed',
      startedAt: '2025-01-01T10:00:00.000Z',
      finishedAt: '2025-01-01T10:00:04.250Z',
      statistics: { score: 0.93 },
      params: { suite: 'v2', depth: 3 },
      externalIds: { 'legacy.runId': 'R-101' },
      tags: { migrated: '2026-05' },
      notes: 'first line\nsecond line, with a comma',
      source: 'agent_test_history',
    });
    expect(bySource['102']).toMatchObject({
      status: 'failed',
      startedAt: '2025-01-02T08:00:00.000Z',
      finishedAt: '2025-01-02T08:00:09.000Z',
      statistics: { score: 0 },
      params: {},
      externalIds: {},
      actor: null,
      notes: null,
    });
  });

  it('refuses, before writing, columns that are neither mapped nor fields, a map naming a missing column, and no sourceId', async () => {
    const path = files.write('cols.csv', ['id,agent_url,user_id', '1,https://a.example,3']);
    const base = { source: 'cols', from: { file: path }, set: ['job=j'] };
    await expect(runImport(ledger, { ...base, map: 'id=sourceId,agent_url=subject' })).rejects.toMatchObject({
      code: 'validation_failed',
      message: expect.stringMatching(/column\(s\) user_id are not record fields; map each one .* or drop it \(--map user_id=\)/),
    });
    await expect(
      runImport(ledger, { ...base, map: 'id=sourceId,agent_url=subject,user_id=,score=statistics.score' }),
    ).rejects.toMatchObject({
      message: expect.stringMatching(/--map names column\(s\) the input does not have: score/),
    });
    await expect(runImport(ledger, { ...base, map: 'agent_url=subject,user_id=,id=' })).rejects.toMatchObject({
      message: expect.stringMatching(/no column maps to sourceId/),
    });
    await expect(
      runImport(ledger, { source: 'cols', from: { file: path }, map: 'id=sourceId,agent_url=subject,user_id=' }),
    ).rejects.toMatchObject({
      message: expect.stringMatching(/no column maps to job and there is no --set job/),
    });
    expect(await countRuns(ledger, 'cols')).toBe(0);
    expect(() => parseColumnMap('id')).toThrow(/--map entries must be legacyColumn=field; got "id"/);
  });

  it('maps JSONL keys the same way, from any stream', async () => {
    const stream = Readable.from([
      JSON.stringify({ legacy_id: 7, kind: 'nightly', when: '2025-02-01T00:00:00Z', rows: 12 }) + '\n',
      JSON.stringify({ legacy_id: 8, kind: 'nightly', when: '2025-02-02T00:00:00Z', rows: '13' }) + '\n',
    ]);
    const r = await runImport(ledger, {
      source: 'jsonl-map',
      from: { rows: jsonlSource(stream) },
      map: 'legacy_id=sourceId,kind=job,when=finishedAt,rows=statistics.rows',
    });
    expect(r).toMatchObject({ inserted: 2, invalid: 0 });
    const { runs } = await ledger.listRuns({ job: 'nightly' });
    // JSONL keeps JSON types: a number stays a number, a string a string.
    expect(runs.map((x) => [x.sourceId, x.statistics]).sort()).toEqual([
      ['7', { rows: 12 }],
      ['8', { rows: '13' }],
    ]);
  });
});

describe(`imported JSON reads back exactly or is refused (${BACKEND})`, () => {
  it('a JSONL line with a duplicate key or an integer beyond 2^53 is an invalid record naming it; CSV cells keep such text exact', async () => {
    const stream = Readable.from([
      '{"sourceId":"a","job":"exact","status":"completed","finishedAt":"2025-03-01T00:00:00Z","statistics":{"rows":9007199254740993}}\n',
      '{"sourceId":"b","job":"exact","status":"completed","finishedAt":"2025-03-01T00:00:00Z","notes":"x","notes":"y"}\n',
      '{"sourceId":"c","job":"exact","status":"completed","finishedAt":"2025-03-01T00:00:00Z","statistics":{"rows":9007199254740991}}\n',
    ]);
    const r = await runImport(ledger, { source: 'exact', from: { rows: jsonlSource(stream) } });
    expect(r).toMatchObject({ inserted: 1, invalid: 2 });
    expect(r.invalidRecords.map((i) => [i.line, i.message])).toEqual([
      [1, expect.stringMatching(/^record\.statistics\.rows: the integer 9007199254740993 cannot be stored exactly/)],
      [2, 'record.notes: the key "notes" appears twice in one object; send each key once'],
    ]);
    const { runs } = await ledger.listRuns({ job: 'exact' });
    expect(runs.map((x) => x.statistics)).toEqual([{ rows: 9007199254740991 }]);

    // A CSV cell that JSON.parse would round stays the exact text; a JSON cell with a duplicate key is refused.
    const path = files.write('exact.csv', ['id,score,details', '1,9007199254740993,{}', '2,1,"{""a"":1,""a"":2}"']);
    const csv = await runImport(ledger, {
      source: 'exact-csv',
      from: { file: path },
      map: 'id=sourceId,score=statistics.score,details=params',
      set: ['job=exact-csv', 'status=completed', 'finishedAt=2025-03-01T00:00:00Z'],
      cutover: 'none',
    });
    expect(csv).toMatchObject({ inserted: 1, invalid: 1 });
    expect(csv.invalidRecords[0].message).toMatch(/^params\.a: the key "a" appears twice/);
    expect((await ledger.listRuns({ job: 'exact-csv' })).runs.map((x) => x.statistics)).toEqual([{ score: '9007199254740993' }]);
  });
});

describe(`import --from-postgres (${BACKEND})`, () => {
  it('reads a legacy table in keyset chunks, converting its types, and re-runs as duplicates', async () => {
    const t = `${legacySchema}.agent_test_history`;
    await legacy.query(`create table ${t} (
      id bigserial primary key, agent_url text not null, user_id int, tested_at timestamp not null, finished_at timestamptz,
      passed boolean not null, score numeric, details jsonb, note text)`);
    await legacy.query(
      `insert into ${t} (agent_url, user_id, tested_at, finished_at, passed, score, details, note)
       select 'https://agent-' || (i % 7) || '.example', case when i % 10 = 0 then null else i end,
              timestamp '2025-01-01 00:00:00.123456' + i * interval '1 minute',
              timestamptz '2025-01-01 00:00:05+00' + i * interval '1 minute',
              i % 4 <> 0, i / 100.0, jsonb_build_object('i', i), case when i = 5 then '2025-01-01 deploy' end
         from generate_series(1, 1050) i`,
    );
    const chunks: number[] = [];
    const from = {
      postgres: {
        url: PG_URL,
        query: `select id, agent_url, tested_at, finished_at, case when passed then 'completed' else 'failed' end as status,
                       score, details, note from ${t} where user_id is not null`,
        key: 'id',
      },
    };
    const opts = {
      source: 'pg-legacy',
      from,
      map: 'id=sourceId,agent_url=subject,tested_at=startedAt,finished_at=finishedAt,score=statistics.score,details=params,note=notes',
      set: ['job=compliance-check-pg', 'trigger=owner_test'],
      chunkSize: 200,
      onChunk: (c: { records: number }) => void chunks.push(c.records),
    };
    const r = await runImport(ledger, opts);
    expect(r).toMatchObject({ read: 945, inserted: 945, invalid: 0, chunks: 5 });
    expect(chunks).toEqual([200, 200, 200, 200, 145]);
    const run = (await ledger.listRuns({ job: 'compliance-check-pg', subject: 'https://agent-5.example', limit: 500 })).runs.find(
      (x) => x.sourceId === '5',
    )!;
    expect(run).toMatchObject({
      status: 'completed',
      // `timestamp` (no zone) is UTC, not this machine's zone; microseconds become milliseconds.
      startedAt: '2025-01-01T00:05:00.123Z',
      finishedAt: '2025-01-01T00:05:05.000Z',
      statistics: { score: 0.05 },
      params: { i: 5 },
      notes: '2025-01-01 deploy',
    });
    expect((await runImport(ledger, { ...opts, onChunk: undefined })).duplicates).toBe(945);
    expect(await countRuns(ledger, 'pg-legacy')).toBe(945);
  });

  it('reports a bad query or key before writing anything', async () => {
    const base = { source: 'pg-bad', set: ['job=j'], map: 'id=sourceId' };
    await expect(
      runImport(ledger, { ...base, from: { postgres: { url: PG_URL, query: `select * from ${legacySchema}.missing`, key: 'id' } } }),
    ).rejects.toMatchObject({ code: 'validation_failed', message: expect.stringMatching(/--query\/--key failed .*does not exist/) });
    await expect(
      runImport(ledger, { ...base, from: { postgres: { url: PG_URL, query: `select 1 as id`, key: 'nope' } } }),
    ).rejects.toMatchObject({ code: 'validation_failed' });
    await expect(
      runImport(ledger, { ...base, from: { postgres: { url: 'mysql://x', query: 'select 1', key: 'id' } } }),
    ).rejects.toMatchObject({ code: 'configuration' });
    expect(await countRuns(ledger, 'pg-bad')).toBe(0);
  });
});
