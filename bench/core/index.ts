/**
 * `core`: the library against a hand-written raw-SQL baseline and against pg-boss, on
 * PostgreSQL and on PGlite (in memory and in a data directory).
 *   lifecycle/*  start, 3 events, complete with output — lifecycles per second
 *   append/*     run.events(batch) vs one multi-row INSERT — events per second
 *   users/*      the users' own hand-written runs/run_events tables, 1 tx per lifecycle (what the library has to beat)
 *                vs startRun, one run.events([3]), complete — lifecycles per second
 */
import { readFile } from 'node:fs/promises';

import { openLedger } from '../../src/index.js';
import type { Comparison } from '../lib/harness.js';
import { type BenchModule, type ModuleContext, selected } from '../lib/module.js';
import { freshLedgerSchema, PG_URL, schemaPool, serverVersion } from '../lib/postgres.js';
import { runComparisons } from '../lib/runner.js';
import { libraryAppend, libraryLifecycle } from './library.js';
import { pgBossLifecycle } from './pgboss.js';
import { rawAppend, rawDbOnPool, rawLifecycle, rawLifecycleOnce, rawPerCallLifecycle } from './raw.js';
import { freshPgLedgerSource, freshPgliteLedgerSource, freshPgliteRawSource, freshPgRawSource, type PglitePlace } from './stores.js';
import { freshPgliteUsersSource, freshPgUsersSource, libraryBatchedLifecycle, usersTableLifecycle } from './users.js';

const packageVersion = async (name: string) =>
  (JSON.parse(await readFile(new URL(`../../node_modules/${name}/package.json`, import.meta.url), 'utf8')) as { version: string }).version;

/**
 * Checks that the baseline writes what the library writes: a raw lifecycle must pass the
 * library's `verify` and have as many events as a library lifecycle.
 */
async function checkEquivalence(): Promise<void> {
  const lib = await freshLedgerSchema('checklib');
  const raw = await freshLedgerSchema('checkraw');
  const pool = schemaPool(raw.schema, 1);
  const onRaw = await openLedger({ url: PG_URL, schema: raw.schema, poolSize: 1, migrate: false });
  const onLib = await openLedger({ url: PG_URL, schema: lib.schema, poolSize: 1, migrate: false });
  try {
    const rawId = await rawLifecycleOnce(rawDbOnPool(pool));
    const check = await onRaw.verify(rawId);
    if (!check.ok) throw new Error(`the raw baseline wrote rows the library does not verify: ${JSON.stringify(check.problems)}`);
    const libSession = await libraryLifecycle('check', async () => ({ ledger: onLib, release: async () => {} })).open(1);
    await libSession.op(0);
    const count = async (l: typeof onRaw) => (await l.database.query<{ n: number }>(`select count(*)::int as n from events`)).rows[0].n;
    const [rawEvents, libEvents] = [await count(onRaw), await count(onLib)];
    if (rawEvents !== libEvents) throw new Error(`a raw lifecycle wrote ${rawEvents} events, a library lifecycle ${libEvents}`);
  } finally {
    await pool.end();
    await onRaw.close();
    await onLib.close();
    await lib.drop();
    await raw.drop();
  }
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

    if (selected(only, 'lifecycle/postgres') || selected(only, 'append/postgres')) {
      await checkEquivalence();
      log('  checked: a raw-baseline lifecycle passes verify() and writes as many events as a library lifecycle');
    }
    if (selected(only, 'lifecycle/postgres')) {
      comparisons.push({
        id: 'lifecycle/postgres',
        title: 'lifecycle, PostgreSQL',
        unit: 'lifecycles/s',
        unitsPerOp: 1,
        variants: [
          libraryLifecycle('library (openLedger)', freshPgLedgerSource),
          rawLifecycle('raw SQL, 1 tx per run', freshPgRawSource),
          rawPerCallLifecycle('raw SQL, 1 tx per call', freshPgRawSource),
          pgBossLifecycle('pg-boss send/fetch/complete'),
        ],
        ratios: [
          { numerator: 'library', denominator: 'raw', target: 1.0 },
          { numerator: 'library', denominator: 'pg-boss', target: 10 },
          { numerator: 'library', denominator: 'raw-per-call' },
        ],
      });
    }
    if (selected(only, 'users/postgres')) {
      comparisons.push({
        id: 'users/postgres',
        title: "users' table, PostgreSQL",
        unit: 'lifecycles/s',
        unitsPerOp: 1,
        variants: [
          libraryBatchedLifecycle('library: start, events([3]), complete', freshPgLedgerSource),
          usersTableLifecycle('hand-written table, 1 tx per run', freshPgUsersSource),
        ],
        ratios: [{ numerator: 'library', denominator: 'hand-written', target: 1.0 }],
      });
    }
    if (selected(only, 'append/postgres')) {
      comparisons.push({
        id: 'append/postgres',
        title: `append ×${batchSize}, PostgreSQL`,
        unit: 'events/s',
        unitsPerOp: batchSize,
        variants: [
          libraryAppend('library run.events()', freshPgLedgerSource, batchSize),
          rawAppend('raw multi-row INSERT', freshPgRawSource, batchSize),
        ],
        ratios: [{ numerator: 'library', denominator: 'raw', target: 0.8 }],
      });
    }

    for (const where of ['memory', 'dir'] as PglitePlace[]) {
      const label = where === 'memory' ? 'PGlite memory://' : 'PGlite data dir';
      if (selected(only, `lifecycle/pglite-${where}`)) {
        comparisons.push({
          id: `lifecycle/pglite-${where}`,
          title: `lifecycle, ${label}`,
          unit: 'lifecycles/s',
          unitsPerOp: 1,
          variants: [
            libraryLifecycle('library (openLedger)', freshPgliteLedgerSource(where)),
            rawLifecycle('raw SQL, 1 tx per run', freshPgliteRawSource(where)),
            rawPerCallLifecycle('raw SQL, 1 tx per call', freshPgliteRawSource(where)),
          ],
          ratios: [
            { numerator: 'library', denominator: 'raw', target: 0.8 },
            { numerator: 'library', denominator: 'raw-per-call' },
          ],
        });
      }
      if (selected(only, `users/pglite-${where}`)) {
        comparisons.push({
          id: `users/pglite-${where}`,
          title: `users' table, ${label}`,
          unit: 'lifecycles/s',
          unitsPerOp: 1,
          variants: [
            libraryBatchedLifecycle('library: start, events([3]), complete', freshPgliteLedgerSource(where)),
            usersTableLifecycle('hand-written table, 1 tx per run', freshPgliteUsersSource(where)),
          ],
          ratios: [{ numerator: 'library', denominator: 'hand-written', target: 1.0 }],
        });
      }
      if (selected(only, `append/pglite-${where}`)) {
        comparisons.push({
          id: `append/pglite-${where}`,
          title: `append ×${batchSize}, ${label}`,
          unit: 'events/s',
          unitsPerOp: batchSize,
          variants: [
            libraryAppend('library run.events()', freshPgliteLedgerSource(where), batchSize),
            rawAppend('raw multi-row INSERT', freshPgliteRawSource(where), batchSize),
          ],
          ratios: [{ numerator: 'library', denominator: 'raw', target: 0.8 }],
        });
      }
    }

    return { comparisons: await runComparisons(comparisons, ctx.settings, log), environment };
  },
};
