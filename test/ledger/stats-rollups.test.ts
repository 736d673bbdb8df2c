/**
 * stats() from the rollups (migration 0004): with more runs than EXACT_UP_TO in the range,
 * counts are exact and percentiles within 5% of percentile_cont over the runs themselves —
 * with imported runs and concurrent live completions of one job (which land on rollup shards
 * at random) both counted.
 */
import { beforeAll, describe, expect, it } from 'vitest';

import type { Run, StatsResult } from '../../src/index.js';
import { onPostgres, useFreshLedger } from '../helpers.js';

const ledger = useFreshLedger({ poolSize: onPostgres ? 12 : undefined });

type Finished = { job: string; status: string; createdAt: number; durationMs: number | null };

const HOUR = 3_600_000;
const ACCURACY = 0.05;

function percentileCont(values: number[], q: number): number | null {
  if (!values.length) return null;
  const s = [...values].sort((a, b) => a - b);
  const rank = q * (s.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  return s[lo] + (rank - lo) * (s[hi] - s[lo]);
}

/** Within the documented accuracy of the exact value, give or take the rounding to whole ms. */
function expectClose(actual: number | null, exact: number | null) {
  if (exact === null) return expect(actual).toBeNull();
  expect(actual).not.toBeNull();
  expect(Math.abs(actual! - exact)).toBeLessThanOrEqual(ACCURACY * exact + 1);
}

function compare(s: StatsResult, runs: Finished[], bucketMs: number) {
  const byBucket = new Map<string, Finished[]>();
  for (const r of runs) {
    const key = new Date(Math.floor(r.createdAt / bucketMs) * bucketMs).toISOString();
    byBucket.set(key, [...(byBucket.get(key) ?? []), r]);
  }
  expect(s.buckets.map((b) => b.start)).toEqual([...byBucket.keys()].sort());
  for (const b of s.buckets) {
    const inBucket = byBucket.get(b.start)!;
    const counts: Record<string, number> = {};
    for (const r of inBucket) counts[r.status] = (counts[r.status] ?? 0) + 1;
    expect(b.counts).toEqual(counts);
    const durations = inBucket.flatMap((r) => (r.durationMs === null ? [] : [r.durationMs]));
    expectClose(b.durationP50Ms, percentileCont(durations, 0.5));
    expectClose(b.durationP95Ms, percentileCont(durations, 0.95));
  }
  const jobs = [...new Set(runs.map((r) => r.job))].sort();
  expect(s.jobs.map((j) => j.job)).toEqual(jobs);
  for (const j of s.jobs) {
    const of = runs.filter((r) => r.job === j.job);
    expect(j.count).toBe(of.length);
    const durations = of.flatMap((r) => (r.durationMs === null ? [] : [r.durationMs]));
    expectClose(j.durationP50Ms, percentileCont(durations, 0.5));
    expectClose(j.durationP95Ms, percentileCont(durations, 0.95));
  }
}

describe('stats from rollups', () => {
  const runs: Finished[] = [];
  let from: string;
  let to: string;

  beforeAll(async () => {
    // 1500 imported runs over the last 3 days (whole hours ago), durations from 1 ms to ~3 min
    // on a deterministic spread, a few never started.
    const now = Date.now();
    const base = Math.floor(now / HOUR) * HOUR - 72 * HOUR;
    const statuses = ['completed', 'completed', 'completed', 'failed', 'timed_out', 'cancelled'] as const;
    const records = Array.from({ length: 1500 }, (_, i) => {
      const createdAt = base + ((i * 7919) % (70 * HOUR));
      const status = statuses[i % statuses.length];
      const durationMs = Math.round(Math.exp(((i * 104729) % 1000) / 83)); // 1 ms … e^12 ≈ 160 s
      const neverStarted = status === 'cancelled' && i % 4 === 0;
      runs.push({ job: `job-${i % 3}`, status, createdAt, durationMs: neverStarted ? null : durationMs });
      return {
        sourceId: String(i),
        job: `job-${i % 3}`,
        status,
        createdAt: new Date(createdAt).toISOString(),
        ...(neverStarted
          ? { finishedAt: new Date(createdAt + 1000).toISOString() }
          : { startedAt: new Date(createdAt).toISOString(), finishedAt: new Date(createdAt + durationMs).toISOString() }),
      };
    });
    for (let i = 0; i < records.length; i += 500)
      expect((await ledger.importRuns('rollup-test', records.slice(i, i + 500))).inserted).toBe(500);

    // 60 live runs of one job completed concurrently, and a few left running.
    const started = await Promise.all(Array.from({ length: 60 }, () => ledger.startRun({ job: 'job-0' })));
    const done: Run[] = await Promise.all(
      started.map((r, i) => (i % 5 === 0 ? r.fail({ error: { type: 'x', message: 'x' } }) : r.complete())),
    );
    for (const r of done) {
      runs.push({
        job: r.job,
        status: r.status,
        createdAt: Date.parse(r.createdAt),
        durationMs: Date.parse(r.finishedAt!) - Date.parse(r.startedAt!),
      });
    }
    for (const h of await Promise.all(Array.from({ length: 3 }, () => ledger.startRun({ job: 'job-1' })))) {
      const r = await ledger.getRun(h.id);
      runs.push({ job: r.job, status: r.status, createdAt: Date.parse(r.createdAt), durationMs: null });
    }
    from = new Date(base).toISOString();
    to = new Date(Math.ceil((Date.now() + 1) / HOUR) * HOUR).toISOString();
  });

  it('hour buckets: counts exact, percentiles within 5% of the exact ones', async () => {
    compare(await ledger.stats({ from, to, bucket: 'hour' }), runs, HOUR);
  });

  it('day buckets and a job filter', async () => {
    compare(await ledger.stats({ from, to, bucket: 'day' }), runs, 24 * HOUR);
    compare(
      await ledger.stats({ from, to, bucket: 'hour', job: 'job-0' }),
      runs.filter((r) => r.job === 'job-0'),
      HOUR,
    );
  });

  it('a range that is not on whole hours is widened to them, and says so', async () => {
    const s = await ledger.stats({ from: new Date(Date.parse(from) + 60_000).toISOString(), to, bucket: 'hour' });
    expect(s.from).toBe(from);
    compare(s, runs, HOUR);
  });

  it('the reaper folds the shards of past periods, and the answers stay the same', async () => {
    const before = await ledger.stats({ from, to, bucket: 'hour' });
    await ledger.reap();
    expect(await ledger.stats({ from, to, bucket: 'hour' })).toEqual(before);
    compare(await ledger.stats({ from, to, bucket: 'day' }), runs, 24 * HOUR);
  });
});
