-- Two changes to the write path, found by benchmarking a long-lived server.

-- 1. events and checkpoints no longer have foreign keys to runs. Every event and checkpoint
--    is inserted by a statement or transaction that has just inserted, locked or updated its
--    run row (create.ts, events.ts, checkpoints.ts, sql/*.ts, import.ts), so the run's
--    existence is already guaranteed under lock, and no code deletes runs. The key added one
--    lookup of runs per inserted event, and PostgreSQL caches that lookup's plan per
--    connection: planned while runs was small, it could pick a secondary index that merely
--    starts with namespace and then walk the namespace's whole index for every event. A
--    server whose connections were opened on a young database appended 100-event batches
--    4× slower than a fresh connection (measured); it lasts until the plan is replaced.
alter table events drop constraint if exists events_namespace_run_id_fkey;
alter table checkpoints drop constraint if exists checkpoints_namespace_run_id_fkey;

-- 2. A run row is updated many times in its life (every event batch and heartbeat advances
--    its chain head and lease, every transition its status). At the default fillfactor a
--    page has no room for the new row version, so many updates were not HOT and wrote an
--    entry into each of the table's dozen indexes. 30% free space per page keeps them HOT.
--    Applies to pages written from now on; `VACUUM FULL runs` rewrites older ones.
alter table runs set (fillfactor = 70);
