/**
 * Compare: two or more runs side by side. Params, statistics and output show the fields that
 * differ (a toggle shows the identical ones too); a value that differs from the first run's is
 * highlighted, with its change when both are numbers; numeric statistics are drawn as bars.
 */
import { useState } from 'react';

import { api, type Json, type Run } from '../api';
import { Empty, ErrorState, Loading } from '../components/States';
import { StatusBadge } from '../components/Status';
import { formatDuration, formatTime, runDurationMs, shortId } from '../format';
import { useAsync } from '../hooks';
import { diffFields, type DiffRow, numericDelta } from '../logic';
import { href, navigate, type Route, runHref } from '../router';

function Cell({ value }: { value: Json | undefined }) {
  if (value === undefined) return <span className="muted">absent</span>;
  return <code className="break">{typeof value === 'string' ? value : JSON.stringify(value)}</code>;
}

function DiffSection({ title, runs, pick, showSame }: { title: string; runs: Run[]; pick: (r: Run) => Json | null; showSame: boolean }) {
  const { rows: differing, same, identical } = diffFields(runs.map(pick));
  const rows: (DiffRow & { same: boolean })[] = [
    ...differing.map((r) => ({ ...r, same: false })),
    ...(showSame ? identical.map((r) => ({ ...r, same: true })) : []),
  ].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return (
    <section className="card" aria-label={`${title} differences`}>
      <h2>
        {title}{' '}
        <span className="muted small">
          {differing.length} differ{differing.length === 1 ? 's' : ''}
          {same ? `, ${same} identical${showSame ? '' : ' hidden'}` : ''}
        </span>
      </h2>
      {rows.length === 0 ? (
        <p className="muted">{same ? `All ${same} fields are the same.` : 'None of these runs has any.'}</p>
      ) : (
        <div className="table-wrap">
          <table className="compare-table">
            <thead>
              <tr>
                <th scope="col">Field</th>
                {runs.map((r) => (
                  <th key={r.id} scope="col" className="mono">
                    {shortId(r.id)}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {rows.map((row) => (
                <tr key={row.path} data-field={row.path} className={row.same ? 'row-same' : undefined}>
                  <th scope="row" className="mono">
                    {row.path}
                  </th>
                  {row.values.map((v, i) => {
                    const differs = i > 0 && JSON.stringify(v) !== JSON.stringify(row.values[0]);
                    const delta = i > 0 ? numericDelta(row.values[0], v) : null;
                    return (
                      <td key={i} className={differs ? 'differs' : undefined}>
                        <Cell value={v} />
                        {delta && <span className="delta"> {delta}</span>}
                      </td>
                    );
                  })}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

/** Each numeric statistic as one bar per run, scaled to the largest magnitude among them. */
function StatBars({ runs }: { runs: Run[] }) {
  const { rows, identical } = diffFields(runs.map((r) => r.statistics));
  const numeric = [...rows, ...identical]
    .filter((row) => row.values.some((v) => typeof v === 'number'))
    .sort((a, b) => (a.path < b.path ? -1 : 1));
  if (!numeric.length) return null;
  return (
    <section className="card" aria-label="Statistics chart">
      <h2>Numeric statistics</h2>
      <div className="stat-bars">
        {numeric.map((row) => {
          const max = Math.max(...row.values.map((v) => (typeof v === 'number' ? Math.abs(v) : 0))) || 1;
          return (
            <figure key={row.path} className="stat-bar-group" data-stat={row.path}>
              <figcaption className="mono">{row.path}</figcaption>
              {row.values.map((v, i) => (
                <div key={runs[i]!.id} className="stat-bar-row">
                  <span className="mono muted stat-bar-run">{shortId(runs[i]!.id)}</span>
                  <span className="stat-bar-track">
                    {typeof v === 'number' && (
                      <span className={`stat-bar run-${i % 6}`} style={{ width: `${(Math.abs(v) / max) * 100}%` }} />
                    )}
                  </span>
                  <span className="num stat-bar-value">{typeof v === 'number' ? v : '—'}</span>
                </div>
              ))}
            </figure>
          );
        })}
      </div>
    </section>
  );
}

export function ComparePage({ route }: { route: Route }) {
  const ns = route.namespace;
  const idsParam = route.query.get('ids') ?? '';
  const ids = [...new Set(idsParam.split(/[\s,]+/).filter(Boolean))];
  const [draft, setDraft] = useState(ids.join(', '));
  const [showSame, setShowSame] = useState(false);
  const [shown, setShown] = useState(idsParam);
  if (shown !== idsParam) {
    setShown(idsParam);
    setDraft(ids.join(', '));
  }
  const runs = useAsync(() => Promise.all(ids.map((id) => api.getRun(ns, id))), [ns, ids.join(',')]);

  return (
    <section aria-labelledby="compare-title">
      <div className="page-head">
        <h1 id="compare-title">Compare runs</h1>
      </div>
      <form
        className="filters"
        onSubmit={(e) => {
          e.preventDefault();
          const list = draft.split(/[\s,]+/).filter(Boolean);
          navigate(href('/compare', { ids: list.join(',') }));
        }}
      >
        <div className="field grow">
          <label htmlFor="compare-ids">Run ids (two or more, separated by commas or spaces)</label>
          <input id="compare-ids" value={draft} onChange={(e) => setDraft(e.target.value)} spellCheck={false} />
        </div>
        <div className="filter-actions">
          <button type="submit" className="primary">
            Compare
          </button>
        </div>
      </form>
      {ids.length < 2 ? (
        <Empty title="Pick two or more runs">
          <p>
            Tick runs on the <a href={href('/runs')}>runs page</a> and choose “Compare selected”, or paste their ids above.
          </p>
        </Empty>
      ) : runs.error ? (
        <ErrorState error={runs.error} onRetry={runs.reload} />
      ) : !runs.data ? (
        <Loading what="Loading runs" />
      ) : (
        <>
          <section className="card" aria-label="Runs compared">
            <div className="table-wrap">
              <table className="compare-table">
                <thead>
                  <tr>
                    <th scope="col">Run</th>
                    {runs.data.map((r) => (
                      <th key={r.id} scope="col" className="mono">
                        <a href={runHref(r.id)} title={r.id}>
                          {shortId(r.id)}
                        </a>
                      </th>
                    ))}
                  </tr>
                </thead>
                <tbody>
                  {(
                    [
                      ['Status', (r: Run) => <StatusBadge status={r.status} suspect={r.suspect} />],
                      ['Job', (r: Run) => r.job],
                      ['Subject', (r: Run) => r.subject ?? '—'],
                      ['Trigger', (r: Run) => r.trigger ?? '—'],
                      ['Created', (r: Run) => formatTime(r.createdAt)],
                      ['Duration', (r: Run) => formatDuration(runDurationMs(r))],
                    ] as const
                  ).map(([label, f]) => (
                    <tr key={label}>
                      <th scope="row">{label}</th>
                      {runs.data!.map((r) => (
                        <td key={r.id}>{f(r)}</td>
                      ))}
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          </section>
          <label className="field inline">
            <input type="checkbox" checked={showSame} onChange={(e) => setShowSame(e.target.checked)} />
            Show identical fields
          </label>
          <DiffSection title="Params" runs={runs.data} pick={(r) => r.params} showSame={showSame} />
          <DiffSection title="Statistics" runs={runs.data} pick={(r) => r.statistics} showSame={showSame} />
          <StatBars runs={runs.data} />
          <DiffSection title="Output" runs={runs.data} pick={(r) => r.output} showSame={showSame} />
        </>
      )}
    </section>
  );
}
