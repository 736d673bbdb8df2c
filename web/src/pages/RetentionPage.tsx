/** Retention: the namespace's rules (how long finished runs are kept), read-only; set with `runledger retention set`. */
import { api } from '../api';
import { Empty, ErrorState, Loading } from '../components/States';
import { formatTime } from '../format';
import { useAsync } from '../hooks';
import type { Route } from '../router';

export function RetentionPage({ route }: { route: Route }) {
  const ns = route.namespace;
  const rules = useAsync(() => api.getRetention(ns), [ns]);
  if (rules.error) return <ErrorState error={rules.error} onRetry={rules.reload} />;
  if (!rules.data) return <Loading what="Loading retention rules" />;
  const list = rules.data.rules;
  return (
    <section aria-labelledby="retention-title">
      <h1 id="retention-title">Retention</h1>
      <p className="muted">
        Finished runs older than their rule are pruned with their events and checkpoints — never a live run, a subject&apos;s current run or
        one of its newest kept runs — and leave a tombstone with their final chain head. A job&apos;s own rule wins over the default. Set
        rules with <code>runledger retention set --keep-days N [--job J] [--keep-last-per-subject N]</code>.
      </p>
      {!list.length ? (
        <Empty title="No retention rules">
          <p>Runs in this namespace are kept for ever.</p>
        </Empty>
      ) : (
        <div className="table-wrap">
          <table className="retention-rules">
            <caption className="sr-only">Retention rules of namespace {ns}</caption>
            <thead>
              <tr>
                <th scope="col">Job</th>
                <th scope="col">Keep days</th>
                <th scope="col">Keep newest per subject</th>
                <th scope="col">Updated</th>
              </tr>
            </thead>
            <tbody>
              {list.map((r) => (
                <tr key={r.job ?? ''}>
                  <td>{r.job ?? <em>default (every other job)</em>}</td>
                  <td>{r.keepDays}</td>
                  <td>{r.keepLastPerSubject}</td>
                  <td>{formatTime(r.updatedAt)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
