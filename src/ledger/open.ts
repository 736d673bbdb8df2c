/** openLedger(): PostgreSQL when a URL is given (or DATABASE_URL), else embedded PGlite. */
import { EventEmitter } from 'node:events';
import { resolve } from 'node:path';

import { ConfigurationError } from '../core/errors.js';
import { acquireDataDirLock, type DataDirLock } from '../store/data-dir-lock.js';
import type { Database } from '../store/database.js';
import { isMigrated, migrate } from '../store/migrate.js';
import { openPgDatabase, redactUrl } from '../store/pg.js';
import { openPgliteDatabase } from '../store/pglite.js';
import { DEFAULT_COALESCER_OPTIONS, WriteCoalescer } from './coalesce.js';
import type { ChangeNotice } from './context.js';
import { SqlLedger, type SqlLedgerShared } from './ledger.js';

export const DEFAULT_DATA_DIR = './.runledger';

export interface OpenLedgerOptions {
  /** PostgreSQL connection string; defaults to the DATABASE_URL environment variable. */
  url?: string;
  /** Embedded data directory (default ./.runledger); `memory://` keeps everything in memory. */
  dataDir?: string;
  /** PostgreSQL schema (default: the connection's search_path). */
  schema?: string;
  /** Namespace the returned ledger addresses (default `default`). */
  namespace?: string;
  /** Apply pending migrations on open (default true). */
  migrate?: boolean;
  /** PostgreSQL pool size (default 20). */
  poolSize?: number;
  /**
   * PostgreSQL: prepare hot statements once per connection (default true, or the
   * RUNLEDGER_PREPARED_STATEMENTS environment variable: on/off). Behind a pooler in
   * transaction mode that cannot keep them (PgBouncer before 1.21) they are turned off by
   * themselves at the first sign of it, with a warning; `false` starts that way.
   */
  preparedStatements?: boolean;
  /** Where the ledger reports what an operator should know but that is no error (default: process.emitWarning). */
  onWarning?: (message: string) => void;
  /** PostgreSQL: seconds after which an idle pooled connection is replaced, renewing its cached plans (default 10; 0: never). */
  connectionLifetimeS?: number;
  /**
   * The ledger's clock (default: the system's). Every time the ledger stamps — created,
   * started, finished, heartbeats, leases, schedules — comes from it, so a test or a
   * simulation can move time forward without waiting.
   */
  clock?: () => Date;
  /**
   * How many seconds ahead of the ledger's clock a caller's time may be (event `at`, an
   * import's `createdAt`, `startedAt`, `finishedAt`; default 300). A later time is refused:
   * a run finished in the future would stay its subject's verdict until then.
   */
  maxFutureSkewS?: number;
  /**
   * Embedded: writes are refused (`storage_full`, 507) while the data directory's disk has
   * less than this many bytes free (default 64 MiB), so that PGlite never meets a full disk.
   */
  minFreeBytes?: number;
  /**
   * Group commit (src/ledger/coalesce.ts): concurrent startRun, event and status writes that
   * arrive while a write transaction is in flight share the next one, each with its own
   * result and error, acknowledged after the shared commit (default on; `false` turns it
   * off). `lanes`: batches in flight at once (default 1), `maxBatch`: writes per transaction (default 64).
   */
  writeBatching?: false | { lanes?: number; maxBatch?: number };
}

export interface OpenedLedger extends SqlLedger {
  /** Where the ledger lives: a redacted URL or a data directory. */
  readonly location: string;
  readonly dataDirLock?: DataDirLock;
}

/** RUNLEDGER_PREPARED_STATEMENTS: on/off (also true/false, 1/0); unset means on. */
function preparedStatementsFromEnv(): boolean | undefined {
  const raw = process.env.RUNLEDGER_PREPARED_STATEMENTS;
  if (raw === undefined || raw.trim() === '') return undefined;
  const v = raw.trim().toLowerCase();
  if (['on', 'true', '1', 'yes'].includes(v)) return true;
  if (['off', 'false', '0', 'no'].includes(v)) return false;
  throw new ConfigurationError(`RUNLEDGER_PREPARED_STATEMENTS must be on or off (also true/false, 1/0); got ${JSON.stringify(raw)}`);
}

/**
 * Opens a ledger.
 * @example
 * const ledger = await openLedger();                                   // ./.runledger (PGlite)
 * const ledger = await openLedger({ url: 'postgres://localhost/app' }); // PostgreSQL
 * const run = await ledger.startRun({ job: 'nightly-export', subject: 'acme' });
 * await run.complete({ output: { rows: 42 } });
 */
function checkWriteBatching(asked: OpenLedgerOptions['writeBatching']): void {
  for (const [name, value] of Object.entries(asked || {}))
    if (value !== undefined && (!Number.isSafeInteger(value) || (value as number) < 1))
      throw new ConfigurationError(`writeBatching.${name} must be a whole number ≥ 1; got ${JSON.stringify(value)}`);
}

function coalescerOptions(asked: { lanes?: number; maxBatch?: number } | undefined) {
  return { lanes: asked?.lanes ?? DEFAULT_COALESCER_OPTIONS.lanes, maxBatch: asked?.maxBatch ?? DEFAULT_COALESCER_OPTIONS.maxBatch };
}

export async function openLedger(opts: OpenLedgerOptions = {}): Promise<OpenedLedger> {
  checkWriteBatching(opts.writeBatching);
  const url = opts.url ?? (opts.dataDir === undefined ? process.env.DATABASE_URL : undefined);
  let db: Database;
  let location: string;
  let lock: DataDirLock | undefined;
  if (url) {
    if (!/^postgres(ql)?:\/\//.test(url))
      throw new ConfigurationError(`database url must start with postgres:// or postgresql://; got ${JSON.stringify(redactUrl(url))}`);
    location = redactUrl(url);
    const preparedStatements = opts.preparedStatements ?? preparedStatementsFromEnv();
    let opened: Database | undefined;
    try {
      opened = await openPgDatabase({
        url,
        schema: opts.schema,
        max: opts.poolSize,
        preparedStatements,
        onWarning: opts.onWarning ?? ((message) => process.emitWarning(message, 'RunledgerWarning')),
        connectionLifetimeS: opts.connectionLifetimeS,
      });
      await opened.query('select 1');
    } catch (err) {
      await opened?.close().catch(() => {});
      throw new ConfigurationError(`cannot connect to PostgreSQL at ${location}: ${(err as Error).message}`, err);
    }
    db = opened;
  } else {
    const dir = opts.dataDir ?? DEFAULT_DATA_DIR;
    if (dir === 'memory://') {
      location = 'memory://';
      db = await openPgliteDatabase({});
    } else {
      location = resolve(dir);
      lock = acquireDataDirLock(location);
      try {
        db = await openPgliteDatabase({ dataDir: location, minFreeBytes: opts.minFreeBytes });
      } catch (err) {
        lock.release();
        throw err;
      }
    }
  }
  try {
    // Below the embedded store's reserve a current schema opens without migrate()'s write.
    if (opts.migrate !== false && !(db.writeRefusal?.() && (await isMigrated(db)))) await migrate(db);
  } catch (err) {
    await db.close().catch(() => {});
    lock?.release();
    throw err;
  }
  const shared: SqlLedgerShared = {
    db,
    changes: new EventEmitter<{ change: [ChangeNotice] }>(),
    onClose: [],
    closed: false,
    clock: opts.clock,
    maxFutureMs: opts.maxFutureSkewS === undefined ? undefined : opts.maxFutureSkewS * 1000,
    writes: opts.writeBatching === false ? undefined : new WriteCoalescer(db, coalescerOptions(opts.writeBatching)),
  };
  if (lock) shared.onClose.push(() => lock.release());
  shared.changes.setMaxListeners(0);
  const ledger = new SqlLedger(shared, opts.namespace ?? 'default') as OpenedLedger;
  Object.defineProperty(ledger, 'location', { value: location });
  Object.defineProperty(ledger, 'dataDirLock', { value: lock });
  return ledger;
}
