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

/**
 * The fields whose values are not the same in every run (`rows`), how many are (`same`),
 * and those identical fields themselves (`identical`, for a "show identical" toggle).
 */
export function diffFields(values: (Json | null | undefined)[]): { rows: DiffRow[]; same: number; identical: DiffRow[] } {
  const flat = values.map((v) => flatten(v));
  const paths = [...new Set(flat.flatMap((f) => [...f.keys()]))].sort();
  const rows: DiffRow[] = [];
  const identical: DiffRow[] = [];
  for (const path of paths) {
    const vals = flat.map((f) => f.get(path));
    const keys = vals.map((v) => (v === undefined ? '\u0000absent' : JSON.stringify(v)));
    (keys.every((k) => k === keys[0]) ? identical : rows).push({ path, values: vals });
  }
  return { rows, same: identical.length, identical };
}

/**
 * A number's change from the first run's: `+12 (+3.4%)`, `−0.5 (−50%)`; null unless both
 * are numbers and they differ. No percentage from zero.
 */
export function numericDelta(base: Json | undefined, value: Json | undefined): string | null {
  if (typeof base !== 'number' || typeof value !== 'number' || base === value) return null;
  const d = value - base;
  const sign = (n: number) => (n > 0 ? '+' : '\u2212');
  // Rounded for reading only: 12 significant digits hide float noise such as 0.30000000000000004.
  const abs = Number(Math.abs(d).toPrecision(12));
  const pct = base === 0 ? '' : ` (${sign(d)}${Number(Math.abs((d / base) * 100).toPrecision(3))}%)`;
  return `${sign(d)}${abs}${pct}`;
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

/** A row of the runs list grouped by parent: the run, how deep it sits, how many children it has on the page. */
export interface TreeRow {
  run: Run;
  depth: number;
  children: number;
}

/**
 * The page as a tree: each run whose parent is also on the page comes right under it (its
 * children in page order, nested), shown only while the parent is in `expanded`. A run whose
 * parent is not on the page (another page, another filter) stays at the top level, where it
 * was. Every run appears at most once, even if parent links were to loop.
 */
export function groupByParent(runs: Run[], expanded: ReadonlySet<string>): TreeRow[] {
  const onPage = new Set(runs.map((r) => r.id));
  const childrenOf = new Map<string, Run[]>();
  for (const r of runs) {
    if (r.parentId && r.parentId !== r.id && onPage.has(r.parentId)) {
      const list = childrenOf.get(r.parentId) ?? [];
      list.push(r);
      childrenOf.set(r.parentId, list);
    }
  }
  const out: TreeRow[] = [];
  const placed = new Set<string>();
  const place = (run: Run, depth: number) => {
    if (placed.has(run.id)) return;
    placed.add(run.id);
    const kids = childrenOf.get(run.id) ?? [];
    out.push({ run, depth, children: kids.length });
    if (expanded.has(run.id)) for (const k of kids) place(k, depth + 1);
  };
  for (const r of runs) if (!(r.parentId && r.parentId !== r.id && onPage.has(r.parentId))) place(r, 0);
  // Runs only reachable through a loop of parent links: shown at the top level rather than lost.
  for (const r of runs) if (!placed.has(r.id) && !isBelowPlaced(r, runs, placed)) place(r, 0);
  return out;
}

/** Whether a run is hidden under a collapsed ancestor that is shown (rather than cut off by a loop). */
function isBelowPlaced(run: Run, runs: Run[], placed: ReadonlySet<string>): boolean {
  const byId = new Map(runs.map((r) => [r.id, r]));
  const seen = new Set<string>();
  for (let p = run.parentId; p && byId.has(p) && !seen.has(p); p = byId.get(p)!.parentId) {
    if (placed.has(p)) return true;
    seen.add(p);
  }
  return false;
}
