/**
 * The rollups stats() reads (migration 0004): finished runs counted per hour of creation, job,
 * terminal status and duration bin. Every statement that finishes runs adds them here, in the
 * same transaction: completions, the reaper's timeouts and imports.
 *
 * `source` is a relation with columns namespace, created_at, job, status, started_at,
 * finished_at; rows whose status is not terminal are ignored. Each group lands in one of
 * ROLLUP_SHARDS rows chosen at random, so concurrent completions of one job rarely wait on
 * the same row; the rows are written in key order, so two statements never lock them in
 * opposite orders. Statements add to the rollups last, after the subject status, for the
 * same reason.
 */
import { TERMINAL_STATUSES } from '../../core/status.js';

export const ROLLUP_SHARDS = 8;

/** The bins' ratio γ (migration 0004): a bin's representative is within ROLLUP_ACCURACY of every duration in it. */
export const ROLLUP_ACCURACY = 0.05;
export const ROLLUP_GAMMA = (1 + ROLLUP_ACCURACY) / (1 - ROLLUP_ACCURACY);
/** The bin of a run that never started (no duration). */
export const NO_DURATION_BIN = -32768;

const TERMINAL_SQL = `(${TERMINAL_STATUSES.map((s) => `'${s}'`).join(', ')})`;

export const ROLLUP_PERIODS = ['hour', 'day'] as const;
export type RollupPeriod = (typeof ROLLUP_PERIODS)[number];

/** CTEs `rollup_hour` and `rollup_day` (hour first, in every statement: lock order) adding `source`'s finished runs. */
export const rollupCtesFrom = (source: string) =>
  ROLLUP_PERIODS.map(
    (period) => `rollup_${period} as (
  insert into run_rollups_${period} as k (namespace, start, job, status, bin, shard, n)
  select namespace, date_trunc('${period}', created_at, 'UTC'), job, status,
         runledger_duration_bin(extract(epoch from (finished_at - started_at))::float8 * 1000),
         floor(random() * ${ROLLUP_SHARDS})::smallint, count(*)::int
    from ${source}
   where status in ${TERMINAL_SQL}
   group by 1, 2, 3, 4, 5
   order by 1, 2, 3, 4, 5
  on conflict (namespace, start, job, status, bin, shard) do update set n = k.n + excluded.n)`,
  ).join(',\n');

/**
 * Folds the shards of the periods before `now` into shard 0 (the reaper does it), one
 * statement per table: the rows are deleted and their sums added in one step, so a read
 * never sees them twice or not at all, and two folds at once cannot count a row twice.
 */
export const foldRollupsSql = (period: RollupPeriod) => `
with moved as (
  delete from run_rollups_${period} where shard <> 0 and start < date_trunc('${period}', $1::timestamptz, 'UTC')
  returning namespace, start, job, status, bin, n
)
insert into run_rollups_${period} as k (namespace, start, job, status, bin, shard, n)
select namespace, start, job, status, bin, 0, sum(n)::int from moved group by 1, 2, 3, 4, 5 order by 1, 2, 3, 4, 5
on conflict (namespace, start, job, status, bin, shard) do update set n = k.n + excluded.n`;

/** The duration a bin stands for, in ms (null for the no-duration bin). */
export function binValue(bin: number): number | null {
  if (bin === NO_DURATION_BIN) return null;
  if (bin < 0) return 0;
  return (2 * ROLLUP_GAMMA ** bin) / (ROLLUP_GAMMA + 1);
}
