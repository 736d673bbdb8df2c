/**
 * Invariant 6, the subject-status freshness rule: a terminal run becomes its subject's
 * current status iff there is none yet or its (finishedAt, id) is greater than the
 * current one's. Whatever order completions commit in, the result is the same.
 *
 * How finishedAt is controlled: `finishedAt` is set from the clock when a live run
 * finishes, so the property tests use `ledger.importRuns` (same rule, same SQL
 * fragment) to place runs at chosen times — including ties, decided by id — and mix
 * them with live completions whose finishedAt is whatever the clock said; the expected
 * winner is then computed from the finishedAt values actually stored. On PostgreSQL
 * the imports and completions of one case run concurrently on separate connections.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import type { RunStatus } from '../../src/index.js';
import { BACKEND, onPostgres, useFreshLedger } from '../helpers.js';

const ledger = useFreshLedger({ poolSize: onPostgres ? 20 : undefined });

const TERMINAL = ['completed', 'failed', 'cancelled', 'timed_out'] as const;
const BASE = Date.parse('2026-03-01T00:00:00.000Z');

/** The rule, independently: the greatest (finishedAt, id); ids are fixed-length hex so every collation orders them alike. */
function freshest<T extends { finishedAt: string; id: string }>(runs: T[]): T {
  return runs.reduce((best, r) => (r.finishedAt > best.finishedAt || (r.finishedAt === best.finishedAt && r.id > best.id) ? r : best));
}

const hexId = fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength: 8, maxLength: 8 });

/** Splits `items` into consecutive chunks at the given cut points. */
function chunk<T>(items: T[], cuts: number[]): T[][] {
  const points = [...new Set(cuts.map((c) => c % (items.length + 1)))].sort((a, b) => a - b);
  const out: T[][] = [];
  let start = 0;
  for (const p of [...points, items.length]) {
    if (p > start) out.push(items.slice(start, p));
    start = Math.max(start, p);
  }
  return out;
}

let caseNo = 0;

describe(`freshness rule, property-based (${BACKEND})`, () => {
  it('imports in any order and chunking converge to the run with the greatest (finishedAt, id); late arrivals never win', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(
          fc.record({
            id: hexId,
            // A few distinct times so that ties (decided by id) are common.
            minute: fc.integer({ min: 0, max: 4 }),
            status: fc.constantFrom(...TERMINAL),
          }),
          { minLength: 1, maxLength: 10, selector: (r) => r.id },
        ),
        fc.func(fc.integer()),
        fc.array(fc.nat(), { maxLength: 4 }),
        async (specs, order, cuts) => {
          const subject = `prop-import-${++caseNo}`;
          const runs = specs.map((s) => ({
            sourceId: `${subject}-${s.id}`,
            id: `${subject}-${s.id}`,
            job: 'freshness',
            subject,
            status: s.status as RunStatus,
            startedAt: new Date(BASE + s.minute * 60_000 - 1000).toISOString(),
            finishedAt: new Date(BASE + s.minute * 60_000).toISOString(),
          }));
          const shuffled = [...runs].sort((a, b) => order(a.id) - order(b.id) || (a.id < b.id ? -1 : 1));
          const chunks = chunk(shuffled, cuts);
          if (onPostgres) {
            const results = await Promise.all(chunks.map((c) => ledger.importRuns('prop', c, { cutover: 'none' })));
            for (const r of results) expect(r.invalid).toBe(0);
          } else {
            let best: { finishedAt: string; id: string } | null = null;
            for (const c of chunks) {
              const r = await ledger.importRuns('prop', c, { cutover: 'none' });
              expect(r.invalid).toBe(0);
              // After every chunk the current status is the freshest seen so far: never older than before.
              const seen: { finishedAt: string; id: string }[] = best ? [best, ...c] : c;
              best = freshest(seen);
              const current = await ledger.getSubject('freshness', subject);
              expect({ runId: current.runId, finishedAt: current.finishedAt }).toEqual({ runId: best.id, finishedAt: best.finishedAt });
            }
          }
          const want = freshest(runs);
          const got = await ledger.getSubject('freshness', subject);
          expect(got).toMatchObject({ runId: want.id, status: want.status, finishedAt: want.finishedAt });
        },
      ),
      { numRuns: onPostgres ? 40 : 25 },
    );
  });

  it('live completions (concurrent on PostgreSQL) mixed with imports around the same time converge to the greatest stored (finishedAt, id)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(
          fc.record({
            id: hexId,
            live: fc.boolean(),
            finish: fc.constantFrom('complete', 'fail', 'cancel', 'import'),
            // For imports: milliseconds around "now", so they land before, among and after the live finishes.
            offsetMs: fc.integer({ min: -200, max: 200 }),
            delayMs: fc.integer({ min: 0, max: 5 }),
          }),
          { minLength: 2, maxLength: 10, selector: (r) => r.id },
        ),
        async (specs) => {
          const subject = `prop-live-${++caseNo}`;
          const job = 'freshness-live';
          const live = specs.filter((s) => s.live);
          const imported = specs.filter((s) => !s.live);
          const handles = await Promise.all(live.map((s) => ledger.startRun({ id: `${subject}-${s.id}`, job, subject })));
          const now = Date.now();
          const finishLive = async (i: number) => {
            const s = live[i];
            await new Promise((r) => setTimeout(r, s.delayMs));
            const h = handles[i];
            if (s.finish === 'fail') await h.fail({ error: { message: 'no' } });
            else if (s.finish === 'cancel') await h.cancel();
            else await h.complete({ output: s.id });
          };
          const importOne = (s: (typeof specs)[number]) =>
            ledger.importRuns(
              'prop-live',
              [
                {
                  sourceId: `${subject}-${s.id}`,
                  id: `${subject}-${s.id}`,
                  job,
                  subject,
                  status: 'completed',
                  finishedAt: new Date(now + s.offsetMs).toISOString(),
                },
              ],
              { cutover: 'none' },
            );
          const work = [...live.map((_, i) => () => finishLive(i)), ...imported.map((s) => () => importOne(s))];
          if (onPostgres) await Promise.all(work.map((w) => w()));
          else for (const w of work) await w();

          // The expected winner from what was actually stored.
          const { runs } = await ledger.listRuns({ job, subject, limit: 500 });
          expect(runs).toHaveLength(specs.length);
          const want = freshest(runs.map((r) => ({ id: r.id, finishedAt: r.finishedAt!, status: r.status })));
          const got = await ledger.getSubject(job, subject);
          expect(got).toMatchObject({ runId: want.id, status: want.status, finishedAt: want.finishedAt });
        },
      ),
      { numRuns: onPostgres ? 30 : 20 },
    );
  });
});

describe('freshness rule, examples', () => {
  it('a late arrival (older finishedAt) never overwrites a fresher verdict, live or imported', async () => {
    const job = 'late';
    const fresh = await ledger.startRun({ job, subject: 'acme' });
    await fresh.complete({ output: 'fresh' });
    const r = await ledger.importRuns('late-src', [
      { sourceId: 'old-1', job, subject: 'acme', status: 'failed', finishedAt: '2020-01-01T00:00:00Z', error: { message: 'old' } },
    ]);
    expect(r.inserted).toBe(1);
    expect(await ledger.getSubject(job, 'acme')).toMatchObject({ runId: fresh.id, status: 'completed' });

    // A verdict from the future would stay fresher than every live run until then: refused,
    // naming the field and the latest time allowed (openLedger's maxFutureSkewS, default 300 s).
    const future = await ledger.importRuns(
      'late-src',
      [{ sourceId: 'future-1', id: 'future-1', job, subject: 'other', finishedAt: '2100-01-01T00:00:00Z' }],
      { cutover: 'none' },
    );
    expect(future.invalid).toBe(1);
    expect(future.results[0].error?.message).toMatch(
      /^finishedAt 2100-01-01T00:00:00.000Z is more than 300 s ahead of the ledger's clock \(latest allowed: /,
    );
    const now = await ledger.startRun({ job, subject: 'other' });
    await now.fail({ error: { message: 'now' } });
    expect((await ledger.getSubject(job, 'other')).runId).toBe(now.id);
    // Within the bound is fine (clocks of different machines differ a little).
    const soon = new Date(Date.now() + 60_000).toISOString();
    expect(
      (await ledger.importRuns('late-src', [{ sourceId: 'soon-1', job, subject: 'third', finishedAt: soon }], { cutover: 'none' }))
        .inserted,
    ).toBe(1);
    const run = await ledger.startRun({ job: 'future-events' });
    await expect(run.event('t', {}, { at: '2100-01-01T00:00:00Z' })).rejects.toMatchObject({ code: 'validation_failed' });
    await expect(run.events([{ type: 'a' }, { type: 'b', at: '2100-01-01T00:00:00Z' }])).rejects.toThrow(
      /^events\.1\.at 2100-01-01T00:00:00.000Z is more than 300 s ahead/,
    );
    expect((await run.listEvents()).events.map((e) => e.type)).toEqual(['run.status']);
  });

  it('previousStatus and statusChangedAt follow the verdicts', async () => {
    const job = 'changes';
    const at = (m: number) => new Date(BASE + m * 60_000).toISOString();
    await ledger.importRuns('chg', [{ sourceId: 'a', id: 'chg-a', job, subject: 's', status: 'completed', finishedAt: at(1) }]);
    expect(await ledger.getSubject(job, 's')).toMatchObject({ status: 'completed', previousStatus: null, statusChangedAt: at(1) });
    // Same status again: the status has not changed since minute 1.
    await ledger.importRuns('chg', [{ sourceId: 'b', id: 'chg-b', job, subject: 's', status: 'completed', finishedAt: at(2) }]);
    expect(await ledger.getSubject(job, 's')).toMatchObject({ runId: 'chg-b', previousStatus: 'completed', statusChangedAt: at(1) });
    // A new status: changed at its finishedAt.
    await ledger.importRuns('chg', [
      { sourceId: 'c', id: 'chg-c', job, subject: 's', status: 'failed', finishedAt: at(3), error: { message: 'x' } },
    ]);
    expect(await ledger.getSubject(job, 's')).toMatchObject({
      runId: 'chg-c',
      status: 'failed',
      previousStatus: 'completed',
      statusChangedAt: at(3),
    });
  });

  it('equal finishedAt is decided by the greater id', async () => {
    const job = 'ties';
    const t = '2026-03-01T12:00:00.000Z';
    await ledger.importRuns('ties', [{ sourceId: 'b', id: 'tie-b', job, subject: 's', finishedAt: t }]);
    await ledger.importRuns('ties', [
      { sourceId: 'a', id: 'tie-a', job, subject: 's', finishedAt: t, status: 'failed', error: { message: 'x' } },
    ]);
    expect((await ledger.getSubject(job, 's')).runId).toBe('tie-b');
    await ledger.importRuns('ties', [{ sourceId: 'c', id: 'tie-c', job, subject: 's', finishedAt: t, status: 'cancelled' }]);
    expect(await ledger.getSubject(job, 's')).toMatchObject({ runId: 'tie-c', status: 'cancelled' });
  });

  it('a reaper timeout is a verdict too; runs without a subject and live runs make none', async () => {
    const job = 'reaped';
    const run = await ledger.startRun({ job, subject: 'slow', deadlineAt: '2000-01-01T00:00:00Z' });
    await ledger.reap();
    expect(await ledger.getSubject(job, 'slow')).toMatchObject({ runId: run.id, status: 'timed_out' });

    await (await ledger.startRun({ job: 'nosubject' })).complete();
    await ledger.startRun({ job: 'stillrunning', subject: 'x' });
    const { subjects } = await ledger.listSubjects({ limit: 500 });
    expect(subjects.some((s) => s.job === 'nosubject' || s.job === 'stillrunning')).toBe(false);
  });

  it('importing with subjectStatus: false leaves subject status alone', async () => {
    await ledger.importRuns('nosubj', [{ sourceId: 'x', job: 'quiet', subject: 's', finishedAt: '2026-01-01T00:00:00Z' }], {
      subjectStatus: false,
    });
    await expect(ledger.getSubject('quiet', 's')).rejects.toMatchObject({ code: 'not_found' });
  });

  it('listSubjects filters by job and status and pages with a cursor', async () => {
    const job = 'listing';
    const records = Array.from({ length: 12 }, (_, i) => ({
      sourceId: `l${i}`,
      job,
      subject: `s${String(i).padStart(2, '0')}`,
      status: (i % 3 === 0 ? 'failed' : 'completed') as 'failed' | 'completed',
      finishedAt: '2026-01-01T00:00:00Z',
      ...(i % 3 === 0 ? { error: { message: 'x' } } : {}),
    }));
    await ledger.importRuns('listing', records);
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await ledger.listSubjects({ job, limit: 5, ...(cursor ? { cursor } : {}) });
      seen.push(...page.subjects.map((s) => s.subject));
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    expect(seen).toEqual(records.map((r) => r.subject));
    const failed = await ledger.listSubjects({ job, status: 'failed' });
    expect(failed.subjects.map((s) => s.subject)).toEqual(records.filter((r) => r.status === 'failed').map((r) => r.subject));
  });
});
