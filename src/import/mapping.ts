/**
 * From a legacy row to an import record: `--map legacyColumn=field,…` renames columns
 * (dotted targets such as `params.x`, `statistics.rows`, `externalIds.temporal.workflowId`
 * fill one key of an object field), and values are converted to the field's type.
 *
 * JSONL values are taken as they are (a numeric sourceId, id or parentId becomes a
 * string). CSV cells and PostgreSQL text columns are strings, so they are converted:
 * an empty cell is absent; params, statistics, tags, externalIds, error and events are
 * parsed as JSON; output and the values of `params.*`, `statistics.*`, `output.*` and
 * `error.details` are parsed when they are JSON (`42`, `true`, `{"a":1}`) and stay
 * strings otherwise; times stay strings (read as UTC when they carry no offset).
 */
import { ValidationError } from '../core/errors.js';
import { jsonTextProblem } from '../core/strict-json.js';

/** The top-level fields of an import record. */
export const RECORD_FIELDS = [
  'sourceId',
  'id',
  'job',
  'subject',
  'trigger',
  'actor',
  'parentId',
  'status',
  'createdAt',
  'startedAt',
  'finishedAt',
  'params',
  'tags',
  'notes',
  'output',
  'statistics',
  'error',
  'externalIds',
  'events',
] as const;
type RecordField = (typeof RECORD_FIELDS)[number];

const FIELD_SET = new Set<string>(RECORD_FIELDS);
/** Object fields whose keys a dotted target may fill. */
const DOTTED_PREFIXES = new Set(['params', 'statistics', 'output', 'tags', 'externalIds', 'error']);
const ERROR_KEYS = new Set(['type', 'message', 'details', 'stack']);
const ID_FIELDS = new Set(['sourceId', 'id', 'parentId']);
const TIME_FIELDS = new Set(['createdAt', 'startedAt', 'finishedAt']);
const JSON_FIELDS = new Set(['params', 'statistics', 'tags', 'externalIds', 'error', 'events']);

/** Column → target field, or null to drop the column. */
export type ColumnMap = Map<string, string | null>;

/** Whether `target` names a record field (`job`) or one key of an object field (`params.x`). */
export function isValidTarget(target: string): boolean {
  if (FIELD_SET.has(target)) return true;
  const dot = target.indexOf('.');
  if (dot <= 0 || dot === target.length - 1) return false;
  const prefix = target.slice(0, dot);
  if (!DOTTED_PREFIXES.has(prefix)) return false;
  return prefix !== 'error' || ERROR_KEYS.has(target.slice(dot + 1));
}

const TARGET_HELP =
  'a record field (sourceId, id, job, subject, trigger, actor, parentId, status, createdAt, startedAt, finishedAt, params, tags, notes, ' +
  'output, statistics, error, externalIds, events), one key of params/statistics/output/tags/externalIds (params.x), ' +
  'error.type/message/details/stack, or nothing to drop the column';

/**
 * Parses `--map` values: `legacy_id=sourceId,tested_at=startedAt,user_id=` (an empty
 * target drops the column). Throws a ValidationError naming the bad entry.
 * @example
 * parseColumnMap(['id=sourceId,agent_url=subject', 'score=statistics.score'])
 */
export function parseColumnMap(specs: string | string[] | undefined): ColumnMap {
  const map: ColumnMap = new Map();
  for (const spec of Array.isArray(specs) ? specs : specs === undefined ? [] : [specs]) {
    for (const entry of spec.split(',')) {
      if (!entry.trim()) continue;
      const eq = entry.indexOf('=');
      const column = (eq < 0 ? '' : entry.slice(0, eq)).trim();
      const target = (eq < 0 ? '' : entry.slice(eq + 1)).trim();
      if (!column)
        throw new ValidationError(`--map entries must be legacyColumn=field; got ${JSON.stringify(entry)}`, [
          { field: 'map', message: 'bad entry' },
        ]);
      if (target && target !== '-' && !isValidTarget(target)) {
        throw new ValidationError(`--map ${column}=${target}: ${JSON.stringify(target)} is not a target; use ${TARGET_HELP}`, [
          { field: 'map', message: `bad target ${target}` },
        ]);
      }
      if (map.has(column))
        throw new ValidationError(`--map names column ${JSON.stringify(column)} twice`, [{ field: 'map', message: 'repeated column' }]);
      map.set(column, target && target !== '-' ? target : null);
    }
  }
  return map;
}

/** Where a column's value goes: its mapped target, or the column's own name. */
export function targetOf(map: ColumnMap, column: string): string | null {
  return map.has(column) ? map.get(column)! : column;
}

/**
 * For sources with a header (CSV, PostgreSQL): checks every column up front, so that a
 * typo fails once instead of making every row invalid.
 */
export function checkColumns(map: ColumnMap, columns: string[], constantFields: string[] = []): void {
  const seen = new Set<string>();
  for (const c of columns) {
    if (seen.has(c))
      throw new ValidationError(`the input has two columns named ${JSON.stringify(c)}`, [{ field: 'columns', message: 'repeated' }]);
    seen.add(c);
  }
  const missing = [...map.keys()].filter((c) => !seen.has(c));
  if (missing.length) {
    throw new ValidationError(
      `--map names column(s) the input does not have: ${missing.join(', ')}; the columns are ${columns.join(', ')}`,
      [{ field: 'map', message: 'unknown column' }],
    );
  }
  const unknown = columns.filter((c) => {
    const t = targetOf(map, c);
    return t !== null && !isValidTarget(t);
  });
  if (unknown.length) {
    throw new ValidationError(
      `column(s) ${unknown.join(', ')} are not record fields; map each one (--map ${unknown[0]}=params.${unknown[0]}) or drop it (--map ${unknown[0]}=)`,
      [{ field: 'map', message: 'unmapped columns' }],
    );
  }
  const targets = columns.map((c) => targetOf(map, c));
  const dup = targets.find((t, i) => t !== null && targets.indexOf(t) !== i);
  if (dup) throw new ValidationError(`two columns map to ${dup}`, [{ field: 'map', message: 'repeated target' }]);
  if (!targets.includes('sourceId')) {
    throw new ValidationError(`no column maps to sourceId (the legacy row's unique id); add --map <idColumn>=sourceId`, [
      { field: 'map', message: 'sourceId missing' },
    ]);
  }
  if (!targets.includes('job') && !constantFields.includes('job')) {
    throw new ValidationError(`no column maps to job and there is no --set job=<name>; every run needs a job`, [
      { field: 'map', message: 'job missing' },
    ]);
  }
}

/** Parses JSON that looks like JSON; anything else stays a string. */
function maybeJson(s: string): unknown {
  const t = s.trim();
  if (!/^(-?\d|[{["]|true$|false$|null$)/.test(t)) return s;
  try {
    const value: unknown = JSON.parse(t);
    // Text JSON.parse would change (a rounded integer, a duplicate key) stays the exact text.
    return jsonTextProblem(t, 'value') ? s : value;
  } catch {
    return s;
  }
}

function scalarString(v: unknown): unknown {
  if (v instanceof Date) return v.toISOString();
  if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean') return String(v);
  return v;
}

/** Converts one value for `target`; `typed` is true for JSONL (values keep their JSON type). */
function convert(target: string, value: unknown, typed: boolean): unknown {
  if (value instanceof Date) return value.toISOString();
  const dot = target.indexOf('.');
  if (dot > 0) {
    const prefix = target.slice(0, dot);
    const key = target.slice(dot + 1);
    if (prefix === 'tags' || prefix === 'externalIds' || (prefix === 'error' && key !== 'details'))
      return typed ? value : scalarString(value);
    return !typed && typeof value === 'string' ? maybeJson(value) : value;
  }
  if (ID_FIELDS.has(target)) return typeof value === 'number' || typeof value === 'bigint' ? String(value) : value;
  if (TIME_FIELDS.has(target)) return typeof value === 'string' && !typed ? value.trim() : value;
  if (typed) return value;
  if (JSON_FIELDS.has(target) && typeof value === 'string') {
    let parsed: unknown;
    try {
      parsed = JSON.parse(value);
    } catch (err) {
      throw new ValidationError(`${target}: not valid JSON (${(err as Error).message}); got ${JSON.stringify(value.slice(0, 60))}`, [
        { field: target, message: 'not valid JSON' },
      ]);
    }
    const problem = jsonTextProblem(value, target);
    if (problem) throw new ValidationError(problem.message, [problem]);
    return parsed;
  }
  if (target === 'output') return typeof value === 'string' ? maybeJson(value) : value;
  return FIELD_SET.has(target) ? scalarString(value) : value;
}

/**
 * Turns one legacy row into an import record. `typed` (JSONL) keeps JSON types; otherwise
 * strings are converted as described above. Throws a ValidationError for a value that
 * cannot be converted (a params cell that is not JSON).
 */
export function mapRow(map: ColumnMap, row: Record<string, unknown>, typed: boolean): Record<string, unknown> {
  const record: Record<string, unknown> = {};
  const dotted: [string, string, unknown][] = [];
  for (const [column, raw] of Object.entries(row)) {
    const target = targetOf(map, column);
    if (target === null || raw === null || raw === undefined) continue;
    if (!typed && raw === '') continue;
    const dot = target.indexOf('.');
    if (dot > 0 && isValidTarget(target)) {
      dotted.push([target.slice(0, dot), target.slice(dot + 1), convert(target, raw, typed)]);
      continue;
    }
    record[target] = convert(target, raw, typed);
  }
  // Dotted targets fill keys of the object field, after any whole-object column.
  for (const [prefix, key, value] of dotted) {
    const current = record[prefix as RecordField];
    const obj = current !== null && typeof current === 'object' && !Array.isArray(current) ? (current as Record<string, unknown>) : {};
    if (current !== undefined && obj !== current) {
      throw new ValidationError(`${prefix}.${key}: ${prefix} is not an object, so a key cannot be set in it`, [
        { field: `${prefix}.${key}`, message: 'parent is not an object' },
      ]);
    }
    obj[key] = value;
    record[prefix] = obj;
  }
  return record;
}

/**
 * Parses `--set field=value` constants (repeatable; one per flag, so values may hold
 * commas): the same value for every record that lacks the field, e.g. `job=compliance-check`
 * when the legacy table has no job column. Values are converted as CSV cells are.
 * @example
 * parseConstants(['job=compliance-check', 'trigger=owner_test', 'tags.migrated=2026-05'])
 */
export function parseConstants(specs: string | string[] | Record<string, string> | undefined): Record<string, unknown> {
  let entries: [string, string][];
  if (specs === undefined) entries = [];
  else if (typeof specs === 'string' || Array.isArray(specs)) {
    entries = (Array.isArray(specs) ? specs : [specs]).map((spec) => {
      const eq = spec.indexOf('=');
      if (eq <= 0)
        throw new ValidationError(`--set entries must be field=value; got ${JSON.stringify(spec)}`, [
          { field: 'set', message: 'bad entry' },
        ]);
      return [spec.slice(0, eq).trim(), spec.slice(eq + 1)];
    });
  } else entries = Object.entries(specs);
  for (const [target] of entries) {
    if (!isValidTarget(target)) {
      throw new ValidationError(
        `--set ${target}: ${JSON.stringify(target)} is not a field; use ${TARGET_HELP.replace(/, or nothing.*$/, '')}`,
        [{ field: 'set', message: `bad field ${target}` }],
      );
    }
  }
  return mapRow(new Map(), Object.fromEntries(entries), false);
}

/** Fills in the constants a record lacks; object fields (params, tags…) are merged key by key, the record's keys winning. */
export function withConstants(record: Record<string, unknown>, constants: Record<string, unknown>): Record<string, unknown> {
  for (const [k, v] of Object.entries(constants)) {
    const current = record[k];
    if (current === undefined) record[k] = v;
    else if (DOTTED_PREFIXES.has(k) && isPlainObject(current) && isPlainObject(v)) record[k] = { ...v, ...current };
  }
  return record;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}
