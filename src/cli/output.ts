/** Human output: tables, durations, ages; and JSON output for --json. */
import type { Run } from '../core/types.js';

export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n');
}

export function println(line = ''): void {
  process.stdout.write(line + '\n');
}

/** Left-aligned columns separated by two spaces; the last column is not padded. */
export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i])))
      .join('  ')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n');
}

export function truncate(text: string, max: number): string {
  return text.length > max ? text.slice(0, max - 1) + '…' : text;
}

/** 850ms, 12.3s, 4m05s, 2h03m, 3d04h. */
export function formatDuration(ms: number): string {
  if (ms < 0) ms = 0;
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(Math.floor(s % 60)).padStart(2, '0')}s`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h}h${String(m % 60).padStart(2, '0')}m`;
  return `${Math.floor(h / 24)}d${String(h % 24).padStart(2, '0')}h`;
}

/** 5s, 3m, 2h, 4d: how long ago. */
export function formatAge(iso: string, now = Date.now()): string {
  const s = Math.max(0, Math.floor((now - Date.parse(iso)) / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86_400)}d`;
}

/** Finished runs: start to finish. Running runs: so far, marked with `+`. */
export function runDuration(run: Run, now = Date.now()): string {
  if (!run.startedAt) return '-';
  const start = Date.parse(run.startedAt);
  if (run.finishedAt) return formatDuration(Date.parse(run.finishedAt) - start);
  return formatDuration(now - start) + '+';
}

export function runStatus(run: Run): string {
  return run.suspect ? `${run.status}(suspect)` : run.status;
}

export function runsTable(runs: Run[], now = Date.now()): string {
  return table(
    ['ID', 'STATUS', 'JOB', 'SUBJECT', 'TRIGGER', 'DURATION', 'AGE'],
    runs.map((r) => [
      r.id,
      runStatus(r),
      truncate(r.job, 32),
      truncate(r.subject ?? '-', 40),
      truncate(r.trigger ?? '-', 16),
      runDuration(r, now),
      formatAge(r.createdAt, now),
    ]),
  );
}

/** A compact single-line rendering of a JSON value. */
export function oneLine(value: unknown, max = 120): string {
  if (value === null || value === undefined) return '';
  return truncate(typeof value === 'string' ? value : JSON.stringify(value), max);
}
