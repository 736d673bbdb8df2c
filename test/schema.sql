table checkpoints
  namespace text not null
  run_id text not null
  name text not null
  kind text
  ref text
  metadata jsonb not null
  data jsonb
  content_hash text not null
  seq integer not null
  created_at timestamp with time zone not null

table events
  namespace text not null
  run_id text not null
  seq integer not null
  key text
  type text not null
  level text
  at timestamp with time zone not null
  recorded_at timestamp with time zone not null
  body jsonb not null
  hash text not null

table runledger_migrations
  id integer not null
  name text not null
  applied_at timestamp with time zone not null default now()

table runs with (fillfactor=70)
  namespace text not null
  id text not null
  job text not null
  subject text
  trigger text
  actor text
  parent_id text
  status text not null
  attempt integer not null default 1
  external_ids jsonb not null default '{}'::jsonb
  params jsonb not null default '{}'::jsonb
  tags jsonb not null default '{}'::jsonb
  notes text
  output jsonb
  statistics jsonb
  error jsonb
  progress jsonb
  created_at timestamp with time zone not null
  started_at timestamp with time zone
  finished_at timestamp with time zone
  heartbeat_at timestamp with time zone
  lease_s integer
  deadline_at timestamp with time zone
  suspect boolean not null default false
  version integer not null default 1
  last_seq integer not null default 0
  last_hash text not null default ''::text
  source text
  source_id text

table subject_status
  namespace text not null
  job text not null
  subject text not null
  run_id text not null
  status text not null
  trigger text
  finished_at timestamp with time zone not null
  previous_status text
  status_changed_at timestamp with time zone not null

table tokens
  id text not null
  namespace text not null
  scope text not null
  name text
  token_hash text not null
  created_at timestamp with time zone not null
  revoked_at timestamp with time zone
  last_used_at timestamp with time zone

-- constraints
checkpoints.checkpoints_pkey: PRIMARY KEY (namespace, run_id, name)
events.events_pkey: PRIMARY KEY (namespace, run_id, seq)
runledger_migrations.runledger_migrations_pkey: PRIMARY KEY (id)
runs.runs_pkey: PRIMARY KEY (namespace, id)
runs.runs_status_check: CHECK ((status = ANY (ARRAY['submitted'::text, 'running'::text, 'retrying'::text, 'completed'::text, 'failed'::text, 'cancelled'::text, 'timed_out'::text])))
subject_status.subject_status_pkey: PRIMARY KEY (namespace, job, subject)
tokens.tokens_pkey: PRIMARY KEY (id)
tokens.tokens_scope_check: CHECK ((scope = ANY (ARRAY['read'::text, 'write'::text, 'admin'::text])))
tokens.tokens_token_hash_key: UNIQUE (token_hash)

-- indexes
CREATE UNIQUE INDEX checkpoints_pkey ON checkpoints USING btree (namespace, run_id, name)
CREATE UNIQUE INDEX events_key_idx ON events USING btree (namespace, run_id, key) WHERE (key IS NOT NULL)
CREATE UNIQUE INDEX events_pkey ON events USING btree (namespace, run_id, seq)
CREATE UNIQUE INDEX runledger_migrations_pkey ON runledger_migrations USING btree (id)
CREATE INDEX runs_actor_idx ON runs USING btree (namespace, actor, created_at DESC, id DESC) WHERE (actor IS NOT NULL)
CREATE INDEX runs_created_idx ON runs USING btree (namespace, created_at DESC, id DESC)
CREATE INDEX runs_external_ids_idx ON runs USING gin (external_ids jsonb_path_ops)
CREATE INDEX runs_job_idx ON runs USING btree (namespace, job, created_at DESC, id DESC)
CREATE INDEX runs_live_idx ON runs USING btree (namespace, status) WHERE (status = ANY (ARRAY['submitted'::text, 'running'::text, 'retrying'::text]))
CREATE INDEX runs_live_start_idx ON runs USING btree (namespace, job, trigger, started_at) WHERE (source IS NULL)
CREATE INDEX runs_parent_idx ON runs USING btree (namespace, parent_id, created_at DESC, id DESC) WHERE (parent_id IS NOT NULL)
CREATE UNIQUE INDEX runs_pkey ON runs USING btree (namespace, id)
CREATE UNIQUE INDEX runs_source_idx ON runs USING btree (namespace, source, source_id) WHERE (source IS NOT NULL)
CREATE INDEX runs_status_idx ON runs USING btree (namespace, status, created_at DESC, id DESC)
CREATE INDEX runs_subject_idx ON runs USING btree (namespace, subject, created_at DESC, id DESC) WHERE (subject IS NOT NULL)
CREATE INDEX runs_tags_idx ON runs USING gin (tags jsonb_path_ops)
CREATE INDEX runs_trigger_idx ON runs USING btree (namespace, trigger, created_at DESC, id DESC) WHERE (trigger IS NOT NULL)
CREATE INDEX subject_status_list_idx ON subject_status USING btree (namespace, job, subject)
CREATE UNIQUE INDEX subject_status_pkey ON subject_status USING btree (namespace, job, subject)
CREATE UNIQUE INDEX tokens_pkey ON tokens USING btree (id)
CREATE UNIQUE INDEX tokens_token_hash_key ON tokens USING btree (token_hash)

-- triggers
CREATE TRIGGER checkpoints_immutable BEFORE DELETE OR UPDATE ON checkpoints FOR EACH ROW EXECUTE FUNCTION runledger_refuse_change()
CREATE TRIGGER events_immutable BEFORE DELETE OR UPDATE ON events FOR EACH ROW EXECUTE FUNCTION runledger_refuse_change()

-- functions
CREATE OR REPLACE FUNCTION runledger_refuse_change()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
begin
  raise exception 'runledger: % rows are immutable', tg_table_name using errcode = 'RL001';
end
$function$
