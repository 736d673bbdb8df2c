/**
 * Streaming readers: rows come out one at a time, with their line number, and the file
 * is never held in memory. JSONL is read line by line; CSV with csv-parse, the first
 * row naming the columns. `-` reads stdin.
 */
import { accessSync, constants, createReadStream, statSync } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';

import { parse as parseCsv } from 'csv-parse';

import { ValidationError } from '../core/errors.js';
import { jsonTextProblem } from '../core/strict-json.js';

export type ImportFormat = 'jsonl' | 'csv';

/** One row of input: a value to map, or the reason it could not be read. */
export interface SourceRow {
  /** 1-based line in the file (the record's last line for a multi-line CSV record), or row number for PostgreSQL. */
  line: number;
  value?: Record<string, unknown>;
  error?: string;
  /** PostgreSQL: the key column's value, to find the row again. */
  key?: string;
}

/** A stream of rows plus what a progress bar needs. */
export interface RowSource {
  /** What is read (a path, `stdin`, a redacted DSN). */
  readonly name: string;
  /** `typed`: values carry JSON types (JSONL); otherwise they are strings to convert. */
  readonly typed: boolean;
  /** Column names, when the source has them (CSV header, query columns); set before the first row. */
  columns?: string[];
  /** Progress: `unit` done so far out of `total` (unknown for stdin). */
  readonly unit: 'bytes' | 'rows';
  total?: number;
  position(): number;
  rows(): AsyncIterable<SourceRow>;
  /** Releases the file or connection (also done when iteration ends). */
  close(): Promise<void>;
}

/** `legacy.jsonl` → jsonl, `export.csv` → csv; anything else needs --format. */
export function formatFromName(path: string): ImportFormat | undefined {
  const lower = path.toLowerCase().replace(/\.gz$/, '');
  if (/\.(jsonl|ndjson|json)$/.test(lower)) return 'jsonl';
  if (/\.(csv|tsv)$/.test(lower)) return 'csv';
  return undefined;
}

interface Opened {
  stream: Readable;
  name: string;
  size?: number;
  position: () => number;
  destroy: () => void;
}

/** Throws a ValidationError unless `path` (or `-`) can be read in a known format; returns its size and format. */
export function checkFile(path: string, format?: ImportFormat): { size?: number; format: ImportFormat } {
  const fmt = format ?? (path === '-' ? undefined : formatFromName(path));
  if (!fmt) {
    throw new ValidationError(
      `cannot tell the format of ${path === '-' ? 'stdin' : path} from its name; give --format jsonl or --format csv`,
      [{ field: 'format', message: 'unknown' }],
    );
  }
  if (path === '-') return { format: fmt };
  try {
    const st = statSync(path);
    if (st.isDirectory()) throw new Error('it is a directory');
    accessSync(path, constants.R_OK);
    return { size: st.size, format: fmt };
  } catch (err) {
    throw new ValidationError(`cannot read ${path}: ${(err as Error).message}`, [{ field: 'file', message: 'unreadable' }]);
  }
}

function openFile(path: string): Opened {
  // stdin has no size: progress counts rows.
  if (path === '-') return { stream: process.stdin, name: 'stdin', position: () => 0, destroy: () => process.stdin.pause() };
  const { size } = checkFile(path, 'jsonl');
  const file = createReadStream(path);
  // Progress follows the bytes read from disk, so a .gz file's size is its compressed size.
  const stream = path.toLowerCase().endsWith('.gz') ? file.pipe(createGunzip()) : file;
  if (stream !== file) file.on('error', (err) => stream.destroy(err));
  return {
    stream,
    name: path,
    size,
    position: () => file.bytesRead,
    destroy: () => {
      stream.destroy();
      file.destroy();
    },
  };
}

/**
 * JSONL: one JSON object per line; blank lines are skipped; a line that is not a JSON
 * object is reported with its number and the rows after it still come.
 */
export function jsonlSource(input: string | Readable, name?: string): RowSource {
  const opened: Opened =
    typeof input === 'string'
      ? openFile(input)
      : { stream: input, name: name ?? 'stream', position: () => 0, destroy: () => input.destroy() };
  return {
    name: opened.name,
    typed: true,
    unit: opened.size !== undefined ? 'bytes' : 'rows',
    total: opened.size,
    position: opened.position,
    async *rows() {
      const lines = createInterface({ input: opened.stream, crlfDelay: Infinity });
      let line = 0;
      try {
        for await (const text of lines) {
          line++;
          const t = line === 1 && text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
          if (!t.trim()) continue;
          let value: unknown;
          try {
            value = JSON.parse(t);
          } catch (err) {
            yield { line, error: `not valid JSON: ${(err as Error).message}` };
            continue;
          }
          const problem = jsonTextProblem(t, 'record');
          if (problem) {
            yield { line, error: problem.message };
            continue;
          }
          if (value === null || typeof value !== 'object' || Array.isArray(value)) {
            yield { line, error: `must be a JSON object; got ${t.length > 60 ? t.slice(0, 57) + '...' : t}` };
            continue;
          }
          yield { line, value: value as Record<string, unknown> };
        }
      } finally {
        lines.close();
        opened.destroy();
      }
    },
    async close() {
      opened.destroy();
    },
  };
}

/**
 * CSV: the first row names the columns; every cell is a string (converted later by the
 * mapping). A malformed row (a stray quote, a wrong number of cells) is reported with its
 * line number and the rows after it still come.
 */
export function csvSource(input: string | Readable, name?: string): RowSource {
  const opened: Opened =
    typeof input === 'string'
      ? openFile(input)
      : { stream: input, name: name ?? 'stream', position: () => 0, destroy: () => input.destroy() };
  const source: RowSource = {
    name: opened.name,
    typed: false,
    unit: opened.size !== undefined ? 'bytes' : 'rows',
    total: opened.size,
    position: opened.position,
    async *rows() {
      const parser = opened.stream.pipe(
        parseCsv({
          bom: true,
          info: true,
          relax_column_count: true,
          skip_empty_lines: true,
          skip_records_with_error: true,
          delimiter: /\.tsv(\.gz)?$/i.test(opened.name) ? '\t' : ',',
        }),
      );
      // csv-parse reports skipped records as events, possibly ahead of the records it has
      // buffered: queue them and hand them out in line order.
      const skipped: SourceRow[] = [];
      parser.on('skip', (err: Error & { lines?: number }) => {
        skipped.push({ line: err.lines ?? 0, error: `not valid CSV: ${err.message}` });
      });
      opened.stream.on('error', (err) => parser.destroy(err));
      let header: string[] | undefined;
      try {
        for await (const { record, info } of parser as AsyncIterable<{ record: string[]; info: { lines: number } }>) {
          while (skipped.length && skipped[0].line <= info.lines) yield skipped.shift()!;
          if (!header) {
            header = record.map((h) => h.trim());
            source.columns = header;
            continue;
          }
          if (record.length !== header.length) {
            yield { line: info.lines, error: `has ${record.length} cells; the header has ${header.length}` };
            continue;
          }
          const value: Record<string, unknown> = {};
          for (let i = 0; i < header.length; i++) value[header[i]] = record[i];
          yield { line: info.lines, value };
        }
        yield* skipped.splice(0);
      } finally {
        parser.destroy();
        opened.destroy();
      }
    },
    async close() {
      opened.destroy();
    },
  };
  return source;
}

/** A file (or `-`) in the given format, or the one its extension implies. */
export function fileSource(path: string, format?: ImportFormat): RowSource {
  const fmt = checkFile(path, format).format;
  return fmt === 'csv' ? csvSource(path) : jsonlSource(path);
}

/** Plain values (library callers): each one is a record, numbered from 1. */
export function valuesSource(values: Iterable<unknown> | AsyncIterable<unknown>, typed = true): RowSource {
  let n = 0;
  return {
    name: 'records',
    typed,
    unit: 'rows',
    total: Array.isArray(values) ? values.length : undefined,
    position: () => n,
    async *rows() {
      for await (const v of values as AsyncIterable<unknown>) {
        n++;
        if (v === null || typeof v !== 'object' || Array.isArray(v)) yield { line: n, error: 'must be an object' };
        else yield { line: n, value: v as Record<string, unknown> };
      }
    },
    async close() {},
  };
}
