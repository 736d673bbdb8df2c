/**
 * Every measurement gets a fresh, empty store of its own (a new schema on PostgreSQL, a
 * new PGlite instance), created before the clock starts and removed after. Without this,
 * a variant would pay for rows an earlier or faster variant left behind: on PGlite a
 * store that has already taken a few thousand lifecycles appends several times slower.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { PGlite } from '@electric-sql/pglite';

import { openLedger } from '../../src/index.js';
import { MIGRATIONS } from '../../src/store/migrate.js';
import { backendCpu, freshLedgerSchema, PG_URL, schemaPool } from '../lib/postgres.js';
import type { LedgerSource } from './library.js';
import { rawDbOnPglite, rawDbOnPool, type RawSource } from './raw.js';

export type PglitePlace = 'memory' | 'dir';

/** The library on a fresh schema, with a pool of exactly `concurrency` connections. */
export const freshPgLedgerSource: LedgerSource = async (concurrency) => {
  const { schema, drop } = await freshLedgerSchema('lib');
  const ledger = await openLedger({ url: PG_URL, schema, poolSize: concurrency, migrate: false });
  return {
    ledger,
    serverCpu: backendCpu,
    async release() {
      await ledger.close();
      await drop();
    },
  };
};

/** Raw statements on `schema` through a pool of `concurrency` connections; release ends it and runs `drop`. */
export function rawPoolSource(schema: string, concurrency: number, drop: () => Promise<void>): Awaited<ReturnType<RawSource>> {
  const pool = schemaPool(schema, concurrency);
  return {
    db: rawDbOnPool(pool),
    serverCpu: backendCpu,
    async release() {
      await pool.end();
      await drop();
    },
  };
}

/** The raw baseline on a fresh schema, with its own pool of the same size. */
export const freshPgRawSource: RawSource = async (concurrency) => {
  const { schema, drop } = await freshLedgerSchema('raw');
  return rawPoolSource(schema, concurrency, drop);
};

/** `memory://`, or a new temporary data directory. */
async function place(where: PglitePlace): Promise<{ dataDir?: string; remove(): Promise<void> }> {
  if (where === 'memory') return { remove: async () => {} };
  const dataDir = await mkdtemp(join(tmpdir(), 'runledger-bench-'));
  return { dataDir, remove: () => rm(dataDir, { recursive: true, force: true }) };
}

export const freshPgliteLedgerSource =
  (where: PglitePlace): LedgerSource =>
  async () => {
    const { dataDir, remove } = await place(where);
    const ledger = await openLedger({ dataDir: dataDir ?? 'memory://' });
    return {
      ledger,
      async release() {
        await ledger.close();
        await remove();
      },
    };
  };

/** Raw statements on a new PGlite instance whose tables `setup` makes. */
export const freshPgliteRawSourceWith =
  (where: PglitePlace, setup: (db: PGlite) => Promise<unknown>): RawSource =>
  async () => {
    const { dataDir, remove } = await place(where);
    const db = await PGlite.create(dataDir);
    await setup(db);
    return {
      db: rawDbOnPglite(db),
      async release() {
        await db.close();
        await remove();
      },
    };
  };

/** The raw baseline on a new PGlite instance with the same schema (runledger's migration files). */
export const freshPgliteRawSource = (where: PglitePlace): RawSource =>
  freshPgliteRawSourceWith(where, async (db) => {
    for (const m of MIGRATIONS) await db.exec(m.sql);
  });
