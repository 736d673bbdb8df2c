/**
 * Appending to the change log (the `changes` table, migration 0003). A change is written
 * by the statement that makes it, so it commits or rolls back with it:
 *
 * - from SQL, as one more CTE: `, chg as (${insertChangesFrom('src')})` where `src` is a
 *   relation with columns (namespace, type, at, run_id, job, subject, data);
 * - from code inside a transaction: `appendChange(tx, { namespace, type, job, ... })`.
 *
 * `id` and `xid` (the writing transaction) are filled in by the table's defaults; readers
 * order by (xid, id) and serve only ended transactions (see queries in ../changes.ts).
 */
import type { Json } from '../../core/types.js';
import type { Queryable } from '../../store/database.js';

/** An INSERT of the rows of `source` into the change log (usable as a CTE body). */
export const insertChangesFrom = (source: string) => `
  insert into changes (namespace, type, at, run_id, job, subject, data)
  select namespace, type, at, run_id, job, subject, data from ${source}`;

/** A timestamptz as the API's ISO string (UTC, milliseconds), whatever the session's TimeZone. */
export const isoSql = (col: string) => `to_char(${col} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;

/** The run as a change reports it (`data.run` of run.finished and run.suspect); `r` is a runs row. */
export const runChangeJson = (r: string) => `json_build_object(
  'id', ${r}.id, 'job', ${r}.job, 'subject', ${r}.subject, 'trigger', ${r}.trigger, 'actor', ${r}.actor,
  'parentId', ${r}.parent_id, 'status', ${r}.status, 'attempt', ${r}.attempt,
  'createdAt', ${isoSql(`${r}.created_at`)}, 'startedAt', ${isoSql(`${r}.started_at`)},
  'finishedAt', ${isoSql(`${r}.finished_at`)}, 'error', ${r}.error, 'statistics', ${r}.statistics)`;

export interface NewChange {
  namespace: string;
  type: string;
  job: string;
  runId?: string | null;
  subject?: string | null;
  data: Json;
  /** Defaults to the database's now(). */
  at?: Date | string;
}

/** Appends one change from code; call it on the transaction that makes the change. */
export async function appendChange(q: Queryable, change: NewChange): Promise<void> {
  await q.query(
    `insert into changes (namespace, type, at, run_id, job, subject, data) values ($1, $2, coalesce($3::timestamptz, now()), $4, $5, $6, $7::json)`,
    [
      change.namespace,
      change.type,
      change.at ?? null,
      change.runId ?? null,
      change.job,
      change.subject ?? null,
      JSON.stringify(change.data),
    ],
  );
}
