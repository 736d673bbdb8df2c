/**
 * runImport: streams rows from a file, stdin, a legacy PostgreSQL table or plain values,
 * maps them to import records, and sends them to `ledger.importRuns` one chunk at a time.
 * Each chunk is one short transaction (in process) or one `POST /v1/imports` (through a
 * server): the same code path either way. Nothing is held in memory beyond one chunk
 * (and, for a dry run, the sourceIds it would insert).
 */
import { LedgerError, ValidationError } from '../core/errors.js';
import type { ImportItemResult, ImportOptions, ImportResult, Ledger } from '../core/types.js';
import { importOptionsSchema, LIMITS, parseInput, sourceSchema } from '../core/validation.js';
import { idConflictMessage } from '../ledger/import.js';
import { checkColumns, type ColumnMap, mapRow, parseColumnMap, parseConstants, withConstants } from './mapping.js';
import { checkPostgresOptions, postgresSource, type PostgresSourceOptions } from './postgres.js';
import { checkFile, fileSource, type ImportFormat, type RowSource, type SourceRow, valuesSource } from './readers.js';

/** Where the rows come from. */
export type ImportInput =
  /** A JSONL or CSV file; `-` is stdin. The format comes from the extension unless given. */
  | { file: string; format?: ImportFormat }
  /** A legacy PostgreSQL database, read in keyset chunks. */
  | { postgres: Omit<PostgresSourceOptions, 'pageSize'> }
  /** Values already in memory or from a generator (each is one legacy row). */
  | { records: Iterable<unknown> | AsyncIterable<unknown> }
  /** A ready row source (see readers.ts). */
  | { rows: RowSource };

export interface RunImportOptions extends ImportOptions {
  /** Provenance name recorded on every imported run; with sourceId, the idempotency key. */
  source: string;
  from: ImportInput;
  /** `legacyColumn=field,…` (or parsed); unmapped columns keep their names. */
  map?: string | string[] | ColumnMap;
  /** Constants for fields the rows lack: `['job=compliance-check', 'trigger=owner_test']` or an object. */
  set?: string | string[] | Record<string, string>;
  /** Records per chunk (one transaction), 1–1000; default 1000. */
  chunkSize?: number;
  /** Pause between chunks, so that live writers get the database (default 0). */
  sleepMs?: number;
  /** Stop after the chunk in flight; the report then has `interrupted: true`. */
  signal?: AbortSignal;
  /** Called after every chunk (for a progress bar). */
  onProgress?: (p: ImportProgress) => void;
  /** Called after every chunk has committed (tests use it to look between chunks). */
  onChunk?: (chunk: ChunkInfo) => void | Promise<void>;
}

export interface ImportProgress {
  read: number;
  inserted: number;
  duplicates: number;
  skippedCutover: number;
  invalid: number;
  /** Bytes read of `total` for files, else rows. */
  position: number;
  total?: number;
  unit: 'bytes' | 'rows';
  elapsedMs: number;
}

export interface ChunkInfo {
  index: number;
  records: number;
  ms: number;
  result: ImportResult;
}

export interface InvalidRecord {
  /** 1-based line of the file (row number for PostgreSQL and in-memory values). */
  line: number;
  sourceId: string | null;
  /** PostgreSQL: the key column's value. */
  key?: string;
  code: string;
  message: string;
}

export interface ImportReport {
  source: string;
  /** What was read: a path, `stdin`, a redacted URL, `records`. */
  from: string;
  dryRun: boolean;
  read: number;
  inserted: number;
  duplicates: number;
  skippedCutover: number;
  invalid: number;
  /** Every invalid record, in input order. */
  invalidRecords: InvalidRecord[];
  seconds: number;
  rowsPerSecond: number;
  chunks: number;
  /** The longest chunk, call to result (the transaction is within it). */
  longestChunkMs: number;
  /** Stopped by the signal before the end of the input. */
  interrupted: boolean;
}

/**
 * A fatal error (the database went away, a bad --query): carries the report so far, and the
 * cause's code when the cause is a ledger error (otherwise `internal_error`).
 */
export class ImportFailedError extends LedgerError {
  constructor(
    readonly report: ImportReport,
    cause: unknown,
  ) {
    super(cause instanceof LedgerError ? cause.code : 'internal_error', (cause as Error)?.message ?? String(cause), {
      cause,
      details: cause instanceof LedgerError ? cause.details : [],
    });
  }
}

interface Pending {
  line: number;
  key?: string;
  record: Record<string, unknown>;
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });

/** The batch index a whole-request validation error names (`runs.3.notes`), if any. */
function itemOf(err: LedgerError): number | undefined {
  const field = err.details[0]?.field;
  const m = typeof field === 'string' ? /^runs\.(\d+)(\.|$)/.exec(field) : null;
  return m ? Number(m[1]) : undefined;
}

function openSource(from: ImportInput, chunkSize: number, count: boolean): RowSource {
  if ('file' in from) return fileSource(from.file, from.format);
  if ('postgres' in from) return postgresSource({ ...from.postgres, pageSize: chunkSize, count: from.postgres.count ?? count });
  if ('records' in from) return valuesSource(from.records);
  return from.rows;
}

/**
 * Checks everything about an import that can be checked without reading its input or
 * opening the ledger (the CLI calls it first, so a typo fails at once): throws a
 * ValidationError naming the option.
 */
export function checkImportOptions(opts: RunImportOptions) {
  const chunkSize = opts.chunkSize ?? LIMITS.importBatch;
  if (!Number.isInteger(chunkSize) || chunkSize < 1 || chunkSize > LIMITS.importBatch) {
    throw new ValidationError(`chunkSize must be a whole number 1–${LIMITS.importBatch}; got ${chunkSize}`, [
      { field: 'chunkSize', message: 'out of range' },
    ]);
  }
  const sleepMs = opts.sleepMs ?? 0;
  if (!Number.isFinite(sleepMs) || sleepMs < 0) {
    throw new ValidationError(`sleepMs must be 0 or more; got ${sleepMs}`, [{ field: 'sleepMs', message: 'out of range' }]);
  }
  parseInput(sourceSchema, opts.source, 'source');
  if (opts.cutover !== undefined && opts.cutover !== 'auto' && opts.cutover !== 'none' && !isoTimeLike(opts.cutover)) {
    throw new ValidationError(
      `cutover must be auto, none or an ISO 8601 time such as 2026-01-31T12:00:00Z; got ${JSON.stringify(opts.cutover)}`,
      [{ field: 'cutover', message: 'not auto, none or a time' }],
    );
  }
  const importOpts: ImportOptions = {
    ...(opts.dryRun !== undefined ? { dryRun: opts.dryRun } : {}),
    ...(opts.cutover !== undefined ? { cutover: opts.cutover } : {}),
    ...(opts.subjectStatus !== undefined ? { subjectStatus: opts.subjectStatus } : {}),
  };
  parseInput(importOptionsSchema, importOpts);
  const map = opts.map instanceof Map ? opts.map : parseColumnMap(opts.map);
  const constants = parseConstants(opts.set);
  if ('file' in opts.from) checkFile(opts.from.file, opts.from.format);
  if ('postgres' in opts.from) checkPostgresOptions(opts.from.postgres);
  return { chunkSize, sleepMs, map, constants, importOpts };
}

const isoTimeLike = (s: string) => /^\d{4}-\d\d-\d\d/.test(s) && !Number.isNaN(Date.parse(s));

/** A row that could not become a record: read or mapped wrong. */
interface Unreadable {
  line: number;
  key?: string;
  error: string;
  code: string;
  sourceId: string | null;
}

type Row = Pending | Unreadable;

function emptyReport(opts: RunImportOptions, from: string): ImportReport {
  return {
    source: opts.source,
    from,
    dryRun: opts.dryRun === true,
    read: 0,
    inserted: 0,
    duplicates: 0,
    skippedCutover: 0,
    invalid: 0,
    invalidRecords: [],
    seconds: 0,
    rowsPerSecond: 0,
    chunks: 0,
    longestChunkMs: 0,
    interrupted: false,
  };
}

/** Maps one source row to an import record, or to why it cannot be one. */
function toRow(row: SourceRow, map: ColumnMap, constants: Record<string, unknown> | null, typed: boolean): Row {
  const at = { line: row.line, ...(row.key !== undefined ? { key: row.key } : {}) };
  if (row.error !== undefined || !row.value) return { ...at, error: row.error ?? 'empty row', code: 'validation_failed', sourceId: null };
  let record: Record<string, unknown>;
  try {
    record = mapRow(map, row.value, typed);
    if (constants) withConstants(record, constants);
  } catch (err) {
    if (!(err instanceof LedgerError)) throw err;
    const sid = row.value[[...map].find(([, t]) => t === 'sourceId')?.[0] ?? 'sourceId'];
    return { ...at, error: err.message, code: err.code, sourceId: sid === undefined || sid === null ? null : String(sid) };
  }
  return { ...at, record };
}

/**
 * One importRuns call. Through a server, a refusal of the whole request is narrowed
 * down to the records that caused it, so that they alone are invalid: a body over the
 * server's limit is split in halves, and a request refused for one item's content
 * (`runs.3.notes: …`) is sent again without that item.
 */
async function sendChunk(
  ledger: Ledger,
  source: string,
  importOpts: ImportOptions,
  records: Record<string, unknown>[],
): Promise<ImportItemResult[]> {
  const send = (part: Record<string, unknown>[]) => sendChunk(ledger, source, importOpts, part);
  const invalidItem = (i: number, code: string, message: string): ImportItemResult => {
    const sid = records[i]?.sourceId;
    return { index: i, sourceId: typeof sid === 'string' ? sid : null, status: 'invalid', error: { code, message } };
  };
  for (let attempt = 0; ; attempt++) {
    try {
      return (await ledger.importRuns(source, records, importOpts)).results;
    } catch (err) {
      if (!(err instanceof LedgerError)) throw err;
      if (err.code === 'payload_too_large') {
        if (records.length === 1) return [invalidItem(0, err.code, `the record is larger than the server accepts: ${err.message}`)];
        const half = Math.ceil(records.length / 2);
        const a = await send(records.slice(0, half));
        const b = await send(records.slice(half));
        return [...a, ...b.map((r) => ({ ...r, index: r.index + half }))];
      }
      const item = err.code === 'validation_failed' ? itemOf(err) : undefined;
      if (item !== undefined && item < records.length) {
        const rest = await send(records.filter((_, i) => i !== item));
        const shifted = rest.map((r) => (r.index >= item ? { ...r, index: r.index + 1 } : r));
        shifted.splice(item, 0, invalidItem(item, err.code, err.message.replace(/^(the key )?runs\.\d+\./, '$1')));
        return shifted;
      }
      if (err.code === 'rate_limited' && attempt < 6) {
        await sleep(250 * 2 ** attempt);
        continue;
      }
      throw err;
    }
  }
}

/**
 * A dry run writes nothing, so the database cannot tell it that a later chunk repeats
 * an earlier one: this remembers what it would have inserted and corrects each result.
 */
function dryRunMemory(source: string) {
  const dryInserted = new Map<string, string>();
  const dryIds = new Set<string>();
  return (r: ImportItemResult): ImportItemResult => {
    if (r.status !== 'inserted') return r;
    const prior = r.sourceId !== null ? dryInserted.get(r.sourceId) : undefined;
    if (prior !== undefined) return { ...r, status: 'duplicate', runId: prior };
    if (r.runId !== undefined && dryIds.has(r.runId))
      return { ...r, status: 'invalid', error: { code: 'id_conflict', message: idConflictMessage(r.runId, r.sourceId ?? '', source) } };
    if (r.sourceId !== null) dryInserted.set(r.sourceId, r.runId ?? '');
    if (r.runId !== undefined) dryIds.add(r.runId);
    return r;
  };
}

/** Counts a chunk's rows into the report: its results in order, and the rows that never became records. */
function foldChunk(
  report: ImportReport,
  rows: Row[],
  results: ImportItemResult[],
  dryRun: ((r: ImportItemResult) => ImportItemResult) | null,
): void {
  const invalid = (row: { line: number; key?: string }, sourceId: string | null, code: string, message: string) => {
    report.invalid++;
    const entry: InvalidRecord = { line: row.line, sourceId, code, message };
    if (row.key !== undefined) entry.key = row.key;
    report.invalidRecords.push(entry);
  };
  let i = 0;
  for (const row of rows) {
    report.read++;
    if (!('record' in row)) {
      invalid(row, row.sourceId, row.code, row.error);
      continue;
    }
    const r = dryRun ? dryRun(results[i++]) : results[i++];
    if (r.status === 'inserted') report.inserted++;
    else if (r.status === 'duplicate') report.duplicates++;
    else if (r.status === 'skipped_cutover') report.skippedCutover++;
    else invalid(row, r.sourceId, r.error?.code ?? 'validation_failed', r.error?.message ?? 'invalid');
  }
}

function progressOf(report: ImportReport, src: RowSource, started: number): ImportProgress {
  return {
    read: report.read,
    inserted: report.inserted,
    duplicates: report.duplicates,
    skippedCutover: report.skippedCutover,
    invalid: report.invalid,
    position: src.unit === 'bytes' ? src.position() : report.read,
    ...(src.total !== undefined ? { total: src.total } : {}),
    unit: src.unit,
    elapsedMs: performance.now() - started,
  };
}

/** A chunk's results counted, as importRuns reports them. */
function tally(results: ImportItemResult[]): ImportResult {
  const chunkResult: ImportResult = { results, inserted: 0, duplicates: 0, skippedCutover: 0, invalid: 0 };
  for (const r of results) {
    if (r.status === 'inserted') chunkResult.inserted++;
    else if (r.status === 'duplicate') chunkResult.duplicates++;
    else if (r.status === 'skipped_cutover') chunkResult.skippedCutover++;
    else chunkResult.invalid++;
  }
  return chunkResult;
}

/**
 * Imports everything `from` holds, chunk by chunk, and reports what happened.
 * Throws ValidationError before writing anything when the options or the columns are
 * wrong; throws ImportFailedError (with the report so far) on a fatal error mid-way.
 * @example
 * const report = await runImport(ledger, {
 *   source: 'agent_test_history',
 *   from: { file: 'history.csv' },
 *   map: 'id=sourceId,agent_url=subject,tested_at=startedAt,score=statistics.score',
 *   chunkSize: 500,
 *   sleepMs: 50,
 * });
 * console.log(report.inserted, report.duplicates, report.invalidRecords);
 */
export async function runImport(ledger: Ledger, opts: RunImportOptions): Promise<ImportReport> {
  const { chunkSize, sleepMs, map, constants, importOpts } = checkImportOptions(opts);
  const extra = Object.keys(constants).length > 0 ? constants : null;
  const src = openSource(opts.from, chunkSize, opts.onProgress !== undefined);
  const started = performance.now();
  const report = emptyReport(opts, src.name);
  const dryRun = opts.dryRun ? dryRunMemory(opts.source) : null;
  // Stopped by the signal with input left unread.
  let stopped = false;

  const progress = () => opts.onProgress?.(progressOf(report, src, started));

  /** Sends one chunk and folds its results (and the rows that failed to read or map) into the report. */
  const flush = async (rows: Row[]) => {
    if (report.chunks > 0 && sleepMs > 0) {
      await sleep(sleepMs, opts.signal);
      // Stopped while pausing: this chunk was not in flight yet, so it is not sent.
      if (opts.signal?.aborted) {
        stopped = true;
        return;
      }
    }
    const pending = rows.filter((r): r is Pending => 'record' in r);
    const t0 = performance.now();
    const results = pending.length
      ? await sendChunk(
          ledger,
          opts.source,
          importOpts,
          pending.map((p) => p.record),
        )
      : [];
    const ms = performance.now() - t0;
    report.chunks++;
    report.longestChunkMs = Math.max(report.longestChunkMs, Math.round(ms));
    foldChunk(report, rows, results, dryRun);
    progress();
    await opts.onChunk?.({ index: report.chunks - 1, records: pending.length, ms, result: tally(results) });
  };

  let buffer: Row[] = [];
  let inflight: Promise<void> | null = null;
  let fatal: { err: unknown } | null = null;
  // The next chunk is read and mapped while the previous one is in the database.
  const dispatch = async () => {
    const rows = buffer;
    buffer = [];
    if (inflight) await inflight;
    if (fatal) return;
    if (opts.signal?.aborted) {
      stopped = true;
      return;
    }
    inflight = flush(rows).catch((err) => {
      fatal = { err };
    });
  };

  let columnsChecked = false;
  try {
    for await (const row of src.rows() as AsyncIterable<SourceRow>) {
      if (fatal) break;
      if (opts.signal?.aborted) {
        stopped = true;
        break;
      }
      if (!columnsChecked && src.columns) {
        checkColumns(map, src.columns, Object.keys(constants));
        columnsChecked = true;
      }
      buffer.push(toRow(row, map, extra, src.typed));
      // Rows that failed to read count too, so that a chunk never grows without bound.
      if (buffer.length >= chunkSize) await dispatch();
    }
    if (!fatal && !stopped && buffer.length) await dispatch();
    if (inflight) await inflight;
  } catch (err) {
    if (inflight) await inflight;
    // Nothing written yet and the input itself is wrong: a plain validation error.
    if (report.chunks === 0 && err instanceof LedgerError) throw err;
    fatal ??= { err };
  } finally {
    await src.close().catch(() => {});
  }
  report.interrupted = stopped && !fatal;
  report.seconds = Math.round(performance.now() - started) / 1000;
  report.rowsPerSecond = report.seconds > 0 ? Math.round(report.read / report.seconds) : report.read;
  report.invalidRecords.sort((a, b) => a.line - b.line);
  if (fatal) throw new ImportFailedError(report, (fatal as { err: unknown }).err);
  return report;
}
