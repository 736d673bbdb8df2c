/**
 * The last line of defence when PGlite meets a full disk despite the reserve (free-space.ts):
 * a WAL write that fails wedges its WASM instance in a loop, synchronously, on the main
 * thread — no request answers, no timer runs, SIGTERM is never handled. A worker thread
 * watches: when the main thread has been inside PGlite's WASM without a heartbeat for
 * WEDGE_MS and the disk is (nearly) full, it ends that execution through the inspector
 * (Runtime.terminateExecution, which unwinds the WASM and leaves the event loop running) and
 * tells the adapter, which fails the stuck call and every later one: the instance is broken
 * until the process restarts, but the server answers, /readyz says why, and SIGTERM works.
 * Nothing acknowledged is lost: a commit is acknowledged only after its WAL is flushed.
 */
import { Worker } from 'node:worker_threads';

/** How long the main thread may sit in PGlite's WASM, without a heartbeat, on a full disk. */
const WEDGE_MS = 10_000;
const HEARTBEAT_MS = 250;

// Runs in the worker (CommonJS, eval'd): polls the shared state once a second.
const WORKER = `
const { workerData, parentPort } = require('node:worker_threads');
const { statfsSync } = require('node:fs');
const { Session } = require('node:inspector');
const state = new Float64Array(workerData.shared);
const timer = setInterval(() => {
  if (state[1] !== 1 || Date.now() - state[0] < workerData.wedgeMs) return;
  let free;
  try {
    const s = statfsSync(workerData.dataDir);
    free = s.bavail * s.bsize;
  } catch {
    return;
  }
  if (free >= workerData.fullBelow) return;
  clearInterval(timer);
  const session = new Session();
  session.connectToMainThread();
  session.post('Runtime.terminateExecution');
  // Delivered once the main thread's event loop runs again, that is once the WASM has unwound.
  parentPort.postMessage({ free });
}, 1000);
`;

export interface Watchdog {
  /** Marks the main thread as inside PGlite's WASM (or out of it). */
  inWasm(on: boolean): void;
  stop(): void;
}

/** Starts watching; `onWedged` runs (on the main thread) after a wedged execution was ended. */
export function startWatchdog(opts: { dataDir: string; fullBelow: number; onWedged: (free: number) => void }): Watchdog {
  // [0] the main thread's last heartbeat (ms), [1] 1 while inside PGlite's WASM.
  const shared = new SharedArrayBuffer(16);
  const state = new Float64Array(shared);
  state[0] = Date.now();
  const beat = setInterval(() => (state[0] = Date.now()), HEARTBEAT_MS);
  beat.unref();
  const worker = new Worker(WORKER, {
    eval: true,
    workerData: { shared, dataDir: opts.dataDir, fullBelow: opts.fullBelow, wedgeMs: WEDGE_MS },
  });
  worker.unref();
  worker.on('message', (m: { free: number }) => {
    state[1] = 0;
    opts.onWedged(m.free);
  });
  // A watchdog that cannot run (no inspector in this build) must not take the store down.
  worker.on('error', () => {});
  return {
    inWasm(on) {
      state[1] = on ? 1 : 0;
      if (on) state[0] = Date.now();
    },
    stop() {
      clearInterval(beat);
      void worker.terminate();
    },
  };
}
