/**
 * Where a CLI command sends its calls: a runledger server over HTTP, a PostgreSQL
 * database, or an embedded data directory. An embedded directory is held by one process
 * at a time; when a running server holds it, commands go through that server instead of
 * failing, and when another command holds it the error says who and what to do.
 */
import { resolve } from 'node:path';

import type { RunledgerClient } from '../client/client.js';
import { ConfigurationError, DataDirLockedError, LedgerError } from '../core/errors.js';
import type { Ledger } from '../core/types.js';
import { DEFAULT_DATA_DIR, type OpenedLedger, openLedger } from '../ledger/open.js';
import { readLock } from '../store/data-dir-lock.js';
import { announceNewDataDir } from './data-dir.js';

export interface TargetOptions {
  /** Embedded data directory (default ./.runledger). */
  dataDir?: string;
  /** PostgreSQL connection string; takes precedence over dataDir. */
  databaseUrl?: string;
  /** A runledger server's base URL; takes precedence over everything else. */
  server?: string;
  token?: string;
  namespace?: string;
  /** PostgreSQL schema (tests give each run its own). */
  schema?: string;
  /** PostgreSQL pool size (default 4: a CLI command needs few connections). */
  poolSize?: number;
  /** PostgreSQL: false turns prepared statements off (--no-prepared-statements). */
  preparedStatements?: boolean;
}

export type TargetInfo =
  | { kind: 'http'; baseUrl: string; namespace: string; via: 'flag' | 'lock'; client: RunledgerClient }
  | { kind: 'direct'; ledger: OpenedLedger; location: string };

export type Target = Ledger & { close(): Promise<void>; readonly target: TargetInfo };

function withInfo(ledger: Ledger, info: TargetInfo): Target {
  Object.defineProperty(ledger, 'target', { value: info, enumerable: false });
  return ledger as Target;
}

function normalizeServerUrl(url: string, what: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new ConfigurationError(`${what} must be an http:// or https:// URL such as http://127.0.0.1:7070; got ${JSON.stringify(url)}`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw new ConfigurationError(`${what} must be an http:// or https:// URL; got ${JSON.stringify(url)}`);
  }
  return u.toString().replace(/\/+$/, '');
}

async function viaServer(baseUrl: string, opts: TargetOptions, via: 'flag' | 'lock'): Promise<Target> {
  const namespace = opts.namespace ?? 'default';
  // Loaded on demand: commands on a local store start faster without it.
  const { createClient } = await import('../client/client.js');
  const client = createClient({ baseUrl, namespace, ...(opts.token ? { token: opts.token } : {}) });
  return withInfo(client, { kind: 'http', baseUrl, namespace, via, client });
}

/**
 * Opens the ledger directly (never through a server): PostgreSQL when databaseUrl is set,
 * else the embedded data directory. `serve`, `migrate` and `tokens` need this.
 */
export async function openDirect(
  opts: TargetOptions & { migrate?: boolean; purpose?: string; maxFutureSkewS?: number; minFreeBytes?: number },
): Promise<OpenedLedger> {
  if (opts.databaseUrl !== undefined) {
    return openLedger({
      url: opts.databaseUrl,
      schema: opts.schema,
      poolSize: opts.poolSize ?? 4,
      migrate: opts.migrate,
      maxFutureSkewS: opts.maxFutureSkewS,
      preparedStatements: opts.preparedStatements,
      onWarning: (message) => process.stderr.write(`runledger: warning: ${message}\n`),
    });
  }
  const dataDir = opts.dataDir ?? DEFAULT_DATA_DIR;
  announceNewDataDir(dataDir);
  try {
    return await openLedger({ dataDir, migrate: opts.migrate, maxFutureSkewS: opts.maxFutureSkewS, minFreeBytes: opts.minFreeBytes });
  } catch (err) {
    if (err instanceof DataDirLockedError) {
      if (err.serverUrl && opts.purpose) {
        throw new LedgerError(
          'data_dir_locked',
          `${opts.purpose} needs the data directory ${resolve(dataDir)} itself, but the runledger server at ${err.serverUrl} ` +
            `(process ${err.pid}) holds it; stop the server, run this, and start it again`,
          { cause: err },
        );
      }
      const hint = err.serverUrl
        ? ''
        : `; to let several commands use it at once, run \`runledger serve --data-dir ${dataDir}\`, which they then go through`;
      throw new LedgerError('data_dir_locked', err.message + hint, { cause: err });
    }
    throw err;
  }
}

/**
 * The ledger a command talks to.
 * 1. `server` (--server / RUNLEDGER_SERVER): the HTTP client.
 * 2. `databaseUrl`: PostgreSQL, in process.
 * 3. The data directory: through the server holding it, if one does; else embedded.
 * @example
 * const ledger = await openTarget({ dataDir: './.runledger' });
 * try { console.log((await ledger.listRuns()).runs.length); } finally { await ledger.close(); }
 */
export async function openTarget(opts: TargetOptions): Promise<Target> {
  if (opts.server !== undefined) return viaServer(normalizeServerUrl(opts.server, '--server'), opts, 'flag');
  if (opts.databaseUrl === undefined) {
    const dir = resolve(opts.dataDir ?? DEFAULT_DATA_DIR);
    const holder = readLock(dir);
    if (holder?.serverUrl) return viaServer(holder.serverUrl, opts, 'lock');
  }
  let ledger: OpenedLedger;
  try {
    ledger = await openDirect(opts);
  } catch (err) {
    // A server may have taken the directory between our look and our open.
    if (err instanceof LedgerError && err.code === 'data_dir_locked') {
      const holder = readLock(resolve(opts.dataDir ?? DEFAULT_DATA_DIR));
      if (holder?.serverUrl) return viaServer(holder.serverUrl, opts, 'lock');
    }
    throw err;
  }
  let scoped: Ledger = ledger;
  try {
    // inNamespace validates the name.
    if (opts.namespace !== undefined) scoped = ledger.inNamespace(opts.namespace);
  } catch (err) {
    await ledger.close();
    throw err;
  }
  return withInfo(scoped, { kind: 'direct', ledger, location: ledger.location });
}
