/**
 * A run's children on one time axis (a Gantt): each child a bar from its start (or creation)
 * to its end (or now, while live), coloured by status; the parent's checkpoints as markers.
 */
import type { Checkpoint, Run } from '../api';
import { formatDuration, formatTime, shortId, statusLabel } from '../format';
import { runHref } from '../router';

const MAX_BARS = 100;

const startOf = (r: Run) => Date.parse(r.startedAt ?? r.createdAt);
const endOf = (r: Run, now: number) => (r.finishedAt ? Date.parse(r.finishedAt) : now);

export function ChildGantt({ parent, runs, checkpoints, now }: { parent: Run; runs: Run[]; checkpoints: Checkpoint[]; now: number }) {
  if (!runs.length) return null;
  // Oldest first, as a timeline reads; the newest MAX_BARS when there are more.
  const bars = [...runs].sort((a, b) => startOf(a) - startOf(b) || (a.id < b.id ? -1 : 1)).slice(-MAX_BARS);
  const t0 = Math.min(startOf(parent), ...bars.map(startOf));
  const t1 = Math.max(endOf(parent, now), ...bars.map((r) => endOf(r, now)), t0 + 1);
  const pct = (t: number) => ((t - t0) / (t1 - t0)) * 100;
  return (
    <figure className="gantt" aria-label="Timeline of the child runs">
      <figcaption className="muted small">
        {formatTime(new Date(t0).toISOString())} → {formatDuration(t1 - t0)}
        {runs.length > MAX_BARS ? ` · the last ${MAX_BARS} of ${runs.length} children` : ''}
      </figcaption>
      <ol className="gantt-rows">
        {bars.map((r) => {
          const left = pct(startOf(r));
          const width = Math.max(0.4, pct(endOf(r, now)) - left);
          const label = `${shortId(r.id)}${r.subject ? ` ${r.subject}` : ''}: ${statusLabel(r.status)}, ${formatDuration(endOf(r, now) - startOf(r))}`;
          return (
            <li key={r.id} className="gantt-row" data-run-id={r.id}>
              <span className="gantt-label mono" aria-hidden="true">
                {r.subject ?? shortId(r.id)}
              </span>
              <span className="gantt-track">
                <a
                  href={runHref(r.id)}
                  className={`gantt-bar status-${r.status}`}
                  style={{ left: `${left}%`, width: `${width}%` }}
                  title={label}
                  aria-label={label}
                />
              </span>
            </li>
          );
        })}
      </ol>
      {checkpoints.length > 0 && (
        <div className="gantt-marks" aria-label="Checkpoints of this run">
          {checkpoints.map((c) => (
            <span key={c.name} className="gantt-mark" style={{ left: `${pct(Date.parse(c.createdAt))}%` }} title={`checkpoint ${c.name}`}>
              ◆{' '}
              <span className="sr-only">
                checkpoint {c.name} at {formatTime(c.createdAt)}
              </span>
            </span>
          ))}
        </div>
      )}
    </figure>
  );
}
