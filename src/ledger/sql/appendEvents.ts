/**
 * Batched event append: the rows are computed in the app (seq, hash chain) while the
 * run row is locked FOR UPDATE by the caller's transaction, and inserted with one
 * multi-row statement from a JSON array.
 */
import { prepared } from '../../store/database.js';
import { RENEWABLE_SQL } from './fragments.js';

export const batchAppendEventsSql = prepared(`
insert into events (namespace, run_id, seq, key, type, level, at, recorded_at, body, hash)
select $1, $2, (e->>'seq')::int, e->>'key', e->>'type', e->>'level', (e->>'at')::timestamptz, $3::timestamptz, e->'body', e->>'hash'
  from jsonb_array_elements($4::jsonb) e`);

/** The same insert and, in the same statement, the run's new chain head ($5 last_seq, $6 last_hash); any event renews the lease. */
export const batchAppendEventsAndAdvanceSql = prepared(`
with ins as (
  insert into events (namespace, run_id, seq, key, type, level, at, recorded_at, body, hash)
  select $1, $2, (e->>'seq')::int, e->>'key', e->>'type', e->>'level', (e->>'at')::timestamptz, $3::timestamptz, e->'body', e->>'hash'
    from jsonb_array_elements($4::jsonb) e
)
update runs set last_seq = $5, last_hash = $6,
       heartbeat_at = case when status in ${RENEWABLE_SQL} then $3::timestamptz else heartbeat_at end, suspect = false
 where namespace = $1 and id = $2`);

export interface EventRowInput {
  seq: number;
  key: string | null;
  type: string;
  level: string | null;
  at: string;
  body: unknown;
  hash: string;
}
