/**
 * Prometheus metrics (prom-client), one registry per server so that several servers in
 * one process (tests) do not share counters. Run counts come from the ledger's change
 * feed, so they include runs timed out by this process's reaper.
 */
import { Counter, Histogram, Registry } from 'prom-client';

import { isTerminal } from '../core/status.js';
import type { ReapResult, RunStatus } from '../core/types.js';
import type { ChangeNotice } from '../ledger/context.js';

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
