/**
 * Test backends. RUNLEDGER_TEST_DB=postgres (default URL postgres://postgres@127.0.0.1:5432/test,
 * override with RUNLEDGER_TEST_DATABASE_URL) gives each ledger its own schema; pglite gives
 * each its own in-memory database. Tests never depend on order or on each other's data.
 * RUNLEDGER_TEST_VIA=http runs the same tests through the HTTP client: freshLedger() then
 * starts a real server (port 0) over the fresh ledger and returns a client to it.
 */
import { randomBytes } from 'node:crypto';

import pg from 'pg';
import { afterAll, beforeAll } from 'vitest';

import { createClient, type OpenedLedger, openLedger, type RunledgerClient, startServer } from '../src/index.js';
import type { Sql } from '../src/store/database.js';

export const BACKEND = (process.env.RUNLEDGER_TEST_DB ?? 'pglite') as 'pglite' | 'postgres';
export const PG_URL = process.env.RUNLEDGER_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
export const onPostgres = BACKEND === 'postgres';
/** True when the ledger under test is the HTTP client (RUNLEDGER_TEST_VIA=http). */
export const viaHttp = process.env.RUNLEDGER_TEST_VIA === 'http';

const schemas: string[] = [];

/** A fresh, empty ledger in process, whatever RUNLEDGER_TEST_VIA says (for tests of the server itself). */
export async function freshStore(
  opts: { poolSize?: number; connectionLifetimeS?: number; clock?: () => Date; schema?: string } = {},
): Promise<OpenedLedger> {
  if (BACKEND === 'postgres') {
    const schema = opts.schema ?? `t_${randomBytes(6).toString('hex')}`;
    schemas.push(schema);
    return openLedger({
      url: PG_URL,
      schema,
      poolSize: opts.poolSize ?? 5,
      connectionLifetimeS: opts.connectionLifetimeS,
      clock: opts.clock,
    });
  }
  return openLedger({ dataDir: 'memory://', clock: opts.clock });
}

/** A clock that stands still until moved: `clock.now` for openLedger, `clock.advance(seconds)`. */
export function manualClock(start = '2026-03-01T00:00:00Z') {
  let t = Date.parse(start);
  return {
    now: () => new Date(t),
    advance(seconds: number) {
      t += seconds * 1000;
    },
    set(iso: string) {
      t = Date.parse(iso);
    },
    iso: () => new Date(t).toISOString(),
  };
}

/**
 * The client seen through the OpenedLedger shape: every ledger call goes over HTTP; only
 * `database` (and `notices`) reach the store directly, for tests that inspect or tamper
 * with rows as SQL would.
 */
function viaClient(client: RunledgerClient, inner: OpenedLedger, close?: () => Promise<void>): OpenedLedger {
  // The server runs in this process: a test looping on direct queries must let its sockets
  // run, and PGlite answers without ever returning to the event loop. Yield after each query.
  const yieldToIo = () => new Promise((r) => setImmediate(r));
  const database = new Proxy(inner.database, {
    get(target, prop) {
      if (prop === 'query')
        return async (sql: Sql, params?: unknown[]) => {
          const result = await target.query(sql, params);
          await yieldToIo();
          return result;
        };
      if (prop === 'exec')
        return async (sql: string) => {
          await target.exec(sql);
          await yieldToIo();
        };
      const value = Reflect.get(target, prop, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return new Proxy(client, {
    get(target, prop) {
      if (prop === 'database') return database;
      if (prop === 'notices' || prop === 'location') return inner[prop];
      if (prop === 'inNamespace') return (ns: string) => viaClient(target.inNamespace(ns), inner.inNamespace(ns) as OpenedLedger);
      if (prop === 'close' && close) return close;
      const value = Reflect.get(target, prop, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  }) as unknown as OpenedLedger;
}

/** A fresh, empty ledger on the selected backend (over HTTP when RUNLEDGER_TEST_VIA=http). */
export async function freshLedger(
  opts: { poolSize?: number; connectionLifetimeS?: number; clock?: () => Date } = {},
): Promise<OpenedLedger> {
  const ledger = await freshStore(opts);
  if (!viaHttp) return ledger;
  // The reaper is left to the tests (reapIntervalS 0), as in process.
  const server = await startServer({ ledger, port: 0, auth: 'off', reapIntervalS: 0, logger: false, webRoot: false });
  const client = createClient({ baseUrl: server.url });
  return viaClient(client, ledger, async () => {
    await server.close();
    await ledger.close();
  });
}

/** A fresh schema name on the PostgreSQL test database (for tests that open several ledgers on one store). */
export function freshSchema(): string {
  const schema = `t_${randomBytes(6).toString('hex')}`;
  schemas.push(schema);
  return schema;
}

/** Drops the schemas this test file created (call in afterAll). */
export async function dropSchemas(): Promise<void> {
  if (BACKEND !== 'postgres' || !schemas.length) return;
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  try {
    for (const s of schemas.splice(0)) await client.query(`drop schema if exists "${s}" cascade`);
  } finally {
    await client.end();
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Expects `promise` to reject with a LedgerError of `code`; returns the error. */
export async function rejectsWith(promise: Promise<unknown>, code: string): Promise<Error & { code: string; details: unknown[] }> {
  try {
    await promise;
  } catch (err) {
    const e = err as Error & { code: string; details: unknown[] };
    if (e.code !== code) throw new Error(`expected error code ${code}, got ${e.code}: ${e.message}`, { cause: err });
    return e;
  }
  throw new Error(`expected error code ${code}, but the call succeeded`);
}

/**
 * The one per-file fixture: registers beforeAll/afterAll hooks that open a fresh ledger
 * on the selected backend (its own schema or in-memory database; over HTTP when
 * RUNLEDGER_TEST_VIA=http) and close and drop it after the file. Returns a stand-in
 * that forwards to that ledger, so tests use it as they would the ledger itself.
 * @example const ledger = useFreshLedger({ poolSize: onPostgres ? 20 : undefined });
 */
export function useFreshLedger(opts: Parameters<typeof freshLedger>[0] = {}): OpenedLedger {
  let current: OpenedLedger | undefined;
  beforeAll(async () => {
    current = await freshLedger(opts);
  });
  afterAll(async () => {
    await current?.close();
    current = undefined;
    await dropSchemas();
  });
  return new Proxy({} as OpenedLedger, {
    get(_, prop) {
      if (!current) throw new Error(`the file's ledger is used outside a test (reading ${String(prop)}): it opens in beforeAll`);
      const value = Reflect.get(current, prop, current);
      return typeof value === 'function' ? value.bind(current) : value;
    },
  });
}
