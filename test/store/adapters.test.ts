/**
 * The adapters' contract: the same checks on the pg adapter and the PGlite adapter (the
 * backend that RUNLEDGER_TEST_DB selects), so the two cannot drift. Every ledger statement
 * runs on both, marked prepared() or not; what the ledger relies on is spelled out here:
 * prepared and unprepared statements give the same rows and types, a failed transaction
 * leaves nothing behind and the connection usable, and NOTIFY reaches a listener only on
 * commit.
 */
import { randomBytes } from 'node:crypto';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { type Database, prepared } from '../../src/store/database.js';
import { openPgDatabase } from '../../src/store/pg.js';
import { openPgliteDatabase } from '../../src/store/pglite.js';
import { BACKEND, onPostgres, PG_URL, sleep } from '../helpers.js';

const schema = `t_adapters_${randomBytes(4).toString('hex')}`;
let db: Database;

beforeAll(async () => {
  db = onPostgres ? await openPgDatabase({ url: PG_URL, schema, max: 3 }) : await openPgliteDatabase({});
  await db.exec(`create table kv (k text primary key, n integer not null, big bigint, at timestamptz, doc jsonb)`);
});
afterAll(async () => {
  if (onPostgres) await db.query(`drop schema ${schema} cascade`);
  await db.close();
});

// The same text, once marked for preparation and once not (a trailing comment makes it a different text).
const INSERT = `insert into kv (k, n, big, at, doc) values ($1, $2::int, $3::bigint, $4::timestamptz, $5::jsonb) returning k, n, big, at, doc`;
const insertPrepared = prepared(INSERT);
const insertPlain = `${INSERT} -- unprepared`;
const SELECT = `select k, n, big, at, doc, null::text as nothing from kv where k = $1`;
const selectPrepared = prepared(SELECT);
const selectPlain = `${SELECT} -- unprepared`;

async function eventually(check: () => boolean, what: string) {
  for (let i = 0; i < 200 && !check(); i++) await sleep(10);
  if (!check()) throw new Error(`timed out waiting for ${what}`);
}

describe(`the ${BACKEND} adapter`, () => {
  it('prepared and unprepared statements return the same rows, types and counts, in and out of a transaction', async () => {
    const params = (k: string) => [k, 7, 42, '2026-01-02T03:04:05.678Z', JSON.stringify({ b: 1, a: [true, null] })];
    const a = await db.query(insertPrepared, params('a'));
    const b = await db.query(insertPlain, params('b'));
    const c = await db.withTransaction((tx) => tx.query(insertPrepared, params('c')));
    const d = await db.withTransaction((tx) => tx.query(insertPlain, params('d')));
    const shape = (r: { rows: Record<string, unknown>[]; rowCount: number }) => ({ ...r, rows: r.rows.map((row) => ({ ...row, k: '_' })) });
    expect(shape(a)).toEqual(shape(b));
    expect(shape(c)).toEqual(shape(a));
    expect(shape(d)).toEqual(shape(a));
    expect(a.rowCount).toBe(1);
    const row = a.rows[0] as { n: unknown; big: unknown; at: unknown; doc: unknown };
    // What the ledger's row mappers assume of both drivers.
    expect(row.n).toBe(7);
    expect(row.big).toBe(42);
    expect(row.at).toBeInstanceOf(Date);
    expect((row.at as Date).toISOString()).toBe('2026-01-02T03:04:05.678Z');
    expect(row.doc).toEqual({ b: 1, a: [true, null] });

    const p = await db.query(selectPrepared, ['a']);
    const q = await db.query(selectPlain, ['a']);
    expect(p).toEqual(q);
    expect(p.rows[0]).toMatchObject({ nothing: null });
    expect(await db.query(selectPrepared, ['missing'])).toEqual({ rows: [], rowCount: 0 });
    const updated = await db.query(`update kv set n = n + 1 where k in ('a', 'b')`);
    expect(updated.rowCount).toBe(2);
  });

  it('a transaction that throws is rolled back whole, and the connection is usable afterwards', async () => {
    for (const insert of [insertPrepared, insertPlain]) {
      const key = `rolled-back-${insert === insertPrepared ? 'prepared' : 'plain'}`;
      await expect(
        db.withTransaction(async (tx) => {
          await tx.query(insert, [key, 1, null, null, null]);
          await tx.query(`select 1/0`);
        }),
      ).rejects.toMatchObject({ code: '22012' });
      expect((await db.query(selectPrepared, [key])).rows).toEqual([]);
      // A statement error inside the transaction leaves it aborted; the adapter must not hand that state on.
      expect((await db.query(`select 1 as one`)).rows).toEqual([{ one: 1 }]);
      expect((await db.withTransaction((tx) => tx.query(`select 2 as two`))).rows).toEqual([{ two: 2 }]);
    }
    // An error thrown by the callback itself (not by SQL) rolls back too.
    await expect(
      db.withTransaction(async (tx) => {
        await tx.query(insertPrepared, ['thrown', 1, null, null, null]);
        throw new Error('callback failed');
      }),
    ).rejects.toThrow('callback failed');
    expect((await db.query(selectPlain, ['thrown'])).rows).toEqual([]);
  });

  it('a unique violation carries its SQLSTATE and constraint name on both drivers', async () => {
    await db.query(insertPrepared, ['dup', 1, null, null, null]);
    await expect(db.query(insertPrepared, ['dup', 1, null, null, null])).rejects.toMatchObject({ code: '23505', constraint: 'kv_pkey' });
  });

  it('exec runs a script of several statements', async () => {
    await db.exec(`insert into kv (k, n) values ('s1', 1); insert into kv (k, n) values ('s2', 2);`);
    expect((await db.query(`select count(*)::int as c from kv where k like 's_'`)).rows).toEqual([{ c: 2 }]);
  });

  it('NOTIFY reaches a listener after commit, never from a rolled-back transaction, and not after unsubscribing', async () => {
    const channel = `contract_${randomBytes(3).toString('hex')}`;
    const got: string[] = [];
    const unlisten = await db.listen(channel, (payload) => got.push(payload));
    await db.query(`select pg_notify($1, 'plain')`, [channel]);
    await db.withTransaction((tx) => tx.query(`select pg_notify($1, 'committed')`, [channel]));
    await expect(
      db.withTransaction(async (tx) => {
        await tx.query(`select pg_notify($1, 'rolled back')`, [channel]);
        throw new Error('abort');
      }),
    ).rejects.toThrow('abort');
    await db.query(`select pg_notify($1, 'last')`, [channel]);
    await eventually(() => got.includes('last'), 'the last notification');
    expect(got).toEqual(['plain', 'committed', 'last']);
    await unlisten();
    await db.query(`select pg_notify($1, 'after')`, [channel]);
    await db.query(`select pg_notify($1, 'after')`, [channel]);
    await sleep(100);
    expect(got).toEqual(['plain', 'committed', 'last']);
  });
});
