/**
 * track(): run a function as a run. Works on any `Ledger` (in process or over HTTP).
 * The run is started with a lease, heartbeated while `fn` runs, completed with its
 * return value or failed with the thrown error — never left running by user code.
 */
import { ValidationError } from '../core/errors.js';
import type { Json, Ledger, StartedRun, TrackOptions } from '../core/types.js';

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

export async function trackRun<T>(ledger: Ledger, opts: TrackOptions, fn: (run: StartedRun) => Promise<T> | T): Promise<T> {
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
  const run = await ledger.startRun({ ...start, leaseS });
  const everyMs = (heartbeatEveryS ?? leaseS / 3) * 1000;
  const timer = setInterval(() => {
    // A failed heartbeat is retried on the next tick; the lease tolerates one miss.
    run.heartbeat().catch(() => {});
  }, everyMs);
  timer.unref();
  let value: T;
  try {
    value = await fn(run);
  } catch (err) {
    clearInterval(timer);
    await run.fail({ error: errorOf(err) });
    throw err;
  }
  clearInterval(timer);
  try {
    await run.complete({ output: toJson(value) });
  } catch (err) {
    // The result could not be stored (e.g. not JSON): record that rather than leave it running.
    await run.fail({ error: errorOf(err) }).catch(() => {});
    throw err;
  }
  return value;
}
