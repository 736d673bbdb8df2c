/**
 * Export files (NDJSON): a header line `{ format: "runledger-export", version, namespace,
 * exportedAt }`, one `{ run, events, checkpoints }` line per run, and an end line `{ end: true,
 * runs }`. `prune --archive` appends to one, syncing each chunk before it is pruned; `import`
 * recognises one by its header and restores it exactly.
 */
import { createReadStream } from 'node:fs';
import { type FileHandle, open, stat } from 'node:fs/promises';
import { createInterface } from 'node:readline';

import { LedgerError } from '../core/errors.js';
import type { ExportedRun, Ledger, RestoreItemResult } from '../core/types.js';
import { EXPORT_FORMAT } from '../ledger/retention.js';

export { EXPORT_FORMAT };

export const headerLine = (namespace: string) =>
  JSON.stringify({ format: EXPORT_FORMAT, version: 1, namespace, exportedAt: new Date().toISOString() }) + '\n';
export const endLine = (runs: number) => JSON.stringify({ end: true, runs }) + '\n';

/** True when `line` is an export's header. */
export function isExportHeader(line: string): boolean {
  try {
    const v = JSON.parse(line) as { format?: unknown };
    return v !== null && typeof v === 'object' && v.format === EXPORT_FORMAT;
  } catch {
    return false;
  }
}

/** The first line of a file (up to 64 KB), or null. */
export async function firstLine(file: string): Promise<string | null> {
  const fh = await open(file, 'r');
  try {
    const buf = Buffer.alloc(65536);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    const text = buf.subarray(0, bytesRead).toString('utf8');
    const nl = text.indexOf('\n');
    return nl >= 0 ? text.slice(0, nl) : text;
  } finally {
    await fh.close();
  }
}

/**
 * An archive opened for appending. A line cut short by a crash (no newline at the end) is cut
 * off: its runs were never pruned (a chunk is pruned only after it is synced whole), so they are
 * in the ledger still and the next chunk writes them again.
 */
export class Archive {
  private constructor(
    private readonly fh: FileHandle,
    private size: number,
  ) {}

  static async open(file: string, namespace: string): Promise<Archive> {
    const fh = await open(file, 'a+');
    let { size } = await fh.stat();
    if (size > 0) {
      // Find the last newline, reading backwards in 64 KB steps.
      const buf = Buffer.alloc(65536);
      let end = size;
      let keep = 0;
      while (end > 0) {
        const from = Math.max(0, end - buf.length);
        const { bytesRead } = await fh.read(buf, 0, end - from, from);
        const i = buf.subarray(0, bytesRead).lastIndexOf(10);
        if (i >= 0) {
          keep = from + i + 1;
          break;
        }
        end = from;
      }
      if (keep < size) {
        await fh.truncate(keep);
        size = keep;
      }
    }
    const archive = new Archive(fh, size);
    if (size === 0) await archive.append([headerLine(namespace)]);
    return archive;
  }

  /** Appends whole lines and syncs them to disk before returning. */
  async append(lines: string[]): Promise<void> {
    const data = Buffer.from(lines.join(''), 'utf8');
    let off = 0;
    while (off < data.length) {
      const { bytesWritten } = await this.fh.write(data, off, data.length - off, null);
      off += bytesWritten;
    }
    this.size += data.length;
    await this.fh.sync();
  }

  async close(): Promise<void> {
    await this.fh.close();
  }
}

export interface RestoreReport {
  file: string;
  lines: number;
  runs: number;
  restored: number;
  duplicates: number;
  invalid: number;
  invalidRuns: { line: number; id: string | null; code: string; message: string }[];
  /** False when the file has no end line (an archive a crash cut short, or a partial copy). */
  complete: boolean;
  seconds: number;
}

/**
 * Restores an export file: lines are read one at a time and sent in batches of at most
 * `batchRuns` runs or about 4 MB, so memory holds one batch whatever the file's size. A last
 * line without its newline (a crash mid-write) is reported, not restored.
 */
export async function restoreFile(
  ledger: Ledger,
  file: string,
  opts: { batchRuns?: number; onProgress?: (runs: number, bytes: number, total: number) => void } = {},
): Promise<RestoreReport> {
  const started = Date.now();
  const total = (await stat(file)).size;
  const report: RestoreReport = {
    file,
    lines: 0,
    runs: 0,
    restored: 0,
    duplicates: 0,
    invalid: 0,
    invalidRuns: [],
    complete: false,
    seconds: 0,
  };
  const batchRuns = opts.batchRuns ?? 200;
  let batch: unknown[] = [];
  let batchLines: number[] = [];
  let batchBytes = 0;
  let bytes = 0;
  const flush = async () => {
    if (!batch.length) return;
    const r = await ledger.restoreRuns(batch);
    report.restored += r.restored;
    report.duplicates += r.duplicates;
    report.invalid += r.invalid;
    r.results.forEach((x: RestoreItemResult, i) => {
      if (x.status === 'invalid')
        report.invalidRuns.push({ line: batchLines[i], id: x.id, code: x.error?.code ?? 'invalid', message: x.error?.message ?? '' });
    });
    batch = [];
    batchLines = [];
    batchBytes = 0;
    opts.onProgress?.(report.runs, bytes, total);
  };
  const rl = createInterface({ input: createReadStream(file, { encoding: 'utf8' }), crlfDelay: Infinity });
  for await (const line of rl) {
    report.lines++;
    const size = Buffer.byteLength(line);
    bytes += size + 1;
    if (line.trim() === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      // Only the very last line may be cut short (no newline after it): that is a crash mid-write.
      const cut = bytes > total;
      report.invalid++;
      report.invalidRuns.push({
        line: report.lines,
        id: null,
        code: 'validation_failed',
        message: cut
          ? 'the last line is cut short (the file ends mid-line): its run was not pruned, so it is still in the ledger'
          : 'not JSON',
      });
      continue;
    }
    const v = value as { format?: unknown; end?: unknown; run?: unknown };
    if (v && typeof v === 'object' && v.format !== undefined) {
      if (v.format !== EXPORT_FORMAT)
        throw new LedgerError('validation_failed', `line ${report.lines} is a header of format ${String(v.format)}, not ${EXPORT_FORMAT}`);
      report.complete = false;
      continue;
    }
    if (v && typeof v === 'object' && v.end === true) {
      report.complete = true;
      continue;
    }
    report.runs++;
    report.complete = false;
    batch.push(value as ExportedRun);
    batchLines.push(report.lines);
    batchBytes += size;
    if (batch.length >= batchRuns || batchBytes > 4_000_000) await flush();
  }
  await flush();
  report.seconds = Math.round((Date.now() - started) / 100) / 10;
  return report;
}
