/**
 * Import guarantees through `runImport` and `ledger.importRuns`, on
 * both backends (and over HTTP with RUNLEDGER_TEST_VIA=http, where every chunk is one
 * POST /v1/imports): ids and times preserved, provenance recorded, idempotent re-runs,
 * the cutover guard, one transaction per chunk with live writers unblocked, the
 * freshness rule, dry runs that match real runs, and invalid records that never stop
 * valid ones.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { runImport } from '../../src/import/index.js';
import type { OpenedLedger } from '../../src/index.js';
import { BACKEND, dropSchemas, freshLedger, onPostgres, viaHttp } from '../helpers.js';
import { fingerprint } from '../ledger/support.js';
import { at, countRuns, jsonl, outcome, tempFiles } from './support.js';

let ledger: OpenedLedger;
const files = tempFiles();

beforeAll(async () => {
  ledger = await freshLedger({ poolSize: onPostgres ? 8 : undefined });
});
afterAll(async () => {
  await ledger?.close();
  await dropSchemas();
  files.cleanup();
});

const mode = `${BACKEND}${viaHttp ? ', over HTTP' : ''}`;

describe(`import: what is stored (${mode})`, () => {
  it('preserves ids and timestamps, records source and sourceId, and chains a verifiable event log', async () => {
    const path = files.write(
      'preserve.jsonl',
      jsonl([
        {
          sourceId: 'row-1',
          id: 'legacy-run-1',
          job: 'compliance-check',
          subject: 'https://agent-1.example',
          trigger: 'owner_test',
          actor: 'user:42',
          createdAt: '2024-03-01T09:59:58.250Z',
          startedAt: '2024-03-01T10:00:00.125+02:00',
          finishedAt: '2024-03-01T08:00:04.5Z',
          params: { suite: 'v2', depth: 3 },
          tags: { region: 'eu' },
          notes: 'migrated',
          output: { verdict: 'pass', steps: [1, 2] },
          statistics: { passed: 30, total: 30 },
          externalIds: { 'legacy.runId': 'A-1' },
          events: [{ type: 'step', level: 'info', at: '2024-03-01T08:00:01Z', body: { n: 1 } }, { type: 'note' }],
        },
        // Only finishedAt, no id, a failure with an error; a time without offset is UTC.
        { sourceId: 'row-2', job: 'compliance-check', finishedAt: '2024-03-02 12:00:00', error: { type: 'timeout', message: 'no answer' } },
      ]),
    );
    const report = await runImport(ledger, { source: 'legacy-db', from: { file: path }, cutover: 'none' });
    expect(report).toMatchObject({ read: 2, inserted: 2, duplicates: 0, skippedCutover: 0, invalid: 0, interrupted: false });

    const run = await ledger.getRun('legacy-run-1');
    expect(run).toMatchObject({
      id: 'legacy-run-1',
      job: 'compliance-check',
      subject: 'https://agent-1.example',
      trigger: 'owner_test',
      actor: 'user:42',
      status: 'completed',
      createdAt: '2024-03-01T09:59:58.250Z',
      startedAt: '2024-03-01T08:00:00.125Z',
      finishedAt: '2024-03-01T08:00:04.500Z',
      params: { suite: 'v2', depth: 3 },
      tags: { region: 'eu' },
      notes: 'migrated',
      output: { verdict: 'pass', steps: [1, 2] },
      statistics: { passed: 30, total: 30 },
      externalIds: { 'legacy.runId': 'A-1' },
      source: 'legacy-db',
      sourceId: 'row-1',
    });
    const { events } = await ledger.run('legacy-run-1').listEvents();
    expect(events.map((e) => [e.seq, e.type, e.at])).toEqual([
      [1, 'run.status', '2024-03-01T08:00:00.125Z'],
      [2, 'run.external_id', '2024-03-01T08:00:00.125Z'],
      [3, 'step', '2024-03-01T08:00:01.000Z'],
      [4, 'note', '2024-03-01T08:00:00.125Z'],
      [5, 'run.status', '2024-03-01T08:00:04.500Z'],
    ]);
    expect(events[4].body).toEqual({ status: 'completed' });
    expect(run.lastSeq).toBe(5);

    const { runs } = await ledger.listRuns({ job: 'compliance-check', limit: 10 });
    const second = runs.find((r) => r.sourceId === 'row-2')!;
    expect(second).toMatchObject({ status: 'failed', source: 'legacy-db', error: { type: 'timeout', message: 'no answer' } });
    expect([second.createdAt, second.startedAt, second.finishedAt]).toEqual(Array(3).fill('2024-03-02T12:00:00.000Z'));

    const verified = await ledger.verify();
    expect(verified).toMatchObject({ ok: true, runsChecked: 2, problems: [] });
  });

  it('a second import inserts nothing and reports every row as a duplicate; repeats within a file are duplicates too', async () => {
    const records = Array.from({ length: 25 }, (_, i) => ({ sourceId: `dup-${i}`, job: 'dups', startedAt: at(i), finishedAt: at(i + 1) }));
    // dup-3 again in the same chunk, dup-0 again in a later chunk.
    const path = files.write('dups.jsonl', jsonl([...records.slice(0, 5), records[3], ...records.slice(5), records[0]]));
    const first = await runImport(ledger, { source: 'dups', from: { file: path }, chunkSize: 10 });
    expect(first).toMatchObject({ read: 27, inserted: 25, duplicates: 2, invalid: 0, chunks: 3 });
    expect(await countRuns(ledger, 'dups')).toBe(25);

    const again = await runImport(ledger, { source: 'dups', from: { file: path }, chunkSize: 7 });
    expect(again).toMatchObject({ read: 27, inserted: 0, duplicates: 27, invalid: 0 });
    expect(await countRuns(ledger, 'dups')).toBe(25);

    // The same sourceIds from another source are other rows.
    const other = await runImport(ledger, { source: 'dups-2', from: { records } });
    expect(other.inserted).toBe(25);
  });
});

describe(`import: cutover (${mode})`, () => {
  it('auto skips rows at or after the first live run of the same job and trigger (the dual-write window while a legacy writer and runledger both record)', async () => {
    const job = 'agent-compliance';
    // Imported rows never count as live: a first import sets no cutover.
    const early = await runImport(ledger, {
      source: 'ath',
      from: { records: [{ sourceId: 'h-0', job, subject: 'a1', trigger: 'owner_test', startedAt: at(0), finishedAt: at(1) }] },
    });
    expect(early.inserted).toBe(1);

    // The canonical write path goes live...
    const live = await ledger.startRun({ job, subject: 'a1', trigger: 'owner_test' });
    await live.complete();
    const liveStart = Date.parse(live.run.startedAt!);
    const t = (ms: number) => new Date(liveStart + ms).toISOString();
    // ...while the legacy table still receives the same runs (dual write) until the backfill.
    const legacy = [
      { sourceId: 'h-1', job, subject: 'a1', trigger: 'owner_test', startedAt: t(-3_600_000), finishedAt: t(-3_599_000) },
      { sourceId: 'h-2', job, subject: 'a1', trigger: 'owner_test', startedAt: t(-2), finishedAt: t(-1) },
      { sourceId: 'h-3', job, subject: 'a1', trigger: 'owner_test', startedAt: t(0), finishedAt: t(700) },
      { sourceId: 'h-4', job, subject: 'a1', trigger: 'owner_test', startedAt: t(1000), finishedAt: t(1500) },
      // Another trigger has no live run yet: nothing to skip.
      { sourceId: 'h-5', job, subject: 'a9', trigger: 'heartbeat', startedAt: t(1000), finishedAt: t(1500) },
      // No trigger at all is its own (job, trigger) pair.
      { sourceId: 'h-6', job, subject: 'a9', startedAt: t(1000), finishedAt: t(1500) },
    ];
    const report = await runImport(ledger, { source: 'ath', from: { records: legacy }, chunkSize: 4 });
    expect(report).toMatchObject({ read: 6, inserted: 4, skippedCutover: 2, duplicates: 0, invalid: 0 });
    const imported = new Set((await ledger.listRuns({ job, limit: 50 })).runs.map((r) => r.sourceId));
    expect([...imported].sort()).toEqual([null, 'h-0', 'h-1', 'h-2', 'h-5', 'h-6'].sort());
    // The live verdict is fresher than every imported one and stays current.
    expect((await ledger.getSubject(job, 'a1')).runId).toBe(live.id);

    // A live run without a trigger now sets the cutover for trigger-less rows.
    const plain = await ledger.startRun({ job, subject: 'a2' });
    const after = new Date(Date.parse(plain.run.startedAt!) + 1).toISOString();
    const r2 = await runImport(ledger, {
      source: 'ath',
      from: { records: [{ sourceId: 'h-7', job, startedAt: after, finishedAt: after }] },
    });
    expect(r2.skippedCutover).toBe(1);
  });

  it('an ISO cutover skips rows at or after it; none imports everything', async () => {
    const job = 'iso-cutover';
    const records = [0, 10, 20, 30].map((m) => ({ sourceId: `c-${m}`, job, startedAt: at(m), finishedAt: at(m + 1) }));
    const iso = await runImport(ledger, { source: 'iso', from: { records }, cutover: at(20) });
    expect(iso).toMatchObject({ inserted: 2, skippedCutover: 2 });
    const none = await runImport(ledger, { source: 'iso', from: { records }, cutover: 'none' });
    expect(none).toMatchObject({ inserted: 2, duplicates: 2, skippedCutover: 0 });
  });
});

describe(`import: chunks and live writers (${mode})`, () => {
  it('commits each chunk on its own while live runs start and complete, on the very subjects being imported', async () => {
    const job = 'busy';
    const n = 600;
    const chunkSize = 50;
    const records = Array.from({ length: n }, (_, i) => ({
      sourceId: `b-${i}`,
      job,
      subject: `s-${i % 3}`,
      startedAt: at(i),
      finishedAt: at(i + 1),
    }));
    const seenAfterChunk: number[] = [];
    const betweenChunks: string[] = [];
    let done = false;
    let liveOk = 0;
    const liveErrors: unknown[] = [];
    // Live writers running concurrently for the whole import.
    const liveLoop = (async () => {
      while (!done) {
        try {
          const run = await ledger.startRun({ job, subject: `s-${liveOk % 3}`, trigger: 'live' });
          await run.event('progress', { i: liveOk });
          await run.complete({ output: liveOk });
          liveOk++;
        } catch (err) {
          liveErrors.push(err);
          break;
        }
      }
    })();
    const report = await runImport(ledger, {
      source: 'busy',
      from: { records },
      chunkSize,
      cutover: 'none',
      onChunk: async ({ index }) => {
        // Seen from elsewhere, between chunks: exactly the chunks so far are committed.
        seenAfterChunk.push(await countRuns(ledger, 'busy'));
        // And a live write on a subject the import touches goes through between chunks: an
        // import holding one long transaction (or a lock) across chunks would hang here.
        if (index % 4 === 0) {
          const run = await ledger.startRun({ job, subject: 's-0', trigger: 'between' });
          await run.complete();
          betweenChunks.push(run.id);
        }
      },
    });
    done = true;
    await liveLoop;
    expect(liveErrors).toEqual([]);
    expect(report).toMatchObject({ inserted: n, chunks: n / chunkSize, invalid: 0 });
    expect(seenAfterChunk).toEqual(Array.from({ length: n / chunkSize }, (_, i) => (i + 1) * chunkSize));
    expect(report.longestChunkMs).toBeGreaterThan(0);
    expect(liveOk).toBeGreaterThan(0);
    expect(betweenChunks).toHaveLength(Math.ceil(n / chunkSize / 4));
    // The latest live completion on s-0 is fresher than any imported (2024) verdict.
    const s0 = await ledger.getSubject(job, 's-0');
    expect(['live', 'between']).toContain(s0.trigger);
    expect(await countRuns(ledger, 'busy')).toBe(n);
  });
});

describe(`import: subject status follows the freshness rule (${mode})`, () => {
  it('history never displaces a fresher live verdict; a subject without one gets its latest imported run', async () => {
    const job = 'fresh';
    const live = await ledger.startRun({ job, subject: 'has-live' });
    await live.complete();
    // Given in shuffled order and one per chunk: the result must not depend on order.
    const records = [
      {
        sourceId: 'f-2',
        id: 'f-2',
        job,
        subject: 'no-status',
        status: 'failed',
        startedAt: at(1),
        finishedAt: at(20),
        error: { message: 'x' },
      },
      { sourceId: 'f-3', id: 'f-3', job, subject: 'no-status', status: 'completed', startedAt: at(1), finishedAt: at(30) },
      { sourceId: 'f-1', id: 'f-1', job, subject: 'no-status', status: 'completed', startedAt: at(1), finishedAt: at(10) },
      {
        sourceId: 'f-4',
        id: 'f-4',
        job,
        subject: 'has-live',
        status: 'failed',
        startedAt: at(1),
        finishedAt: at(40),
        error: { message: 'old' },
      },
    ];
    const report = await runImport(ledger, { source: 'fresh', from: { records }, chunkSize: 1, cutover: 'none' });
    expect(report.inserted).toBe(4);
    expect(await ledger.getSubject(job, 'has-live')).toMatchObject({ runId: live.id, status: 'completed' });
    expect(await ledger.getSubject(job, 'no-status')).toMatchObject({ runId: 'f-3', status: 'completed', finishedAt: at(30) });

    // A late, older arrival changes nothing.
    await runImport(ledger, {
      source: 'fresh',
      from: { records: [{ sourceId: 'f-0', job, subject: 'no-status', status: 'failed', finishedAt: at(5), error: { message: 'late' } }] },
    });
    expect((await ledger.getSubject(job, 'no-status')).runId).toBe('f-3');
  });

  it('subjectStatus: false imports the runs and leaves subject status alone', async () => {
    const r = await runImport(ledger, {
      source: 'quiet',
      from: { records: [{ sourceId: 'q-1', job: 'quiet-job', subject: 'q', finishedAt: at(1) }] },
      subjectStatus: false,
    });
    expect(r.inserted).toBe(1);
    await expect(ledger.getSubject('quiet-job', 'q')).rejects.toMatchObject({ code: 'not_found' });
  });
});

describe(`import: dry run (${mode})`, () => {
  it('writes nothing and reports exactly what the real run then does', async () => {
    const job = 'dry';
    const live = await ledger.startRun({ job, subject: 'd', trigger: 'owner_test' });
    const liveStart = Date.parse(live.run.startedAt!);
    const after = new Date(liveStart + 1000).toISOString();
    // Some rows already imported by an earlier, interrupted run.
    await runImport(ledger, {
      source: 'dry',
      from: { records: [0, 1, 2].map((i) => ({ sourceId: `d-${i}`, job, subject: 'd', finishedAt: at(i) })) },
    });
    const lines = [
      ...jsonl(Array.from({ length: 8 }, (_, i) => ({ sourceId: `d-${i}`, job, subject: 'd', finishedAt: at(i) }))),
      '{"sourceId": "broken"',
      JSON.stringify({ sourceId: 'd-bad-status', job, status: 'running', finishedAt: at(1) }),
      // Past the cutover of (dry, owner_test).
      JSON.stringify({ sourceId: 'd-window', job, subject: 'd', trigger: 'owner_test', startedAt: after, finishedAt: after }),
      // Repeats across chunks: a sourceId, and an id under another sourceId.
      JSON.stringify({ sourceId: 'd-x', id: 'dry-x', job, finishedAt: at(3) }),
      ...jsonl(Array.from({ length: 5 }, (_, i) => ({ sourceId: `d-fill-${i}`, job, finishedAt: at(i) }))),
      JSON.stringify({ sourceId: 'd-x', id: 'dry-x', job, finishedAt: at(3) }),
      JSON.stringify({ sourceId: 'd-y', id: 'dry-x', job, finishedAt: at(4) }),
      JSON.stringify({ sourceId: 'd-nul', job, notes: 'a\u0000b', finishedAt: at(4) }),
      JSON.stringify({ sourceId: 'd-live-id', id: live.id, job, finishedAt: at(4) }),
      // The same id under two sourceIds within one chunk.
      JSON.stringify({ sourceId: 'd-z1', id: 'dry-z', job, finishedAt: at(5) }),
      JSON.stringify({ sourceId: 'd-z2', id: 'dry-z', job, finishedAt: at(5) }),
    ];
    const path = files.write('dry.jsonl', lines);
    const before = await fingerprint(ledger);
    const dry = await runImport(ledger, { source: 'dry', from: { file: path }, chunkSize: 4, dryRun: true });
    expect(await fingerprint(ledger)).toBe(before);
    expect(dry.dryRun).toBe(true);
    expect(dry).toMatchObject({ read: 23, inserted: 12, duplicates: 4, skippedCutover: 1, invalid: 6 });

    const real = await runImport(ledger, { source: 'dry', from: { file: path }, chunkSize: 4 });
    expect(outcome(dry)).toEqual(outcome(real));
    expect(await countRuns(ledger, 'dry')).toBe(3 + 12);
    expect(real.invalidRecords.map((i) => [i.line, i.code])).toEqual([
      [9, 'validation_failed'],
      [10, 'validation_failed'],
      [19, 'id_conflict'],
      [20, 'validation_failed'],
      [21, 'id_conflict'],
      [23, 'id_conflict'],
    ]);
  });
});

describe(`import: invalid records (${mode})`, () => {
  it('are reported with line number and reason, and every valid record around them is imported', async () => {
    const job = 'invalid';
    const ok = (i: number) => JSON.stringify({ sourceId: `ok-${i}`, job, subject: `s${i}`, finishedAt: at(i) });
    const lines = [
      ok(1),
      'not json at all',
      '[1, 2]',
      JSON.stringify({ job, finishedAt: at(1) }),
      JSON.stringify({ sourceId: 'no-time', job }),
      JSON.stringify({ sourceId: 'backwards', job, startedAt: at(5), finishedAt: at(4) }),
      JSON.stringify({ sourceId: 'unknown', job, finishedAt: at(1), colour: 'red' }),
      JSON.stringify({ sourceId: 'bad-id', id: 'has space', job, finishedAt: at(1) }),
      '',
      JSON.stringify({ sourceId: 'nul', job, finishedAt: at(1), params: { 'k\u0000': 1 } }),
      ok(2),
      ok(3),
      // PostgreSQL would store U+FFFD for it: the run would differ from its source.
      JSON.stringify({ sourceId: 'surrogate', job, finishedAt: at(1), notes: 'a\ud800b' }),
    ];
    const path = files.write('invalid.jsonl', lines);
    const r = await runImport(ledger, { source: 'invalid', from: { file: path }, chunkSize: 3 });
    expect(r).toMatchObject({ read: 12, inserted: 3, invalid: 9 });
    const byLine = Object.fromEntries(r.invalidRecords.map((i) => [i.line, i]));
    expect(Object.keys(byLine).map(Number)).toEqual([2, 3, 4, 5, 6, 7, 8, 10, 13]);
    expect(byLine[2].message).toMatch(/not valid JSON/);
    expect(byLine[3].message).toMatch(/must be a JSON object/);
    expect(byLine[4].message).toMatch(/sourceId is required/);
    expect(byLine[5]).toMatchObject({
      sourceId: 'no-time',
      message: expect.stringMatching(/at least one of startedAt, finishedAt or createdAt/),
    });
    expect(byLine[6].message).toMatch(/finishedAt .* is before startedAt/);
    expect(byLine[7].message).toMatch(/unknown field\(s\) colour/);
    expect(byLine[8].message).toMatch(/id must be 1–128/);
    expect(byLine[10].message).toMatch(/params\."?k.*\\?u\+?0000/i);
    expect(byLine[13].message).toMatch(/notes .*unpaired UTF-16 surrogate/);
    expect(await countRuns(ledger, 'invalid')).toBe(3);
  });

  it('a value only the database refuses fails alone: the rest of its chunk is still imported', async () => {
    // Incompressible 4-byte characters: 1024 of them exceed the btree entry limit of the subject index.
    const huge = Array.from({ length: 1024 }, (_, i) => String.fromCodePoint(0x1f300 + ((i * 7919) % 700))).join('');
    const records = [
      { sourceId: 'db-1', job: 'db-refuses', subject: 'fine', finishedAt: at(1) },
      { sourceId: 'db-2', job: 'db-refuses', subject: huge, finishedAt: at(2) },
      { sourceId: 'db-3', job: 'db-refuses', subject: 'fine-too', finishedAt: at(3) },
    ];
    const r = await runImport(ledger, { source: 'db-refuses', from: { records } });
    expect(r).toMatchObject({ inserted: 2, invalid: 1 });
    expect(r.invalidRecords[0]).toMatchObject({ line: 2, sourceId: 'db-2', code: 'validation_failed' });
    expect(await countRuns(ledger, 'db-refuses')).toBe(2);
  });

  it('wrong options fail before anything is written', async () => {
    await expect(runImport(ledger, { source: 'bad source!', from: { records: [] } })).rejects.toMatchObject({ code: 'validation_failed' });
    await expect(runImport(ledger, { source: 'x', from: { records: [] }, chunkSize: 1001 })).rejects.toMatchObject({
      code: 'validation_failed',
      message: expect.stringMatching(/chunkSize must be a whole number 1–1000; got 1001/),
    });
    await expect(runImport(ledger, { source: 'x', from: { file: files.write('data.txt', 'x') } })).rejects.toMatchObject({
      message: expect.stringMatching(/give --format jsonl or --format csv/),
    });
    await expect(runImport(ledger, { source: 'x', from: { file: `${files.dir}/missing.jsonl` } })).rejects.toMatchObject({
      message: expect.stringMatching(/cannot read .*missing\.jsonl/),
    });
    await expect(runImport(ledger, { source: 'x', from: { records: [] }, map: 'a=colour' })).rejects.toMatchObject({
      message: expect.stringMatching(/"colour" is not a target/),
    });
  });
});
