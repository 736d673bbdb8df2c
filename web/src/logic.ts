/**
 * The dashboard's pure rules, kept free of React and of the browser so that the tests can
 * run them directly (test/web/logic.test.ts).
 */
import type { Json, Run, RunPage } from '../../src/core/types.js';

/** Keyset order of the runs list: newest first by (createdAt, id). */
export const isNewer = (a: Pick<Run, 'createdAt' | 'id'>, b: Pick<Run, 'createdAt' | 'id'>) =>
  a.createdAt === b.createdAt ? a.id > b.id : a.createdAt > b.createdAt;

/**
 * Folds a fresh first page into the rows shown. Rows newer than the page's last row that are
 * not in it no longer match the filters and go; older rows (from "load more") stay, and so does
 * the cursor that continues after them.
 */
export function mergeFirstPage(shown: Run[], cursor: string | null, fresh: RunPage): { runs: Run[]; cursor: string | null } {
  if (fresh.nextCursor === null || !fresh.runs.length) return { runs: fresh.runs, cursor: fresh.nextCursor };
  const last = fresh.runs[fresh.runs.length - 1]!;
  const ids = new Set(fresh.runs.map((r) => r.id));
  const older = shown.filter((r) => !ids.has(r.id) && isNewer(last, r));
  return { runs: [...fresh.runs, ...older], cursor: older.length ? cursor : fresh.nextCursor };
}

/** `{ a: { b: 1 }, c: [2] }` → `a.b = 1`, `c.0 = 2` (empty objects and arrays are leaves). */
export function flatten(value: Json | null | undefined, prefix = '', out = new Map<string, Json>()): Map<string, Json> {
  // No payload at all (output null) has no fields, rather than one null field.
  if (value === undefined || (value === null && !prefix)) return out;
  if (value !== null && typeof value === 'object') {
    const entries = Array.isArray(value) ? value.map((v, i) => [String(i), v] as const) : Object.entries(value);
    if (entries.length) {
      for (const [k, v] of entries) flatten(v, prefix ? `${prefix}.${k}` : k, out);
      return out;
    }
  }
  out.set(prefix || '(value)', value);
  return out;
}

export interface DiffRow {
  path: string;
  /** One per run; undefined where the run has no such field. */
  values: (Json | undefined)[];
}

/** The fields whose values are not the same in every run, and how many are. */
export function diffFields(values: (Json | null | undefined)[]): { rows: DiffRow[]; same: number } {
  const flat = values.map((v) => flatten(v));
  const paths = [...new Set(flat.flatMap((f) => [...f.keys()]))].sort();
  const rows: DiffRow[] = [];
  let same = 0;
  for (const path of paths) {
    const vals = flat.map((f) => f.get(path));
    const keys = vals.map((v) => (v === undefined ? '\u0000absent' : JSON.stringify(v)));
    if (keys.every((k) => k === keys[0])) same++;
    else rows.push({ path, values: vals });
  }
  return { rows, same };
}

/** `owner_test` → `OT`, `heartbeat` → `H`: the letters on a subject's run strip. */
export function triggerAbbrev(trigger: string | null): string {
  if (!trigger) return '·';
  const words = trigger.split(/[_\-\s.]+/).filter(Boolean);
  return words
    .slice(0, 2)
    .map((w) => w[0]!.toUpperCase())
    .join('');
}
