/**
 * The measuring loop shared by every benchmark module: N workers call `op` back to back,
 * first for a warm-up (connections, JIT, plan caches), then for a fixed measured window.
 * Throughput is the number of calls that completed inside the window divided by its length.
 */

/** One opened variant: what a worker calls, and how to let go of the resources. */
export interface Session {
  /** One unit of work (a run lifecycle, a batch of events…) by worker `worker`. */
  op(worker: number): Promise<void>;
  close(): Promise<void>;
  /** CPU time (ms) used so far by each server process (by pid) serving this session, if observable. */
  serverCpu?(): Promise<Map<number, number>>;
}

export interface Variant {
  /** Short key used in ratios (`library`, `raw`, `pg-boss`). */
  name: string;
  /** What the table shows. */
  label: string;
  /** Opens the variant for `concurrency` workers (pools, prepared runs…); not measured. */
  open(concurrency: number): Promise<Session>;
}

export interface RatioSpec {
  numerator: string;
  denominator: string;
  /** The target for numerator/denominator, if any. */
  target?: number;
}

/** Variants measured side by side on the same workload; ratios are taken between them. */
export interface Comparison {
  id: string;
  title: string;
  /** What one op counts for: `lifecycles/s`, `events/s`. */
  unit: string;
  /** Units per op (events per batch); 1 for lifecycles. */
  unitsPerOp: number;
  variants: Variant[];
  ratios: RatioSpec[];
}

export interface Settings {
  concurrency: number;
  warmupMs: number;
  durationMs: number;
  repeats: number;
}

export interface Measurement {
  ops: number;
  seconds: number;
  /** CPU time of this process during the measured window (ms). */
  clientCpuMs: number;
  /** CPU time of the session's server processes during the window (ms), when observable. */
  serverCpuMs?: number;
  /** The part of serverCpuMs spent in application server processes (keys < 0), not the database. */
  appServerCpuMs?: number;
}

const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

/**
 * Runs `session.op` on `concurrency` workers: `warmupMs` unmeasured, then `durationMs` measured.
 * The window is read from the clock between ops rather than set with timers: PGlite answers
 * through microtasks only, so a loop over it would starve a setTimeout for ever. Server CPU
 * is sampled by timers, which only sessions on a network connection (PostgreSQL) offer.
 */
export async function measure(session: Session, concurrency: number, warmupMs: number, durationMs: number): Promise<Measurement> {
  const warmEnd = performance.now() + warmupMs;
  const end = warmEnd + durationMs;
  let ops = 0;
  let stopped = false;
  let clientStart: number | undefined;
  let clientEnd: number | undefined;
  const worker = async (w: number) => {
    try {
      while (!stopped && performance.now() < end) {
        await session.op(w);
        const done = performance.now();
        if (done >= warmEnd && done < end) {
          clientStart ??= cpuMs();
          ops++;
        } else if (done >= end) clientEnd ??= cpuMs();
      }
    } catch (err) {
      stopped = true; // a failing op ends the measurement for every worker
      throw err;
    }
  };
  // Server CPU: sampled every 250 ms through the window, so that a connection that closes
  // inside it (pools renew connections) still counts up to its last sample; a connection
  // opened inside the window counts from zero.
  const perPid = new Map<number, { first: number; last: number }>();
  let sampling = false;
  const sampleOnce = async (inWindow: boolean) => {
    const m = await session.serverCpu!().catch(() => undefined);
    if (!m) return;
    sampling = true;
    for (const [pid, ms] of m) {
      const seen = perPid.get(pid);
      if (seen) seen.last = ms;
      else perPid.set(pid, { first: inWindow ? 0 : ms, last: ms });
    }
  };
  const server = session.serverCpu
    ? (async () => {
        await new Promise((r) => setTimeout(r, Math.max(0, warmEnd - performance.now())));
        await sampleOnce(false);
        while (performance.now() < end) {
          await new Promise((r) => setTimeout(r, Math.min(250, Math.max(0, end - performance.now()))));
          await sampleOnce(true);
        }
      })()
    : undefined;
  // Let in-flight ops finish before the caller closes the session.
  const outcomes = await Promise.allSettled(Array.from({ length: concurrency }, (_, w) => worker(w)));
  const rejected = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected');
  if (rejected) throw rejected.reason;
  await server;
  const cpuOf = (keep: (pid: number) => boolean) =>
    sampling ? [...perPid].filter(([pid]) => keep(pid)).reduce((sum, [, c]) => sum + c.last - c.first, 0) : undefined;
  const serverCpuMs = cpuOf(() => true);
  // Application servers (bench/http) are keyed by their negated pid; database backends by pid.
  const appServerCpuMs = [...perPid.keys()].some((pid) => pid < 0) ? cpuOf((pid) => pid < 0) : undefined;
  return {
    ops,
    seconds: durationMs / 1000,
    clientCpuMs: (clientEnd ?? cpuMs()) - (clientStart ?? cpuMs()),
    ...(serverCpuMs !== undefined ? { serverCpuMs } : {}),
    ...(appServerCpuMs !== undefined ? { appServerCpuMs } : {}),
  };
}

export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}
