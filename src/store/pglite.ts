import { PGlite } from '@electric-sql/pglite';

import { type Database, isPrepared, type Queryable, type QueryResult } from './database.js';
import { preparedRunner } from './pglite-prepared.js';

export interface PgliteOptions {
  /** A directory, or undefined for an in-memory database. */
  dataDir?: string;
}

/** Embedded adapter: PGlite, one in-process connection (callers queue). */
export async function openPgliteDatabase(opts: PgliteOptions): Promise<Database> {
  const db = await PGlite.create(opts.dataDir);
  const runPrepared = preparedRunner(db);

  const query = async <R>(sql: string, params?: unknown[]): Promise<QueryResult<R>> => {
    // Outside a transaction, take both of PGlite's locks, as its own query() does.
    if (isPrepared(sql)) return db._runExclusiveTransaction(() => db._runExclusiveQuery(() => runPrepared<R>(sql, params, true)));
    const res = await db.query<R>(sql, params as unknown[]);
    return { rows: res.rows, rowCount: res.affectedRows ?? res.rows.length };
  };

  return {
    kind: 'pglite',
    query,
    async exec(sql) {
      await db.exec(sql);
    },
    async withTransaction(fn) {
      // PGlite's transaction() holds its single connection for the callback and rolls
      // back on any error, so the connection never stays in an aborted transaction.
      return db.transaction(async (t) => {
        const tx: Queryable = {
          async query<R>(sql: string, params?: unknown[]) {
            // Inside the transaction its lock is ours already; the query lock is taken per statement.
            if (isPrepared(sql)) return db.runExclusive(() => runPrepared<R>(sql, params, false));
            const res = await t.query<R>(sql, params as unknown[]);
            return { rows: res.rows, rowCount: res.affectedRows ?? res.rows.length };
          },
          async exec(sql) {
            await t.exec(sql);
          },
        };
        return fn(tx);
      });
    },
    async listen(channel, onPayload) {
      const unsub = await db.listen(channel, onPayload);
      return async () => {
        await unsub();
      };
    },
    async close() {
      await db.close();
    },
  };
}
