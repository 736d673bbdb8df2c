/**
 * Runs: filters, newest first, keyset "load more". Live: the page follows the namespace's
 * change feed and reloads its first page when a run finishes or is flagged; new runs are not
 * in the feed, so a slow poll picks them up (and a fast one while the feed is unreachable).
 */
import { useEffect, useRef, useState } from 'react';

import { api, followChanges, type Run } from '../api';
import { Empty, ErrorState, Loading } from '../components/States';
import { StatusBadge } from '../components/Status';
import { formatDuration, formatTime, runDurationMs, shortId, STATUSES, statusLabel, timeAgo } from '../format';
import { useNow } from '../hooks';
import { groupByParent, mergeFirstPage, type TreeRow } from '../logic';
import { href, navigate, type Route, runHref } from '../router';

const PAGE = 50;
/** New runs (not in the change feed) and read-time flags (suspect) appear within this. */
const POLL_MS = 10_000;
/** While the change feed is not connected, poll as the page used to. */
const POLL_OFFLINE_MS = 4000;
/** Changes arriving together reload once. */
const CHANGE_DEBOUNCE_MS = 250;
// Every filter lives in the URL, so a filtered list can be bookmarked and shared.
const FILTERS = [
  'q',
  'job',
  'subject',
  'status',
  'trigger',
  'actor',
  'tag',
  'externalId',
  'parentId',
  'createdAfter',
  'createdBefore',
] as const;
type Filters = Partial<Record<(typeof FILTERS)[number], string>>;
const KEY_VALUE = ['tag', 'externalId'] as const;

/** An ISO time (what the URL and the API carry) as a datetime-local input's value, in the browser's zone. */
function toLocalInput(iso: string | undefined): string {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}
/** A datetime-local value (browser's zone) as an ISO time in UTC, or '' for none. */
function fromLocalInput(value: string): string {
  if (!value) return '';
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? '' : d.toISOString();
}

/** "1,234 runs match · 50 shown" (the API counts up to a cap: past it, "more than"). */
function countLine(total: number, capped: boolean, filtered: boolean, shown: number): string {
  const n = `${capped ? 'more than ' : ''}${total.toLocaleString('en')} run${total === 1 ? '' : 's'}`;
  const verb = filtered ? (total === 1 && !capped ? ' matches' : ' match') : '';
  return `${n}${verb} · ${shown} shown`;
}

function FilterForm({ route, filters }: { route: Route; filters: Filters }) {
  const [draft, setDraft] = useState<Filters>(filters);
  const key = JSON.stringify(filters);
  const [shownKey, setShownKey] = useState(key);
  if (shownKey !== key) {
    setShownKey(key);
    setDraft(filters);
  }
  const bad = KEY_VALUE.filter((k) => draft[k] && !draft[k]!.includes(':'));
  const extBad = bad.includes('externalId');
  const tagBad = bad.includes('tag');
  const field = (name: keyof Filters, label: string, placeholder: string, className?: string) => (
    <div className={className ? `field ${className}` : 'field'}>
      <label htmlFor={`f-${name}`}>{label}</label>
      <input
        id={`f-${name}`}
        value={draft[name] ?? ''}
        placeholder={placeholder}
        spellCheck={false}
        onChange={(e) => setDraft({ ...draft, [name]: e.target.value })}
        aria-invalid={bad.includes(name as never) ? true : undefined}
        aria-describedby={bad.includes(name as never) ? `${name}-error` : undefined}
      />
    </div>
  );
  const time = (name: 'createdAfter' | 'createdBefore', label: string) => (
    <div className="field">
      <label htmlFor={`f-${name}`}>{label}</label>
      <input
        id={`f-${name}`}
        type="datetime-local"
        value={toLocalInput(draft[name])}
        onChange={(e) => setDraft({ ...draft, [name]: fromLocalInput(e.target.value) })}
      />
    </div>
  );
  return (
    <form
      className="filters"
      aria-label="Filter runs"
      onSubmit={(e) => {
        e.preventDefault();
        if (bad.length) return;
        const q: Record<string, string> = {};
        for (const k of FILTERS) if (draft[k]?.trim()) q[k] = draft[k]!.trim();
        navigate(href('/runs', { ...q, namespace: route.namespace, group: route.query.get('group') }));
      }}
    >
      {field('q', 'Search', 'run id, job or subject (prefix)', 'grow')}
      {field('job', 'Job', 'agent-md')}
      {field('subject', 'Subject', 'acme/api')}
      <div className="field">
        <label htmlFor="f-status">Status</label>
        <select id="f-status" value={draft.status ?? ''} onChange={(e) => setDraft({ ...draft, status: e.target.value })}>
          <option value="">any</option>
          <option value="submitted,running,retrying">live (submitted, running, retrying)</option>
          <option value="failed,timed_out">problems (failed, timed out)</option>
          {STATUSES.map((s) => (
            <option key={s} value={s}>
              {statusLabel(s)}
            </option>
          ))}
          {draft.status && !draft.status.includes(',') && !STATUSES.includes(draft.status as never) && (
            <option value={draft.status}>{draft.status}</option>
          )}
        </select>
      </div>
      {field('trigger', 'Trigger', 'heartbeat')}
      {field('actor', 'Actor', 'emma@acme.dev')}
      {field('tag', 'Tag', 'key:value')}
      {field('externalId', 'External id', 'key:value')}
      {time('createdAfter', 'Created after')}
      {time('createdBefore', 'Created before')}
      <div className="filter-actions">
        <button type="submit" className="primary">
          Apply
        </button>
        <a className="button" href={href('/runs', { namespace: route.namespace, group: route.query.get('group') })}>
          Clear
        </a>
      </div>
      {extBad && (
        <p id="externalId-error" className="error-text field-error">
          External id must be <code>key:value</code>, e.g. <code>amc.executionId:exec-123</code>.
        </p>
      )}
      {tagBad && (
        <p id="tag-error" className="error-text field-error">
          Tag must be <code>key:value</code>, e.g. <code>team:platform</code>.
        </p>
      )}
    </form>
  );
}

export function RunsPage({ route }: { route: Route }) {
  const ns = route.namespace;
  const filters: Filters = {};
  for (const k of FILTERS) {
    const v = route.query.get(k);
    if (v) filters[k] = v;
  }
  const key = JSON.stringify([ns, filters]);
  const [state, setState] = useState<{
    key: string;
    runs: Run[];
    cursor: string | null;
    loaded: boolean;
    at?: number;
    total?: number;
    totalCapped?: boolean;
  }>({
    key,
    runs: [],
    cursor: null,
    loaded: false,
  });
  const [error, setError] = useState<Error>();
  const [more, setMore] = useState(false);
  const [selected, setSelected] = useState<string[]>([]);
  const now = useNow(1000);
  const stateRef = useRef(state);
  stateRef.current = state;

  useEffect(() => {
    let cancelled = false;
    const f = JSON.parse(key)[1] as Filters;
    setState({ key, runs: [], cursor: null, loaded: false });
    setError(undefined);
    const load = async () => {
      try {
        const page = await api.listRuns(ns, { ...f, limit: PAGE, withTotal: 'true' });
        if (cancelled) return;
        const cur = stateRef.current;
        const merged =
          cur.key === key && cur.loaded ? mergeFirstPage(cur.runs, cur.cursor, page) : { runs: page.runs, cursor: page.nextCursor };
        setState({ key, ...merged, loaded: true, at: Date.now(), total: page.total, totalCapped: page.totalCapped });
        setError(undefined);
      } catch (err) {
        if (!cancelled) setError(err as Error);
      }
    };
    void load();
    let feedLive = false;
    let lastLoad = Date.now();
    const reload = () => {
      lastLoad = Date.now();
      void load();
    };
    // A finished or flagged run of this list changes it: reload (debounced) on the feed's news.
    let debounce: ReturnType<typeof setTimeout> | undefined;
    const stopFeed = followChanges(
      ns,
      (change) => {
        if (!change.runId || (f.job && change.job !== f.job)) return;
        clearTimeout(debounce);
        debounce = setTimeout(reload, CHANGE_DEBOUNCE_MS);
      },
      (feed) => {
        // Reconnected: what happened while away is not replayed (after=now), so reload once.
        if (feed === 'live' && !feedLive) reload();
        feedLive = feed === 'live';
      },
    );
    const t = setInterval(() => {
      if (document.visibilityState === 'hidden') return;
      if (Date.now() - lastLoad >= (feedLive ? POLL_MS : POLL_OFFLINE_MS)) reload();
    }, 1000);
    return () => {
      cancelled = true;
      clearInterval(t);
      clearTimeout(debounce);
      stopFeed();
    };
  }, [key, ns]);

  const loadMore = async () => {
    if (!state.cursor) return;
    setMore(true);
    try {
      const page = await api.listRuns(ns, { ...filters, limit: PAGE, cursor: state.cursor });
      setState((s) => {
        if (s.key !== key) return s;
        const ids = new Set(s.runs.map((r) => r.id));
        return { ...s, runs: [...s.runs, ...page.runs.filter((r) => !ids.has(r.id))], cursor: page.nextCursor };
      });
    } catch (err) {
      setError(err as Error);
    } finally {
      setMore(false);
    }
  };

  const toggle = (id: string) => setSelected((s) => (s.includes(id) ? s.filter((x) => x !== id) : [...s, id]));
  const filtered = Object.keys(filters).length > 0;
  const runs = state.key === key ? state.runs : [];
  // A view option, not a filter: kept in the URL too, so a grouped list can be shared.
  const grouped = route.query.get('group') === 'parent';
  const [expanded, setExpanded] = useState<ReadonlySet<string>>(new Set());
  const expand = (id: string) =>
    setExpanded((s) => {
      const next = new Set(s);
      if (next.has(id)) next.delete(id);
      else next.add(id);
      return next;
    });
  const rows: TreeRow[] = grouped ? groupByParent(runs, expanded) : runs.map((run) => ({ run, depth: 0, children: 0 }));
  const groupHref = href('/runs', { ...filters, namespace: ns, ...(grouped ? {} : { group: 'parent' }) });

  return (
    <section aria-labelledby="runs-title">
      <div className="page-head">
        <h1 id="runs-title">Runs</h1>
        <p className="muted live-note" aria-live="off">
          {state.at ? `Live · refreshed ${timeAgo(new Date(state.at).toISOString(), now)}` : ''}
        </p>
      </div>
      <FilterForm route={route} filters={filters} />
      {error && <ErrorState error={error} />}
      {!state.loaded || state.key !== key ? (
        !error && <Loading what="Loading runs" />
      ) : runs.length === 0 ? (
        <Empty title={filtered ? 'No run matches these filters' : 'No runs yet'}>
          {filtered ? (
            <a href={href('/runs', { namespace: ns })}>Clear the filters</a>
          ) : (
            <p>
              Record one with the library, <code>runledger exec --job NAME -- command</code>, or fill the ledger with sample data using{' '}
              <code>runledger demo</code>.
            </p>
          )}
        </Empty>
      ) : (
        <>
          <div className="toolbar">
            <span className="muted" data-testid="runs-count">
              {state.total !== undefined
                ? countLine(state.total, state.totalCapped === true, filtered, runs.length)
                : `${runs.length} run${runs.length === 1 ? '' : 's'} shown${state.cursor ? ', more below' : ''}`}
            </span>
            <a className="button small-button" href={groupHref} data-testid="group-toggle">
              {grouped ? 'Ungroup' : 'Group children under parents'}
            </a>
            {selected.length >= 2 ? (
              <a className="button" href={href('/compare', { ids: selected.join(',') })}>
                Compare {selected.length} selected
              </a>
            ) : (
              <span className="muted hint">Tick two or more runs to compare them</span>
            )}
          </div>
          <div className="table-wrap">
            <table className="runs-table">
              <thead>
                <tr>
                  <th scope="col">
                    <span className="sr-only">Select</span>
                  </th>
                  <th scope="col">Status</th>
                  <th scope="col">Run</th>
                  <th scope="col">Job</th>
                  <th scope="col">Subject</th>
                  <th scope="col" className="hide-sm">
                    Trigger
                  </th>
                  <th scope="col" className="hide-sm">
                    Created
                  </th>
                  <th scope="col" className="num">
                    Duration
                  </th>
                </tr>
              </thead>
              <tbody>
                {rows.map(({ run: r, depth, children }) => (
                  <tr
                    key={r.id}
                    className={[r.suspect ? 'row-suspect' : '', depth ? 'row-child' : ''].filter(Boolean).join(' ') || undefined}
                    data-run-id={r.id}
                    data-depth={grouped ? depth : undefined}
                  >
                    <td className="c-sel">
                      <input
                        type="checkbox"
                        aria-label={`Select run ${r.id} to compare`}
                        checked={selected.includes(r.id)}
                        onChange={() => toggle(r.id)}
                      />
                    </td>
                    <td className="c-status">
                      <StatusBadge status={r.status} suspect={r.suspect} />
                    </td>
                    <td className="mono c-id" style={depth ? { paddingLeft: `${0.5 + depth * 1.1}rem` } : undefined}>
                      {depth > 0 && (
                        <span className="tree-mark" aria-hidden="true">
                          ↳{' '}
                        </span>
                      )}
                      <a href={runHref(r.id)} title={r.id}>
                        {shortId(r.id)}
                      </a>
                      {r.attempt > 1 && <span className="muted"> ·{r.attempt}</span>}
                      {children > 0 && (
                        <button
                          type="button"
                          className="tree-toggle"
                          aria-expanded={expanded.has(r.id)}
                          aria-label={`${expanded.has(r.id) ? 'Hide' : 'Show'} ${children} child run${children === 1 ? '' : 's'} of ${r.id}`}
                          onClick={() => expand(r.id)}
                        >
                          {expanded.has(r.id) ? '▾' : '▸'} {children}
                        </button>
                      )}
                    </td>
                    <td className="c-job">
                      <a className="quiet" href={href('/runs', { job: r.job })}>
                        {r.job}
                      </a>
                    </td>
                    <td className="ellipsis c-subject" title={r.subject ?? undefined}>
                      {r.subject ?? <span className="muted">—</span>}
                    </td>
                    <td className="hide-sm">{r.trigger ?? <span className="muted">—</span>}</td>
                    <td className="hide-sm" title={r.createdAt}>
                      {formatTime(r.createdAt)}
                    </td>
                    <td className="num c-dur">{formatDuration(runDurationMs(r, now))}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          {state.cursor && (
            <div className="more">
              <button type="button" onClick={() => void loadMore()} disabled={more}>
                {more ? 'Loading…' : 'Load more'}
              </button>
            </div>
          )}
        </>
      )}
    </section>
  );
}
