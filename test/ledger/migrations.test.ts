/**
 * Migrations: applied in order, once, under an advisory lock; a database that has a
 * migration this code does not know (newer than the code) or a differently named one is
 * refused with a message naming the migration, and nothing is changed.
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { type OpenedLedger, openLedger } from '../../src/index.js';
import { migrate, MIGRATIONS } from '../../src/store/migrate.js';
import { dropSchemas, freshSchema, onPostgres, PG_URL, rejectsWith } from '../helpers.js';
import { dumpSchema } from '../schema/dump.js';

let dir: string | undefined;
let schema = '';
const open = () => (onPostgres ? openLedger({ url: PG_URL, schema, poolSize: 2 }) : openLedger({ dataDir: dir! }));

let known: string[];

beforeAll(async () => {
  known = (await readdir(fileURLToPath(new URL('../../migrations/', import.meta.url)))).filter((f) => /^\d{4}_.+\.sql$/.test(f)).sort();
  if (onPostgres) schema = freshSchema();
  else dir = await mkdtemp(join(tmpdir(), 'runledger-migrate-'));
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
  await dropSchemas();
});

/** Runs `fn` on a freshly opened ledger and closes it. */
async function withLedger<T>(fn: (l: OpenedLedger) => Promise<T>): Promise<T> {
  const l = await open();
  try {
    return await fn(l);
  } finally {
    await l.close();
  }
}

const applied = (l: OpenedLedger) =>
  l.database.query<{ id: number; name: string }>(`select id, name from runledger_migrations order by id`).then((r) => r.rows);

describe('migrations', () => {
  it('a fresh store gets every migration once, in order; reopening applies nothing again', async () => {
    await withLedger(async (l) => {
      expect((await applied(l)).map((m) => m.name)).toEqual(known);
      await l.startRun({ id: 'keep-me', job: 'migrate' });
    });
    await withLedger(async (l) => {
      expect((await applied(l)).map((m) => m.name)).toEqual(known);
      expect((await l.getRun('keep-me')).job).toBe('migrate');
    });
  });

  it('refuses a database newer than the code, naming the unknown migration; nothing is changed', async () => {
    await withLedger((l) => l.database.query(`insert into runledger_migrations (id, name) values (9999, '9999_from_the_future.sql')`));
    const err = await rejectsWith(open(), 'migration_mismatch');
    expect(err.message).toContain('9999_from_the_future.sql');
    expect(err.message).toContain(known.at(-1)!);
    expect(err.message).toMatch(/upgrade runledger/);

    // Let it open without migrating to look: the store is as it was.
    const l = onPostgres
      ? await openLedger({ url: PG_URL, schema, poolSize: 2, migrate: false })
      : await openLedger({ dataDir: dir!, migrate: false });
    try {
      expect((await applied(l)).map((m) => m.name)).toEqual([...known, '9999_from_the_future.sql']);
      expect((await l.getRun('keep-me')).job).toBe('migrate');
      await l.database.query(`delete from runledger_migrations where id = 9999`);
    } finally {
      await l.close();
    }
    await withLedger(async (l2) => expect((await l2.getRun('keep-me')).job).toBe('migrate'));
  });

  it('refuses a database whose migration has another name than the code, naming both', async () => {
    const first = known[0];
    await withLedger((l) =>
      l.database.query(`update runledger_migrations set name = '0001_renamed_elsewhere.sql' where name = $1`, [first]),
    );
    const err = await rejectsWith(open(), 'migration_mismatch');
    expect(err.message).toContain('0001_renamed_elsewhere.sql');
    expect(err.message).toContain(first);
    const l = onPostgres
      ? await openLedger({ url: PG_URL, schema, poolSize: 2, migrate: false })
      : await openLedger({ dataDir: dir!, migrate: false });
    await l.database.query(`update runledger_migrations set name = $1 where name = '0001_renamed_elsewhere.sql'`, [first]);
    await l.close();
    await withLedger(async (l2) => expect((await applied(l2)).map((m) => m.name)).toEqual(known));
  });

  it('a ledger with data at 0008 (jsonb) migrates to 0009 (json): values read back equal, verify stays clean, filters work, new writes keep their order', async () => {
    const s = onPostgres ? freshSchema() : '';
    const d = onPostgres ? '' : await mkdtemp(join(tmpdir(), 'runledger-migrate-0009-'));
    const openAt = (migrateOnOpen: boolean) =>
      onPostgres
        ? openLedger({ url: PG_URL, schema: s, poolSize: 2, migrate: migrateOnOpen })
        : openLedger({ dataDir: d, migrate: migrateOnOpen });
    const shaped = { zeta: 1, alpha: { omega: [{ yy: 1, b: 2 }], beta: null }, a: 'x' };
    // jsonb's order (shorter keys first, then bytewise): what rows written before 0009 hold.
    const sorted = { a: 'x', zeta: 1, alpha: { beta: null, omega: [{ b: 2, yy: 1 }] } };
    try {
      // The code writes only the current schema: write with it, then turn the store back into
      // exactly what 0008 made (checked against a fresh 0008 store), data converted to jsonb.
      const old = await openAt(true);
      try {
        const run = await old.startRun({
          id: 'before',
          job: 'm9',
          subject: 's',
          params: shaped,
          tags: { zone: 'z', app: 'a' },
          externalIds: { ticket: 'T-1' },
        });
        await run.heartbeat(shaped);
        await run.event('log', shaped);
        await run.checkpoint({ name: 'cp', metadata: shaped, data: [shaped] });
        await run.complete({ output: shaped, statistics: { rows: 3, bytes: 4 } });
        await old.startRun({ id: 'before-failed', job: 'm9' }).then((r) => r.fail({ error: { message: 'no', details: shaped } }));
        // Back past the later migrations first: 0011 (prune races) and 0010 (covering indexes).
        await old.database.exec(`
          drop trigger runs_refuse_tombstoned on runs;
          drop function runledger_refuse_tombstoned();
          drop table change_horizons;
          drop index runs_status_idx;
          create index runs_status_idx on runs (namespace, status, created_at desc, id desc);
          drop index runs_job_idx;
          create index runs_job_idx on runs (namespace, job, created_at desc, id desc);
          drop index runs_subject_idx;
          create index runs_subject_idx on runs (namespace, subject, created_at desc, id desc) where subject is not null;
          delete from runledger_migrations where id in (10, 11);`);
        await old.database.exec(`
          drop index runs_external_ids_idx;
          drop index runs_tags_idx;
          alter table runs
            alter column external_ids drop default, alter column params drop default, alter column tags drop default,
            alter column external_ids type jsonb using external_ids::jsonb, alter column params type jsonb using params::jsonb,
            alter column tags type jsonb using tags::jsonb, alter column output type jsonb using output::jsonb,
            alter column statistics type jsonb using statistics::jsonb, alter column error type jsonb using error::jsonb,
            alter column progress type jsonb using progress::jsonb,
            alter column external_ids set default '{}', alter column params set default '{}', alter column tags set default '{}';
          create index runs_external_ids_idx on runs using gin (external_ids jsonb_path_ops);
          create index runs_tags_idx on runs using gin (tags jsonb_path_ops);
          alter table events alter column body type jsonb using body::jsonb;
          alter table checkpoints alter column metadata type jsonb using metadata::jsonb, alter column data type jsonb using data::jsonb;
          alter table changes alter column data type jsonb using data::jsonb;
          delete from runledger_migrations where id = 9;`);
        const at0008 = onPostgres
          ? await openLedger({ url: PG_URL, schema: freshSchema(), poolSize: 1, migrate: false })
          : await openLedger({ dataDir: 'memory://', migrate: false });
        try {
          await migrate(
            at0008.database,
            MIGRATIONS.filter((m) => m.id < 9),
          );
          expect(await dumpSchema(old.database)).toBe(await dumpSchema(at0008.database));
        } finally {
          await at0008.close();
        }
        expect(JSON.stringify((await old.getRun('before')).params)).toBe(JSON.stringify(sorted));
      } finally {
        await old.close();
      }

      const l = await openAt(true);
      try {
        const types = await l.database.query<{ c: string; t: string }>(
          `select table_name || '.' || column_name as c, data_type as t from information_schema.columns
            where table_schema = current_schema() and data_type in ('json', 'jsonb') order by 1`,
        );
        expect(types.rows).toEqual(
          [
            'changes.data',
            'checkpoints.data',
            'checkpoints.metadata',
            'events.body',
            'runs.error',
            'runs.external_ids',
            'runs.output',
            'runs.params',
            'runs.progress',
            'runs.statistics',
            'runs.tags',
          ].map((c) => ({ c, t: 'json' })),
        );
        // Old rows: equal values, in the order jsonb gave them (the order sent was not kept before 0009).
        const before = await l.getRun('before');
        expect(before.params).toEqual(shaped);
        expect(JSON.stringify(before.params)).toBe(JSON.stringify(sorted));
        expect(before.output).toEqual(shaped);
        expect(before.progress).toEqual(shaped);
        expect((await l.run('before').listEvents()).events.find((e) => e.type === 'log')!.body).toEqual(shaped);
        expect((await l.run('before').getCheckpoint('cp')).data).toEqual([shaped]);
        expect((await l.getRun('before-failed')).error).toEqual({ message: 'no', details: shaped });
        expect(await l.verify()).toMatchObject({ ok: true });
        expect((await l.listRuns({ tag: 'app:a' })).runs.map((r) => r.id)).toEqual(['before']);
        expect((await l.listRuns({ externalId: 'ticket:T-1' })).runs.map((r) => r.id)).toEqual(['before']);
        // Writes after the migration keep their order, next to the old rows.
        const after = await l.startRun({ id: 'after', job: 'm9', params: shaped, tags: { zone: 'z', app: 'a' } });
        await after.event('log', shaped);
        expect(JSON.stringify((await l.getRun('after')).params)).toBe(JSON.stringify(shaped));
        expect(JSON.stringify((await after.listEvents()).events.find((e) => e.type === 'log')!.body)).toBe(JSON.stringify(shaped));
        expect((await l.listRuns({ tag: 'app:a' })).runs.map((r) => r.id)).toEqual(['after', 'before']);
        expect(await l.verify()).toMatchObject({ ok: true });
      } finally {
        await l.close();
      }
    } finally {
      if (d) await rm(d, { recursive: true, force: true });
    }
  }, 180_000); // three PGlite stores opened and migrated: slow on a loaded machine

  it.skipIf(!onPostgres)(
    'concurrent openers of a fresh PostgreSQL schema migrate it exactly once (PostgreSQL: needs several processes/connections)',
    async () => {
      const s = freshSchema();
      const ledgers = await Promise.all(Array.from({ length: 6 }, () => openLedger({ url: PG_URL, schema: s, poolSize: 1 })));
      try {
        expect((await applied(ledgers[0])).map((m) => m.name)).toEqual(known);
        await Promise.all(ledgers.map((l, i) => l.startRun({ id: `r${i}`, job: 'concurrent-migrate' })));
        expect((await ledgers[0].listRuns({ job: 'concurrent-migrate' })).runs).toHaveLength(6);
      } finally {
        await Promise.all(ledgers.map((l) => l.close()));
      }
    },
  );
});
