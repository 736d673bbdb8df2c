import type { LedgerError } from '../core/errors.js';

/**
 * The one small interface the ledger needs from a database. Two adapters implement it
 * with the same shape: `pg.ts` (a pool on a PostgreSQL server) and `pglite.ts`
 * (embedded PostgreSQL compiled to WASM). All SQL is shared.
 */

export interface QueryResult<R> {
  rows: R[];
  rowCount: number;
}

/** A statement text marked as worth preparing (see `prepared()`). */
export interface PreparedSql {
  readonly text: string;
  readonly prepared: true;
}

/** A statement: plain text, or text marked with `prepared()`. */
export type Sql = string | PreparedSql;

export const sqlText = (sql: Sql): string => (typeof sql === 'string' ? sql : sql.text);

export interface Queryable {
  query<R = Record<string, unknown>>(sql: Sql, params?: unknown[]): Promise<QueryResult<R>>;
  /** Runs a script of several statements without parameters (migrations). */
  exec(sql: string): Promise<void>;
}

export interface Database extends Queryable {
  readonly kind: 'postgres' | 'pglite';
  /** Runs `fn` in one transaction on one connection; commits on success, rolls back on throw. */
  withTransaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  /** Subscribes to NOTIFY on `channel`; resolves to an unsubscribe function. */
  listen(channel: string, onPayload: (payload: string) => void): Promise<() => Promise<void>>;
  close(): Promise<void>;
  /**
   * PostgreSQL only: the bytes of `COPY (select) TO STDOUT (FORMAT binary)` for each select that
   * `plan` returns, in order, all in one snapshot (a repeatable-read, read-only transaction per
   * connection, sharing the first one's snapshot). `plan` runs first, on the first connection,
   * after `setup` (e.g. `set local jit = off`). With `connections` > 1, select i runs on
   * connection i mod n while the one before is being read, so several backends build rows at
   * once; a select that is not yet being read is buffered up to `aheadBytes`, then waits.
   * COPY takes no parameters: the selects carry their values as quoted literals.
   */
  copyOut?(
    plan: (q: Queryable) => Promise<string[]>,
    opts?: { setup?: string[]; connections?: number; aheadBytes?: number },
  ): AsyncIterable<Buffer>;
  /** Why a write would be refused now (the embedded store's disk below its reserve), or null. */
  writeRefusal?(): LedgerError | null;
}

/**
 * Marks a constant hot-path statement as worth preparing: the pg adapter then parses and
 * plans it once per connection (a named prepared statement) instead of on every call,
 * which is most of a short statement's server time; the PGlite adapter does the same over
 * its wire protocol. The mark travels with the statement, and each database handle keeps
 * the statements it prepared; only for texts built from constants, since a handle keeps
 * every marked text it met for its life (and prepares it once per connection).
 */
export function prepared(text: string): PreparedSql {
  return { text, prepared: true };
}
