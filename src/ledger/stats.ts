/** Counts by status and duration percentiles per time bucket, for the dashboard's charts. */
import { ValidationError } from '../core/errors.js';
import type { RunStatus, StatsQuery, StatsResult } from '../core/types.js';
import { parseInput, statsSchema } from '../core/validation.js';
import type { LedgerContext } from './context.js';

const BUCKET_MS = { minute: 60_000, hour: 3_600_000, day: 86_400_000 } as const;
const MAX_BUCKETS = 2000;

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
  const params = [ctx.namespace, from, to, bucket, q.job ?? null];
  const duration = `extract(epoch from (finished_at - started_at)) * 1000`;
  // Grouping sets give counts per (bucket, status) and, in the rows whose status is null,
  // duration percentiles over the whole bucket (a percentile of parts is not a percentile).
  const { rows } = await ctx.db.query<{ start: Date; status: RunStatus | null; n: number; p50: number | null; p95: number | null }>(
    `select date_trunc($4::text, created_at) as start, status, count(*)::int as n,
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
    [ctx.namespace, from, to, q.job ?? null],
  );
  const buckets = new Map<string, StatsResult['buckets'][number]>();
  const round = (v: number | null) => (v === null ? null : Math.round(v));
  for (const r of rows) {
    const key = r.start.toISOString();
    const b = buckets.get(key) ?? { start: key, counts: {}, durationP50Ms: null, durationP95Ms: null };
    if (r.status === null) {
      b.durationP50Ms = round(r.p50);
      b.durationP95Ms = round(r.p95);
    } else b.counts[r.status] = r.n;
    buckets.set(key, b);
  }
  return {
    bucket,
    from: from.toISOString(),
    to: to.toISOString(),
    buckets: [...buckets.values()],
    jobs: jobs.rows.map((j) => ({ job: j.job, count: j.n, durationP50Ms: round(j.p50), durationP95Ms: round(j.p95) })),
  };
}
