/**
 * `--from-postgres DSN --query SQL --key COLUMN`: reads a legacy table from another
 * PostgreSQL database in keyset chunks on COLUMN — never one huge query, never an open
 * cursor or a long transaction on the legacy database:
 *
 *   select * from (<query>) q where q.<key> > $1 order by q.<key> limit $2
 *
 * COLUMN must be unique among the query's rows (a primary key): keyset paging skips
 * rows whose key equals the last key of the previous chunk.
 */
import pg from 'pg';

import { ConfigurationError, ValidationError } from '../core/errors.js';
import { redactUrl } from '../store/pg.js';
import type { RowSource } from './readers.js';

export interface PostgresSourceOptions {
  /** Connection string of the legacy database. */
  url: string;
  /** Any SELECT; it is wrapped, so it must not end with `;` or carry its own ORDER BY/LIMIT for paging. */
  query: string;
  /** The unique column to page on. */
  key: string;
  /** Rows per round trip (default 1000). */
  pageSize?: number;
  /** Count the rows first (`select count(*)`), for a progress bar with an ETA. */
  count?: boolean;
}

const KEY_ALIAS = '__runledger_key';

function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

// Values keep their database text where JavaScript would lose or shift them: times
// (a `timestamp` without zone must not be read in this machine's zone, and microseconds
// must survive for the key), int8 and numeric (beyond 2^53). The mapping converts them.
const TEXT_TYPES = new Set([
  1114, // timestamp
  1184, // timestamptz
  1082, // date
  20, // int8
  1700, // numeric
]);
const types = {
  getTypeParser: (oid: number, format?: 'text' | 'binary') =>
    TEXT_TYPES.has(oid) ? (v: string) => v : pg.types.getTypeParser(oid, format),
} as pg.CustomTypesConfig;

/** Checks the options without connecting; returns the query without a trailing `;`. */
export function checkPostgresOptions(opts: Pick<PostgresSourceOptions, 'url' | 'query' | 'key'>): string {
  const query = opts.query.trim().replace(/;\s*$/, '');
  if (!query) throw new ValidationError('--query must be a SELECT statement; got nothing', [{ field: 'query', message: 'empty' }]);
  if (!opts.key) throw new ValidationError('--key must name the unique column to page on', [{ field: 'key', message: 'empty' }]);
  if (!/^postgres(ql)?:\/\//.test(opts.url)) {
    throw new ConfigurationError(
      `--from-postgres must be a URL starting with postgres:// or postgresql://; got ${JSON.stringify(redactUrl(opts.url))}`,
    );
  }
  return query;
}

export function postgresSource(opts: PostgresSourceOptions): RowSource {
  const query = checkPostgresOptions(opts);
  const pageSize = opts.pageSize ?? 1000;
  const key = quoteIdent(opts.key);
  const first = `select q.*, q.${key}::text as ${KEY_ALIAS} from (${query}) q order by q.${key} limit $1`;
  const next = `select q.*, q.${key}::text as ${KEY_ALIAS} from (${query}) q where q.${key} > $2 order by q.${key} limit $1`;
  const name = redactUrl(opts.url);
  let client: pg.Client | undefined;
  let n = 0;

  const connect = async (): Promise<pg.Client> => {
    if (client) return client;
    const c = new pg.Client({ connectionString: opts.url, types, application_name: 'runledger import' });
    try {
      await c.connect();
    } catch (err) {
      throw new ConfigurationError(`cannot connect to the legacy PostgreSQL at ${name}: ${(err as Error).message}`, err);
    }
    c.on('error', () => {});
    client = c;
    return c;
  };
  const run = async (sql: string, params: unknown[]) => {
    const c = await connect();
    try {
      return await c.query(sql, params);
    } catch (err) {
      const e = err as Error & { code?: string };
      // A mistake in --query or --key (syntax, unknown column or table), not a fault of ours.
      if (e.code && /^(42|22)/.test(e.code)) {
        throw new ValidationError(
          `--query/--key failed on the legacy database: ${e.message}`,
          [{ field: 'query', message: e.message }],
          err,
        );
      }
      throw err;
    }
  };

  const source: RowSource = {
    name,
    typed: false,
    unit: 'rows',
    position: () => n,
    async *rows() {
      try {
        if (opts.count) {
          const { rows } = await run(`select count(*) as n from (${query}) q`, []);
          source.total = Number(rows[0].n);
        }
        let last: string | null = null;
        for (;;) {
          const res = await run(last === null ? first : next, last === null ? [pageSize] : [pageSize, last]);
          if (!source.columns) {
            const cols = res.fields.map((f) => f.name).filter((c) => c !== KEY_ALIAS);
            source.columns = cols;
            if (!cols.includes(opts.key)) {
              throw new ValidationError(`--key ${opts.key} is not a column of the query; its columns are ${cols.join(', ')}`, [
                { field: 'key', message: 'not a column' },
              ]);
            }
          }
          for (const row of res.rows as Record<string, unknown>[]) {
            n++;
            const keyText = row[KEY_ALIAS] as string | null;
            delete row[KEY_ALIAS];
            if (keyText === null) {
              throw new ValidationError(`--key ${opts.key} is null in row ${n}; the key column must be unique and not null`, [
                { field: 'key', message: 'null key' },
              ]);
            }
            yield { line: n, value: row, key: keyText };
            last = keyText;
          }
          if (res.rows.length < pageSize) return;
        }
      } finally {
        await source.close();
      }
    },
    async close() {
      const c = client;
      client = undefined;
      await c?.end().catch(() => {});
    },
  };
  return source;
}
