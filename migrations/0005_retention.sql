-- Retention: rules per namespace and job, tombstones of pruned runs, the pruner's index, and the
-- one way past the immutability of events and checkpoints (src/ledger/retention.ts).

-- 1. Retention rules. job '' is the namespace's default (a job name is never empty); a rule
--    naming the job wins over the default, whole (its keep_last_per_subject too). A finished
--    run older than keep_days (by finished_at) may be pruned, unless it is its subject's
--    current run or one of the subject's newest keep_last_per_subject finished runs.
create table retention_rules (
  namespace              text        not null,
  job                    text        not null,
  keep_days              integer     not null check (keep_days between 0 and 36500),
  keep_last_per_subject  integer     not null default 0 check (keep_last_per_subject between 0 and 100000),
  updated_at             timestamptz not null,
  primary key (namespace, job)
);

-- 2. What a pruned run leaves: its identity and its final chain head, so that GET answers 410
--    `pruned` with the head, a create with the id is refused (idempotency never expires), and
--    an export of the run can be restored over it only if its chain ends in last_hash.
create table tombstones (
  namespace    text        not null,
  id           text        not null,
  job          text        not null,
  subject      text,
  status       text        not null,
  created_at   timestamptz not null,
  finished_at  timestamptz not null,
  last_seq     integer     not null,
  last_hash    text        not null,
  pruned_at    timestamptz not null,
  primary key (namespace, id)
);

-- 3. No new index on runs: the pruner walks each job's runs oldest first on runs_job_idx (a run
--    finished before the cut-off was created before it too), checks the subject's current run on
--    subject_status's key and its newest runs on runs_subject_idx. The completion path, which
--    already writes a dozen index entries, writes no more.

-- 4. Events and checkpoints stay immutable: updates are always refused, and a delete passes
--    only in a transaction that has set runledger.pruning to its own transaction id
--    (set_config('runledger.pruning', pg_current_xact_id()::text, true), which the pruner does)
--    and only for a run that already has a tombstone. A session-wide SET, a value left over
--    from an earlier transaction, or a delete of a live run's log is refused as before.
create or replace function runledger_refuse_change() returns trigger language plpgsql as $$
begin
  if tg_op = 'DELETE'
     and current_setting('runledger.pruning', true) = pg_current_xact_id()::text
     and exists (select 1 from tombstones t where t.namespace = old.namespace and t.id = old.run_id) then
    return old;
  end if;
  raise exception 'runledger: % rows are immutable', tg_table_name using errcode = 'RL001';
end
$$;
