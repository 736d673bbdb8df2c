import { MigrationError } from '../core/errors.js';
import { type Migration, MIGRATIONS } from '../generated/migrations.js';
import type { Database } from './database.js';

/** One numbered file of migrations/, as compiled into src/generated/migrations.ts by `npm run generate`. */
export type { Migration };
export { MIGRATIONS };

export interface MigrateResult {
  applied: string[];
  current: string | null;
}

/**
 * Applies pending migrations in order, in one transaction, under an advisory lock so
 * that concurrent openers (many servers, many test workers) migrate once. Refuses a
 * database that has migrations this code does not know.
 */
export async function migrate(db: Database, migrations: readonly Migration[] = MIGRATIONS): Promise<MigrateResult> {
  return db.withTransaction(async (tx) => {
    // Must come first so that a concurrent migrator waits here and then sees our work.
    await tx.query(`select pg_advisory_xact_lock(hashtext(current_schema() || '.runledger.migrate'))`);
    await tx.query(`create table if not exists runledger_migrations (
      id integer primary key, name text not null, applied_at timestamptz not null default now())`);
    const { rows } = await tx.query<{ id: number; name: string }>(`select id, name from runledger_migrations order by id`);
    const known = new Map(migrations.map((m) => [m.id, m]));
    const unknown = rows.filter((r) => !known.has(r.id));
    if (unknown.length) {
      throw new MigrationError(
        `the database has migration ${unknown.map((r) => r.name).join(', ')} which this version of runledger does not know ` +
          `(it knows up to ${migrations.at(-1)?.name ?? 'none'}); upgrade runledger`,
      );
    }
    for (const r of rows) {
      if (known.get(r.id)!.name !== r.name) {
        throw new MigrationError(`migration ${r.id} is ${r.name} in the database but ${known.get(r.id)!.name} in this code`);
      }
    }
    const done = new Set(rows.map((r) => r.id));
    const applied: string[] = [];
    for (const m of migrations) {
      if (done.has(m.id)) continue;
      await tx.exec(m.sql);
      await tx.query(`insert into runledger_migrations (id, name) values ($1, $2)`, [m.id, m.name]);
      applied.push(m.name);
    }
    return { applied, current: migrations.at(-1)?.name ?? null };
  });
}

/**
 * True when every migration is applied, read without writing: an embedded store below its
 * free-space reserve refuses migrate()'s transaction but must still open for reads.
 */
export async function isMigrated(db: Database, migrations: readonly Migration[] = MIGRATIONS): Promise<boolean> {
  try {
    const { rows } = await db.query<{ id: number; name: string }>(`select id, name from runledger_migrations order by id`);
    return rows.length === migrations.length && rows.every((r, i) => r.id === migrations[i].id && r.name === migrations[i].name);
  } catch {
    return false;
  }
}
