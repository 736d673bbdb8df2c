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
import { dropSchemas, freshSchema, onPostgres, PG_URL, rejectsWith } from '../helpers.js';

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
