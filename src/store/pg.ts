import pg from 'pg';

import type { Database, Queryable, QueryResult } from './database.js';

export interface PgOptions {
  url: string;
  /** Schema to use (created if missing); tests give each file its own. */
  schema?: string;
  /** Pool size (default 20). */
  max?: number;
}

function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** PostgreSQL server adapter: a pg pool. */
export async function openPgDatabase(opts: PgOptions): Promise<Database> {
  const pool = new pg.Pool({
    // int8 (counts, sums) as numbers rather than strings, for this pool only.
    types: {
      getTypeParser: (oid: number, format?: 'text' | 'binary') =>
        oid === 20 ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format),
    } as pg.CustomTypesConfig,
    connectionString: opts.url,
    max: opts.max ?? 20,
    // Every connection sees only our schema, so the same SQL runs in any schema.
    options: opts.schema ? `-c search_path=${quoteIdent(opts.schema)}` : undefined,
  });
  // An idle client losing its connection (server restart) must not crash the process.
  pool.on('error', () => {});
  if (opts.schema) {
    try {
      await pool.query(`create schema if not exists ${quoteIdent(opts.schema)}`);
    } catch (err) {
      // Concurrent openers race inside CREATE SCHEMA IF NOT EXISTS: the loser gets a unique
      // violation although the schema now exists, which is all we asked for.
      const code = (err as { code?: string }).code;
      if (code !== '23505' && code !== '42P06') {
        await pool.end().catch(() => {});
        throw err;
      }
    }
  }

  const query = async <R>(sql: string, params?: unknown[]): Promise<QueryResult<R>> => {
    const res = await pool.query(sql, params as unknown[]);
    return { rows: res.rows as R[], rowCount: res.rowCount ?? 0 };
  };

  return {
    kind: 'postgres',
    query,
    async exec(sql) {
      await pool.query(sql);
    },
    async withTransaction(fn) {
      const client = await pool.connect();
      const tx: Queryable = {
        async query<R>(sql: string, params?: unknown[]) {
          const res = await client.query(sql, params as unknown[]);
          return { rows: res.rows as R[], rowCount: res.rowCount ?? 0 };
        },
        async exec(sql) {
          await client.query(sql);
        },
      };
      let broken = false;
      try {
        await client.query('begin');
        const result = await fn(tx);
        await client.query('commit');
        return result;
      } catch (err) {
        try {
          await client.query('rollback');
        } catch {
          broken = true;
        }
        throw err;
      } finally {
        client.release(broken);
      }
    },
    async listen(channel, onPayload) {
      const client = await pool.connect();
      const handler = (msg: pg.Notification) => {
        if (msg.channel === channel && msg.payload !== undefined) onPayload(msg.payload);
      };
      client.on('notification', handler);
      await client.query(`listen ${quoteIdent(channel)}`);
      return async () => {
        client.off('notification', handler);
        try {
          await client.query(`unlisten ${quoteIdent(channel)}`);
          client.release();
        } catch {
          client.release(true);
        }
      };
    },
    async close() {
      await pool.end();
    },
  };
}
