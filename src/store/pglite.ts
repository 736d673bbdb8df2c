import { PGlite, type Results } from '@electric-sql/pglite';

import { ConfigurationError, StorageFullError } from '../core/errors.js';
import { type Database, type Queryable, type QueryResult, type Sql, sqlText } from './database.js';
import { DEFAULT_MIN_FREE_BYTES, freeBytes, mayWrite, storageGuard } from './free-space.js';
import { preparedRunner } from './pglite-prepared.js';
import { startWatchdog } from './pglite-watchdog.js';

export interface PgliteOptions {
  /** A directory, or undefined for an in-memory database. */
  dataDir?: string;
  /** Writes are refused while the data directory's disk has less free (default 64 MiB; free-space.ts). */
  minFreeBytes?: number;
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

/** Below this much free space a PGlite call stuck in its WASM is taken for the full-disk wedge (a WAL segment is 16 MB). */
const WEDGED_BELOW_BYTES = 32 * 1024 * 1024;

/** Embedded adapter: PGlite, one in-process connection (callers queue). */
export async function openPgliteDatabase(opts: PgliteOptions): Promise<Database> {
  const minFree = opts.minFreeBytes ?? DEFAULT_MIN_FREE_BYTES;
  if (!Number.isSafeInteger(minFree) || minFree < 0)
    throw new ConfigurationError(`minFreeBytes must be a whole number of bytes ≥ 0; got ${JSON.stringify(opts.minFreeBytes)}`);
  const guard = opts.dataDir === undefined ? undefined : storageGuard(opts.dataDir, minFree);
  let db: PGlite;
  try {
    db = await PGlite.create(opts.dataDir);
  } catch (err) {
    // PGlite says only "failed to initialize" (or emscripten's "Aborted()"): name the full disk.
    if (opts.dataDir !== undefined && freeBytes(opts.dataDir) < Math.max(minFree, 1)) {
      const free = freeBytes(opts.dataDir);
      throw new StorageFullError(
        `cannot open the embedded database: disk full at ${opts.dataDir}, ${free} bytes free; free some space (runledger keeps a reserve of ${minFree} bytes) and try again`,
        err,
      );
    }
    throw err;
  }
  let locks: PgliteLocks;
  try {
    locks = locksOf(db);
  } catch (err) {
    await db.close();
    throw err;
  }
  const runPrepared = preparedRunner(db);

  // Step 1: the watchdog (pglite-watchdog.ts) learns when the main thread is inside the WASM.
  let broken: StorageFullError | null = null;
  const inflight = new Set<(err: unknown) => void>();
  const watchdog =
    opts.dataDir === undefined
      ? undefined
      : startWatchdog({
          dataDir: opts.dataDir,
          fullBelow: WEDGED_BELOW_BYTES,
          onWedged(free) {
            broken = new StorageFullError(
              `the embedded database at ${opts.dataDir} stopped: PGlite met a full disk (${free} bytes free) while writing its WAL ` +
                'and cannot go on; free some space and restart runledger (nothing acknowledged is lost)',
            );
            for (const reject of inflight) reject(broken);
            inflight.clear();
          },
        });
  if (watchdog) {
    const raw = db.execProtocolRawSync.bind(db);
    Object.assign(db, {
      execProtocolRawSync(message: Uint8Array) {
        watchdog.inWasm(true);
        try {
          return raw(message);
        } finally {
          watchdog.inWasm(false);
        }
      },
    });
  }

  // Step 2: every call refuses a write below the reserve, names a full disk that PGlite met
  // anyway, and fails at once when the watchdog found the instance wedged.
  const guarded = <T>(write: boolean, work: () => Promise<T>): Promise<T> => {
    if (broken) return Promise.reject(broken);
    if (!guard) return work();
    const refusal = write ? guard.refusal() : null;
    if (refusal) return Promise.reject(refusal);
    return new Promise<T>((resolve, reject) => {
      inflight.add(reject);
      work()
        .then(resolve, (err: unknown) => reject(guard.map(err)))
        .finally(() => inflight.delete(reject));
    });
  };

  const query = <R>(sql: Sql, params?: unknown[]): Promise<QueryResult<R>> =>
    guarded(mayWrite(sqlText(sql)), async () => {
      // Outside a transaction, take both of PGlite's locks, as its own query() does.
      if (typeof sql !== 'string')
        return locks._runExclusiveTransaction(() => locks._runExclusiveQuery(() => runPrepared<R>(sql.text, params, true)));
      return result(await db.query<R>(sql, params as unknown[]));
    });

  return {
    kind: 'pglite',
    query,
    exec: (sql) =>
      guarded(true, async () => {
        await db.exec(sql);
      }),
    withTransaction: (fn) =>
      // Transactions are the ledger's writes.
      guarded(true, () =>
        // PGlite's transaction() holds its single connection for the callback and rolls
        // back on any error, so the connection never stays in an aborted transaction.
        db.transaction(async (t) => {
          const tx: Queryable = {
            async query<R>(sql: Sql, params?: unknown[]) {
              // Inside the transaction its lock is ours already; the query lock is taken per statement.
              if (typeof sql !== 'string') return locks.runExclusive(() => runPrepared<R>(sql.text, params, false));
              return result(await t.query<R>(sql, params as unknown[]));
            },
            async exec(sql) {
              await t.exec(sql);
            },
          };
          return fn(tx);
        }),
      ),
    async listen(channel, onPayload) {
      const unsub = await db.listen(channel, onPayload);
      return async () => {
        await unsub();
      };
    },
    writeRefusal: () => broken ?? guard?.refusal() ?? null,
    async close() {
      watchdog?.stop();
      // A wedged instance holds PGlite's locks for ever: closing it would never finish.
      if (broken) return;
      await db.close();
    },
  };
}
