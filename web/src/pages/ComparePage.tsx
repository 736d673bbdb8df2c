/** Compare: two or more runs side by side, only the params, statistics and output that differ. */
import { useState } from 'react';

import { api, type Json, type Run } from '../api';
import { Empty, ErrorState, Loading } from '../components/States';
import { StatusBadge } from '../components/Status';
import { formatDuration, formatTime, runDurationMs, shortId } from '../format';
import { useAsync } from '../hooks';
import { diffFields } from '../logic';
import { href, navigate, type Route, runHref } from '../router';

function Cell({ value }: { value: Json | undefined }) {
  if (value === undefined) return <span className="muted">absent</span>;
  return <code className="break">{typeof value === 'string' ? value : JSON.stringify(value)}</code>;
}

function DiffSection({ title, runs, pick }: { title: string; runs: Run[]; pick: (r: Run) => Json | null }) {
  const { rows, same } = diffFields(runs.map(pick));
  return (
    <section className="card" aria-label={`${title} differences`}>
      <h2>
        {title}{' '}
        <span className="muted small">
          {rows.length} differ{rows.length === 1 ? 's' : ''}
          {same ? `, ${same} identical hidden` : ''}
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
                <tr key={row.path} data-field={row.path}>
                  <th scope="row" className="mono">
                    {row.path}
                  </th>
                  {row.values.map((v, i) => (
                    <td key={i}>
                      <Cell value={v} />
                    </td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

export function ComparePage({ route }: { route: Route }) {
  const ns = route.namespace;
  const idsParam = route.query.get('ids') ?? '';
  const ids = [...new Set(idsParam.split(/[\s,]+/).filter(Boolean))];
  const [draft, setDraft] = useState(ids.join(', '));
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
          <DiffSection title="Params" runs={runs.data} pick={(r) => r.params} />
          <DiffSection title="Statistics" runs={runs.data} pick={(r) => r.statistics} />
          <DiffSection title="Output" runs={runs.data} pick={(r) => r.output} />
        </>
      )}
    </section>
  );
}
