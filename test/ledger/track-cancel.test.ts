/**
 * Cancellation reaches the worker: `track()` hands `fn` an AbortSignal (`run.signal`)
 * that aborts when the run is cancelled elsewhere. In process the ledger's change notices
 * abort it at once; over HTTP the heartbeat's refusal (409 run_finished, naming the
 * status) does. track() then neither fails nor completes the run: it stays cancelled.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createClient, type OpenedLedger, type RunningServer, startServer, type TrackedRun } from '../../src/index.js';
import { dropSchemas, freshStore } from '../helpers.js';

let ledger: OpenedLedger;
let server: RunningServer;

beforeAll(async () => {
  ledger = await freshStore();
  server = await startServer({ ledger, port: 0, auth: 'off', reapIntervalS: 0, logger: false, webRoot: false });
});
afterAll(async () => {
  await server?.close();
  await ledger?.close();
  await dropSchemas();
});

/** Work that runs until its signal aborts, then rejects with the abort reason. */
function untilAborted(run: TrackedRun, started: (id: string) => void): Promise<never> {
  started(run.id);
  return new Promise((_, reject) => {
    run.signal.addEventListener('abort', () => reject(run.signal.reason), { once: true });
  });
}

describe('track() and cancellation', () => {
  it('in process: a cancel through another handle aborts run.signal; the run stays cancelled', async () => {
    let id = '';
    const tracked = ledger.track({ job: 'cancel-lib', leaseS: 60 }, (run) =>
      untilAborted(run, (x) => {
        id = x;
        // Cancelled from elsewhere (another handle, as the dashboard or the CLI would).
        setImmediate(() => void ledger.run(x).cancel({ reason: 'operator' }));
      }),
    );
    const err = await tracked.then(
      () => null,
      (e: unknown) => e as { code?: string; message?: string },
    );
    expect(err?.code).toBe('run_finished');
    expect(err?.message).toContain('cancelled');
    const run = await ledger.getRun(id);
    expect(run.status).toBe('cancelled');
    expect(run.error?.message).toBe('operator');
  });

  it('over HTTP: the heartbeat answer carries the status, and the client aborts run.signal', async () => {
    const worker = createClient({ baseUrl: server.url });
    const operator = createClient({ baseUrl: server.url });
    let id = '';
    const aborted = new Promise<string>((resolve) => {
      void worker
        .track({ job: 'cancel-http', leaseS: 30, heartbeatEveryS: 0.2 }, (run) =>
          untilAborted(run, (x) => {
            id = x;
            run.signal.addEventListener('abort', () => resolve((run.signal.reason as Error).message));
            void operator.run(x).cancel({ reason: 'from the dashboard' });
          }),
        )
        .catch(() => {});
    });
    expect(await aborted).toContain('cancelled');
    // The heartbeat's refusal names the status.
    const res = await fetch(`${server.url}/v1/runs/${id}/heartbeat`, { method: 'POST' });
    expect(res.status).toBe(409);
    expect(await res.json()).toMatchObject({ code: 'run_finished', errors: [{ field: 'status', status: 'cancelled' }] });
    expect((await operator.getRun(id)).status).toBe('cancelled');
    await worker.close();
    await operator.close();
  });

  it('a run that is not cancelled completes as before and its signal never aborts', async () => {
    let signal: AbortSignal | undefined;
    const value = await ledger.track({ job: 'cancel-none' }, (run) => {
      signal = run.signal;
      return 42;
    });
    expect(value).toBe(42);
    expect(signal?.aborted).toBe(false);
  });
});
