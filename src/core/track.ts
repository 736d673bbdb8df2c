/**
 * track(): run a function as a run. Works on any `Ledger` (in process or over HTTP).
 * The run is started with a lease, heartbeated while `fn` runs, completed with its
 * return value or failed with the thrown error — never left running by user code.
 * `run.signal` aborts when the run is finished elsewhere (cancelled from the dashboard or
 * the CLI, timed out by the reaper): a heartbeat's refusal says so, and in process the
 * ledger's own change notices say so at once.
 */
import type { EventEmitter } from 'node:events';

import type { ChangeNotice } from './changes.js';
import { LedgerError, RunFinishedError, ValidationError } from './errors.js';
import { isTerminal } from './status.js';
import type { Json, Ledger, TrackedRun, TrackOptions } from './types.js';

const DEFAULT_LEASE_S = 60;

function errorOf(err: unknown) {
  if (err instanceof Error)
    return { type: err.name || 'Error', message: err.message || String(err), ...(err.stack ? { stack: err.stack } : {}) };
  return { type: 'thrown', message: typeof err === 'string' ? err : (JSON.stringify(err) ?? String(err)) };
}

/** JSON-safe copy of a return value (undefined → null, Dates → strings). */
function toJson(value: unknown): Json {
  return value === undefined ? null : (JSON.parse(JSON.stringify(value)) as Json);
}

export async function trackRun<T>(ledger: Ledger, opts: TrackOptions, fn: (run: TrackedRun) => Promise<T> | T): Promise<T> {
  // Checked before the run is started: a run must never be left running because of a bad call.
  if (typeof fn !== 'function')
    throw new ValidationError(
      `track(options, fn) needs fn, a function (run) => result, e.g. track({ job: 'x' }, async (run) => work(run)); got ${fn === undefined ? 'nothing' : typeof fn}`,
      [{ field: 'fn', message: 'not a function' }],
    );
  const every = opts?.heartbeatEveryS;
  if (every !== undefined && !(typeof every === 'number' && every > 0 && Number.isFinite(every)))
    throw new ValidationError(`heartbeatEveryS must be a number of seconds greater than 0; got ${JSON.stringify(every) ?? String(every)}`, [
      { field: 'heartbeatEveryS', message: 'not a positive number' },
    ]);
  const { heartbeatEveryS, ...start } = opts ?? ({} as TrackOptions);
  const leaseS = start.leaseS ?? DEFAULT_LEASE_S;
  const started = await ledger.startRun({ ...start, leaseS });
  const controller = new AbortController();
  const run = Object.defineProperty(started, 'signal', { value: controller.signal, enumerable: false }) as TrackedRun;
  const finishedElsewhere = (status: string) => {
    if (!controller.signal.aborted) controller.abort(new RunFinishedError(run.id, status, 'it was finished elsewhere; stop working on it'));
  };

  const everyMs = (heartbeatEveryS ?? leaseS / 3) * 1000;
  const timer = setInterval(() => {
    // A failed heartbeat is retried on the next tick; the lease tolerates one miss.
    run.heartbeat().catch((err: unknown) => {
      if (err instanceof LedgerError && err.code === 'run_finished') {
        const status = (err.details[0] as { status?: string } | undefined)?.status;
        finishedElsewhere(status ?? 'finished');
      }
    });
  }, everyMs);
  timer.unref();
  // In process, a cancel by anyone sharing this ledger is seen without waiting for a heartbeat.
  const notices = (ledger as unknown as { notices?: EventEmitter<{ change: [ChangeNotice] }> }).notices;
  const onNotice = (n: ChangeNotice) => {
    if (n.runId === run.id && n.namespace === ledger.namespace && isTerminal(n.status)) finishedElsewhere(n.status);
  };
  notices?.on('change', onNotice);
  const stop = () => {
    clearInterval(timer);
    notices?.off('change', onNotice);
  };

  let value: T;
  try {
    value = await fn(run);
  } catch (err) {
    stop();
    // Finished elsewhere: the run's verdict is already stored; only the caller needs to know.
    if (controller.signal.aborted) throw err;
    await run.fail({ error: errorOf(err) });
    throw err;
  }
  stop();
  if (controller.signal.aborted) throw controller.signal.reason;
  try {
    await run.complete({ output: toJson(value) });
  } catch (err) {
    // The result could not be stored (e.g. not JSON): record that rather than leave it running.
    await run.fail({ error: errorOf(err) }).catch(() => {});
    throw err;
  }
  return value;
}
