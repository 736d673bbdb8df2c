/**
 * Batched event append: the rows are computed in the app (seq, hash chain) while the
 * run row is locked FOR UPDATE by the caller's transaction, and inserted with one
 * multi-row statement from a JSON array.
 */
import { prepared } from '../../store/database.js';
import { RENEWABLE_SQL } from './fragments.js';

/**
 * The columns of an event row in a JSON array of rows. json, not jsonb: the body's text is
 * inserted as sent, keys in their order (migration 0009), and the array is parsed once.
 */
const EVENT_FIELDS = 'seq int, key text, type text, level text, at timestamptz, body json, hash text';

export const batchAppendEventsSql = prepared(`
insert into events (namespace, run_id, seq, key, type, level, at, recorded_at, body, hash)
select $1, $2, e.seq, e.key, e.type, e.level, e.at, $3::timestamptz, e.body, e.hash
  from json_to_recordset($4::json) as e(${EVENT_FIELDS})`);

/** The same insert and, in the same statement, the run's new chain head ($5 last_seq, $6 last_hash); any event renews the lease. */
export const batchAppendEventsAndAdvanceSql = prepared(`
with ins as (
  insert into events (namespace, run_id, seq, key, type, level, at, recorded_at, body, hash)
  select $1, $2, e.seq, e.key, e.type, e.level, e.at, $3::timestamptz, e.body, e.hash
    from json_to_recordset($4::json) as e(${EVENT_FIELDS})
)
update runs set last_seq = $5, last_hash = $6,
       heartbeat_at = case when status in ${RENEWABLE_SQL} then $3::timestamptz else heartbeat_at end, suspect = false
 where namespace = $1 and id = $2`);

/** Coalesced appends (coalesce.ts): lock the heads of many runs, in key order. $1 namespaces, $2 ids. */
export const lockHeadsSql = prepared(`
select r.namespace, r.id, r.status, r.last_seq, r.last_hash from runs r
 where (r.namespace, r.id) in (select * from unnest($1::text[], $2::text[]))
 order by r.namespace, r.id
   for update`);

/** The stored events of many runs that carry the given keys. $1 namespaces, $2 run ids, $3 keys (one triple per key). */
export const reusedKeysSql = prepared(`
select namespace, run_id, key, seq, type, level, body from events
 where (namespace, run_id, key) in (select * from unnest($1::text[], $2::text[], $3::text[]))`);

/**
 * Coalesced appends: every run's new events ($1, rows with namespace, run_id, recorded_at) and
 * every run's new head ($2: namespace, id, last_seq, last_hash, recorded_at) in one statement;
 * any event renews the lease, as above.
 */
export const insertEventsAndAdvanceManySql = prepared(`
with ins as (
  insert into events (namespace, run_id, seq, key, type, level, at, recorded_at, body, hash)
  select e.namespace, e.run_id, e.seq, e.key, e.type, e.level, e.at, e.recorded_at, e.body, e.hash
    from json_to_recordset($1::json) as e(namespace text, run_id text, recorded_at timestamptz, ${EVENT_FIELDS})
)
update runs r set last_seq = h.last_seq, last_hash = h.last_hash,
       heartbeat_at = case when r.status in ${RENEWABLE_SQL} then h.recorded_at else r.heartbeat_at end, suspect = false
  from jsonb_to_recordset($2::jsonb) as h(namespace text, id text, last_seq int, last_hash text, recorded_at timestamptz)
 where r.namespace = h.namespace and r.id = h.id`);

export interface EventRowInput {
  seq: number;
  key: string | null;
  type: string;
  level: string | null;
  at: string;
  body: unknown;
  hash: string;
}
