/**
 * Statements on the PostgreSQL server itself (create or drop a database), for tests and
 * benchmarks alike: no test framework here, so bench/ can import it too.
 */
import pg from 'pg';

/** Runs `sql` on its own connection to `url`: CREATE/DROP DATABASE refuse to run inside a transaction or a pooled session. */
export async function adminQuery(url: string, sql: string): Promise<void> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

/** `url` pointing at database `name` instead. */
export function withDatabase(url: string, name: string): string {
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
}
