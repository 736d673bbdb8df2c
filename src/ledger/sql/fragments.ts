/**
 * SQL fragments that several statements share, defined once: which statuses are live, and
 * when a run's lease was last renewed. A statement that spelled them out itself could drift
 * from the others (a status added to one list and not another).
 */
import { LIVE_STATUSES, RENEWABLE_STATUSES } from '../../core/status.js';

const list = (values: readonly string[]) => `(${values.map((v) => `'${v}'`).join(', ')})`;

/** `('submitted', 'running', 'retrying')`: not finished yet. */
export const LIVE_SQL = list(LIVE_STATUSES);

/** `('running', 'retrying')`: the statuses whose lease a heartbeat, event or checkpoint renews. */
export const RENEWABLE_SQL = list(RENEWABLE_STATUSES);

/** When the lease of the run aliased `r` was last renewed (a run never heartbeated counts from its start). */
export const renewedAt = (r?: string) => {
  const p = r ? `${r}.` : '';
  return `coalesce(${p}heartbeat_at, ${p}started_at, ${p}created_at)`;
};

/** True when `leases` leases have passed since the run's last renewal, at time `now` (an SQL expression). */
export const leasePassed = (now: string, leases: 1 | 2, r?: string) =>
  `${renewedAt(r)} + make_interval(secs => ${leases === 1 ? '' : '2 * '}${r ? `${r}.` : ''}lease_s) < ${now}`;
