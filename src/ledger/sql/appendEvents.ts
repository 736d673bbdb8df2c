/**
 * Batched event append: the rows are computed in the app (seq, hash chain) while the
 * run row is locked FOR UPDATE by the caller's transaction, and inserted with one
 * multi-row statement from a JSON array.
 */
export const batchAppendEventsSql = `
insert into events (namespace, run_id, seq, key, type, level, at, recorded_at, body, hash)
select $1, $2, (e->>'seq')::int, e->>'key', e->>'type', e->>'level', (e->>'at')::timestamptz, $3::timestamptz, e->'body', e->>'hash'
  from jsonb_array_elements($4::jsonb) e`;

export interface EventRowInput {
  seq: number;
  key: string | null;
  type: string;
  level: string | null;
  at: string;
  body: unknown;
  hash: string;
}
