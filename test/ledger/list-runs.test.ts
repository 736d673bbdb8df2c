/**
 * listRuns: every documented filter, newest first by (createdAt, id), keyset cursor
 * paging with no duplicates or omissions (also while new runs arrive), limit 1–500
 * enforced (not clamped), a bad cursor is validation_failed.
 *
 * The data set is imported (to control createdAt, with many exact ties) plus live runs
 * in every non-terminal status; the expected answer of each filter is computed in JS.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { ListRunsFilter, OpenedLedger, Run, RunStatus, SqlLedger } from '../../src/index.js';
import { dropSchemas, freshLedger, rejectsWith } from '../helpers.js';

let ledger: OpenedLedger;
let ns: SqlLedger;
let all: Run[] = [];

const TIMES = Array.from({ length: 8 }, (_, i) => new Date(Date.UTC(2025, 5, 1 + i, 12)).toISOString());
const TERMINAL: RunStatus[] = ['completed', 'failed', 'cancelled', 'timed_out'];

beforeAll(async () => {
  ledger = await freshLedger();
  ns = ledger.inNamespace('listing') as SqlLedger;
  const records = Array.from({ length: 64 }, (_, i) => ({
    sourceId: `src-${i}`,
    // Ids not in creation order, so ties on createdAt are really decided by id.
    id: `run-${String((i * 37) % 64).padStart(2, '0')}`,
    job: `job-${i % 3}`,
    subject: i % 5 === 0 ? undefined : `subject-${i % 4}`,
    trigger: i % 2 ? 'schedule' : 'manual',
    actor: `actor-${i % 5}`,
    parentId: i % 3 === 0 ? `parent-${i % 2}` : undefined,
    status: TERMINAL[i % 4] as 'completed',
    ...(TERMINAL[i % 4] === 'failed' ? { error: { message: 'x' } } : {}),
    createdAt: TIMES[i % TIMES.length],
    finishedAt: TIMES[i % TIMES.length],
    tags: { env: i % 2 ? 'prod' : 'dev', ...(i % 7 === 0 ? { special: 'yes' } : {}) },
    externalIds: i % 4 === 0 ? { 'temporal.workflowId': `wf-${i}` } : {},
  }));
  const result = await ns.importRuns('fixture', records, { cutover: 'none' });
  expect(result.inserted).toBe(64);
  // Live runs in the non-terminal statuses, created now (newer than every import).
  for (let i = 0; i < 9; i++) {
    const run = await ns.startRun({
      id: `live-${i}`,
      job: `job-${i % 3}`,
      subject: `subject-${i % 4}`,
      trigger: 'manual',
      actor: `actor-${i % 5}`,
      status: i % 3 === 0 ? 'submitted' : 'running',
      tags: { env: 'prod' },
    });
    if (i % 3 === 2) await run.retry();
  }
  // Everything, straight from SQL, in the documented order.
  const { rows } = await ledger.database.query<{ id: string }>(`select id from runs where namespace = 'listing'`);
  all = await Promise.all(rows.map((r) => ns.getRun(r.id)));
  all.sort((a, b) => (a.createdAt !== b.createdAt ? (a.createdAt < b.createdAt ? 1 : -1) : a.id < b.id ? 1 : -1));
  expect(all).toHaveLength(73);
});
afterAll(async () => {
  await ledger?.close();
  await dropSchemas();
});

/** Every page of a filter, following nextCursor. */
async function pages(filter: ListRunsFilter, limit: number): Promise<string[][]> {
  const out: string[][] = [];
  let cursor: string | undefined;
  for (;;) {
    const page = await ns.listRuns({ ...filter, limit, ...(cursor ? { cursor } : {}) });
    out.push(page.runs.map((r) => r.id));
    if (!page.nextCursor) break;
    cursor = page.nextCursor;
  }
  return out;
}

const mid = new Date(Date.parse(TIMES[3]) + 1).toISOString();
const late = new Date(Date.parse(TIMES[6]) + 1).toISOString();

const FILTERS: [string, ListRunsFilter, (r: Run) => boolean][] = [
  ['no filter', {}, () => true],
  ['job', { job: 'job-1' }, (r) => r.job === 'job-1'],
  ['subject', { subject: 'subject-2' }, (r) => r.subject === 'subject-2'],
  ['status (one)', { status: 'failed' }, (r) => r.status === 'failed'],
  ['status (list)', { status: ['submitted', 'retrying', 'cancelled'] }, (r) => ['submitted', 'retrying', 'cancelled'].includes(r.status)],
  ['trigger', { trigger: 'schedule' }, (r) => r.trigger === 'schedule'],
  ['actor', { actor: 'actor-3' }, (r) => r.actor === 'actor-3'],
  ['parentId', { parentId: 'parent-1' }, (r) => r.parentId === 'parent-1'],
  ['externalId', { externalId: 'temporal.workflowId:wf-8' }, (r) => r.externalIds['temporal.workflowId'] === 'wf-8'],
  ['missingExternalId', { missingExternalId: 'temporal.workflowId' }, (r) => !('temporal.workflowId' in r.externalIds)],
  ['tag', { tag: 'special:yes' }, (r) => r.tags.special === 'yes'],
  ['createdAfter', { createdAfter: mid }, (r) => r.createdAt > mid],
  ['createdBefore', { createdBefore: mid }, (r) => r.createdAt < mid],
  ['createdAfter and createdBefore', { createdAfter: mid, createdBefore: late }, (r) => r.createdAt > mid && r.createdAt < late],
  [
    'job + status + tag + trigger',
    { job: 'job-0', status: ['failed', 'running'], tag: 'env:prod', trigger: 'schedule' },
    (r) => r.job === 'job-0' && ['failed', 'running'].includes(r.status) && r.tags.env === 'prod' && r.trigger === 'schedule',
  ],
  ['q: an id prefix', { q: 'run-1' }, (r) => r.id.startsWith('run-1')],
  ['q: a job prefix', { q: 'job-2' }, (r) => r.job.startsWith('job-2')],
  [
    'q: a subject prefix, with another filter',
    { q: 'subject-3', status: 'timed_out' },
    (r) => r.subject === 'subject-3' && r.status === 'timed_out',
  ],
  ['q: a prefix of id, job and subject alike', { q: 'live-' }, (r) => r.id.startsWith('live-')],
  // LIKE wildcards in q are literal: `_` must not match the `-` of run-1x.
  ['no match: q with a wildcard character', { q: 'run_1' }, () => false],
  ['no match: q with a percent sign', { q: '%' }, () => false],
  ['no match', { job: 'job-0', actor: 'nobody' }, () => false],
];

describe('listRuns filters', () => {
  for (const [label, filter, keep] of FILTERS) {
    it(`${label}: exactly the matching runs, newest first, the same whether paged by 500 or by 7`, async () => {
      const want = all.filter(keep).map((r) => r.id);
      if (!label.startsWith('no match')) expect(want.length).toBeGreaterThan(0);
      const one = await ns.listRuns({ ...filter, limit: 500 });
      expect(one.runs.map((r) => r.id)).toEqual(want);
      expect(one.nextCursor).toBeNull();
      const paged = await pages(filter, 7);
      expect(paged.flat()).toEqual(want);
      for (const p of paged.slice(0, -1)) expect(p).toHaveLength(7);
      // withTotal counts every matching run, whatever page is asked for.
      const counted = await ns.listRuns({ ...filter, limit: 7, withTotal: true });
      expect([counted.total, counted.totalCapped]).toEqual([want.length, false]);
      if (counted.nextCursor)
        expect((await ns.listRuns({ ...filter, limit: 7, withTotal: true, cursor: counted.nextCursor })).total).toBe(want.length);
      expect('total' in one).toBe(false);
    });
  }

  it('defaults to 50 per page and pages with limit 1 without duplicates or omissions', async () => {
    const first = await ns.listRuns();
    expect(first.runs).toHaveLength(50);
    expect(first.nextCursor).not.toBeNull();
    const byOne = await pages({}, 1);
    expect(byOne.flat()).toEqual(all.map((r) => r.id));
  });

  it('keyset paging is stable while new runs arrive between pages', async () => {
    const before = all.map((r) => r.id);
    const seen: string[] = [];
    let cursor: string | undefined;
    let i = 0;
    for (;;) {
      const page = await ns.listRuns({ limit: 9, ...(cursor ? { cursor } : {}) });
      seen.push(...page.runs.map((r) => r.id));
      // A new (newest) run lands after each page; it sorts before the cursor and is not seen in this walk.
      await ns.startRun({ id: `arrival-${i++}`, job: 'late-arrival' });
      if (!page.nextCursor) break;
      cursor = page.nextCursor;
    }
    expect(seen).toEqual(before);
    expect((await ns.listRuns({ job: 'late-arrival', limit: 500 })).runs).toHaveLength(i);
  });

  it('namespaces do not leak into each other', async () => {
    await ledger.startRun({ id: 'default-ns-run', job: 'job-1' });
    expect((await ns.listRuns({ limit: 500 })).runs.map((r) => r.id)).not.toContain('default-ns-run');
    expect((await ledger.listRuns({ job: 'job-1' })).runs.map((r) => r.id)).toEqual(['default-ns-run']);
  });
});

describe('listRuns refuses bad paging input', () => {
  for (const limit of [0, -1, 501, 1000, 1.5]) {
    it(`limit ${limit} is validation_failed naming limit and 1–500 (not clamped)`, async () => {
      const err = await rejectsWith(ns.listRuns({ limit }), 'validation_failed');
      expect(err.message).toContain('limit');
      expect(err.message).toContain('1–500');
      expect(err.message).toContain(String(limit));
      expect(err.details[0]).toMatchObject({ field: 'limit' });
    });
  }

  it('limit 1 and 500 are accepted', async () => {
    expect((await ns.listRuns({ limit: 1 })).runs).toHaveLength(1);
    expect((await ns.listRuns({ limit: 500 })).runs.length).toBeGreaterThan(1);
  });

  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  for (const [label, cursor] of [
    ['garbage', 'not a cursor!'],
    ['empty', ''],
    ['wrong shape', b64({ a: 1 })],
    ['wrong arity', b64(['2025-01-01T00:00:00.000Z'])],
    ['not strings', b64([1, 2])],
    ['not a time', b64(['not-a-time', 'run-1'])],
    ['PostgreSQL-only time word', b64(['yesterday', 'run-1'])],
    ['infinite time', b64(['infinity', 'run-1'])],
  ] as const) {
    it(`a ${label} cursor is validation_failed`, async () => {
      const err = await rejectsWith(ns.listRuns({ cursor }), 'validation_failed');
      expect(err.message).toContain('cursor');
    });
  }

  it('unknown statuses and malformed key:value filters are validation_failed', async () => {
    const s = await rejectsWith(ns.listRuns({ status: 'done' as RunStatus }), 'validation_failed');
    expect(s.message).toContain('status');
    expect(s.message).toContain('"done"');
    expect(s.message).toContain('completed');
    await rejectsWith(ns.listRuns({ tag: 'no-colon' }), 'validation_failed');
    await rejectsWith(ns.listRuns({ externalId: ':value-only' }), 'validation_failed');
    await rejectsWith(ns.listRuns({ createdAfter: 'last tuesday' }), 'validation_failed');
    expect((await rejectsWith(ns.listRuns({ q: '' }), 'validation_failed')).message).toContain('q must be 1–');
    const t = await rejectsWith(ns.listRuns({ withTotal: 'yes' as unknown as boolean }), 'validation_failed');
    expect(t.message).toContain('withTotal must be true or false');
  });
});
