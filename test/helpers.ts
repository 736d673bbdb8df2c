/**
 * Test backends. RUNLEDGER_TEST_DB=postgres (default URL postgres://postgres@127.0.0.1:5432/test,
 * override with RUNLEDGER_TEST_DATABASE_URL) gives each ledger its own schema; pglite gives
 * each its own in-memory database. Tests never depend on order or on each other's data.
 */
import { randomBytes } from 'node:crypto';

import pg from 'pg';

import { type OpenedLedger,openLedger } from '../src/index.js';

export const BACKEND = (process.env.RUNLEDGER_TEST_DB ?? 'pglite') as 'pglite' | 'postgres';
export const PG_URL = process.env.RUNLEDGER_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
export const onPostgres = BACKEND === 'postgres';

const schemas: string[] = [];

/** A fresh, empty ledger on the selected backend. */
export async function freshLedger(opts: { poolSize?: number } = {}): Promise<OpenedLedger> {
  if (BACKEND === 'postgres') {
    const schema = `t_${randomBytes(6).toString('hex')}`;
    schemas.push(schema);
    return openLedger({ url: PG_URL, schema, poolSize: opts.poolSize ?? 5 });
  }
  return openLedger({ dataDir: 'memory://' });
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
