import { PGlite, type Results } from '@electric-sql/pglite';

import { ConfigurationError } from '../core/errors.js';
import { type Database, isPrepared, type Queryable, type QueryResult } from './database.js';
import { preparedRunner } from './pglite-prepared.js';

export interface PgliteOptions {
  /** A directory, or undefined for an in-memory database. */
  dataDir?: string;
}

/**
 * pg's rowCount: the rows returned by a statement that returns rows (PGlite's affectedRows is
 * 0 for a SELECT), otherwise the rows it changed.
 */
function result<R>(res: Results<R>): QueryResult<R> {
  return { rows: res.rows, rowCount: res.fields.length ? res.rows.length : (res.affectedRows ?? 0) };
}

/**
 * What this adapter uses of PGlite beyond its documented query()/transaction()/listen().
 * Prepared statements (pglite-prepared.ts) speak the wire protocol with execProtocol(),
 * which takes none of PGlite's locks, so the adapter takes them itself, exactly as PGlite's
 * own query() does: the transaction lock (so a prepared statement cannot run in the middle
 * of another caller's transaction) and the query lock (one protocol exchange at a time).
 * These are underscore methods of PGlite 0.5; openPgliteDatabase checks they exist, so an
 * upgrade that renames them fails at open, not at the first write (test/store/adapters.test.ts
 * runs the same contract on both adapters).
 */
interface PgliteLocks {
  _runExclusiveTransaction<T>(fn: () => Promise<T>): Promise<T>;
  _runExclusiveQuery<T>(fn: () => Promise<T>): Promise<T>;
  /** Inside transaction(): the query lock only (the transaction lock is held already). */
  runExclusive<T>(fn: () => Promise<T>): Promise<T>;
}

function locksOf(db: PGlite): PgliteLocks {
  const locks = db as unknown as Partial<PgliteLocks>;
  for (const name of ['_runExclusiveTransaction', '_runExclusiveQuery', 'runExclusive'] as const) {
    if (typeof locks[name] !== 'function')
      throw new ConfigurationError(
        `this version of @electric-sql/pglite has no ${name}(), which runledger's PGlite adapter needs; use PGlite 0.5`,
      );
  }
  return locks as PgliteLocks;
}

/** Embedded adapter: PGlite, one in-process connection (callers queue). */
export async function openPgliteDatabase(opts: PgliteOptions): Promise<Database> {
  const db = await PGlite.create(opts.dataDir);
  let locks: PgliteLocks;
  try {
    locks = locksOf(db);
  } catch (err) {
    await db.close();
    throw err;
  }
  const runPrepared = preparedRunner(db);

  const query = async <R>(sql: string, params?: unknown[]): Promise<QueryResult<R>> => {
    // Outside a transaction, take both of PGlite's locks, as its own query() does.
    if (isPrepared(sql)) return locks._runExclusiveTransaction(() => locks._runExclusiveQuery(() => runPrepared<R>(sql, params, true)));
    return result(await db.query<R>(sql, params as unknown[]));
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
            if (isPrepared(sql)) return locks.runExclusive(() => runPrepared<R>(sql, params, false));
            return result(await t.query<R>(sql, params as unknown[]));
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
