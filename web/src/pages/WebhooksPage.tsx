/** Webhooks: the namespace's subscriptions and, for each, its recent deliveries with every attempt. */
import { useState } from 'react';

import { api, type Delivery, type Webhook } from '../api';
import { Empty, ErrorState, Loading } from '../components/States';
import { formatTime, timeAgo } from '../format';
import { useAsync, useNow } from '../hooks';
import type { Route } from '../router';

const POLL_MS = 5000;

function answerOf(d: Delivery): string {
  const last = d.log[0];
  if (!last) return 'not attempted yet';
  return last.statusCode !== null ? `HTTP ${last.statusCode}` : (last.error ?? 'no answer');
}

function Deliveries({ ns, hook }: { ns: string; hook: Webhook }) {
  const now = useNow(5000);
  const list = useAsync(() => api.webhookDeliveries(ns, hook.id), [ns, hook.id], POLL_MS);
  if (list.error) return <ErrorState error={list.error} onRetry={list.reload} />;
  if (!list.data) return <Loading what="Loading deliveries" />;
  if (!list.data.length) return <p className="muted small">No deliveries yet: changes recorded from now on are delivered here.</p>;
  return (
    <div className="table-wrap">
      <table className="deliveries">
        <caption className="sr-only">Recent deliveries to {hook.url}, newest first</caption>
        <thead>
          <tr>
            <th scope="col">Change</th>
            <th scope="col">Type</th>
            <th scope="col">State</th>
            <th scope="col">Attempts</th>
            <th scope="col">Last answer</th>
            <th scope="col">When</th>
          </tr>
        </thead>
        <tbody>
          {list.data.map((d) => (
            <tr key={d.changeId} data-change={d.changeId} className={`delivery-${d.state}`}>
              <td className="mono">{d.changeId}</td>
              <td>{d.type}</td>
              <td>
                <span className={`badge ${d.state === 'delivered' ? 'good' : d.state === 'failed' ? 'bad' : 'suspect'}`}>{d.state}</span>
              </td>
              <td title={d.log.map((a) => `#${a.attempt} ${formatTime(a.at)}: ${a.statusCode ?? a.error} (${a.durationMs} ms)`).join('\n')}>
                {d.attempts}
              </td>
              <td className="small">{answerOf(d)}</td>
              <td className="small" title={formatTime(d.finishedAt ?? d.log[0]?.at ?? d.createdAt)}>
                {d.state === 'pending' && d.nextAt
                  ? `next ${formatTime(d.nextAt)}`
                  : timeAgo(d.finishedAt ?? d.log[0]?.at ?? d.createdAt, now)}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

export function WebhooksPage({ route }: { route: Route }) {
  const ns = route.namespace;
  const hooks = useAsync(() => api.listWebhooks(ns), [ns], POLL_MS);
  const [open, setOpen] = useState<string | null>(null);
  if (hooks.error) return <ErrorState error={hooks.error} onRetry={hooks.reload} />;
  if (!hooks.data) return <Loading what="Loading webhooks" />;
  return (
    <section aria-labelledby="webhooks-title">
      <h1 id="webhooks-title">Webhooks</h1>
      {!hooks.data.length ? (
        <Empty title="No webhooks in this namespace">
          <p>
            Add one with <code>runledger webhooks add https://hooks.example.com/runledger --types run.finished</code>.
          </p>
        </Empty>
      ) : (
        <ul className="webhooks">
          {hooks.data.map((w) => (
            <li key={w.id} className="webhook" data-webhook={w.id}>
              <div className="webhook-head">
                <button
                  type="button"
                  className="link-button"
                  aria-expanded={open === w.id}
                  onClick={() => setOpen(open === w.id ? null : w.id)}
                >
                  {w.url}
                </button>
                {w.disabledAt ? (
                  <span className="badge bad" title={w.disabledReason ?? undefined}>
                    disabled
                  </span>
                ) : (
                  <span className="badge good">enabled</span>
                )}
                {w.failed > 0 && <span className="badge bad">{w.failed} failed</span>}
                {w.pending > 0 && <span className="badge suspect">{w.pending} pending</span>}
              </div>
              <p className="muted small">
                {w.id} · {w.types.join(', ')}
                {w.job ? ` · job ${w.job}` : ''}
                {w.description ? ` · ${w.description}` : ''}
              </p>
              {open === w.id && <Deliveries ns={ns} hook={w} />}
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
