/** The import's progress bar on a terminal: share done, rows, rows/s and ETA (cli-progress, on stderr). */
import cliProgress from 'cli-progress';

import type { ImportProgress } from '../import/run.js';

function formatEta(s: number): string {
  if (!Number.isFinite(s) || s < 0) return '?';
  if (s < 60) return `${Math.ceil(s)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(Math.floor(s % 60)).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

export interface ProgressBar {
  update(p: ImportProgress): void;
  stop(): void;
}

/** A bar when the total is known (file size, counted rows), else a running count. */
export function progressBar(stream: NodeJS.WriteStream = process.stderr): ProgressBar {
  let bar: cliProgress.SingleBar | undefined;
  return {
    update(p) {
      const known = p.total !== undefined && p.total > 0;
      if (!bar) {
        bar = new cliProgress.SingleBar(
          {
            stream,
            format: known
              ? 'importing |{bar}| {percentage}% | {rows} rows | {rate} rows/s | ETA {etaText}'
              : 'importing {rows} rows | {rate} rows/s',
            hideCursor: true,
            clearOnComplete: false,
            fps: 5,
          },
          cliProgress.Presets.shades_classic,
        );
        bar.start(known ? p.total! : 1, 0, { rows: 0, rate: 0, etaText: '?' });
      }
      const s = p.elapsedMs / 1000;
      const rate = s > 0 ? Math.round(p.read / s) : 0;
      const eta = known && p.position > 0 ? (s * (p.total! - p.position)) / p.position : NaN;
      bar.update(known ? Math.min(p.position, p.total!) : 0, { rows: p.read, rate, etaText: formatEta(eta) });
    },
    stop() {
      bar?.stop();
    },
  };
}

/** For logs (stderr not a terminal, `--progress` given): one line per chunk. */
export function progressLines(stream: NodeJS.WritableStream = process.stderr): ProgressBar {
  let chunk = 0;
  return {
    update(p) {
      chunk++;
      const s = p.elapsedMs / 1000;
      const share = p.total ? ` (${Math.min(100, Math.floor((100 * p.position) / p.total))}%)` : '';
      stream.write(
        `chunk ${chunk}: read ${p.read}${share}, inserted ${p.inserted}, duplicates ${p.duplicates}, ` +
          `skipped by cutover ${p.skippedCutover}, invalid ${p.invalid}, ${s > 0 ? Math.round(p.read / s) : 0} rows/s\n`,
      );
    },
    stop() {},
  };
}

export interface CountProgress {
  /** `done` runs of `total` (when known), with a detail such as "12 345 events". */
  update(done: number, total?: number, detail?: string): void;
  stop(): void;
}

/**
 * Progress of a run-by-run job (prune, export, restore): a bar with share, runs/s and ETA when
 * the total is known, else a running count. On a terminal a bar; with `lines`, one line per update.
 */
export function countProgress(label: string, opts: { lines?: boolean; stream?: NodeJS.WriteStream } = {}): CountProgress {
  const stream = opts.stream ?? process.stderr;
  const started = Date.now();
  let bar: cliProgress.SingleBar | undefined;
  return {
    update(done, total, detail = '') {
      const s = (Date.now() - started) / 1000;
      const rate = s > 0 ? Math.round(done / s) : 0;
      if (opts.lines) {
        const share = total ? ` of ${total} (${Math.min(100, Math.floor((100 * done) / total))}%)` : '';
        stream.write(`${label} ${done}${share} runs${detail ? `, ${detail}` : ''}, ${rate} runs/s\n`);
        return;
      }
      const known = total !== undefined && total > 0;
      if (!bar) {
        bar = new cliProgress.SingleBar(
          {
            stream,
            format: known
              ? `${label} |{bar}| {percentage}% | {value}/{total} runs | {detail} | {rate} runs/s | ETA {etaText}`
              : `${label} {value} runs | {detail} | {rate} runs/s`,
            hideCursor: true,
            clearOnComplete: false,
            fps: 5,
          },
          cliProgress.Presets.shades_classic,
        );
        bar.start(known ? total : 0, 0, { rate: 0, etaText: '?', detail });
      }
      if (known) bar.setTotal(Math.max(total, done));
      const eta = known && done > 0 ? (s * (total - done)) / done : NaN;
      bar.update(done, { rate, etaText: formatEta(eta), detail });
    },
    stop() {
      bar?.stop();
    },
  };
}
