/**
 * Prometheus metrics (prom-client), one registry per server so that several servers in
 * one process (tests) do not share counters. Run counts come from the ledger's change
 * feed, so they include runs timed out by this process's reaper.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

import { isTerminal, LIVE_STATUSES } from '../core/status.js';
import type { ReapResult, RunStatus } from '../core/types.js';
import type { AttemptOutcome } from '../core/webhooks.js';
import type { ChangeNotice } from '../ledger/context.js';
import { leasePassed, LIVE_SQL, RENEWABLE_SQL } from '../ledger/sql/fragments.js';
import { oldestUndeliveredAgeS } from '../ledger/webhooks.js';
import type { Queryable } from '../store/database.js';

/** At most this many (namespace, job) series of overdue subjects; the rest are summed in one `_other` series. */
export const OVERDUE_SERIES = 50;

export class ServerMetrics {
  readonly registry = new Registry();
  private readonly runsStarted = new Counter({
    name: 'runledger_runs_started_total',
    help: 'Runs created by this process, by initial status',
    labelNames: ['status'],
    registers: [this.registry],
  });
  private readonly runsFinished = new Counter({
    name: 'runledger_runs_finished_total',
    help: 'Runs that reached a terminal status through this process, by status',
    labelNames: ['status'],
    registers: [this.registry],
  });
  private readonly eventsAppended = new Counter({
    name: 'runledger_events_appended_total',
    help: 'Events appended through POST /v1/runs/{id}/events (duplicates excluded)',
    registers: [this.registry],
  });
  private readonly requestDuration = new Histogram({
    name: 'runledger_http_request_duration_seconds',
    help: 'HTTP request latency',
    labelNames: ['method', 'route', 'status_code'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  private readonly reaperActions = new Counter({
    name: 'runledger_reaper_actions_total',
    help: 'Reaper actions by this process: runs flagged suspect and runs timed out',
    labelNames: ['action'],
    registers: [this.registry],
  });
  private readonly reaperRuns = new Counter({
    name: 'runledger_reaper_runs_total',
    help: 'Reaper passes by this process, by whether it held the lock',
    labelNames: ['acquired'],
    registers: [this.registry],
  });

  private readonly webhookAttempts = new Counter({
    name: 'runledger_webhook_deliveries_total',
    help: 'Webhook delivery attempts made by this process, by outcome (delivered, retry, failed: schedule used up, disabled: the receiver answered 410)',
    labelNames: ['outcome'],
    registers: [this.registry],
  });

  /**
   * Gauges read from the database at scrape time, over every namespace: what an operator
   * alerts on. Cardinality is bounded: live runs by status (3 series), suspect runs (1),
   * overdue subjects by (namespace, job) for the OVERDUE_SERIES most overdue jobs.
   */
  watch(db: Queryable, now: () => Date): void {
    new Gauge({
      name: 'runledger_live_runs',
      help: 'Runs not yet finished (submitted, running, retrying), all namespaces',
      labelNames: ['status'],
      registers: [this.registry],
      async collect() {
        const { rows } = await db.query<{ status: string; n: number }>(
          `select status, count(*)::int as n from runs where status in ${LIVE_SQL} group by status`,
        );
        this.reset();
        for (const status of LIVE_STATUSES) this.set({ status }, rows.find((r) => r.status === status)?.n ?? 0);
      },
    });
    new Gauge({
      name: 'runledger_suspect_runs',
      help: 'Live runs that went more than one lease without a heartbeat, all namespaces',
      registers: [this.registry],
      async collect() {
        const { rows } = await db.query<{ n: number }>(
          `select count(*)::int as n from runs
            where status in ${RENEWABLE_SQL} and lease_s is not null
              and (suspect or ${leasePassed('$1', 1)})`,
          [now()],
        );
        this.set(rows[0].n);
      },
    });
    new Gauge({
      name: 'runledger_overdue_subjects',
      help: `Subjects past their expected slot plus grace, by namespace and job (a job watched as a whole counts once; beyond ${OVERDUE_SERIES} jobs the rest are summed as namespace and job _other)`,
      labelNames: ['namespace', 'job'],
      registers: [this.registry],
      async collect() {
        const { rows } = await db.query<{ namespace: string; job: string; n: number }>(
          `select namespace, job, count(*)::int as n from (
             select namespace, job from subject_status where overdue_at <= $1
             union all
             select namespace, job from expectations where overdue_at <= $1) o
           group by namespace, job order by n desc, namespace, job`,
          [now()],
        );
        this.reset();
        let other = 0;
        rows.forEach((r, i) => {
          if (i < OVERDUE_SERIES) this.set({ namespace: r.namespace, job: r.job }, r.n);
          else other += r.n;
        });
        if (other) this.set({ namespace: '_other', job: '_other' }, other);
      },
    });
    new Gauge({
      name: 'runledger_webhook_oldest_undelivered_seconds',
      help: 'Age of the oldest change an enabled webhook still waits for (pending, or not yet fanned out), all namespaces; 0 when none. Alert on it',
      registers: [this.registry],
      async collect() {
        this.set(await oldestUndeliveredAgeS(db, now()));
      },
    });
  }

  webhookAttempt(outcome: AttemptOutcome): void {
    this.webhookAttempts.inc({ outcome });
  }

  runCreated(status: RunStatus): void {
    this.runsStarted.inc({ status });
  }
  change(notice: ChangeNotice): void {
    if (notice.status && isTerminal(notice.status as RunStatus)) this.runsFinished.inc({ status: notice.status });
  }
  eventsAdded(n: number): void {
    if (n > 0) this.eventsAppended.inc(n);
  }
  request(method: string, route: string, statusCode: number, seconds: number): void {
    this.requestDuration.observe({ method, route, status_code: String(statusCode) }, seconds);
  }
  reaped(result: ReapResult): void {
    this.reaperRuns.inc({ acquired: String(result.acquired) });
    if (result.suspected.length) this.reaperActions.inc({ action: 'suspected' }, result.suspected.length);
    if (result.timedOut.length) this.reaperActions.inc({ action: 'timed_out' }, result.timedOut.length);
  }
}
