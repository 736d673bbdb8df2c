/**
 * Counts by status and duration percentiles per time bucket, for the dashboard's charts.
 *
 * Hour and day buckets are answered from the rollups (migration 0004, sql/rollups.ts), so a
 * query reads a number of rows bounded by the hours, jobs and duration bins in its range,
 * not by the runs in it; live runs, which the rollups do not hold yet, are counted from the
 * runs table (runs_live_idx). Rollups count runs by the hour (and day) they were created in, so such a
 * range is widened to whole buckets (the result's from and to say which). Counts are exact;
 * percentiles are exact when the range holds at most EXACT_UP_TO runs (they are then computed
 * from the runs themselves) and otherwise within ROLLUP_ACCURACY (5%) of the exact value.
 * Minute buckets (at most 2000 of them) are always computed from the runs.
 */
import { ValidationError } from '../core/errors.js';
import type { RunStatus, StatsQuery, StatsResult } from '../core/types.js';
import { parseInput, statsSchema } from '../core/validation.js';
import type { LedgerContext } from './context.js';
import { LIVE_SQL } from './sql/fragments.js';
import { binValue, NO_DURATION_BIN, type RollupPeriod } from './sql/rollups.js';

const BUCKET_MS = { minute: 60_000, hour: 3_600_000, day: 86_400_000 } as const;
const MAX_BUCKETS = 2000;
/** Up to this many runs in the range, percentiles come from the runs themselves (exact, and cheap). */
export const EXACT_UP_TO = 1000;

type Bucket = keyof typeof BUCKET_MS;
type Range = { from: Date; to: Date; bucket: Bucket; job: string | null };

export async function stats(ctx: LedgerContext, raw: StatsQuery = {}): Promise<StatsResult> {
  const q = parseInput(statsSchema, raw);
  const bucket = q.bucket ?? 'hour';
  const to = q.to ? new Date(q.to) : ctx.now();
  const from = q.from ? new Date(q.from) : new Date(to.getTime() - 24 * 3_600_000);
  if (from >= to)
    throw new ValidationError(`from (${from.toISOString()}) must be before to (${to.toISOString()})`, [
      { field: 'from', message: 'not before to' },
    ]);
  if ((to.getTime() - from.getTime()) / BUCKET_MS[bucket] > MAX_BUCKETS) {
    throw new ValidationError(`from..to spans more than ${MAX_BUCKETS} ${bucket} buckets; use a larger bucket or a shorter range`, [
      { field: 'bucket', message: 'too many buckets' },
    ]);
  }
  const job = q.job ?? null;
  if (bucket === 'minute') return exactStats(ctx, { from, to, bucket, job });
  const unit = BUCKET_MS[bucket];
  const range = {
    from: new Date(Math.floor(from.getTime() / unit) * unit),
    to: new Date(Math.ceil(to.getTime() / unit) * unit),
    bucket,
    job,
  };
  const rolled = await rollupStats(ctx, range);
  return rolled.runs <= EXACT_UP_TO ? exactStats(ctx, range) : rolled.result;
}

const round = (v: number | null) => (v === null ? null : Math.round(v));

function result(r: Range, buckets: StatsResult['buckets'], jobs: StatsResult['jobs']): StatsResult {
  return { bucket: r.bucket, from: r.from.toISOString(), to: r.to.toISOString(), buckets, jobs };
}

/** From the runs: percentile_cont over every duration in the range. */
async function exactStats(ctx: LedgerContext, r: Range): Promise<StatsResult> {
  const params = [ctx.namespace, r.from, r.to, r.bucket, r.job];
  const duration = `extract(epoch from (finished_at - started_at)) * 1000`;
  // Grouping sets give counts per (bucket, status) and, in the rows whose status is null,
  // duration percentiles over the whole bucket (a percentile of parts is not a percentile).
  const { rows } = await ctx.db.query<{ start: Date; status: RunStatus | null; n: number; p50: number | null; p95: number | null }>(
    `select date_trunc($4::text, created_at, 'UTC') as start, status, count(*)::int as n,
            percentile_cont(0.5) within group (order by ${duration}) as p50,
            percentile_cont(0.95) within group (order by ${duration}) as p95
       from runs
      where namespace = $1 and created_at >= $2 and created_at < $3 and ($5::text is null or job = $5)
      group by grouping sets ((1, 2), (1)) order by 1`,
    params,
  );
  const jobs = await ctx.db.query<{ job: string; n: number; p50: number | null; p95: number | null }>(
    `select job, count(*)::int as n,
            percentile_cont(0.5) within group (order by ${duration}) as p50,
            percentile_cont(0.95) within group (order by ${duration}) as p95
       from runs
      where namespace = $1 and created_at >= $2 and created_at < $3 and ($4::text is null or job = $4)
      group by job order by job`,
    [ctx.namespace, r.from, r.to, r.job],
  );
  const buckets = new Map<string, StatsResult['buckets'][number]>();
  for (const row of rows) {
    const key = row.start.toISOString();
    const b = buckets.get(key) ?? { start: key, counts: {}, durationP50Ms: null, durationP95Ms: null };
    if (row.status === null) {
      b.durationP50Ms = round(row.p50);
      b.durationP95Ms = round(row.p95);
    } else b.counts[row.status] = row.n;
    buckets.set(key, b);
  }
  return result(
    r,
    [...buckets.values()],
    jobs.rows.map((j) => ({ job: j.job, count: j.n, durationP50Ms: round(j.p50), durationP95Ms: round(j.p95) })),
  );
}

/** For each percentile: the bins of the two order statistics percentile_cont interpolates between. */
const QUANTILES = [0.5, 0.95] as const;
const orderStatistic = (q: number, side: 'floor' | 'ceil') => `min(bin) filter (where cum > ${side}(${q} * (total - 1)))`;

// One statement, one scan of the rollups of the bucket's period: the CTE `k` (read more than
// once, so materialized) sums the shards, and the rest is done on its rows.
const rollupSql = (period: RollupPeriod) => `
with k as (
  select start, job, status, bin, sum(n)::bigint as n
    from run_rollups_${period}
   where namespace = $1 and start >= $2 and start < $3 and ($5::text is null or job = $5)
   group by 1, 2, 3, 4
), live as (
  select date_trunc($4::text, created_at, 'UTC') as start, job, status, count(*)::bigint as n
    from runs
   where namespace = $1 and status in ${LIVE_SQL} and created_at >= $2 and created_at < $3 and ($5::text is null or job = $5)
   group by 1, 2, 3
), h as (
  select start, null::text as job, bin, sum(n) as n from k where bin <> ${NO_DURATION_BIN} group by start, bin
  union all
  select null, job, bin, sum(n) from k where bin <> ${NO_DURATION_BIN} group by job, bin
), c as (
  select start, job, bin, sum(n) over (partition by start, job order by bin) as cum, sum(n) over (partition by start, job) as total from h
), p as (
  select start, job, max(total) as total,
         ${QUANTILES.flatMap((q, i) => [`${orderStatistic(q, 'floor')} as b${2 * i}`, `${orderStatistic(q, 'ceil')} as b${2 * i + 1}`]).join(', ')}
    from c group by start, job
)
select (select coalesce(json_agg(json_build_array(start, status, n) order by start, status), '[]') from
          (select start, status, sum(n) as n from (select start, status, n from k union all select start, status, n from live) e group by 1, 2) s) as counts,
       (select coalesce(json_agg(json_build_array(job, n) order by job), '[]') from
          (select job, sum(n) as n from (select job, n from k union all select job, n from live) e group by 1) j) as jobs,
       (select coalesce(json_agg(json_build_array(start, job, total, ${QUANTILES.flatMap((_, i) => [`b${2 * i}`, `b${2 * i + 1}`]).join(', ')})), '[]') from p) as percentiles`;

type PercentileRow = [string | null, string | null, number, ...(number | null)[]];

/** percentile_cont's interpolation between the representatives of the two order statistics' bins. */
function estimate(total: number, bins: (number | null)[], i: number): number | null {
  const lo = bins[2 * i];
  const hi = bins[2 * i + 1];
  if (lo === null || lo === undefined || hi === null || hi === undefined) return null;
  const rank = QUANTILES[i] * (total - 1);
  const a = binValue(lo)!;
  const b = binValue(hi)!;
  return a + (rank - Math.floor(rank)) * (b - a);
}

async function rollupStats(ctx: LedgerContext, r: Range): Promise<{ runs: number; result: StatsResult }> {
  const { rows } = await ctx.db.query<{
    counts: [string, RunStatus, number][];
    jobs: [string, number][];
    percentiles: PercentileRow[];
  }>(rollupSql(r.bucket as RollupPeriod), [ctx.namespace, r.from, r.to, r.bucket, r.job]);
  const { counts, jobs, percentiles } = rows[0]!;
  const iso = (t: string) => new Date(t).toISOString();
  const buckets = new Map<string, StatsResult['buckets'][number]>();
  for (const [start, status, n] of counts) {
    const key = iso(start);
    const b = buckets.get(key) ?? { start: key, counts: {}, durationP50Ms: null, durationP95Ms: null };
    b.counts[status] = Number(n);
    buckets.set(key, b);
  }
  const byJob = new Map<string, [number | null, number | null]>();
  for (const [start, job, total, ...bins] of percentiles) {
    const p50 = round(estimate(Number(total), bins, 0));
    const p95 = round(estimate(Number(total), bins, 1));
    if (job !== null) byJob.set(job, [p50, p95]);
    else if (start !== null) {
      const b = buckets.get(iso(start));
      if (b) [b.durationP50Ms, b.durationP95Ms] = [p50, p95];
    }
  }
  const runs = jobs.reduce((s, [, n]) => s + Number(n), 0);
  return {
    runs,
    result: result(
      r,
      [...buckets.values()],
      jobs.map(([job, n]) => {
        const [p50, p95] = byJob.get(job) ?? [null, null];
        return { job, count: Number(n), durationP50Ms: p50, durationP95Ms: p95 };
      }),
    ),
  };
}
