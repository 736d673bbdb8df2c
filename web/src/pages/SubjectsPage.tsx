/** Subjects: the current verdict per subject, each with a strip of its recent runs. */
import { useState } from 'react';

import { api, type SubjectStatus } from '../api';
import { Empty, ErrorState, Loading } from '../components/States';
import { StatusBadge } from '../components/Status';
import { formatTime, statusLabel, timeAgo, triggerAbbrev } from '../format';
import { useAsync, useNow } from '../hooks';
import { href, navigate, type Route, runHref } from '../router';

const STRIP = 20;

function Tile({ ns, s, now, showJob }: { ns: string; s: SubjectStatus; now: number; showJob: boolean }) {
  // Reload the strip only when the subject's verdict changes.
  const detail = useAsync(() => api.getSubject(ns, s.job, s.subject), [ns, s.job, s.subject, s.runId]);
  const recent = [...(detail.data?.recentRuns ?? [])].slice(0, STRIP).reverse();
  return (
    <li className={`tile tile-${s.status}`} data-subject={s.subject}>
      <div className="tile-head">
        <a className="tile-title" href={href('/runs', { job: s.job, subject: s.subject })} title={`All ${s.job} runs of ${s.subject}`}>
          {s.subject}
        </a>
        <StatusBadge status={s.status} />
        {s.overdue && (
          <span
            className="badge bad overdue-badge"
            title={s.nextDueAt ? `due ${formatTime(s.nextDueAt)}; no run has started since` : 'overdue'}
          >
            overdue
          </span>
        )}
      </div>
      <p className="tile-sub muted small">
        {showJob && <>{s.job} · </>}
        {s.trigger && (
          <span className="trigger-badge" title={`decided by a ${s.trigger} run`}>
            {s.trigger}
          </span>
        )}{' '}
        <span title={formatTime(s.finishedAt)}>{timeAgo(s.finishedAt, now)}</span>
        {s.previousStatus && s.previousStatus !== s.status && (
          <>
            {' '}
            · was {statusLabel(s.previousStatus)}, changed {timeAgo(s.statusChangedAt, now)}
          </>
        )}
      </p>
      {(s.consecutiveSuccesses > 1 || s.consecutiveFailures > 0 || s.nextDueAt) && (
        <p className="tile-sub muted small streak">
          {s.consecutiveFailures > 0 ? (
            <span className="error-text">
              {s.consecutiveFailures} failure{s.consecutiveFailures === 1 ? '' : 's'} in a row
            </span>
          ) : s.consecutiveSuccesses > 1 ? (
            <span>{s.consecutiveSuccesses} successes in a row</span>
          ) : null}
          {s.nextDueAt && !s.overdue && <span title={formatTime(s.nextDueAt)}> · next due {formatTime(s.nextDueAt)}</span>}
        </p>
      )}
      {detail.error ? (
        <p className="error-text small">{detail.error.message}</p>
      ) : (
        <ol className="strip" aria-label={`Recent runs of ${s.subject}, oldest first`}>
          {recent.map((r) => (
            <li key={r.id}>
              <a
                href={runHref(r.id)}
                className={`cell status-${r.status}`}
                title={`${statusLabel(r.status)} · ${r.trigger ?? 'no trigger'} · ${formatTime(r.finishedAt ?? r.createdAt)}`}
                // Starts with the visible abbreviation, so that what is seen is part of what is read out.
                aria-label={`${triggerAbbrev(r.trigger)}: ${statusLabel(r.status)} run, ${r.trigger ?? 'no trigger'}, ${formatTime(r.finishedAt ?? r.createdAt)}`}
              >
                {triggerAbbrev(r.trigger)}
              </a>
            </li>
          ))}
          {!detail.data && <li className="muted small">loading…</li>}
        </ol>
      )}
    </li>
  );
}

export function SubjectsPage({ route }: { route: Route }) {
  const ns = route.namespace;
  const job = route.query.get('job') ?? '';
  const [limit, setLimit] = useState(200);
  const all = useAsync(() => api.listSubjects(ns, { limit: 500 }), [ns], 15000);
  const list = useAsync(() => api.listSubjects(ns, { job, limit }), [ns, job, limit], 5000);
  const now = useNow(5000);
  const jobs = [...new Set((all.data?.subjects ?? []).map((s) => s.job))].sort();
  if (job && !jobs.includes(job)) jobs.push(job);
  const subjects = list.data?.subjects ?? [];
  const byJob = new Map<string, SubjectStatus[]>();
  for (const s of subjects) byJob.set(s.job, [...(byJob.get(s.job) ?? []), s]);
  const triggers = [...new Set(subjects.map((s) => s.trigger).filter((t): t is string => Boolean(t)))];

  return (
    <section aria-labelledby="subjects-title">
      <div className="page-head">
        <h1 id="subjects-title">Subjects</h1>
        <div className="field inline">
          <label htmlFor="job-select">Job</label>
          <select id="job-select" value={job} onChange={(e) => navigate(href('/subjects', { job: e.target.value }))}>
            <option value="">all jobs</option>
            {jobs.map((j) => (
              <option key={j} value={j}>
                {j}
              </option>
            ))}
          </select>
        </div>
      </div>
      <p className="muted small">
        The current verdict per subject: the latest finished run by finish time; late or out-of-order results never overwrite a fresher one.
        Each square is a recent run, oldest first, lettered by its trigger
        {triggers.length > 0 && (
          <>
            {' '}
            (
            {triggers.map((t, i) => (
              <span key={t}>
                {i > 0 && ', '}
                <b>{triggerAbbrev(t)}</b> {t}
              </span>
            ))}
            )
          </>
        )}
        .
      </p>
      {list.error && <ErrorState error={list.error} onRetry={list.reload} />}
      {!list.data ? (
        !list.error && <Loading what="Loading subjects" />
      ) : subjects.length === 0 ? (
        <Empty title={job ? `No finished run of ${job} yet` : 'No subject has a finished run yet'}>
          <p>A subject gets a tile when a run with that subject reaches a final status.</p>
        </Empty>
      ) : (
        [...byJob.entries()].map(([j, items]) => (
          <section key={j} className="board" aria-label={`Subjects of ${j}`}>
            <h2>
              {j} <span className="muted">({items.length})</span>
            </h2>
            <ul className="tiles">
              {items.map((s) => (
                <Tile key={`${s.job}/${s.subject}`} ns={ns} s={s} now={now} showJob={false} />
              ))}
            </ul>
          </section>
        ))
      )}
      {list.data?.nextCursor && (
        <div className="more">
          <button type="button" onClick={() => setLimit((l) => Math.min(500, l + 200))} disabled={limit >= 500}>
            {limit >= 500 ? 'Showing the first 500; pick a job' : 'Show more'}
          </button>
        </div>
      )}
    </section>
  );
}
