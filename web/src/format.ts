/** Small formatting helpers: durations, times, statuses. */
import type { Run, RunStatus } from './api';

export const STATUSES: RunStatus[] = ['submitted', 'running', 'retrying', 'completed', 'failed', 'cancelled', 'timed_out'];
export const TERMINAL = new Set<RunStatus>(['completed', 'failed', 'cancelled', 'timed_out']);

export const STATUS_COLOURS: Record<RunStatus, string> = {
  submitted: '#64748b',
  running: '#2563eb',
  retrying: '#d97706',
  completed: '#16a34a',
  failed: '#dc2626',
  cancelled: '#6b7280',
  timed_out: '#9333ea',
};

export function formatDuration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '—';
  if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} m ${Math.floor(s % 60)} s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h} h ${m % 60} m`;
  return `${Math.floor(h / 24)} d ${h % 24} h`;
}

/** How long the run took, or has been going. */
export function runDurationMs(run: Pick<Run, 'startedAt' | 'finishedAt'>, now = Date.now()): number | null {
  if (!run.startedAt) return null;
  const end = run.finishedAt ? Date.parse(run.finishedAt) : now;
  return end - Date.parse(run.startedAt);
}

export function formatTime(iso: string | null | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  return d.toLocaleString(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

export function timeAgo(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return '—';
  const s = Math.round((now - Date.parse(iso)) / 1000);
  if (s < 5) return 'just now';
  if (s < 60) return `${s} s ago`;
  const m = Math.round(s / 60);
  if (m < 60) return `${m} min ago`;
  const h = Math.round(m / 60);
  if (h < 48) return `${h} h ago`;
  return `${Math.round(h / 24)} d ago`;
}

export function statusLabel(s: string): string {
  return s.replace('_', ' ');
}

export { triggerAbbrev } from './logic';

export function shortId(id: string): string {
  return id.length > 14 ? `${id.slice(0, 8)}…${id.slice(-4)}` : id;
}
