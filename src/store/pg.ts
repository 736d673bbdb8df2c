import { createHash } from 'node:crypto';

import pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';

import { StorageFullError } from '../core/errors.js';
import { type Database, type Queryable, type QueryResult, type Sql } from './database.js';

/** A database URL fit to show in a message or a log: the password replaced by `***`. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'postgres (unparseable url)';
  }
}

export interface PgOptions {
  url: string;
  /** Schema to use (created if missing); tests give each file its own. */
  schema?: string;
  /** Pool size (default 20). */
  max?: number;
  /**
   * Run statements marked with `prepared()` as named prepared statements (default true).
   * Turn off behind a pooler in transaction mode that cannot keep them (PgBouncer < 1.21).
   */
  preparedStatements?: boolean;
  /**
   * Called once when the adapter finds itself behind a pooler that does not keep prepared
   * statements and turns them off by itself (see `isPoolerPreparedError`).
   */
  onWarning?: (message: string) => void;
  /** Seconds after which an idle connection is replaced by a new one (default 10; 0: never). */
  connectionLifetimeS?: number;
}

function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/**
 * pg reports a lost connection ("Connection terminated unexpectedly") without a SQLSTATE.
 * Give it 08006 (connection_failure) so that callers can tell "the database is away,
 * try again" from a fault.
 */
function withConnectionCode(err: unknown): unknown {
  const e = err as Error & { code?: unknown };
  if (e instanceof Error && e.code === undefined && /connection terminated|not queryable|connection ended/i.test(e.message))
    e.code = '08006';
  // disk_full: the statement rolled back whole; it is the server's disk, not the request (507, not 500).
  if (e instanceof Error && e.code === '53100')
    return new StorageFullError(
      `the PostgreSQL server's disk is full (SQLSTATE 53100: ${e.message}); nothing of this request was stored, and writes work again once space is freed there`,
      err,
    );
  return err;
}

/**
 * A transaction pooler (PgBouncer < 1.21 in transaction mode) hands each transaction a
 * different server connection, so a statement prepared on one is either missing on the
 * next (26000) or there already under the same name (42P05). Both fail at parse time,
 * before the statement ran, so the call can be repeated unprepared.
 */
function isPoolerPreparedError(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown };
  return (e?.code === '42P05' || e?.code === '26000') && typeof e.message === 'string' && e.message.includes('"rl_');
}

/** The pool: int8 as numbers, connections renewed, our schema on the search path. */
function newPool(opts: PgOptions): pg.Pool {
  return new pg.Pool({
    // int8 (counts, sums) as numbers rather than strings, for this pool only.
    types: {
      getTypeParser: (oid: number, format?: 'text' | 'binary') =>
        oid === 20 ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format),
    } as pg.CustomTypesConfig,
    connectionString: opts.url,
    max: opts.max ?? 20,
    // Connections are renewed so that their cached generic plans are too. A plan made while
    // `runs` was small can pick an index that merely starts with namespace over the primary
    // key (the costs tie on a small table) and keep walking that index as the table grows:
    // on a young database, long-lived connections ran lifecycles 1.5× slower than fresh
    // ones. The price is one reconnect per connection every 10 s; a connection in use
    // (a LISTEN) is replaced only when released.
    maxLifetimeSeconds: opts.connectionLifetimeS ?? 10,
    // Every connection sees only our schema, so the same SQL runs in any schema.
    options: opts.schema ? `-c search_path=${quoteIdent(opts.schema)}` : undefined,
  });
}

/** Creates `schema` if missing; on failure the pool is ended. */
async function ensureSchema(pool: pg.Pool, schema: string): Promise<void> {
  try {
    await pool.query(`create schema if not exists ${quoteIdent(schema)}`);
  } catch (err) {
    // Concurrent openers race inside CREATE SCHEMA IF NOT EXISTS: the loser gets a unique
    // violation although the schema now exists, which is all we asked for.
    const code = (err as { code?: string }).code;
    if (code !== '23505' && code !== '42P06') {
      await pool.end().catch(() => {});
      throw err;
    }
  }
}

/**
 * Which statements go prepared: those marked with `prepared()`, until a transaction pooler
 * shows itself (then none, with one warning).
 */
function preparedStatements(opts: PgOptions) {
  let prepare = opts.preparedStatements !== false;
  // This handle's statement names: stable per text, so each connection prepares a statement once.
  const names = new Map<string, string>();
  const statementName = (text: string): string => {
    let name = names.get(text);
    if (!name) names.set(text, (name = `rl_${createHash('sha256').update(text).digest('hex').slice(0, 24)}`));
    return name;
  };
  const statement = (sql: Sql, params?: unknown[]): pg.QueryConfig =>
    typeof sql === 'string'
      ? { text: sql, values: params }
      : prepare
        ? { name: statementName(sql.text), text: sql.text, values: params }
        : { text: sql.text, values: params };
  /** True when `err` shows a transaction pooler: prepared statements are off from now on, and the caller repeats its call once. */
  const fallBackFromPrepared = (err: unknown): boolean => {
    if (!isPoolerPreparedError(err)) return false;
    if (prepare) {
      prepare = false;
      opts.onWarning?.(
        `prepared statements do not survive between transactions on ${redactUrl(opts.url)} (a pooler in transaction mode, ` +
          `such as PgBouncer before 1.21): runledger turned them off and goes on without them; set ` +
          `RUNLEDGER_PREPARED_STATEMENTS=off (or pass --no-prepared-statements) to start that way`,
      );
    }
    return true;
  };
  return { statement, fallBackFromPrepared };
}

type StatementOf = ReturnType<typeof preparedStatements>['statement'];

/** `fn` in one transaction on one checked-out client. */
async function transactionOn<T>(pool: pg.Pool, statement: StatementOf, fn: (tx: Queryable) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  // A checked-out client has no pool listener: a connection lost between two queries
  // (database restart) would otherwise be an unhandled 'error' that kills the process.
  let broken = false;
  const onLost = () => (broken = true);
  client.on('error', onLost);
  const tx: Queryable = {
    async query<R>(sql: Sql, params?: unknown[]) {
      const res = await client.query(statement(sql, params));
      return { rows: res.rows as R[], rowCount: res.rowCount ?? 0 };
    },
    async exec(sql) {
      await client.query(sql);
    },
  };
  try {
    await client.query('begin');
    const result = await fn(tx);
    await client.query('commit');
    return result;
  } catch (err) {
    try {
      await client.query('rollback');
    } catch {
      broken = true;
    }
    throw withConnectionCode(err);
  } finally {
    client.off('error', onLost);
    client.release(broken);
  }
}

/**
 * LISTEN on one dedicated connection. If it is lost (database restart), LISTEN is re-established
 * on a new one; notifications sent in between are missed (listeners re-check anyway).
 */
async function listenOn(pool: pg.Pool, channel: string, onPayload: (payload: string) => void): Promise<() => Promise<void>> {
  let client: pg.PoolClient | null = null;
  let stopped = false;
  let retry: NodeJS.Timeout | undefined;
  const handler = (msg: pg.Notification) => {
    if (msg.channel === channel && msg.payload !== undefined) onPayload(msg.payload);
  };
  const attach = async () => {
    const c = await pool.connect();
    let lost = false;
    c.on('error', () => {
      if (lost) return;
      lost = true;
      c.off('notification', handler);
      c.release(true);
      // Lost after LISTEN succeeded: start over. (Lost during attach(): its caller retries.)
      if (client !== c) return;
      client = null;
      if (!stopped) reattach();
    });
    c.on('notification', handler);
    try {
      await c.query(`listen ${quoteIdent(channel)}`);
    } catch (err) {
      if (!lost) {
        lost = true;
        c.off('notification', handler);
        c.release(true);
      }
      throw err;
    }
    if (stopped) {
      c.off('notification', handler);
      c.release(true);
      return;
    }
    client = c;
  };
  const reattach = () => {
    retry = setTimeout(() => attach().catch(() => !stopped && reattach()), 1000);
    retry.unref();
  };
  await attach();
  return async () => {
    stopped = true;
    clearTimeout(retry);
    const c = client;
    client = null;
    if (!c) return;
    c.off('notification', handler);
    try {
      await c.query(`unlisten ${quoteIdent(channel)}`);
      c.release();
    } catch {
      c.release(true);
    }
  };
}

/** Database.copyOut on a pool: the plan's selects streamed by COPY, on connections sharing one snapshot. */
async function* copyOutOn(
  pool: pg.Pool,
  plan: (q: Queryable) => Promise<string[]>,
  opts: { setup?: string[]; connections?: number; aheadBytes?: number } = {},
): AsyncGenerator<Buffer> {
  const setup = opts.setup ?? [];
  const clients: pg.PoolClient[] = [];
  const onLost = () => {};
  let clean = false;
  const open = async (snapshot: string | null) => {
    const c = await pool.connect();
    c.on('error', onLost);
    clients.push(c);
    await c.query('begin isolation level repeatable read read only');
    if (snapshot) await c.query(`set transaction snapshot '${snapshot}'`);
    for (const sql of setup) await c.query(sql);
    return c;
  };
  // Each select's output, read by its connection and consumed in order.
  interface Part {
    bufs: Buffer[];
    bytes: number;
    done: boolean;
    error: unknown;
  }
  let stop = false;
  let wake: (() => void) | null = null;
  let room: (() => void)[] = [];
  const free = () => {
    const rs = room;
    room = [];
    for (const r of rs) r();
  };
  const notify = () => {
    const w = wake;
    wake = null;
    w?.();
  };
  try {
    const first = await open(null);
    const selects = await plan({
      query: async (sql, params) => {
        const res = await first.query(sql, params);
        return { rows: res.rows, rowCount: res.rowCount ?? 0 };
      },
      exec: async (sql) => void (await first.query(sql)),
    });
    const n = Math.max(1, Math.min(opts.connections ?? 1, selects.length));
    const conns = [first];
    if (n > 1) {
      const { rows } = await first.query<{ s: string }>(`select pg_export_snapshot() as s`);
      for (let i = 1; i < n; i++) conns.push(await open(rows[0].s));
    }
    const ahead = opts.aheadBytes ?? 8 << 20;
    const parts: Part[] = selects.map(() => ({ bufs: [], bytes: 0, done: false, error: null }));
    let current = 0;
    const worker = async (w: number) => {
      for (let i = w; i < selects.length && !stop; i += n) {
        const part = parts[i];
        try {
          const stream = conns[w].query(copyTo(`copy (${selects[i]}) to stdout (format binary)`));
          for await (const chunk of stream) {
            part.bufs.push(chunk as Buffer);
            part.bytes += (chunk as Buffer).length;
            notify();
            // A part waits once it holds `ahead` bytes not yet written (the one being written
            // too: the writer may be slower than the database).
            while (!stop && part.bytes >= ahead) await new Promise<void>((r) => room.push(r));
            if (stop) break;
          }
        } catch (err) {
          part.error = err;
          stop = true;
        }
        part.done = true;
        notify();
      }
    };
    const workers = conns.map((_, w) => worker(w));
    for (; current < parts.length; current++) {
      const part = parts[current];
      free();
      for (;;) {
        if (part.error) throw part.error;
        if (part.bufs.length) {
          const bufs = part.bufs;
          part.bufs = [];
          part.bytes = 0;
          free();
          for (const b of bufs) yield b;
          continue;
        }
        if (part.done) break;
        await new Promise<void>((r) => (wake = r));
      }
    }
    await Promise.all(workers);
    for (const c of conns) await c.query('commit');
    clean = true;
  } catch (err) {
    throw withConnectionCode(err);
  } finally {
    stop = true;
    notify();
    free();
    for (const c of clients) {
      c.off('error', onLost);
      // Stopped early (the consumer returned) or failed mid-COPY: the connection is not reusable.
      c.release(!clean);
    }
  }
}

/** PostgreSQL server adapter: a pg pool. */
export async function openPgDatabase(opts: PgOptions): Promise<Database> {
  const pool = newPool(opts);
  // An idle client losing its connection (server restart) must not crash the process.
  pool.on('error', () => {});
  if (opts.schema) await ensureSchema(pool, opts.schema);
  const { statement, fallBackFromPrepared } = preparedStatements(opts);
  const query = async <R>(sql: Sql, params?: unknown[]): Promise<QueryResult<R>> => {
    for (let attempt = 1; ; attempt++) {
      try {
        const res = await pool.query(statement(sql, params));
        return { rows: res.rows as R[], rowCount: res.rowCount ?? 0 };
      } catch (err) {
        if (attempt === 1 && fallBackFromPrepared(err)) continue;
        throw withConnectionCode(err);
      }
    }
  };

  const transaction = <T>(fn: (tx: Queryable) => Promise<T>) => transactionOn(pool, statement, fn);

  return {
    kind: 'postgres',
    query,
    async exec(sql) {
      await pool.query(sql);
    },
    async withTransaction(fn) {
      try {
        return await transaction(fn);
      } catch (err) {
        // The transaction rolled back whole; the callbacks only touch the database, so once more unprepared.
        if (fallBackFromPrepared(err)) return transaction(fn);
        throw err;
      }
    },
    listen: (channel, onPayload) => listenOn(pool, channel, onPayload),
    copyOut: (plan, opts) => copyOutOn(pool, plan, opts),
    async close() {
      await pool.end();
    },
  };
}
