/**
 * Subject health, kept by the statement that writes the verdict: lastSuccessAt,
 * lastFailureAt and the streaks. A streak is a property of the history ordered by
 * (finishedAt, id), not of the order in which runs arrive: consecutiveSuccesses counts
 * the completed runs after the last failure (failed or timed_out), consecutiveFailures the
 * failures after the last success, cancelled runs count as neither. So a late, older run
 * does not reset a streak it did not end, and whatever order completions and imports
 * commit in, the counters equal a recomputation from all the runs.
 *
 * Times are placed with the ledger's clock (live runs) and with imports (historical runs).
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { OpenedLedger, SubjectStatus } from '../../src/index.js';
import { dropSchemas, freshLedger, manualClock, onPostgres } from '../helpers.js';

const clock = manualClock();
let ledger: OpenedLedger;

beforeAll(async () => {
  ledger = await freshLedger({ clock: clock.now, poolSize: onPostgres ? 20 : undefined });
});
afterAll(async () => {
  await ledger?.close();
  await dropSchemas();
});

type Outcome = 'completed' | 'failed' | 'timed_out' | 'cancelled';
interface Planned {
  id: string;
  status: Outcome;
  finishedAt: string;
  live: boolean;
}

const BASE = Date.parse('2026-03-01T00:00:00.000Z');
const at = (s: number) => new Date(BASE + s * 1000).toISOString();
const health = (s: SubjectStatus) => ({
  runId: s.runId,
  lastSuccessAt: s.lastSuccessAt,
  lastFailureAt: s.lastFailureAt,
  consecutiveSuccesses: s.consecutiveSuccesses,
  consecutiveFailures: s.consecutiveFailures,
});

/** The definition, computed from the whole history at once. */
function expected(runs: Planned[]) {
  const sorted = [...runs].sort((a, b) => (a.finishedAt === b.finishedAt ? (a.id < b.id ? -1 : 1) : a.finishedAt < b.finishedAt ? -1 : 1));
  const last = (pred: (r: Planned) => boolean) => sorted.filter(pred).at(-1) ?? null;
  const isFailure = (r: Planned) => r.status === 'failed' || r.status === 'timed_out';
  const success = last((r) => r.status === 'completed');
  const failure = last(isFailure);
  const after = (x: Planned | null) => (r: Planned) => x === null || sorted.indexOf(r) > sorted.indexOf(x);
  return {
    runId: sorted.at(-1)!.id,
    lastSuccessAt: success?.finishedAt ?? null,
    lastFailureAt: failure?.finishedAt ?? null,
    consecutiveSuccesses: sorted.filter((r) => r.status === 'completed' && after(failure)(r)).length,
    consecutiveFailures: sorted.filter((r) => isFailure(r) && after(success)(r)).length,
  };
}

/** Records `r` for `subject`: live through the lifecycle at its time, or imported. */
async function record(job: string, subject: string, r: Planned) {
  if (!r.live) {
    const res = await ledger.importRuns(
      'history',
      [{ sourceId: r.id, id: r.id, job, subject, status: r.status, startedAt: r.finishedAt, finishedAt: r.finishedAt }],
      { cutover: 'none' },
    );
    expect(res.inserted).toBe(1);
    return;
  }
  clock.set(r.finishedAt);
  const run = await ledger.startRun({ id: r.id, job, subject });
  if (r.status === 'completed') await run.complete();
  else if (r.status === 'failed') await run.fail({ error: { message: 'no' } });
  else await run.cancel();
}

describe('subject health', () => {
  it('counts streaks, and a late older run does not reset a streak it did not end', async () => {
    const job = 'health-example';
    const runs: Planned[] = [
      { id: 'r1', status: 'failed', finishedAt: at(10), live: true },
      { id: 'r2', status: 'completed', finishedAt: at(20), live: true },
      { id: 'r3', status: 'completed', finishedAt: at(30), live: true },
      { id: 'r4', status: 'cancelled', finishedAt: at(35), live: true },
      { id: 'r5', status: 'completed', finishedAt: at(40), live: true },
    ];
    for (const r of runs) await record(job, 's', r);
    let s = await ledger.getSubject(job, 's');
    expect(health(s)).toEqual({
      runId: 'r5',
      lastSuccessAt: at(40),
      lastFailureAt: at(10),
      consecutiveSuccesses: 3,
      consecutiveFailures: 0,
    });
    expect(s.status).toBe('completed'); // r4 (cancelled) neither continued nor broke the streak

    // A failure older than the streak's first run arrives late: the streak stands.
    await record(job, 's', { id: 'late-old', status: 'failed', finishedAt: at(5), live: false });
    s = await ledger.getSubject(job, 's');
    expect(health(s)).toEqual({
      runId: 'r5',
      lastSuccessAt: at(40),
      lastFailureAt: at(10),
      consecutiveSuccesses: 3,
      consecutiveFailures: 0,
    });

    // A failure that happened between r2 and r3 arrives late: the streak is r3 and r5 only.
    await record(job, 's', { id: 'late-inside', status: 'timed_out', finishedAt: at(25), live: false });
    s = await ledger.getSubject(job, 's');
    expect(health(s)).toEqual({
      runId: 'r5',
      lastSuccessAt: at(40),
      lastFailureAt: at(25),
      consecutiveSuccesses: 2,
      consecutiveFailures: 0,
    });

    // A late success before the last failure changes nothing; a fresh failure ends the streak.
    await record(job, 's', { id: 'late-success', status: 'completed', finishedAt: at(24), live: false });
    expect(health(await ledger.getSubject(job, 's')).consecutiveSuccesses).toBe(2);
    await record(job, 's', { id: 'r6', status: 'failed', finishedAt: at(50), live: true });
    s = await ledger.getSubject(job, 's');
    expect(health(s)).toEqual({
      runId: 'r6',
      lastSuccessAt: at(40),
      lastFailureAt: at(50),
      consecutiveSuccesses: 0,
      consecutiveFailures: 1,
    });
    expect(s.lastStartedAt).toBe(at(50));
  });

  it('an import batch with many runs of one subject merges as if they had arrived one by one', async () => {
    const job = 'health-batch';
    await record(job, 's', { id: 'live-1', status: 'completed', finishedAt: at(100), live: true });
    const batch = [
      { id: 'b1', status: 'completed' as const, s: 10 },
      { id: 'b2', status: 'failed' as const, s: 20 },
      { id: 'b3', status: 'completed' as const, s: 30 },
      { id: 'b4', status: 'completed' as const, s: 150 },
      { id: 'b5', status: 'failed' as const, s: 90 },
    ];
    await ledger.importRuns(
      'history',
      batch.map((b) => ({ sourceId: b.id, id: b.id, job, subject: 's', status: b.status, startedAt: at(b.s), finishedAt: at(b.s) })),
      { cutover: 'none' },
    );
    const all: Planned[] = [
      { id: 'live-1', status: 'completed', finishedAt: at(100), live: true },
      ...batch.map((b) => ({ id: b.id, status: b.status, finishedAt: at(b.s), live: false })),
    ];
    expect(health(await ledger.getSubject(job, 's'))).toEqual(expected(all));
  });

  it('whatever order live completions and imports arrive in, the counters equal the recomputation', async () => {
    let n = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            status: fc.constantFrom<Outcome>('completed', 'completed', 'failed', 'timed_out', 'cancelled'),
            second: fc.integer({ min: 0, max: 12 }),
            live: fc.boolean(),
          }),
          { minLength: 1, maxLength: 8 },
        ),
        async (items) => {
          const subject = `case-${n++}`;
          // timed_out is the reaper's: place those by import.
          const runs: Planned[] = items.map((it, i) => ({
            id: `${subject}-${String(i).padStart(2, '0')}`,
            status: it.status,
            finishedAt: at(it.second),
            live: it.live && it.status !== 'timed_out',
          }));
          for (const r of runs) await record('health-property', subject, r);
          expect(health(await ledger.getSubject('health-property', subject))).toEqual(expected(runs));
        },
      ),
      { numRuns: 30 },
    );
  });

  it.runIf(onPostgres)('concurrent completions on many connections count every run of the streak (PostgreSQL)', async () => {
    clock.set('2026-04-01T00:00:00Z');
    const job = 'health-race';
    const runs = await Promise.all(
      Array.from({ length: 30 }, (_, i) => ledger.startRun({ id: `race-${String(i).padStart(2, '0')}`, job, subject: 's' })),
    );
    await Promise.all(runs.map((r, i) => (i % 10 === 9 ? r.fail({ error: { message: 'x' } }) : r.complete())));
    // All finished at the same clock time: the order is by id alone.
    const planned: Planned[] = runs.map((r, i) => ({
      id: r.id,
      status: i % 10 === 9 ? 'failed' : 'completed',
      finishedAt: clock.iso(),
      live: true,
    }));
    expect(health(await ledger.getSubject(job, 's'))).toEqual(expected(planned));
  });
});
