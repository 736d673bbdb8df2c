/**
 * The HTTP API, in process (app.inject): every endpoint with its status
 * codes and error codes, on the selected backend.
 */
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { buildServer, type OpenedLedger } from '../../src/index.js';
import { dropSchemas, freshStore } from '../helpers.js';
import { api, expectProblem } from './support.js';

let ledger: OpenedLedger;
let app: FastifyInstance;
let call: ReturnType<typeof api>;
let n = 0;
const uid = (p = 'r') => `${p}-${Date.now().toString(36)}-${++n}`;

beforeAll(async () => {
  ledger = await freshStore();
  app = await buildServer({ ledger, auth: 'off' });
  call = api(app);
});
afterAll(async () => {
  await app?.close();
  await ledger?.close();
  await dropSchemas();
});

async function created(body: Record<string, unknown> = {}) {
  const res = await call('POST', '/v1/runs', { job: 'api-test', ...body });
  expect(res.status, res.text).toBe(201);
  return res.body as { id: string; version: number; status: string };
}

describe('POST /v1/runs', () => {
  it('201 creates and starts, with Location and ETag; 200 returns the same run again', async () => {
    const id = uid();
    const first = await call('POST', '/v1/runs', { id, job: 'j', subject: 'acme/api', params: { a: 1 } });
    expect(first.status).toBe(201);
    expect(first.body).toMatchObject({ id, job: 'j', subject: 'acme/api', status: 'running', namespace: 'default', version: 1 });
    expect(first.headers.location).toBe(`/v1/runs/${id}`);
    expect(first.headers.etag).toBe('"1"');
    const again = await call('POST', '/v1/runs', { id, job: 'j', subject: 'acme/api', params: { a: 1 } });
    expect(again.status).toBe(200);
    expect(again.body).toEqual(first.body);
  });

  it('generates an id when none is given; status submitted only records the run', async () => {
    const res = await call('POST', '/v1/runs', { job: 'j', status: 'submitted' });
    expect(res.status).toBe(201);
    expect(res.body.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(res.body.status).toBe('submitted');
    expect(res.body.startedAt).toBeNull();
  });

  it('409 id_conflict names the fields that differ', async () => {
    const id = uid();
    await call('POST', '/v1/runs', { id, job: 'j', subject: 's' });
    const p = expectProblem(await call('POST', '/v1/runs', { id, job: 'k', subject: 's', trigger: 't' }), 409, 'id_conflict');
    expect(p.errors.map((e) => e.field).sort()).toEqual(['job', 'trigger']);
    expect(p.detail).toContain(id);
  });

  it('400 validation_failed names the field, the value and what is allowed', async () => {
    let p = expectProblem(await call('POST', '/v1/runs', {}), 400, 'validation_failed');
    expect(p.detail).toContain('job is required');
    p = expectProblem(await call('POST', '/v1/runs', { job: 'j', leaseS: 0 }), 400, 'validation_failed');
    expect(p.errors[0]).toMatchObject({ field: 'leaseS' });
    expect(p.detail).toContain('got 0');
    p = expectProblem(await call('POST', '/v1/runs', { job: 'j', colour: 'red' }), 400, 'validation_failed');
    expect(p.detail).toContain('colour');
    p = expectProblem(await call('POST', '/v1/runs', { job: 'j', id: 'has space' }), 400, 'validation_failed');
    expect(p.detail).toContain('"has space"');
  });
});

describe('GET /v1/runs/{id}', () => {
  it('200 with ETag = version; 304 for a matching If-None-Match', async () => {
    const run = await created();
    const res = await call('GET', `/v1/runs/${run.id}`);
    expect(res.status).toBe(200);
    expect(res.headers.etag).toBe(`"${run.version}"`);
    expect(res.body.id).toBe(run.id);
    const cached = await call('GET', `/v1/runs/${run.id}`, undefined, { 'if-none-match': `"${run.version}"` });
    expect(cached.status).toBe(304);
    const stale = await call('GET', `/v1/runs/${run.id}`, undefined, { 'if-none-match': '"999"' });
    expect(stale.status).toBe(200);
  });

  it('404 not_found; 400 for an id outside the allowed characters', async () => {
    expectProblem(await call('GET', '/v1/runs/no-such-run'), 404, 'not_found');
    const p = expectProblem(await call('GET', '/v1/runs/bad%20id'), 400, 'validation_failed');
    expect(p.errors[0].field).toBe('id');
  });

  it('takes run ids of the full allowed length and alphabet', async () => {
    const id = `a._:@+-${'x'.repeat(121)}`;
    expect(id).toHaveLength(128);
    await call('POST', '/v1/runs', { id, job: 'j' });
    const res = await call('GET', `/v1/runs/${encodeURIComponent(id)}`);
    expect(res.status).toBe(200);
    expect(res.body.id).toBe(id);
  });
});

describe('GET /v1/runs', () => {
  it('filters by job, status (comma list), tag, externalId and missingExternalId; newest first', async () => {
    const job = uid('list');
    const a = await created({ job, tags: { team: 'a' }, externalIds: { 'amc.executionId': 'e-1' } });
    const b = await created({ job, tags: { team: 'b' } });
    const c = await created({ job, status: 'submitted' });
    await call('POST', `/v1/runs/${b.id}/complete`, {});
    const ids = async (qs: string) => ((await call('GET', `/v1/runs?job=${job}&${qs}`)).body.runs as { id: string }[]).map((r) => r.id);
    expect(await ids('')).toEqual([c.id, b.id, a.id]);
    expect(await ids('status=running,completed')).toEqual([b.id, a.id]);
    expect(await ids('status=submitted')).toEqual([c.id]);
    expect(await ids('tag=team:a')).toEqual([a.id]);
    expect(await ids('externalId=amc.executionId:e-1')).toEqual([a.id]);
    expect(await ids('missingExternalId=amc.executionId')).toEqual([c.id, b.id]);
  });

  it('pages with limit and nextCursor (keyset)', async () => {
    const job = uid('page');
    for (let i = 0; i < 5; i++) await created({ job });
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const res: { body: { runs: { id: string }[]; nextCursor: string | null } } = await call(
        'GET',
        `/v1/runs?job=${job}&limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
      );
      expect(res.body.runs.length).toBeLessThanOrEqual(2);
      seen.push(...res.body.runs.map((r) => r.id));
      cursor = res.body.nextCursor;
    } while (cursor);
    expect(seen).toHaveLength(5);
    expect(new Set(seen).size).toBe(5);
  });

  it('400 for a limit outside 1–500 (not clamped), an unknown parameter, a bad cursor or status', async () => {
    for (const qs of ['limit=0', 'limit=501', 'limit=abc', 'limit=1.5']) {
      const p = expectProblem(await call('GET', `/v1/runs?${qs}`), 400, 'validation_failed');
      expect(p.errors[0].field).toBe('limit');
    }
    expect(expectProblem(await call('GET', '/v1/runs?colour=red'), 400, 'validation_failed').detail).toContain('colour');
    expect(expectProblem(await call('GET', '/v1/runs?cursor=zzz'), 400, 'validation_failed').detail).toContain('cursor');
    expect(expectProblem(await call('GET', '/v1/runs?status=runing'), 400, 'validation_failed').detail).toContain('status');
  });
});

describe('PATCH /v1/runs/{id}', () => {
  it('merges tags, sets notes, adds external ids; returns the run with its new ETag', async () => {
    const run = await created({ tags: { a: '1' } });
    const res = await call('PATCH', `/v1/runs/${run.id}`, {
      tags: { b: '2' },
      notes: 'hello',
      externalIds: { 'temporal.workflowId': 'wf' },
    });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ tags: { a: '1', b: '2' }, notes: 'hello', externalIds: { 'temporal.workflowId': 'wf' } });
    expect(res.headers.etag).toBe(`"${res.body.version}"`);
    expect(res.body.version).toBeGreaterThan(run.version);
  });

  it('If-Match: the current ETag succeeds, a stale one is 409 version_mismatch and changes nothing', async () => {
    const run = await created();
    const ok = await call('PATCH', `/v1/runs/${run.id}`, { tags: { x: '1' } }, { 'if-match': `"${run.version}"` });
    expect(ok.status).toBe(200);
    const p = expectProblem(
      await call('PATCH', `/v1/runs/${run.id}`, { tags: { x: '2' } }, { 'if-match': `"${run.version}"` }),
      409,
      'version_mismatch',
    );
    expect(p.detail).toContain(`not ${run.version}`);
    expect((await call('GET', `/v1/runs/${run.id}`)).body.tags).toEqual({ x: '1' });
    expect((await call('PATCH', `/v1/runs/${run.id}`, { notes: 'n' }, { 'if-match': '*' })).status).toBe(200);
    expectProblem(await call('PATCH', `/v1/runs/${run.id}`, { notes: 'n' }, { 'if-match': 'yesterday' }), 400, 'validation_failed');
  });

  it('409 key_conflict for another value under an existing external id; 400 for ifVersion in the body', async () => {
    const run = await created({ externalIds: { k: 'v1' } });
    expect((await call('PATCH', `/v1/runs/${run.id}`, { externalIds: { k: 'v1' } })).status).toBe(200);
    expectProblem(await call('PATCH', `/v1/runs/${run.id}`, { externalIds: { k: 'v2' } }), 409, 'key_conflict');
    expectProblem(await call('PATCH', `/v1/runs/${run.id}`, { ifVersion: 1 }), 400, 'validation_failed');
    expectProblem(await call('PATCH', '/v1/runs/nope', { notes: 'x' }), 404, 'not_found');
  });
});

describe('status transitions', () => {
  it('start: submitted → running (a repeat is a no-op); a transition the table forbids is 409 invalid_transition', async () => {
    const run = await created({ status: 'submitted' });
    expectProblem(await call('POST', `/v1/runs/${run.id}/retry`, {}), 409, 'invalid_transition');
    const res = await call('POST', `/v1/runs/${run.id}/start`);
    expect(res.status).toBe(200);
    expect(res.body.status).toBe('running');
    const again = await call('POST', `/v1/runs/${run.id}/start`);
    expect(again.status).toBe(200);
    expect(again.body.version).toBe(res.body.version);
    const p = expectProblem(await call('POST', `/v1/runs/${run.id}/retry`, { colour: 1 }), 400, 'validation_failed');
    expect(p.detail).toContain('colour');
  });

  it('heartbeat renews with progress; on a finished run it is 409 run_finished', async () => {
    const run = await created({ leaseS: 60 });
    const res = await call('POST', `/v1/runs/${run.id}/heartbeat`, { progress: { done: 3, of: 10 } });
    expect(res.status).toBe(200);
    expect(res.body.progress).toEqual({ done: 3, of: 10 });
    expect((await call('POST', `/v1/runs/${run.id}/heartbeat`)).status).toBe(200);
    await call('POST', `/v1/runs/${run.id}/complete`, {});
    expectProblem(await call('POST', `/v1/runs/${run.id}/heartbeat`), 409, 'run_finished');
    expectProblem(await call('POST', `/v1/runs/${run.id}/heartbeat`, { progress: 1, extra: 2 }), 400, 'validation_failed');
  });

  it('complete: same payload again is 200 and changes nothing; another payload is 409 run_finished', async () => {
    const run = await created({ notes: 'keep me' });
    const done = await call('POST', `/v1/runs/${run.id}/complete`, { output: { rows: 42 }, statistics: { ms: 5 } });
    expect(done.status).toBe(200);
    expect(done.body).toMatchObject({ status: 'completed', output: { rows: 42 }, statistics: { ms: 5 }, notes: 'keep me' });
    const again = await call('POST', `/v1/runs/${run.id}/complete`, { output: { rows: 42 }, statistics: { ms: 5 } });
    expect(again.status).toBe(200);
    expect(again.body.version).toBe(done.body.version);
    expectProblem(await call('POST', `/v1/runs/${run.id}/complete`, { output: { rows: 43 } }), 409, 'run_finished');
    expectProblem(await call('POST', `/v1/runs/${run.id}/fail`, { error: { message: 'late' } }), 409, 'run_finished');
  });

  it('fail needs error.message; cancel takes a reason; retry goes running → retrying → running', async () => {
    const a = await created();
    const p = expectProblem(await call('POST', `/v1/runs/${a.id}/fail`, { error: {} }), 400, 'validation_failed');
    expect(p.errors[0].field).toBe('error.message');
    const failed = await call('POST', `/v1/runs/${a.id}/fail`, { error: { type: 'Boom', message: 'it broke' } });
    expect(failed.body).toMatchObject({ status: 'failed', error: { type: 'Boom', message: 'it broke' } });

    const b = await created();
    const cancelled = await call('POST', `/v1/runs/${b.id}/cancel`, { reason: 'operator' });
    expect(cancelled.status).toBe(200);
    expect(cancelled.body.status).toBe('cancelled');

    const c = await created();
    const retrying = await call('POST', `/v1/runs/${c.id}/retry`, { error: { message: 'transient' } });
    expect(retrying.body.status).toBe('retrying');
    const restarted = await call('POST', `/v1/runs/${c.id}/start`);
    expect(restarted.body).toMatchObject({ status: 'running', attempt: 2 });
    expectProblem(await call('POST', '/v1/runs/nope/complete', {}), 404, 'not_found');
  });
});

describe('events', () => {
  it('POST appends a batch → { results }; a repeated key returns the original seq; GET pages by afterSeq', async () => {
    const run = await created();
    const res = await call('POST', `/v1/runs/${run.id}/events`, {
      events: [
        { type: 'log', body: { line: 1 } },
        { key: 'k1', type: 'progress', level: 'info', body: { done: 1 } },
      ],
    });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      results: [
        { seq: 2, duplicate: false },
        { seq: 3, key: 'k1', duplicate: false },
      ],
    });
    const dup = await call('POST', `/v1/runs/${run.id}/events`, {
      events: [{ key: 'k1', type: 'progress', level: 'info', body: { done: 1 } }],
    });
    expect(dup.body).toEqual({ results: [{ seq: 3, key: 'k1', duplicate: true }] });

    const page = await call('GET', `/v1/runs/${run.id}/events?afterSeq=1&limit=1`);
    expect(page.status).toBe(200);
    expect(page.body.events.map((e: { seq: number }) => e.seq)).toEqual([2]);
    expect(page.body.nextAfterSeq).toBe(2);
    const rest = await call('GET', `/v1/runs/${run.id}/events?afterSeq=2`);
    expect(rest.body.events.map((e: { type: string }) => e.type)).toEqual(['progress']);
    expect(rest.body.nextAfterSeq).toBeNull();
  });

  it('409 key_conflict for a key reused with other content; 409 run_finished after the end; 404 for no run', async () => {
    const run = await created();
    await call('POST', `/v1/runs/${run.id}/events`, { events: [{ key: 'k', type: 't', body: 1 }] });
    const p = expectProblem(
      await call('POST', `/v1/runs/${run.id}/events`, { events: [{ key: 'k', type: 't', body: 2 }] }),
      409,
      'key_conflict',
    );
    expect(p.errors[0].field).toBe('events.0.key');
    await call('POST', `/v1/runs/${run.id}/complete`, {});
    expectProblem(await call('POST', `/v1/runs/${run.id}/events`, { events: [{ type: 't' }] }), 409, 'run_finished');
    expectProblem(await call('POST', '/v1/runs/nope/events', { events: [{ type: 't' }] }), 404, 'not_found');
    expectProblem(await call('GET', '/v1/runs/nope/events'), 404, 'not_found');
  });

  it('400 for an empty batch, more than 1000 events, a bad level or limit; nothing is stored', async () => {
    const run = await created();
    expectProblem(await call('POST', `/v1/runs/${run.id}/events`, { events: [] }), 400, 'validation_failed');
    const many = Array.from({ length: 1001 }, () => ({ type: 't' }));
    expectProblem(await call('POST', `/v1/runs/${run.id}/events`, { events: many }), 400, 'validation_failed');
    const p = expectProblem(
      await call('POST', `/v1/runs/${run.id}/events`, { events: [{ type: 't' }, { type: 't', level: 'loud' }] }),
      400,
      'validation_failed',
    );
    expect(p.errors[0].field).toBe('events.1.level');
    expectProblem(await call('GET', `/v1/runs/${run.id}/events?limit=0`), 400, 'validation_failed');
    expectProblem(await call('GET', `/v1/runs/${run.id}/events?afterSeq=-1`), 400, 'validation_failed');
    expect((await call('GET', `/v1/runs/${run.id}`)).body.lastSeq).toBe(1);
  });
});

describe('checkpoints', () => {
  it('201 new, 200 same content, 409 other content; list without data, one with data', async () => {
    const run = await created();
    const cp = { name: 'pre_decision', kind: 'diff', metadata: { diffHash: 'abc' }, data: { big: [1, 2, 3] } };
    const first = await call('POST', `/v1/runs/${run.id}/checkpoints`, cp);
    expect(first.status).toBe(201);
    expect(first.body).toMatchObject({
      runId: run.id,
      name: 'pre_decision',
      kind: 'diff',
      contentHash: expect.stringMatching(/^[0-9a-f]{64}$/),
    });
    const same = await call('POST', `/v1/runs/${run.id}/checkpoints`, cp);
    expect(same.status).toBe(200);
    expect(same.body.contentHash).toBe(first.body.contentHash);
    expectProblem(await call('POST', `/v1/runs/${run.id}/checkpoints`, { ...cp, metadata: { diffHash: 'def' } }), 409, 'key_conflict');

    const list = await call('GET', `/v1/runs/${run.id}/checkpoints`);
    expect(list.status).toBe(200);
    expect(list.body.checkpoints).toHaveLength(1);
    expect(list.body.checkpoints[0].data).toBeUndefined();
    const one = await call('GET', `/v1/runs/${run.id}/checkpoints/pre_decision`);
    expect(one.body.data).toEqual({ big: [1, 2, 3] });
  });

  it('404 for an unknown checkpoint or run; 400 without metadata', async () => {
    const run = await created();
    expectProblem(await call('GET', `/v1/runs/${run.id}/checkpoints/nope`), 404, 'not_found');
    expectProblem(await call('GET', '/v1/runs/nope/checkpoints'), 404, 'not_found');
    expectProblem(await call('POST', `/v1/runs/${run.id}/checkpoints`, { name: 'x' }), 400, 'validation_failed');
    expectProblem(await call('POST', '/v1/runs/nope/checkpoints', { name: 'x', metadata: {} }), 404, 'not_found');
  });
});

describe('subjects', () => {
  it('lists current status per subject and shows one (URL-encoded path segments) with recent runs', async () => {
    const job = uid('subj');
    const subject = 'https://agent.example/a b?c';
    const run = await created({ job, subject });
    await call('POST', `/v1/runs/${run.id}/complete`, {});
    const list = await call('GET', `/v1/subjects?job=${job}&status=completed`);
    expect(list.status).toBe(200);
    expect(list.body.subjects).toEqual([expect.objectContaining({ job, subject, runId: run.id, status: 'completed' })]);
    expect((await call('GET', `/v1/subjects?job=${job}&status=failed`)).body.subjects).toEqual([]);
    const one = await call('GET', `/v1/subjects/${encodeURIComponent(job)}/${encodeURIComponent(subject)}`);
    expect(one.status).toBe(200);
    expect(one.body).toMatchObject({ job, subject, status: 'completed' });
    expect(one.body.recentRuns.map((r: { id: string }) => r.id)).toEqual([run.id]);
    expectProblem(await call('GET', `/v1/subjects/${job}/unknown`), 404, 'not_found');
    expectProblem(await call('GET', '/v1/subjects?limit=1000'), 400, 'validation_failed');
  });
});

describe('POST /v1/imports', () => {
  const record = (sourceId: string, job: string) => ({
    sourceId,
    job,
    subject: 'acme',
    status: 'completed',
    startedAt: '2024-01-01T10:00:00Z',
    finishedAt: '2024-01-01T10:00:05Z',
  });

  it('per-item results; a re-run inserts nothing; dryRun writes nothing', async () => {
    const job = uid('imp');
    const runs = [record('1', job), record('2', job), { sourceId: '3' }];
    const dry = await call('POST', '/v1/imports', { source: 'legacy', runs, dryRun: true });
    expect(dry.status).toBe(200);
    expect(dry.body).toMatchObject({ inserted: 2, invalid: 1 });
    expect((await call('GET', `/v1/runs?job=${job}`)).body.runs).toEqual([]);

    const res = await call('POST', '/v1/imports', { source: 'legacy', runs });
    expect(res.body).toMatchObject({ inserted: 2, duplicates: 0, invalid: 1 });
    expect(res.body.results.map((r: { status: string }) => r.status)).toEqual(['inserted', 'inserted', 'invalid']);
    expect(res.body.results[2].error.code).toBe('validation_failed');
    const again = await call('POST', '/v1/imports', { source: 'legacy', runs });
    expect(again.body).toMatchObject({ inserted: 0, duplicates: 2 });
    const stored = (await call('GET', `/v1/runs?job=${job}`)).body.runs;
    expect(stored).toHaveLength(2);
    expect(stored[0]).toMatchObject({ source: 'legacy', status: 'completed' });
  });

  it('a record with text PostgreSQL cannot store is reported on its own; the others are imported', async () => {
    const job = uid('imp');
    const runs = [record('1', job), { ...record('2', job), notes: 'bad \u0000 byte' }, { ...record('3', job), subject: 'lone \ud800' }];
    const res = await call('POST', '/v1/imports', { source: 'legacy-text', runs });
    expect(res.status).toBe(200);
    expect(res.body.results.map((r: { status: string }) => r.status)).toEqual(['inserted', 'invalid', 'invalid']);
    expect((await call('GET', `/v1/runs?job=${job}`)).body.runs).toHaveLength(1);
  });

  it('400 for more than 1000 records, a bad source or options; nothing is stored', async () => {
    const job = uid('imp');
    const many = Array.from({ length: 1001 }, (_, i) => record(String(i), job));
    expect(expectProblem(await call('POST', '/v1/imports', { source: 'legacy', runs: many }), 400, 'validation_failed').detail).toContain(
      '1000',
    );
    expectProblem(await call('POST', '/v1/imports', { source: 'bad source!', runs: [] }), 400, 'validation_failed');
    expectProblem(await call('POST', '/v1/imports', { source: 'x', runs: [], cutover: 'sometimes' }), 400, 'validation_failed');
    expectProblem(await call('POST', '/v1/imports', { source: 'x', runs: {} }), 400, 'validation_failed');
    expectProblem(await call('POST', '/v1/imports', { runs: [] }), 400, 'validation_failed');
    expect((await call('GET', `/v1/runs?job=${job}`)).body.runs).toEqual([]);
  });
});

describe('verify, stats, reap', () => {
  it('GET /v1/runs/{id}/verify → { ok, problems }; GET /v1/verify checks the namespace', async () => {
    const run = await created();
    await call('POST', `/v1/runs/${run.id}/events`, { events: [{ type: 't' }] });
    const res = await call('GET', `/v1/runs/${run.id}/verify`);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ ok: true, problems: [], runsChecked: 1, eventsChecked: 2 });
    expectProblem(await call('GET', '/v1/runs/nope/verify'), 404, 'not_found');
    const all = await call('GET', '/v1/verify');
    expect(all.body.ok).toBe(true);
    expect(all.body.runsChecked).toBeGreaterThan(1);
  });

  it('GET /v1/stats → buckets and per-job percentiles; 400 for a bad bucket or range', async () => {
    const job = uid('stats');
    const run = await created({ job });
    await call('POST', `/v1/runs/${run.id}/complete`, {});
    const res = await call('GET', `/v1/stats?job=${job}&bucket=minute&from=${new Date(Date.now() - 3_600_000).toISOString()}`);
    expect(res.status).toBe(200);
    expect(res.body.bucket).toBe('minute');
    expect(res.body.jobs).toEqual([expect.objectContaining({ job, count: 1 })]);
    expectProblem(await call('GET', '/v1/stats?bucket=week'), 400, 'validation_failed');
    expectProblem(await call('GET', '/v1/stats?from=2030-01-01T00:00:00Z&to=2020-01-01T00:00:00Z'), 400, 'validation_failed');
  });

  it('POST /v1/reap → { acquired, suspected, timedOut }', async () => {
    const res = await call('POST', '/v1/reap');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ acquired: true, suspected: expect.any(Array), timedOut: expect.any(Array) });
  });
});

describe('namespaces', () => {
  it('every endpoint takes ?namespace (default `default`); the same id in two namespaces is two runs', async () => {
    const id = uid();
    expect((await call('POST', '/v1/runs?namespace=team-a', { id, job: 'a' })).status).toBe(201);
    expect((await call('POST', '/v1/runs?namespace=team-b', { id, job: 'b' })).status).toBe(201);
    expect((await call('GET', `/v1/runs/${id}?namespace=team-a`)).body).toMatchObject({ namespace: 'team-a', job: 'a' });
    expect((await call('GET', `/v1/runs/${id}?namespace=team-b`)).body).toMatchObject({ namespace: 'team-b', job: 'b' });
    expectProblem(await call('GET', `/v1/runs/${id}`), 404, 'not_found');
    expect((await call('GET', '/v1/runs?namespace=team-a')).body.runs.map((r: { id: string }) => r.id)).toEqual([id]);
    expect((await call('POST', `/v1/runs/${id}/complete?namespace=team-a`, {})).body.status).toBe('completed');
    expect((await call('GET', `/v1/runs/${id}?namespace=team-b`)).body.status).toBe('running');
  });

  it('400 for an invalid namespace', async () => {
    const p = expectProblem(await call('GET', '/v1/runs?namespace=has%20space'), 400, 'validation_failed');
    expect(p.errors[0].field).toBe('namespace');
    expectProblem(await call('POST', '/v1/runs?namespace=', { job: 'j' }), 400, 'validation_failed');
  });
});
