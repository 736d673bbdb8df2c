-- Rollups of finished runs, so that stats() reads a bounded number of rows however large the
-- ledger grows (src/ledger/stats.ts). A run is counted once, when it reaches a terminal status
-- (terminal is final, so a row is only ever incremented); live runs are counted from the runs
-- table through runs_live_idx.

-- 1. The bin of a duration in ms on a logarithmic scale: bin i holds (γ^(i-1), γ^i] with
--    γ = 1.05 / 0.95, and its representative 2γ^i / (γ + 1) is within 5% of every value in it.
--    A zero (or negative) duration is bin -1, a run that never started bin -32768.
create function runledger_duration_bin(ms double precision) returns smallint
  language sql immutable parallel safe
  return case
    when ms is null then -32768
    when ms <= 0 then -1
    else greatest(0, ceil(ln(ms) / ln(1.05::float8 / 0.95::float8)))::smallint
  end;

-- 2. One row per period of creation (an hour, and a day), job, terminal status, duration bin
--    and shard. A completion adds 1 to the row of a shard chosen at random, so concurrent
--    completions of one job wait on one another only when they pick the same of 8 shards;
--    reads sum the shards, and the reaper folds the shards of past periods into shard 0, so
--    that what a read sums stays one row per key (the partial indexes find what to fold).
--    Day rows answer day buckets: a month is 30 periods, not 720.
create table run_rollups_hour (
  namespace  text        not null,
  start      timestamptz not null,
  job        text        not null,
  status     text        not null,
  bin        smallint    not null,
  shard      smallint    not null,
  n          integer     not null,
  primary key (namespace, start, job, status, bin, shard)
);
create index run_rollups_hour_fold_idx on run_rollups_hour (start) where shard <> 0;
create table run_rollups_day (like run_rollups_hour including all);
create index run_rollups_day_fold_idx on run_rollups_day (start) where shard <> 0;

-- 3. The runs finished before this migration.
insert into run_rollups_hour (namespace, start, job, status, bin, shard, n)
select namespace, date_trunc('hour', created_at, 'UTC'), job, status,
       runledger_duration_bin(extract(epoch from (finished_at - started_at))::float8 * 1000), 0, count(*)
  from runs
 where status in ('completed', 'failed', 'cancelled', 'timed_out')
 group by 1, 2, 3, 4, 5;
insert into run_rollups_day (namespace, start, job, status, bin, shard, n)
select namespace, date_trunc('day', start, 'UTC'), job, status, bin, 0, sum(n)
  from run_rollups_hour
 group by 1, 2, 3, 4, 5;
