/**
 * A plain-text dump of the migrated schema, read from the catalog: tables with their columns
 * and storage options, constraints, indexes, triggers and functions, each sorted by name.
 * The committed copy (test/schema.sql) is compared with a fresh migration on both backends,
 * so every schema change shows up in review as a diff of that file.
 * Regenerate with `npm run generate`.
 */
import type { Database } from '../../src/store/database.js';

interface Row {
  line: string;
}

export async function dumpSchema(db: Database): Promise<string> {
  const { rows: s } = await db.query<{ schema: string }>(`select current_schema() as schema`);
  const schema = s[0].schema;
  const lines = async (sql: string) => (await db.query<Row>(sql, [schema])).rows.map((r) => r.line);

  const tables = await db.query<{ name: string; options: string | null }>(
    `select c.relname as name, array_to_string(c.reloptions, ', ') as options
       from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = $1 and c.relkind in ('r', 'p') order by c.relname`,
    [schema],
  );
  const out: string[] = [];
  for (const t of tables.rows) {
    const columns = await db.query<Row>(
      `select format('  %I %s%s%s', a.attname, format_type(a.atttypid, a.atttypmod),
                     case when a.attnotnull then ' not null' else '' end,
                     coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '')) as line
         from pg_attribute a
         join pg_class c on c.oid = a.attrelid join pg_namespace n on n.oid = c.relnamespace
         left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
        where n.nspname = $1 and c.relname = $2 and a.attnum > 0 and not a.attisdropped
        order by a.attnum`,
      [schema, t.name],
    );
    out.push(`table ${t.name}${t.options ? ` with (${t.options})` : ''}`, ...columns.rows.map((r) => r.line), '');
  }
  out.push(
    '-- constraints',
    ...(await lines(
      `select format('%s.%s: %s', c.relname, k.conname, pg_get_constraintdef(k.oid)) as line
         from pg_constraint k join pg_class c on c.oid = k.conrelid join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = $1 and k.contype <> 'n' -- PostgreSQL 18 lists NOT NULL here too; the columns show it
        order by c.relname, k.conname`,
    )),
    '',
    '-- indexes',
    ...(await lines(
      `select pg_get_indexdef(i.indexrelid) as line
         from pg_index i join pg_class c on c.oid = i.indexrelid join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = $1 order by c.relname`,
    )),
    '',
    '-- triggers',
    ...(await lines(
      `select pg_get_triggerdef(t.oid) as line
         from pg_trigger t join pg_class c on c.oid = t.tgrelid join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = $1 and not t.tgisinternal order by c.relname, t.tgname`,
    )),
    '',
    '-- functions',
    ...(await lines(
      `select pg_get_functiondef(p.oid) as line
         from pg_proc p join pg_namespace n on n.oid = p.pronamespace
        where n.nspname = $1 order by p.proname, pg_get_function_identity_arguments(p.oid)`,
    )),
  );
  // Schema-qualified names differ per database (each test ledger has its own schema).
  return out.join('\n').split(`${schema}.`).join('').trimEnd() + '\n';
}
