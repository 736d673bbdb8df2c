-- Pruning racing writers (src/ledger/retention.ts).

-- 1. A tombstoned id is never a run again. Every insert path checks for a tombstone first, but
--    under READ COMMITTED that check reads the snapshot taken before the statement waited: a
--    create of the id of a run that the pruner is deleting waits on the pruner's row lock, and
--    once the pruner commits (run gone, tombstone made) the insert goes ahead, since its check
--    saw no tombstone. This trigger runs after the row is in, in a snapshot of its own, so it
--    sees that tombstone and refuses the insert (RL002; the ledger answers `pruned`). A restore
--    over a tombstone deletes the tombstone before inserting the run.
create or replace function runledger_refuse_tombstoned() returns trigger language plpgsql as $$
begin
  if exists (select 1 from tombstones t where t.namespace = new.namespace and t.id = new.id) then
    raise exception 'runledger: run % of namespace % was pruned; its id cannot be used again', new.id, new.namespace
      using errcode = 'RL002';
  end if;
  return null;
end
$$;
create trigger runs_refuse_tombstoned after insert on runs for each row execute function runledger_refuse_tombstoned();

-- 2. The change log and finished webhook deliveries are pruned too (src/ledger/feed-retention.ts):
--    changes only as a prefix of the feed's (xid, id) order, so one position per namespace says
--    what is gone. A reader whose cursor is before it is refused `cursor_expired` (410) naming
--    the cursor and the oldest position still served, rather than silently skipping changes.
create table change_horizons (
  namespace  text        primary key,
  xid        xid8        not null,
  id         bigint      not null,
  pruned_at  timestamptz not null
);
