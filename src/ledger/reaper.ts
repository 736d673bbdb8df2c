/**
 * The reaper (docs/design.md, promise 7): flags runs past one lease as suspect and times out
 * runs past two leases or their deadline. One reaper acts at a time across all
 * processes (advisory lock); each timeout is conditional on the lease not having been
 * renewed since the reaper looked, so a live run is never timed out by a stale read.
 */
import { EventEmitter } from 'node:events';

import type { ReapResult, RunRef } from '../core/types.js';
import type { ChangeNotice, LedgerContext } from './context.js';
import { RUN_COLUMNS } from './rows.js';
import { insertChangesFrom, runChangeJson } from './sql/changes.js';
import { leasePassed, LIVE_SQL, RENEWABLE_SQL, renewedAt } from './sql/fragments.js';
import { foldRollupsSql, ROLLUP_PERIODS } from './sql/rollups.js';
import { transition } from './transition.js';

const BATCH = 500;

export async function reap(ctx: LedgerContext): Promise<ReapResult> {
  const now = ctx.now();
  // Change notices are held back until the transaction commits.
  const held: ChangeNotice[] = [];
  const holding = new EventEmitter<{ change: [ChangeNotice] }>().on('change', (n) => held.push(n));
  const result = await ctx.db.withTransaction(async (tx): Promise<ReapResult> => {
    const lock = await tx.query<{ ok: boolean }>(`select pg_try_advisory_xact_lock(hashtext(current_schema() || '.runledger.reap')) as ok`);
    if (!lock.rows[0].ok) return { acquired: false, suspected: [], timedOut: [] };

    // Step 1: past one lease → suspect (reversible: any renewal clears it), with a
    // run.suspect change per run flagged, in the same statement.
    const suspected = await tx.query<RunRef & { last_seq: number }>(
      `with s as (
         update runs r set suspect = true
          where status in ${RENEWABLE_SQL} and lease_s is not null and not suspect
            and ${leasePassed('$1', 1)}
         returning ${RUN_COLUMNS.replace(/(^|,)\s*(\w+)/g, '$1 r.$2')}
       ), chg as (${insertChangesFrom(`(select namespace, 'run.suspect' as type, $1::timestamptz as at, id as run_id, job, subject,
                                              json_build_object('run', ${runChangeJson('s')}) as data from s) c`)})
       select namespace, id, last_seq from s`,
      [now],
    );

    // Step 2: past two leases or the deadline → timed_out, each guarded by the renewal time seen here.
    const due = await tx.query<{ namespace: string; id: string; renewed: Date; lease_s: number | null; deadline_at: Date | null }>(
      `select namespace, id, ${renewedAt()} as renewed, lease_s, deadline_at from runs
        where status in ${LIVE_SQL}
          and ((lease_s is not null and status <> 'submitted' and ${leasePassed('$1', 2)})
               or deadline_at < $1)
        order by namespace, id limit $2`,
      [now, BATCH],
    );
    const timedOut: RunRef[] = [];
    for (const run of due.rows) {
      const overDeadline = run.deadline_at !== null && run.deadline_at < now;
      const error = overDeadline
        ? { type: 'deadline_exceeded', message: `run passed its deadline ${run.deadline_at!.toISOString()}` }
        : {
            type: 'lease_expired',
            message: `no heartbeat for ${Math.round((now.getTime() - run.renewed.getTime()) / 1000)}s (lease ${run.lease_s}s)`,
          };
      const runCtx: LedgerContext = {
        ...ctx,
        db: { ...ctx.db, query: tx.query.bind(tx) },
        namespace: run.namespace,
        changes: holding,
        writes: undefined, // on the reaper's own transaction
      };
      const row = await transition(runCtx, run.id, 'timeout', { error }, run.renewed);
      if (row) timedOut.push({ namespace: run.namespace, id: run.id });
    }
    for (const r of suspected.rows) held.push({ namespace: r.namespace, runId: r.id, lastSeq: r.last_seq, feed: true });
    return { acquired: true, suspected: suspected.rows.map((r) => ({ namespace: r.namespace, id: r.id })), timedOut };
  });
  for (const notice of held) ctx.changes.emit('change', notice);
  // The stats rollups' shards of past hours and days, folded into one row per key (so that
  // what stats() sums does not grow with concurrency). Its own statements, after the
  // reaper's transaction: they lock rollup rows only.
  if (result.acquired) for (const period of ROLLUP_PERIODS) await ctx.db.query(foldRollupsSql(period), [now]);
  return result;
}
