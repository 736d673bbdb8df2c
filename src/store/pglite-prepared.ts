/**
 * Named prepared statements on PGlite. PGlite's `query()` parses, analyses and plans its
 * SQL on every call (an unnamed statement), which for the ledger's one-statement CTEs is
 * most of the cost of a write in WASM. Here a statement marked with `prepared()` is
 * parsed once per instance with the wire protocol and then only bound and executed:
 * parameters are serialized and results parsed with the instance's own type handlers,
 * exactly as `query()` does.
 */
import { type PGlite, protocol, types } from '@electric-sql/pglite';

import type { QueryResult } from './database.js';

interface Statement {
  name: string;
  paramTypes: number[];
  fields: { name: string; dataTypeID: number }[];
}

type Message = { name: string } & Record<string, unknown>;

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

const { serialize } = protocol;

/** Runs prepared statements on one PGlite instance; the caller holds PGlite's locks. */
export function preparedRunner(db: PGlite) {
  const statements = new Map<string, Statement>();

  async function prepare(sql: string): Promise<Statement> {
    const name = `rl_${statements.size + 1}`;
    const { messages } = await db.execProtocol(
      concat([serialize.parse({ name, text: sql }), serialize.describe({ type: 'S', name }), serialize.sync()]),
      { syncToFs: false },
    );
    const params = (messages as Message[]).find((m) => m.name === 'parameterDescription') as { dataTypeIDs: number[] } | undefined;
    const rows = (messages as Message[]).find((m) => m.name === 'rowDescription') as
      { fields: { name: string; dataTypeID: number }[] } | undefined;
    const statement = {
      name,
      paramTypes: params?.dataTypeIDs ?? [],
      fields: (rows?.fields ?? []).map((f) => ({ name: f.name, dataTypeID: f.dataTypeID })),
    };
    statements.set(sql, statement);
    return statement;
  }

  /** Binds and executes `sql` (preparing it on first use); `syncToFs` outside a transaction, as query() does. */
  return async function run<R>(sql: string, params: unknown[] = [], syncToFs: boolean): Promise<QueryResult<R>> {
    const st = statements.get(sql) ?? (await prepare(sql));
    const values = params.map((v, i) => {
      if (v === null || v === undefined) return null;
      const serializer = db.serializers[st.paramTypes[i]];
      return serializer ? serializer(v) : String(v);
    });
    const { messages } = await db.execProtocol(
      concat([serialize.bind({ statement: st.name, values }), serialize.execute({}), serialize.sync()]),
      { syncToFs },
    );
    const rows: R[] = [];
    let rowCount: number | undefined;
    for (const m of messages as Message[]) {
      if (m.name === 'dataRow') {
        const cells = (m as unknown as { fields: (string | null)[] }).fields;
        const row: Record<string, unknown> = {};
        st.fields.forEach((f, i) => (row[f.name] = types.parseType(cells[i], f.dataTypeID, db.parsers)));
        rows.push(row as R);
      } else if (m.name === 'commandComplete') {
        const [command, ...counts] = String((m as unknown as { text: string }).text).split(' ');
        if (['INSERT', 'UPDATE', 'DELETE', 'MERGE'].includes(command)) rowCount = Number(counts.at(-1));
      }
    }
    return { rows, rowCount: rowCount ?? rows.length };
  };
}
