/** The library variants: everything goes through the public API (openLedger, run handles). */
import type { Ledger, RunHandle } from '../../src/core/types.js';
import type { Session, Variant } from '../lib/harness.js';
import { EVENTS_PER_LIFECYCLE, JOB, logBatch, nextLifecycle, outputOf, paramsOf, progressBody, subjectOf, TRIGGER } from './workload.js';

/** Lends a ledger to a session: a new pool per session on PostgreSQL, a long-lived instance on PGlite. */
export type LedgerSource = (
  concurrency: number,
) => Promise<{ ledger: Ledger; release(): Promise<void>; serverCpu?: () => Promise<Map<number, number>> }>;

/** A lifecycle through the library: startRun, `appendEvents(run)`, complete with output. */
export function lifecycleVariant(label: string, source: LedgerSource, appendEvents: (run: RunHandle) => Promise<unknown>): Variant {
  return {
    name: 'library',
    label,
    async open(concurrency) {
      const { ledger, release, serverCpu } = await source(concurrency);
      return {
        serverCpu,
        async op() {
          const n = nextLifecycle();
          const run = await ledger.startRun({ job: JOB, subject: subjectOf(n), trigger: TRIGGER, params: paramsOf(n) });
          await appendEvents(run);
          await run.complete({ output: outputOf(n) });
        },
        close: release,
      };
    },
  };
}

/** start (startRun), 3 × event, complete with output: five calls, as an application makes them. */
export function libraryLifecycle(label: string, source: LedgerSource): Variant {
  return lifecycleVariant(label, source, async (run) => {
    for (let step = 1; step <= EVENTS_PER_LIFECYCLE; step++) await run.event('progress', progressBody(step));
  });
}

/** run.events(batch) on one run per worker. */
export function libraryAppend(label: string, source: LedgerSource, batchSize: number): Variant {
  return {
    name: 'library',
    label,
    async open(concurrency): Promise<Session> {
      const { ledger, release, serverCpu } = await source(concurrency);
      const runs: RunHandle[] = [];
      const lines: number[] = [];
      for (let w = 0; w < concurrency; w++) {
        // A subject per run, as for the raw baseline's runs (sessions of one worker each must not share one).
        runs.push(await ledger.startRun({ job: JOB, subject: subjectOf(nextLifecycle()), trigger: TRIGGER }));
        lines.push(0);
      }
      return {
        serverCpu,
        async op(w) {
          await runs[w].events(logBatch(batchSize, lines[w]));
          lines[w] += batchSize;
        },
        close: release,
      };
    },
  };
}
