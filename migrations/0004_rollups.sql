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

-- 2. One row per hour of creation, job, terminal status, duration bin and shard. A completion
--    adds 1 to the row of a shard chosen at random, so concurrent completions of one job wait
--    on one another only when they pick the same of 8 shards; reads sum the shards.
create table run_rollups (
  namespace  text        not null,
  hour       timestamptz not null,
  job        text        not null,
  status     text        not null,
  bin        smallint    not null,
  shard      smallint    not null,
  n          integer     not null,
  primary key (namespace, hour, job, status, bin, shard)
);

-- 3. The runs finished before this migration.
insert into run_rollups (namespace, hour, job, status, bin, shard, n)
select namespace, date_trunc('hour', created_at, 'UTC'), job, status,
       runledger_duration_bin(extract(epoch from (finished_at - started_at)) * 1000), 0, count(*)
  from runs
 where status in ('completed', 'failed', 'cancelled', 'timed_out')
 group by 1, 2, 3, 4, 5;
