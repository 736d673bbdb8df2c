-- User JSON reads back in the key order it was sent. jsonb stores objects with their keys
-- sorted (shorter first, then bytewise), so `{"b":1,"a":2}` came back as `{"a":2,"b":1}`;
-- json keeps the text as written. Every value is written by runledger as JSON.stringify of
-- a validated value (the server refuses duplicate keys), so the text is already canonical
-- JSON and nothing else about the values changes. Rows written before this migration keep
-- the order jsonb gave them (their original order is gone); the hash chain is computed over
-- RFC 8785 canonical JSON (sorted keys), so every hash stays valid.
--
-- Cost: ALTER COLUMN TYPE rewrites each table (runs, events, checkpoints, changes) under an
-- ACCESS EXCLUSIVE lock, like any type change: reads and writes wait until it commits.
-- Measured on PostgreSQL 15 (BENCHMARKS.md, "JSON key order"): 26-30 s for 100k runs and 1M
-- events on a loaded 2-core machine. Plan for that downtime on a big ledger.

-- 1. Runs. tags and external_ids are filtered with @> through GIN indexes: the indexes are
--    now on the jsonb of the value (an expression index), and queries.ts filters on
--    `tags::jsonb @> ...` so the planner uses them. jsonb_path_ops cannot index json itself.
drop index runs_external_ids_idx;
drop index runs_tags_idx;
alter table runs
  alter column external_ids drop default,
  alter column params drop default,
  alter column tags drop default,
  alter column external_ids type json using external_ids::json,
  alter column params type json using params::json,
  alter column tags type json using tags::json,
  alter column output type json using output::json,
  alter column statistics type json using statistics::json,
  alter column error type json using error::json,
  alter column progress type json using progress::json,
  alter column external_ids set default '{}',
  alter column params set default '{}',
  alter column tags set default '{}';
create index runs_external_ids_idx on runs using gin ((external_ids::jsonb) jsonb_path_ops);
create index runs_tags_idx on runs using gin ((tags::jsonb) jsonb_path_ops);

-- 2. Event bodies, checkpoint metadata and data (the rewrite fires no row trigger, so the
--    immutability triggers do not object).
alter table events alter column body type json using body::json;
alter table checkpoints
  alter column metadata type json using metadata::json,
  alter column data type json using data::json;

-- 3. The change log: run.finished carries the run's error and statistics as sent.
alter table changes alter column data type json using data::json;
