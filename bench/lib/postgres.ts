/**
 * PostgreSQL for benchmarks: every variant gets its own fresh schema (so table growth from
 * one variant never slows another), and every schema is dropped at the end, even on Ctrl-C.
 */
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';

import pg from 'pg';

import { MIGRATIONS } from '../../src/store/migrate.js';

export const PG_URL = process.env.RUNLEDGER_BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/**
 * Every connection this process opens (library, raw pools, pg-boss) carries this
 * application_name (node-postgres reads PGAPPNAME), so that the server processes serving
 * the variant being measured can be found and their CPU time read.
 */
export const APP_NAME = `runledger-bench-${process.pid}`;
process.env.PGAPPNAME = APP_NAME;

const quoteIdent = (name: string) => `"${name.replace(/"/g, '""')}"`;

/** Opens one admin connection for schema set-up and clean-up. */
async function admin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** The schemas created by this process, dropped by dropSchemas(). */
const created: string[] = [];

/** A new, empty schema name (`bench_<random>_<what>`), registered for clean-up. */
export function benchSchema(what: string): string {
  const name = `bench_${randomBytes(4).toString('hex')}_${what.replace(/[^a-z0-9]/g, '')}`;
  created.push(name);
  return name;
}

/** Creates `schema` and applies runledger's migrations in it (the same SQL files the library applies). */
export async function createLedgerSchema(schema: string): Promise<void> {
  const migrations = MIGRATIONS;
  await admin(async (c) => {
    await c.query(`create schema ${quoteIdent(schema)}`);
    await c.query(`set search_path to ${quoteIdent(schema)}`);
    for (const m of migrations) await c.query(m.sql);
  });
}

/** A pg pool whose connections see only `schema`. */
export function schemaPool(schema: string, max: number): pg.Pool {
  const pool = new pg.Pool({ connectionString: PG_URL, max, options: `-c search_path=${quoteIdent(schema)}` });
  pool.on('error', () => {});
  return pool;
}

export async function serverVersion(): Promise<string> {
  return admin(async (c) => (await c.query<{ server_version: string }>(`show server_version`)).rows[0].server_version);
}

/** A fresh schema with runledger's tables, for one measurement; `drop()` removes it. */
export async function freshLedgerSchema(what: string): Promise<{ schema: string; drop(): Promise<void> }> {
  const schema = benchSchema(what);
  await createLedgerSchema(schema);
  return { schema, drop: () => dropSchema(schema) };
}

export async function dropSchema(schema: string): Promise<void> {
  await admin((c) => c.query(`drop schema if exists ${quoteIdent(schema)} cascade`));
  const at = created.indexOf(schema);
  if (at >= 0) created.splice(at, 1);
}

let sampler: Promise<pg.Client> | undefined;

/**
 * CPU time (ms) of every server process connected as APP_NAME, read from
 * /proc/<pid>/schedstat (nanoseconds). Works only when PostgreSQL runs on this machine;
 * rejects otherwise, and the report leaves the column empty.
 */
export async function backendCpu(): Promise<Map<number, number>> {
  sampler ??= (async () => {
    const c = new pg.Client({ connectionString: PG_URL, application_name: `${APP_NAME}-sampler` });
    await c.connect();
    return c;
  })();
  const client = await sampler;
  const { rows } = await client.query<{ pid: number }>(`select pid from pg_stat_activity where application_name = $1`, [APP_NAME]);
  const cpu = new Map<number, number>();
  await Promise.all(
    rows.map(async ({ pid }) => {
      const stat = await readFile(`/proc/${pid}/schedstat`, 'utf8').catch(() => undefined);
      if (stat) cpu.set(pid, Number(stat.split(' ')[0]) / 1e6);
    }),
  );
  if (rows.length && !cpu.size) throw new Error('server processes are not visible from here');
  return cpu;
}

export async function dropSchemas(): Promise<void> {
  if (sampler) {
    const c = sampler;
    sampler = undefined;
    await (await c).end().catch(() => {});
  }
  if (!created.length) return;
  await admin(async (c) => {
    for (const s of created.splice(0)) await c.query(`drop schema if exists ${quoteIdent(s)} cascade`);
  });
}
