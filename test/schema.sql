table change_horizons
  namespace text not null
  xid xid8 not null
  id bigint not null
  pruned_at timestamp with time zone not null

table changes
  namespace text not null
  id bigint not null
  xid xid8 not null default pg_current_xact_id()
  type text not null
  at timestamp with time zone not null
  run_id text
  job text not null
  subject text
  data json not null

table checkpoints
  namespace text not null
  run_id text not null
  name text not null
  kind text
  ref text
  metadata json not null
  data json
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
  body json not null
  hash text not null

table expectations
  namespace text not null
  job text not null
  every text
  every_s integer
  cron text
  timezone text not null default 'UTC'::text
  grace text not null
  grace_s integer not null
  per_subject boolean not null default true
  slots timestamp with time zone[] not null default '{}'::timestamp with time zone[]
  slots_from timestamp with time zone
  slots_refresh_at timestamp with time zone
  created_at timestamp with time zone not null
  updated_at timestamp with time zone not null
  last_started_at timestamp with time zone
  next_due_at timestamp with time zone
  overdue_at timestamp with time zone
  missed_since timestamp with time zone
  missed_due_at timestamp with time zone
  next_missed_at timestamp with time zone

table retention_rules
  namespace text not null
  job text not null
  keep_days integer not null
  keep_last_per_subject integer not null default 0
  updated_at timestamp with time zone not null

table run_rollups_day
  namespace text not null
  start timestamp with time zone not null
  job text not null
  status text not null
  bin smallint not null
  shard smallint not null
  n integer not null

table run_rollups_hour
  namespace text not null
  start timestamp with time zone not null
  job text not null
  status text not null
  bin smallint not null
  shard smallint not null
  n integer not null

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
  external_ids json not null default '{}'::json
  params json not null default '{}'::json
  tags json not null default '{}'::json
  notes text
  output json
  statistics json
  error json
  progress json
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
  exclusive boolean not null default false

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
  last_success_at timestamp with time zone
  last_success_run_id text
  last_failure_at timestamp with time zone
  last_failure_run_id text
  consecutive_successes integer not null default 0
  consecutive_failures integer not null default 0
  last_started_at timestamp with time zone
  next_due_at timestamp with time zone
  overdue_at timestamp with time zone
  missed_since timestamp with time zone
  missed_due_at timestamp with time zone
  next_missed_at timestamp with time zone

table tokens
  id text not null
  namespace text not null
  scope text not null
  name text
  token_hash text not null
  created_at timestamp with time zone not null
  revoked_at timestamp with time zone
  last_used_at timestamp with time zone

table tombstones
  namespace text not null
  id text not null
  job text not null
  subject text
  status text not null
  created_at timestamp with time zone not null
  finished_at timestamp with time zone not null
  last_seq integer not null
  last_hash text not null
  pruned_at timestamp with time zone not null

table webhook_attempts
  namespace text not null
  webhook_id text not null
  change_id bigint not null
  attempt integer not null
  at timestamp with time zone not null
  duration_ms integer not null
  status_code integer
  error text
  outcome text not null

table webhook_deliveries
  namespace text not null
  webhook_id text not null
  change_xid xid8 not null
  change_id bigint not null
  state text not null
  attempts integer not null default 0
  next_at timestamp with time zone not null
  created_at timestamp with time zone not null
  finished_at timestamp with time zone
  round_start integer not null default 0

table webhooks
  namespace text not null
  id text not null
  url text not null
  types text[] not null
  job text
  description text
  secret text not null
  created_at timestamp with time zone not null
  disabled_at timestamp with time zone
  disabled_reason text
  after_xid xid8 not null
  after_id bigint not null

-- constraints
change_horizons.change_horizons_pkey: PRIMARY KEY (namespace)
changes.changes_pkey: PRIMARY KEY (namespace, xid, id)
checkpoints.checkpoints_pkey: PRIMARY KEY (namespace, run_id, name)
events.events_pkey: PRIMARY KEY (namespace, run_id, seq)
expectations.expectations_check: CHECK (((every_s IS NULL) <> (cron IS NULL)))
expectations.expectations_every_s_check: CHECK ((every_s > 0))
expectations.expectations_grace_s_check: CHECK ((grace_s >= 0))
expectations.expectations_pkey: PRIMARY KEY (namespace, job)
retention_rules.retention_rules_keep_days_check: CHECK (((keep_days >= 0) AND (keep_days <= 36500)))
retention_rules.retention_rules_keep_last_per_subject_check: CHECK (((keep_last_per_subject >= 0) AND (keep_last_per_subject <= 100000)))
retention_rules.retention_rules_pkey: PRIMARY KEY (namespace, job)
run_rollups_day.run_rollups_day_pkey: PRIMARY KEY (namespace, start, job, status, bin, shard)
run_rollups_hour.run_rollups_hour_pkey: PRIMARY KEY (namespace, start, job, status, bin, shard)
runledger_migrations.runledger_migrations_pkey: PRIMARY KEY (id)
runs.runs_pkey: PRIMARY KEY (namespace, id)
runs.runs_status_check: CHECK ((status = ANY (ARRAY['submitted'::text, 'running'::text, 'retrying'::text, 'completed'::text, 'failed'::text, 'cancelled'::text, 'timed_out'::text])))
subject_status.subject_status_pkey: PRIMARY KEY (namespace, job, subject)
tokens.tokens_pkey: PRIMARY KEY (id)
tokens.tokens_scope_check: CHECK ((scope = ANY (ARRAY['read'::text, 'write'::text, 'admin'::text])))
tokens.tokens_token_hash_key: UNIQUE (token_hash)
tombstones.tombstones_pkey: PRIMARY KEY (namespace, id)
webhook_attempts.webhook_attempts_namespace_webhook_id_fkey: FOREIGN KEY (namespace, webhook_id) REFERENCES webhooks(namespace, id) ON DELETE CASCADE
webhook_attempts.webhook_attempts_outcome_check: CHECK ((outcome = ANY (ARRAY['delivered'::text, 'retry'::text, 'failed'::text, 'disabled'::text])))
webhook_attempts.webhook_attempts_pkey: PRIMARY KEY (namespace, webhook_id, change_id, attempt)
webhook_deliveries.webhook_deliveries_namespace_webhook_id_fkey: FOREIGN KEY (namespace, webhook_id) REFERENCES webhooks(namespace, id) ON DELETE CASCADE
webhook_deliveries.webhook_deliveries_pkey: PRIMARY KEY (namespace, webhook_id, change_id)
webhook_deliveries.webhook_deliveries_state_check: CHECK ((state = ANY (ARRAY['pending'::text, 'delivered'::text, 'failed'::text])))
webhooks.webhooks_pkey: PRIMARY KEY (namespace, id)

-- indexes
CREATE UNIQUE INDEX change_horizons_pkey ON change_horizons USING btree (namespace)
CREATE UNIQUE INDEX changes_pkey ON changes USING btree (namespace, xid, id)
CREATE UNIQUE INDEX checkpoints_pkey ON checkpoints USING btree (namespace, run_id, name)
CREATE UNIQUE INDEX events_key_idx ON events USING btree (namespace, run_id, key) WHERE (key IS NOT NULL)
CREATE UNIQUE INDEX events_pkey ON events USING btree (namespace, run_id, seq)
CREATE UNIQUE INDEX expectations_pkey ON expectations USING btree (namespace, job)
CREATE UNIQUE INDEX retention_rules_pkey ON retention_rules USING btree (namespace, job)
CREATE INDEX run_rollups_day_fold_idx ON run_rollups_day USING btree (start) WHERE (shard <> 0)
CREATE UNIQUE INDEX run_rollups_day_pkey ON run_rollups_day USING btree (namespace, start, job, status, bin, shard)
CREATE INDEX run_rollups_day_start_idx ON run_rollups_day USING btree (start) WHERE (shard <> 0)
CREATE INDEX run_rollups_hour_fold_idx ON run_rollups_hour USING btree (start) WHERE (shard <> 0)
CREATE UNIQUE INDEX run_rollups_hour_pkey ON run_rollups_hour USING btree (namespace, start, job, status, bin, shard)
CREATE UNIQUE INDEX runledger_migrations_pkey ON runledger_migrations USING btree (id)
CREATE INDEX runs_actor_idx ON runs USING btree (namespace, actor, created_at DESC, id DESC) WHERE (actor IS NOT NULL)
CREATE INDEX runs_created_idx ON runs USING btree (namespace, created_at DESC, id DESC)
CREATE UNIQUE INDEX runs_exclusive_idx ON runs USING btree (namespace, job, COALESCE(subject, ''::text)) WHERE (exclusive AND (status = ANY (ARRAY['submitted'::text, 'running'::text, 'retrying'::text])))
CREATE INDEX runs_external_ids_idx ON runs USING gin (((external_ids)::jsonb) jsonb_path_ops)
CREATE INDEX runs_job_idx ON runs USING btree (namespace, job, created_at DESC, id DESC) INCLUDE (status, subject, trigger, actor)
CREATE INDEX runs_live_idx ON runs USING btree (namespace, status) WHERE (status = ANY (ARRAY['submitted'::text, 'running'::text, 'retrying'::text]))
CREATE INDEX runs_live_start_idx ON runs USING btree (namespace, job, trigger, started_at) WHERE (source IS NULL)
CREATE INDEX runs_parent_idx ON runs USING btree (namespace, parent_id, created_at DESC, id DESC) WHERE (parent_id IS NOT NULL)
CREATE UNIQUE INDEX runs_pkey ON runs USING btree (namespace, id)
CREATE UNIQUE INDEX runs_source_idx ON runs USING btree (namespace, source, source_id) WHERE (source IS NOT NULL)
CREATE INDEX runs_status_idx ON runs USING btree (namespace, status, created_at DESC, id DESC) INCLUDE (job, subject, trigger, actor)
CREATE INDEX runs_subject_idx ON runs USING btree (namespace, subject, created_at DESC, id DESC) INCLUDE (job, status, trigger) WHERE (subject IS NOT NULL)
CREATE INDEX runs_tags_idx ON runs USING gin (((tags)::jsonb) jsonb_path_ops)
CREATE INDEX runs_trigger_idx ON runs USING btree (namespace, trigger, created_at DESC, id DESC) WHERE (trigger IS NOT NULL)
CREATE INDEX subject_status_due_idx ON subject_status USING btree (namespace, next_due_at) WHERE (next_due_at IS NOT NULL)
CREATE INDEX subject_status_list_idx ON subject_status USING btree (namespace, job, subject)
CREATE INDEX subject_status_missed_idx ON subject_status USING btree (next_missed_at) WHERE (missed_since IS NOT NULL)
CREATE INDEX subject_status_overdue_idx ON subject_status USING btree (overdue_at) WHERE (overdue_at IS NOT NULL)
CREATE UNIQUE INDEX subject_status_pkey ON subject_status USING btree (namespace, job, subject)
CREATE UNIQUE INDEX tokens_pkey ON tokens USING btree (id)
CREATE UNIQUE INDEX tokens_token_hash_key ON tokens USING btree (token_hash)
CREATE UNIQUE INDEX tombstones_pkey ON tombstones USING btree (namespace, id)
CREATE UNIQUE INDEX webhook_attempts_pkey ON webhook_attempts USING btree (namespace, webhook_id, change_id, attempt)
CREATE INDEX webhook_deliveries_claim_idx ON webhook_deliveries USING btree (namespace, webhook_id, next_at) WHERE (state = 'pending'::text)
CREATE INDEX webhook_deliveries_failed_idx ON webhook_deliveries USING btree (namespace, webhook_id) WHERE (state = 'failed'::text)
CREATE UNIQUE INDEX webhook_deliveries_pkey ON webhook_deliveries USING btree (namespace, webhook_id, change_id)
CREATE INDEX webhook_deliveries_recent_idx ON webhook_deliveries USING btree (namespace, webhook_id, created_at DESC, change_id DESC)
CREATE UNIQUE INDEX webhooks_pkey ON webhooks USING btree (namespace, id)

-- triggers
CREATE TRIGGER checkpoints_immutable BEFORE DELETE OR UPDATE ON checkpoints FOR EACH ROW EXECUTE FUNCTION runledger_refuse_change()
CREATE TRIGGER events_immutable BEFORE DELETE OR UPDATE ON events FOR EACH ROW EXECUTE FUNCTION runledger_refuse_change()
CREATE TRIGGER runs_refuse_tombstoned AFTER INSERT ON runs FOR EACH ROW EXECUTE FUNCTION runledger_refuse_tombstoned()

-- functions
CREATE OR REPLACE FUNCTION runledger_duration_bin(ms double precision)
 RETURNS smallint
 LANGUAGE sql
 IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN (ms IS NULL) THEN '-32768'::integer WHEN (ms <= (0)::double precision) THEN '-1'::integer ELSE ((GREATEST((0)::double precision, ceil((ln(ms) / ln(((1.05)::double precision / (0.95)::double precision))))))::smallint)::integer END

CREATE OR REPLACE FUNCTION runledger_refuse_change()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
begin
  if tg_op = 'DELETE'
     and current_setting('runledger.pruning', true) = pg_current_xact_id()::text
     and exists (select 1 from tombstones t where t.namespace = old.namespace and t.id = old.run_id) then
    return old;
  end if;
  raise exception 'runledger: % rows are immutable', tg_table_name using errcode = 'RL001';
end
$function$

CREATE OR REPLACE FUNCTION runledger_refuse_tombstoned()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
begin
  if exists (select 1 from tombstones t where t.namespace = new.namespace and t.id = new.id) then
    raise exception 'runledger: run % of namespace % was pruned; its id cannot be used again', new.id, new.namespace
      using errcode = 'RL002';
  end if;
  return null;
end
$function$
