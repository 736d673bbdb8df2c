/** One run: its record, status timeline, live event tail, checkpoints, children and payloads. */
import { useEffect, useLayoutEffect, useMemo, useRef, useState } from 'react';

import {
  api,
  ApiError,
  type Checkpoint,
  followEvents,
  type LedgerEvent,
  type Run,
  type RunStatus,
  type Tombstone,
  type VerifyResult,
} from '../api';
import { ChildGantt } from '../components/ChildGantt';
import { CopyCommand } from '../components/CopyCommand';
import { inlineJson, JsonView } from '../components/JsonView';
import { LogView } from '../components/LogView';
import { Empty, ErrorState, Loading } from '../components/States';
import { StatusBadge } from '../components/Status';
import { formatDuration, formatTime, runDurationMs, shortId, STATUS_COLOURS, statusLabel, TERMINAL, timeAgo } from '../format';
import { useAsync, useNow } from '../hooks';
import { href, runHref } from '../router';

const LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const;
const MAX_SHOWN_EVENTS = 2000;

function Meta({ run, now }: { run: Run; now: number }) {
  const rows: [string, React.ReactNode][] = [
    ['Job', <a href={href('/runs', { job: run.job })}>{run.job}</a>],
    ['Subject', run.subject ? <a href={href('/runs', { job: run.job, subject: run.subject })}>{run.subject}</a> : '—'],
    ['Trigger', run.trigger ?? '—'],
    ['Actor', run.actor ?? '—'],
    ['Attempt', String(run.attempt)],
    ['Created', <time dateTime={run.createdAt}>{formatTime(run.createdAt)}</time>],
    ['Started', run.startedAt ? <time dateTime={run.startedAt}>{formatTime(run.startedAt)}</time> : '—'],
    ['Finished', run.finishedAt ? <time dateTime={run.finishedAt}>{formatTime(run.finishedAt)}</time> : '—'],
    ['Duration', formatDuration(runDurationMs(run, now)) + (run.finishedAt || !run.startedAt ? '' : ' so far')],
  ];
  if (run.heartbeatAt && !run.finishedAt) rows.push(['Last heartbeat', timeAgo(run.heartbeatAt, now)]);
  if (run.leaseS) rows.push(['Lease', `${run.leaseS} s`]);
  if (run.deadlineAt) rows.push(['Deadline', formatTime(run.deadlineAt)]);
  if (run.source) rows.push(['Imported from', `${run.source}${run.sourceId ? ` #${run.sourceId}` : ''}`]);
  rows.push(['Version', String(run.version)]);
  return (
    <dl className="meta">
      {rows.map(([k, v]) => (
        <div key={k}>
          <dt>{k}</dt>
          <dd>{v}</dd>
        </div>
      ))}
    </dl>
  );
}

function Timeline({ events }: { events: LedgerEvent[] }) {
  const steps = events.filter((e) => e.type === 'run.status');
  if (!steps.length) return <p className="muted">No status change recorded yet.</p>;
  return (
    <ol className="timeline">
      {steps.map((e, i) => {
        const body = (e.body ?? {}) as { status?: RunStatus; reason?: string; error?: { message?: string } };
        const prev = steps[i - 1];
        const status = body.status ?? 'submitted';
        return (
          <li key={e.seq} style={{ '--dot': STATUS_COLOURS[status] ?? '#888' } as React.CSSProperties}>
            <span className={`badge status-${status}`}>{statusLabel(status)}</span>
            <time dateTime={e.at}>{formatTime(e.at)}</time>
            {prev && <span className="muted">+{formatDuration(Date.parse(e.at) - Date.parse(prev.at))}</span>}
            {body.reason && <span className="muted">reason: {body.reason}</span>}
            {body.error?.message && <span className="error-text">{body.error.message}</span>}
          </li>
        );
      })}
    </ol>
  );
}

function ErrorPanel({ run }: { run: Run }) {
  const err = run.error;
  if (!err) return null;
  return (
    <section className="card error-card" aria-labelledby="err-title">
      <h2 id="err-title">Error{err.type ? `: ${err.type}` : ''}</h2>
      <p className="error-message">{err.message}</p>
      {err.details !== undefined && err.details !== null && (
        <details>
          <summary>Details</summary>
          <JsonView value={err.details} />
        </details>
      )}
      {err.stack && (
        <details open>
          <summary>Stack</summary>
          <pre className="stack">{err.stack}</pre>
        </details>
      )}
    </section>
  );
}

function Children({ ns, run, checkpoints, now }: { ns: string; run: Run; checkpoints: Checkpoint[]; now: number }) {
  const live = !TERMINAL.has(run.status);
  const children = useAsync(() => api.listRuns(ns, { parentId: run.id, limit: 500 }), [ns, run.id], live ? 4000 : undefined);
  const runs = children.data?.runs ?? [];
  if (children.error) return <ErrorState error={children.error} onRetry={children.reload} />;
  if (!runs.length) return null;
  // The server counts every child (run.children); the list below shows the newest 500.
  const counts = new Map<RunStatus, number>();
  if (run.children) for (const [s, n] of Object.entries(run.children.byStatus)) counts.set(s as RunStatus, n ?? 0);
  else for (const c of runs) counts.set(c.status, (counts.get(c.status) ?? 0) + 1);
  const total = run.children?.total ?? runs.length;
  const finished = [...counts.entries()].filter(([s]) => TERMINAL.has(s)).reduce((a, [, n]) => a + n, 0);
  return (
    <section className="card" aria-labelledby="children-title">
      <h2 id="children-title">
        Child runs{' '}
        <span className="muted">
          {finished} of {total}
          {!run.children && children.data?.nextCursor ? '+' : ''} finished
        </span>
      </h2>
      <div
        className="progress"
        role="progressbar"
        aria-label="Child runs finished"
        aria-valuemin={0}
        aria-valuemax={total}
        aria-valuenow={finished}
      >
        {[...counts.entries()].map(([s, n]) => (
          <span key={s} className={`seg status-${s}`} style={{ flexGrow: n }} title={`${n} ${statusLabel(s)}`} />
        ))}
      </div>
      <p className="legend">
        {[...counts.entries()].map(([s, n]) => (
          <span key={s}>
            <span className={`dot status-${s}`} /> {n} {statusLabel(s)}
          </span>
        ))}
      </p>
      <ChildGantt parent={run} runs={runs} checkpoints={checkpoints} now={now} />
      <div className="table-wrap">
        <table>
          <thead>
            <tr>
              <th scope="col">Status</th>
              <th scope="col">Run</th>
              <th scope="col">Subject</th>
              <th scope="col" className="hide-sm">
                External ids
              </th>
              <th scope="col" className="num">
                Duration
              </th>
            </tr>
          </thead>
          <tbody>
            {runs.map((c) => (
              <tr key={c.id}>
                <td>
                  <StatusBadge status={c.status} suspect={c.suspect} />
                </td>
                <td className="mono">
                  <a href={runHref(c.id)} title={c.id}>
                    {shortId(c.id)}
                  </a>
                </td>
                <td>{c.subject ?? '—'}</td>
                <td className="hide-sm mono small">
                  {Object.entries(c.externalIds)
                    .map(([k, v]) => `${k}=${v}`)
                    .join(', ') || '—'}
                </td>
                <td className="num">{formatDuration(runDurationMs(c))}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}

function levelRank(level: string | null): number {
  return LEVELS.indexOf((level ?? 'info') as (typeof LEVELS)[number]);
}

function Events({ events, state, onMore }: { events: LedgerEvent[]; state: string; onMore?: () => void }) {
  const [minLevel, setMinLevel] = useState('');
  const [hideSystem, setHideSystem] = useState(false);
  const box = useRef<HTMLDivElement>(null);
  const stick = useRef(true);
  const shown = useMemo(() => {
    const min = minLevel ? levelRank(minLevel) : -1;
    const list = events.filter((e) => levelRank(e.level) >= min && !(hideSystem && e.type.startsWith('run.')));
    return list.slice(-MAX_SHOWN_EVENTS);
  }, [events, minLevel, hideSystem]);
  useLayoutEffect(() => {
    const el = box.current;
    if (el && stick.current) el.scrollTop = el.scrollHeight;
  }, [shown]);
  return (
    <section className="card" aria-labelledby="events-title">
      <div className="card-head">
        <h2 id="events-title">
          Events <span className="muted">({events.length})</span>
        </h2>
        <span className={`stream-state stream-${state}`} role="status" data-testid="stream-state">
          {state === 'live' ? '● live' : state === 'reconnecting' ? 'reconnecting…' : state === 'loading' ? 'loading…' : 'complete'}
        </span>
      </div>
      <div className="event-controls">
        <label htmlFor="level-filter">Level</label>
        <select id="level-filter" value={minLevel} onChange={(e) => setMinLevel(e.target.value)}>
          <option value="">all</option>
          {LEVELS.slice(1, 5).map((l) => (
            <option key={l} value={l}>
              {l} and above
            </option>
          ))}
        </select>
        <label className="check">
          <input type="checkbox" checked={hideSystem} onChange={(e) => setHideSystem(e.target.checked)} /> hide run.* events
        </label>
      </div>
      {shown.length === 0 ? (
        <p className="muted">{events.length ? 'No event at this level.' : 'No events yet.'}</p>
      ) : (
        <div
          className="events"
          ref={box}
          tabIndex={0}
          role="log"
          aria-label="Event log"
          onScroll={(e) => {
            const el = e.currentTarget;
            stick.current = el.scrollHeight - el.scrollTop - el.clientHeight < 40;
          }}
        >
          {events.length > shown.length && shown.length === MAX_SHOWN_EVENTS && (
            <p className="muted small">Showing the last {MAX_SHOWN_EVENTS}.</p>
          )}
          {shown.map((e) => (
            <div key={e.seq} className={`event level-${e.level ?? 'none'}`} data-seq={e.seq}>
              <span className="seq">{e.seq}</span>
              <time dateTime={e.at} title={e.at}>
                {new Date(e.at).toLocaleTimeString()}
              </time>
              <span className={`lvl lvl-${e.level ?? 'none'}`}>{e.level ?? ''}</span>
              <span className="etype">{e.type}</span>
              <span className="ebody">
                {e.body !== null && typeof e.body === 'object' && Object.keys(e.body).length > 0 ? (
                  // Objects and arrays open into the tree view; the line shows them inline.
                  <details>
                    <summary>{inlineJson(e.body, 400)}</summary>
                    <JsonView value={e.body} />
                  </details>
                ) : (
                  inlineJson(e.body, 400)
                )}
              </span>
            </div>
          ))}
        </div>
      )}
      {onMore && (
        <div className="more">
          <button type="button" onClick={onMore}>
            Load more events
          </button>
        </div>
      )}
    </section>
  );
}

function VerifyBadge({ verify, checkpoint }: { verify?: VerifyResult; checkpoint: string }) {
  if (!verify) return <span className="badge muted-badge">checking…</span>;
  const bad = verify.problems.find((p) => p.checkpoint === checkpoint);
  return bad ? (
    <span className="badge bad" title={bad.message}>
      ✗ mismatch
    </span>
  ) : (
    <span className="badge good" title="Content hash recomputed and matches">
      ✓ verified
    </span>
  );
}

function CheckpointView({ ns, runId, name, verify }: { ns: string; runId: string; name: string; verify?: VerifyResult }) {
  const cp = useAsync(() => api.getCheckpoint(ns, runId, name), [ns, runId, name]);
  if (cp.error) return <ErrorState error={cp.error} onRetry={cp.reload} />;
  if (!cp.data) return <Loading what="Loading checkpoint" />;
  const c = cp.data;
  return (
    <div className="checkpoint-view" data-testid="checkpoint-view">
      <h3>
        {c.name} <VerifyBadge verify={verify} checkpoint={c.name} />
      </h3>
      <dl className="meta small">
        <div>
          <dt>Kind</dt>
          <dd>{c.kind ?? '—'}</dd>
        </div>
        <div>
          <dt>Seq</dt>
          <dd>{c.seq}</dd>
        </div>
        <div>
          <dt>Created</dt>
          <dd>{formatTime(c.createdAt)}</dd>
        </div>
        <div className="wide">
          <dt>Ref</dt>
          <dd className="mono small break">{c.ref ?? '—'}</dd>
        </div>
        <div className="wide">
          <dt>Content hash</dt>
          <dd className="mono small break">{c.contentHash}</dd>
        </div>
      </dl>
      <h4>Metadata</h4>
      <JsonView value={c.metadata} />
      {c.data !== undefined && c.data !== null && (
        <>
          <h4>Data</h4>
          <JsonView value={c.data} openDepth={1} />
        </>
      )}
    </div>
  );
}

function Checkpoints({ ns, runId, list, verify }: { ns: string; runId: string; list: Checkpoint[]; verify?: VerifyResult }) {
  const [open, setOpen] = useState<string>();
  if (!list.length) return null;
  return (
    <section className="card" aria-labelledby="cp-title">
      <h2 id="cp-title">Checkpoints</h2>
      <ul className="checkpoints">
        {list.map((c) => (
          <li key={c.name}>
            <button
              type="button"
              className="link-button"
              aria-expanded={open === c.name}
              onClick={() => setOpen(open === c.name ? undefined : c.name)}
            >
              {c.name}
            </button>
            {c.kind && <span className="muted">{c.kind}</span>}
            <span className="muted small">#{c.seq}</span>
            <span className="muted small">{formatTime(c.createdAt)}</span>
            <VerifyBadge verify={verify} checkpoint={c.name} />
            {open === c.name && <CheckpointView ns={ns} runId={runId} name={c.name} verify={verify} />}
          </li>
        ))}
      </ul>
    </section>
  );
}

function KeyValues({ title, map, mono }: { title: string; map: Record<string, string>; mono?: boolean }) {
  const entries = Object.entries(map);
  if (!entries.length) return null;
  return (
    <section className="card" aria-label={title}>
      <h2>{title}</h2>
      <dl className="kv">
        {entries.map(([k, v]) => (
          <div key={k}>
            <dt>{k}</dt>
            <dd className={mono ? 'mono break' : 'break'}>{v}</dd>
          </div>
        ))}
      </dl>
    </section>
  );
}

/** Cancels a live run (a write token; the prompt asks for one). The worker's heartbeat then sees it. */
function CancelButton({ ns, id, onDone }: { ns: string; id: string; onDone: () => void }) {
  const [state, setState] = useState<'idle' | 'cancelling' | Error>('idle');
  const cancel = () => {
    if (!window.confirm(`Cancel run ${id}? Its worker is told to stop at its next heartbeat.`)) return;
    setState('cancelling');
    api.cancelRun(ns, id, 'cancelled from the dashboard').then(
      () => {
        setState('idle');
        onDone();
      },
      (err: Error) => setState(err),
    );
  };
  return (
    <>
      <button type="button" className="button small-button danger" onClick={cancel} disabled={state === 'cancelling'}>
        {state === 'cancelling' ? 'Cancelling…' : 'Cancel run'}
      </button>
      {state instanceof Error && (
        <span className="error-text small" role="alert">
          {state.message}
        </span>
      )}
    </>
  );
}

/** What is left of a run that retention pruned: its tombstone, with the final head of its hash chain. */
function PrunedRun({ tombstone: t }: { tombstone: Tombstone }) {
  return (
    <article aria-labelledby="run-title" className="run-detail pruned-run">
      <nav className="crumbs" aria-label="Breadcrumb">
        <a href={href('/runs')}>Runs</a> / <span>{t.id}</span>
      </nav>
      <h1 id="run-title">
        {t.job} <span className="badge pruned">pruned</span>
      </h1>
      <p className="state-body">
        This run was pruned {formatTime(t.prunedAt)} under the namespace&apos;s retention rules: its events and checkpoints are gone, and
        its id can never be used again. An export or archive of it can be restored with <code>runledger import FILE</code>, which replaces
        this tombstone only with the run whose hash chain ends in the hash below.
      </p>
      <dl className="facts tombstone">
        <dt>Run</dt>
        <dd>
          <code>{t.id}</code>
        </dd>
        <dt>Subject</dt>
        <dd>{t.subject ?? '—'}</dd>
        <dt>Status</dt>
        <dd>{t.status}</dd>
        <dt>Created</dt>
        <dd>{formatTime(t.createdAt)}</dd>
        <dt>Finished</dt>
        <dd>{formatTime(t.finishedAt)}</dd>
        <dt>Pruned</dt>
        <dd>{formatTime(t.prunedAt)}</dd>
        <dt>Last seq</dt>
        <dd>{t.lastSeq}</dd>
        <dt>Last hash</dt>
        <dd>
          <code className="hash">{t.lastHash || '(empty)'}</code>
        </dd>
      </dl>
      <p>
        <a href={href('/retention')}>Retention rules</a> · <a href={href('/runs')}>Back to the runs</a>
      </p>
    </article>
  );
}

export function RunDetailPage({ ns, id }: { ns: string; id: string }) {
  const [terminal, setTerminal] = useState(false);
  const run = useAsync(() => api.getRun(ns, id), [ns, id], terminal ? undefined : 5000);
  const checkpoints = useAsync(() => api.listCheckpoints(ns, id), [ns, id]);
  const verify = useAsync(() => api.verify(ns, id), [ns, id]);
  const [events, setEvents] = useState<LedgerEvent[]>([]);
  const [streamState, setStreamState] = useState('loading');
  const [mode, setMode] = useState<'stream' | 'paged'>();
  const [nextAfter, setNextAfter] = useState<number | null>(null);
  const [eventsError, setEventsError] = useState<Error>();
  const now = useNow(1000);
  const reloaders = useRef({ run: run.reload, checkpoints: checkpoints.reload, verify: verify.reload });
  reloaders.current = { run: run.reload, checkpoints: checkpoints.reload, verify: verify.reload };

  const status = run.data?.status;
  // The events the run had when the page read it: the stream is "live" only once it has
  // delivered them, not as soon as its connection opens (the backlog follows the headers).
  const backlogSeq = useRef(0);
  useEffect(() => {
    if (!status) return;
    setTerminal(TERMINAL.has(status));
    // A run that is already finished is read in pages; a live one is followed.
    setMode((m) => {
      if (m) return m;
      backlogSeq.current = run.data?.lastSeq ?? 0;
      return TERMINAL.has(status) ? 'paged' : 'stream';
    });
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [status]);

  useEffect(() => {
    if (mode !== 'stream') return;
    let lastSeq = 0;
    let open = false;
    const stop = followEvents(
      ns,
      id,
      (e) => {
        if (e.seq <= lastSeq) return;
        lastSeq = e.seq;
        setEvents((list) => [...list, e]);
        if (open && lastSeq >= backlogSeq.current) setStreamState('live');
        if (e.type === 'run.checkpoint') {
          reloaders.current.checkpoints();
          reloaders.current.verify();
        }
        if (e.type === 'run.status') {
          reloaders.current.run();
          const s = (e.body as { status?: RunStatus } | null)?.status;
          if (s && TERMINAL.has(s)) {
            stop();
            setStreamState('ended');
            reloaders.current.verify();
          }
        }
      },
      (s) => {
        open = s === 'live';
        if (!open || lastSeq >= backlogSeq.current) setStreamState(s);
      },
    );
    return stop;
  }, [mode, ns, id]);

  const loadPage = async (after: number) => {
    try {
      const page = await api.listEvents(ns, id, after, 500);
      setEvents((list) => (after === 0 ? page.events : [...list, ...page.events]));
      setNextAfter(page.nextAfterSeq);
      setStreamState('ended');
    } catch (err) {
      setEventsError(err as Error);
    }
  };
  useEffect(() => {
    if (mode === 'paged') void loadPage(0);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [mode, ns, id]);

  if (run.error && !run.data && run.error instanceof ApiError && run.error.tombstone) return <PrunedRun tombstone={run.error.tombstone} />;
  if (run.error && !run.data)
    return (
      <ErrorState error={run.error} onRetry={run.reload}>
        <a href={href('/runs')}>Back to the runs</a>
      </ErrorState>
    );
  if (!run.data) return <Loading what="Loading run" />;
  const r = run.data;
  const hasOutput = r.output !== null && r.output !== undefined;
  const hasStats = r.statistics !== null && Object.keys(r.statistics ?? {}).length > 0;

  return (
    <article aria-labelledby="run-title" className="run-detail">
      <nav className="crumbs" aria-label="Breadcrumb">
        <a href={href('/runs')}>Runs</a> /{' '}
        {r.parentId && (
          <>
            <a href={runHref(r.parentId)} title="Parent run">
              parent {shortId(r.parentId)}
            </a>{' '}
            /{' '}
          </>
        )}
        <span aria-current="page">{shortId(r.id)}</span>
      </nav>
      <div className="page-head">
        <h1 id="run-title" className="run-title">
          <span className="mono break">{r.id}</span>
        </h1>
        <StatusBadge status={r.status} suspect={r.suspect} />
        {verify.data &&
          (verify.data.ok ? (
            <span className="badge good" title={`${verify.data.eventsChecked} events re-hashed`}>
              ✓ chain verified
            </span>
          ) : (
            <span className="badge bad">
              ✗ {verify.data.problems.length} integrity problem{verify.data.problems.length === 1 ? '' : 's'}
            </span>
          ))}
        <a className="button small-button" href={href('/compare', { ids: r.id })}>
          Compare…
        </a>
        {!TERMINAL.has(r.status) && <CancelButton ns={ns} id={r.id} onDone={run.reload} />}
      </div>
      {run.error && <ErrorState error={run.error} onRetry={run.reload} />}
      <Meta run={r} now={now} />
      <CopyCommand run={r} />
      {r.parentId && (
        <p>
          Part of <a href={runHref(r.parentId)}>parent run {r.parentId}</a>
        </p>
      )}
      <ErrorPanel run={r} />
      {verify.data && !verify.data.ok && (
        <section className="card error-card" aria-label="Integrity problems">
          <h2>Integrity problems</h2>
          <ul>
            {verify.data.problems.map((p, i) => (
              <li key={i}>
                <code>{p.problem}</code> {p.message}
              </li>
            ))}
          </ul>
        </section>
      )}
      {r.progress !== null && r.progress !== undefined && !TERMINAL.has(r.status) && (
        <section className="card" aria-label="Progress">
          <h2>Progress</h2>
          <JsonView value={r.progress} />
        </section>
      )}
      <section className="card" aria-labelledby="tl-title">
        <h2 id="tl-title">Status timeline</h2>
        <Timeline events={events} />
      </section>
      <Children ns={ns} run={r} checkpoints={checkpoints.data ?? []} now={now} />
      <div className="two-col">
        <KeyValues title="External ids" map={r.externalIds} mono />
        <KeyValues title="Tags" map={r.tags} />
      </div>
      {r.notes && (
        <section className="card" aria-label="Notes">
          <h2>Notes</h2>
          <p className="notes">{r.notes}</p>
        </section>
      )}
      {eventsError ? (
        <ErrorState error={eventsError} />
      ) : (
        <Events events={events} state={streamState} onMore={nextAfter !== null ? () => void loadPage(nextAfter) : undefined} />
      )}
      <LogView runId={r.id} events={events} live={!TERMINAL.has(r.status)} />
      {checkpoints.error ? (
        <ErrorState error={checkpoints.error} onRetry={checkpoints.reload} />
      ) : (
        <Checkpoints ns={ns} runId={id} list={checkpoints.data ?? []} verify={verify.data} />
      )}
      <div className="two-col">
        <section className="card" aria-labelledby="out-title">
          <h2 id="out-title">Output</h2>
          {hasOutput ? <JsonView value={r.output!} /> : <p className="muted">No output.</p>}
        </section>
        <section className="card" aria-labelledby="stats-title">
          <h2 id="stats-title">Statistics</h2>
          {hasStats ? <JsonView value={r.statistics!} /> : <p className="muted">No statistics.</p>}
        </section>
      </div>
      {Object.keys(r.params).length > 0 && (
        <section className="card" aria-labelledby="params-title">
          <h2 id="params-title">Params</h2>
          <JsonView value={r.params} />
        </section>
      )}
      {!hasOutput && !hasStats && !r.error && TERMINAL.has(r.status) && events.length === 0 && (
        <Empty title="This run recorded nothing else" />
      )}
    </article>
  );
}
