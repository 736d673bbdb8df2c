-- runledger schema v1. Plain SQL that PostgreSQL 15 and PGlite (PostgreSQL 18) both run.
-- Every table is keyed by namespace first: a namespace is the unit of isolation.

create table runs (
  namespace     text        not null,
  id            text        not null,
  job           text        not null,
  subject       text,
  trigger       text,
  actor         text,
  parent_id     text,
  status        text        not null check (status in ('submitted','running','retrying','completed','failed','cancelled','timed_out')),
  attempt       integer     not null default 1,
  external_ids  jsonb       not null default '{}',
  params        jsonb       not null default '{}',
  tags          jsonb       not null default '{}',
  notes         text,
  output        jsonb,
  statistics    jsonb,
  error         jsonb,
  progress      jsonb,
  created_at    timestamptz not null,
  started_at    timestamptz,
  finished_at   timestamptz,
  heartbeat_at  timestamptz,
  lease_s       integer,
  deadline_at   timestamptz,
  suspect       boolean     not null default false,
  version       integer     not null default 1,
  -- Head of the run's event hash chain: appends lock this row, so seq is gapless
  -- and assigned in commit order.
  last_seq      integer     not null default 0,
  last_hash     text        not null default '',
  source        text,
  source_id     text,
  primary key (namespace, id)
);

-- Keyset indexes: one per list filter, all ordered newest first.
create index runs_created_idx on runs (namespace, created_at desc, id desc);
create index runs_job_idx on runs (namespace, job, created_at desc, id desc);
create index runs_subject_idx on runs (namespace, subject, created_at desc, id desc) where subject is not null;
create index runs_status_idx on runs (namespace, status, created_at desc, id desc);
create index runs_trigger_idx on runs (namespace, trigger, created_at desc, id desc) where trigger is not null;
create index runs_actor_idx on runs (namespace, actor, created_at desc, id desc) where actor is not null;
create index runs_parent_idx on runs (namespace, parent_id, created_at desc, id desc) where parent_id is not null;
create index runs_external_ids_idx on runs using gin (external_ids jsonb_path_ops);
create index runs_tags_idx on runs using gin (tags jsonb_path_ops);
-- The reaper scans only live runs with a lease or a deadline.
create index runs_live_idx on runs (namespace, status) where status in ('submitted','running','retrying');
-- Import provenance: (source, sourceId) is the idempotency key of a backfill.
create unique index runs_source_idx on runs (namespace, source, source_id) where source is not null;
-- Cutover: the first live (not imported) run per job and trigger.
create index runs_live_start_idx on runs (namespace, job, trigger, started_at) where source is null;

-- The largest table. Every query addresses it by (namespace, run_id, seq), and seq and key
-- uniqueness are guaranteed by the run-row lock that every append holds (the unique indexes
-- are a second line of defence). So on PostgreSQL it can be range-partitioned by recorded_at
-- (primary key extended to (namespace, run_id, seq, recorded_at)) without changing any query.
create table events (
  namespace    text        not null,
  run_id       text        not null,
  seq          integer     not null,
  key          text,
  type         text        not null,
  level        text,
  at           timestamptz not null,
  recorded_at  timestamptz not null,
  body         jsonb       not null,
  hash         text        not null,
  primary key (namespace, run_id, seq),
  foreign key (namespace, run_id) references runs (namespace, id)
);
create unique index events_key_idx on events (namespace, run_id, key) where key is not null;

create table checkpoints (
  namespace     text        not null,
  run_id        text        not null,
  name          text        not null,
  kind          text,
  ref           text,
  metadata      jsonb       not null,
  data          jsonb,
  content_hash  text        not null,
  seq           integer     not null,
  created_at    timestamptz not null,
  primary key (namespace, run_id, name),
  foreign key (namespace, run_id) references runs (namespace, id)
);

create table subject_status (
  namespace          text        not null,
  job                text        not null,
  subject            text        not null,
  run_id             text        not null,
  status             text        not null,
  trigger            text,
  finished_at        timestamptz not null,
  previous_status    text,
  status_changed_at  timestamptz not null,
  primary key (namespace, job, subject)
);
create index subject_status_list_idx on subject_status (namespace, job, subject);

create table tokens (
  id            text        primary key,
  namespace     text        not null,
  scope         text        not null check (scope in ('read','write','admin')),
  name          text,
  token_hash    text        not null unique,
  created_at    timestamptz not null,
  revoked_at    timestamptz,
  last_used_at  timestamptz
);

-- Events and checkpoints are append-only: the database itself refuses to change them.
create function runledger_refuse_change() returns trigger language plpgsql as $$
begin
  raise exception 'runledger: % rows are immutable', tg_table_name using errcode = 'RL001';
end
$$;
create trigger events_immutable before update or delete on events
  for each row execute function runledger_refuse_change();
create trigger checkpoints_immutable before update or delete on checkpoints
  for each row execute function runledger_refuse_change();
