/**
 * `core`: the library against a hand-written raw-SQL baseline and against pg-boss, on
 * PostgreSQL and on PGlite (in memory and in a data directory).
 *   lifecycle/*  start, 3 events, complete with output — lifecycles per second
 *   append/*     run.events(batch) vs one multi-row INSERT — events per second
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { PGlite } from '@electric-sql/pglite';

import { openLedger } from '../../src/index.js';
import { loadMigrations } from '../../src/store/migrate.js';
import type { Comparison } from '../lib/harness.js';
import { type BenchModule, type ModuleContext, selected } from '../lib/module.js';
import { backendCpu, benchSchema, createLedgerSchema, PG_URL, serverVersion } from '../lib/postgres.js';
import { runComparisons } from '../lib/runner.js';
import { type LedgerSource, libraryAppend, libraryLifecycle } from './library.js';
import { pgBossLifecycle, preparePgBoss } from './pgboss.js';
import { pgliteRawSource, pgRawSource, rawAppend, rawLifecycle, rawLifecycleOnce, rawPerCallLifecycle } from './raw.js';

const packageVersion = async (name: string) =>
  (JSON.parse(await readFile(new URL(`../../node_modules/${name}/package.json`, import.meta.url), 'utf8')) as { version: string }).version;

/** A library ledger on `schema`, with a pool of exactly `concurrency` connections per session. */
const pgLedgerSource =
  (schema: string): LedgerSource =>
  async (concurrency) => {
    const ledger = await openLedger({ url: PG_URL, schema, poolSize: concurrency, migrate: false });
    return { ledger, release: () => ledger.close(), serverCpu: backendCpu };
  };

/**
 * Checks that the baseline writes what the library writes: a raw lifecycle must pass the
 * library's `verify` and have as many events as a library lifecycle.
 */
async function checkEquivalence(libSchema: string, rawSchema: string): Promise<void> {
  const raw = await pgRawSource(rawSchema)(1);
  let rawId: string;
  try {
    rawId = await rawLifecycleOnce(raw.db);
  } finally {
    await raw.release();
  }
  const onRaw = await openLedger({ url: PG_URL, schema: rawSchema, poolSize: 1, migrate: false });
  const onLib = await openLedger({ url: PG_URL, schema: libSchema, poolSize: 1, migrate: false });
  try {
    const check = await onRaw.verify(rawId);
    if (!check.ok) throw new Error(`the raw baseline wrote rows the library does not verify: ${JSON.stringify(check.problems)}`);
    const libSession = await libraryLifecycle('check', async () => ({ ledger: onLib, release: async () => {} })).open(1);
    await libSession.op(0);
    const count = async (l: typeof onRaw) => (await l.database.query<{ n: number }>(`select count(*)::int as n from events`)).rows[0].n;
    const [rawEvents, libEvents] = [await count(onRaw), await count(onLib)];
    if (rawEvents !== libEvents) throw new Error(`a raw lifecycle wrote ${rawEvents} events, a library lifecycle ${libEvents}`);
  } finally {
    await onRaw.close();
    await onLib.close();
  }
}

async function pgliteWithSchema(dataDir?: string): Promise<PGlite> {
  const db = await PGlite.create(dataDir);
  for (const m of await loadMigrations()) await db.exec(m.sql);
  return db;
}

export const core: BenchModule = {
  name: 'core',
  description: 'run lifecycles and batched event append: library vs raw SQL vs pg-boss, PostgreSQL and PGlite',
  async run(ctx: ModuleContext) {
    const { batchSize, only, log } = ctx;
    const comparisons: Comparison[] = [];
    const environment: Record<string, string> = {
      PostgreSQL: `${await serverVersion()} at ${new URL(PG_URL).host}, database ${new URL(PG_URL).pathname.slice(1)}`,
      PGlite: await packageVersion('@electric-sql/pglite'),
      'pg-boss': await packageVersion('pg-boss'),
      pg: await packageVersion('pg'),
    };

    // Step 1: PostgreSQL — one fresh schema per variant, created up front, dropped at the end.
    const wantPg = ['lifecycle/postgres', 'append/postgres'].some((id) => selected(only, id));
    if (wantPg) {
      const libSchema = benchSchema('lib');
      const rawSchema = benchSchema('raw');
      await createLedgerSchema(libSchema);
      await createLedgerSchema(rawSchema);
      await checkEquivalence(libSchema, rawSchema);
      log('  checked: a raw-baseline lifecycle passes verify() and writes as many events as a library lifecycle');
      if (selected(only, 'lifecycle/postgres')) {
        const bossSchema = benchSchema('boss');
        await preparePgBoss(bossSchema);
        comparisons.push({
          id: 'lifecycle/postgres',
          title: 'lifecycle, PostgreSQL',
          unit: 'lifecycles/s',
          unitsPerOp: 1,
          variants: [
            libraryLifecycle('library (openLedger)', pgLedgerSource(libSchema)),
            rawLifecycle('raw SQL, 1 tx per run', pgRawSource(rawSchema)),
            rawPerCallLifecycle('raw SQL, 1 tx per call', pgRawSource(rawSchema)),
            pgBossLifecycle('pg-boss send/fetch/complete', bossSchema),
          ],
          ratios: [
            { numerator: 'library', denominator: 'raw', target: 1.0 },
            { numerator: 'library', denominator: 'pg-boss', target: 10 },
            { numerator: 'library', denominator: 'raw-per-call' },
          ],
        });
      }
      if (selected(only, 'append/postgres')) {
        comparisons.push({
          id: 'append/postgres',
          title: `append ×${batchSize}, PostgreSQL`,
          unit: 'events/s',
          unitsPerOp: batchSize,
          variants: [
            libraryAppend('library run.events()', pgLedgerSource(libSchema), batchSize),
            rawAppend('raw multi-row INSERT', pgRawSource(rawSchema), batchSize),
          ],
          ratios: [{ numerator: 'library', denominator: 'raw', target: 0.8 }],
        });
      }
    }

    // Step 2: PGlite — long-lived instances (one per variant), in memory and in temp directories.
    for (const place of ['memory', 'dir'] as const) {
      const lifecycleId = `lifecycle/pglite-${place}`;
      const appendId = `append/pglite-${place}`;
      if (!selected(only, lifecycleId) && !selected(only, appendId)) continue;
      let libDir = 'memory://';
      let rawDir: string | undefined;
      if (place === 'dir') {
        const tmp = await mkdtemp(join(tmpdir(), 'runledger-bench-'));
        ctx.onCleanup(() => rm(tmp, { recursive: true, force: true }));
        libDir = join(tmp, 'library');
        rawDir = join(tmp, 'raw');
      }
      const ledger = await openLedger({ dataDir: libDir });
      ctx.onCleanup(() => ledger.close());
      const rawDb = await pgliteWithSchema(rawDir);
      ctx.onCleanup(() => rawDb.close());
      const libSource: LedgerSource = async () => ({ ledger, release: async () => {} });
      const where = place === 'memory' ? 'PGlite memory://' : 'PGlite data dir';
      if (selected(only, lifecycleId)) {
        comparisons.push({
          id: lifecycleId,
          title: `lifecycle, ${where}`,
          unit: 'lifecycles/s',
          unitsPerOp: 1,
          variants: [
            libraryLifecycle('library (openLedger)', libSource),
            rawLifecycle('raw SQL, 1 tx per run', pgliteRawSource(rawDb)),
            rawPerCallLifecycle('raw SQL, 1 tx per call', pgliteRawSource(rawDb)),
          ],
          ratios: [
            { numerator: 'library', denominator: 'raw', target: 0.8 },
            { numerator: 'library', denominator: 'raw-per-call' },
          ],
        });
      }
      if (selected(only, appendId)) {
        comparisons.push({
          id: appendId,
          title: `append ×${batchSize}, ${where}`,
          unit: 'events/s',
          unitsPerOp: batchSize,
          variants: [
            libraryAppend('library run.events()', libSource, batchSize),
            rawAppend('raw multi-row INSERT', pgliteRawSource(rawDb), batchSize),
          ],
          ratios: [{ numerator: 'library', denominator: 'raw', target: 0.8 }],
        });
      }
    }

    return { comparisons: await runComparisons(comparisons, ctx.settings, log), environment };
  },
};
