/**
 * `soak`: about a minute at a steady, open-loop rate against a real `runledger serve`
 * process, mixing creates, keyed event batches, heartbeats, completions, reads, lists
 * and live SSE tails. Reports throughput, p50/p99 latency per operation (measured from
 * the moment each operation was due, so a stalled server cannot hide its queue), SSE
 * delivery latency, errors, and the server's resident memory over time (flat or not).
 * Ends with `verify` over everything written. Not a test: figures for BENCHMARKS.md.
 *
 *   npm run bench -- soak                           # PostgreSQL and PGlite, 60 s each
 *   npm run bench -- soak --only soak/postgres
 *   RUNLEDGER_SOAK_SECONDS=120 RUNLEDGER_SOAK_RATE=400 npm run bench -- soak
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { createClient, type RunledgerClient } from '../src/index.js';
import { type BenchModule, type ModuleContext, selected } from './lib/module.js';
import { benchSchema, PG_URL } from './lib/postgres.js';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const SECONDS = Number(process.env.RUNLEDGER_SOAK_SECONDS ?? 60);
// A steady rate below what each backend sustains on a small machine (PGlite is one connection).
const RATES = { postgres: 200, pglite: 80 };
const rateOf = (backend: keyof typeof RATES) => Number(process.env.RUNLEDGER_SOAK_RATE ?? RATES[backend]);
const TAILS = 8;
const MAX_IN_FLIGHT = 64;
const LIVE_TARGET = 40;
const WARMUP_S = 5;

type Op = 'create' | 'events' | 'heartbeat' | 'complete' | 'getRun' | 'listRuns' | 'listEvents';
const MIX: [Op, number][] = [
  ['create', 11],
  ['events', 36],
  ['heartbeat', 6],
  ['complete', 11],
  ['getRun', 14],
  ['listRuns', 10],
  ['listEvents', 12],
];
const TOTAL_WEIGHT = MIX.reduce((s, [, w]) => s + w, 0);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function pick(): Op {
  let r = Math.random() * TOTAL_WEIGHT;
  for (const [op, w] of MIX) if ((r -= w) < 0) return op;
  return 'getRun';
}

function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

const ms = (n: number) => (Number.isNaN(n) ? '–' : n >= 100 ? `${n.toFixed(0)} ms` : `${n.toFixed(1)} ms`);

function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.once('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => res(port));
    });
  });
}

/** `runledger serve` as its own process, so that its memory is its own. */
async function startServer(storeArgs: string[]): Promise<{ url: string; child: ChildProcess; stop(): Promise<void> }> {
  const port = await freePort();
  const child = spawn(
    process.execPath,
    [
      '--import',
      join(REPO, 'node_modules', 'tsx', 'dist', 'loader.mjs'),
      join(REPO, 'src', 'cli', 'main.ts'),
      ...storeArgs,
      'serve',
      '--port',
      String(port),
      '--log-level',
      'warn',
      '--reap-interval-s',
      '5',
    ],
    { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const url = await new Promise<string>((res, rej) => {
    const timer = setInterval(() => {
      const m = /runledger listening on (http:\/\/\S+)/.exec(out);
      if (m) {
        clearInterval(timer);
        res(m[1]);
      }
    }, 20);
    child.once('exit', (code) => {
      clearInterval(timer);
      rej(new Error(`runledger serve exited (${code}) before listening:\n${out}`));
    });
  });
  return {
    url,
    child,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

interface SoakResult {
  environment: Record<string, string>;
}

/** One soak against one server. */
async function soakOnce(label: keyof typeof RATES, storeArgs: string[], log: ModuleContext['log']): Promise<SoakResult> {
  const RATE = rateOf(label);
  const server = await startServer(storeArgs);
  const client: RunledgerClient = createClient({ baseUrl: server.url, retries: 0 });
  const latencies = new Map<Op, number[]>(MIX.map(([op]) => [op, []]));
  const errors = new Map<string, number>();
  const live: string[] = [];
  const nextKey = new Map<string, number>();
  const acked = new Map<string, number>(); // `${run}#${seq}` → time acknowledged
  const delivery: number[] = [];
  const rss: { t: number; mb: number }[] = [];
  let sseEvents = 0;
  let completed = 0;
  let eventsAcked = 0;
  let backlogSkips = 0;
  let inFlight = 0;
  let runSeq = 0;
  let stopping = false;

  const fail = (what: string, err: unknown) => {
    const key = `${what}: ${(err as Error).message.slice(0, 120)}`;
    errors.set(key, (errors.get(key) ?? 0) + 1);
  };
  const randomLive = () => live[Math.floor(Math.random() * live.length)];

  // Runs an operation in flight, so that a completion never races an append to the same run.
  const busy = new Map<string, number>();
  const hold = async <T>(id: string, fn: () => Promise<T>): Promise<T> => {
    busy.set(id, (busy.get(id) ?? 0) + 1);
    try {
      return await fn();
    } finally {
      busy.set(id, busy.get(id)! - 1);
    }
  };

  async function runOp(op: Op): Promise<void> {
    // Keep about LIVE_TARGET runs live: creates and completions balance each other.
    if (op === 'create' && live.length >= LIVE_TARGET) op = 'complete';
    if (op !== 'create' && live.length < LIVE_TARGET / 2) op = 'create';
    if (op === 'complete') {
      const i = live.findIndex((id) => !busy.get(id));
      if (i < 0) op = 'getRun';
      else {
        const [id] = live.splice(i, 1);
        await client.run(id).complete({ output: { ok: true }, statistics: { events: nextKey.get(id) ?? 0 } });
        nextKey.delete(id);
        busy.delete(id);
        completed++;
        return;
      }
    }
    if (op === 'create') {
      const id = `soak-${label}-${++runSeq}`;
      await client.startRun({ id, job: `soak-${runSeq % 5}`, subject: `subject-${runSeq % 50}`, leaseS: 300, params: { n: runSeq } });
      live.push(id);
      nextKey.set(id, 0);
      return;
    }
    const id = randomLive();
    return hold(id, () => readOrWrite(op, id));
  }

  async function readOrWrite(op: Op, id: string): Promise<void> {
    switch (op) {
      case 'events': {
        const k = nextKey.get(id) ?? 0;
        nextKey.set(id, k + 5);
        const batch = Array.from({ length: 5 }, (_, i) => ({
          key: `e${k + i}`,
          type: 'progress',
          body: { step: k + i, note: 'x'.repeat(64) },
        }));
        const results = await client.run(id).events(batch);
        const now = performance.now();
        for (const r of results) acked.set(`${id}#${r.seq}`, now);
        eventsAcked += results.length;
        return;
      }
      case 'heartbeat':
        await client.run(id).heartbeat({ at: Date.now() });
        return;
      case 'getRun':
        await client.getRun(id);
        return;
      case 'listRuns':
        await client.listRuns({ job: `soak-${Math.floor(Math.random() * 5)}`, limit: 50 });
        return;
      case 'listEvents':
        await client.run(id).listEvents({ limit: 100 });
        return;
    }
  }

  // SSE tails: each follows a live run until it ends, then picks another.
  const aborts = new Set<AbortController>();
  async function tailLoop() {
    while (!stopping) {
      const id = live[live.length - 1 - Math.floor(Math.random() * Math.min(5, live.length))];
      if (!id) {
        await sleep(50);
        continue;
      }
      const abort = new AbortController();
      aborts.add(abort);
      try {
        const res = await fetch(`${server.url}/v1/runs/${encodeURIComponent(id)}/events/stream`, { signal: abort.signal });
        if (res.status !== 200) throw new Error(`stream answered ${res.status}`);
        const reader = res.body!.getReader();
        const decoder = new TextDecoder();
        let buffer = '';
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          buffer += decoder.decode(value, { stream: true });
          let cut;
          while ((cut = buffer.indexOf('\n\n')) >= 0) {
            const block = buffer.slice(0, cut);
            buffer = buffer.slice(cut + 2);
            const seq = /^id: (\d+)$/m.exec(block)?.[1];
            if (!seq) continue;
            sseEvents++;
            const at = acked.get(`${id}#${seq}`);
            if (at !== undefined) delivery.push(Math.max(0, performance.now() - at));
          }
        }
      } catch (err) {
        if (!stopping) fail('sse', err);
      } finally {
        aborts.delete(abort);
      }
    }
  }

  const rssStart = rssMb(server.child.pid!);
  const sampler = setInterval(() => {
    try {
      rss.push({ t: performance.now(), mb: rssMb(server.child.pid!) });
    } catch {
      // the server is gone; reported below
    }
  }, 1000);
  const tails = Array.from({ length: TAILS }, () => tailLoop());

  // Step 1: the open-loop schedule: operation i is due at start + i / RATE.
  const start = performance.now();
  const end = start + SECONDS * 1000;
  const measuredFrom = start + WARMUP_S * 1000;
  let due = 0;
  const pending = new Set<Promise<void>>();
  while (performance.now() < end) {
    const now = performance.now();
    while (start + (due / RATE) * 1000 <= now) {
      const scheduled = start + (due / RATE) * 1000;
      due++;
      if (inFlight >= MAX_IN_FLIGHT) {
        backlogSkips++;
        continue;
      }
      const op = pick();
      inFlight++;
      const p = runOp(op)
        .then(() => {
          if (scheduled >= measuredFrom) latencies.get(op)!.push(performance.now() - scheduled);
        })
        .catch((err) => fail(op, err))
        .finally(() => {
          inFlight--;
          pending.delete(p);
        });
      pending.add(p);
    }
    await sleep(2);
  }
  const elapsedS = (performance.now() - measuredFrom) / 1000;
  clearInterval(sampler);
  await Promise.all(pending);
  stopping = true;
  for (const a of aborts) a.abort();
  // Step 2: finish the live runs so that the tails end, then check everything written.
  for (const id of live.splice(0))
    await client
      .run(id)
      .complete({ output: { ok: true } })
      .catch((err) => fail('complete', err));
  await Promise.all(tails);
  const verify = await client.verify();
  await server.stop();

  // Step 3: figures.
  const all = [...latencies.values()].flat().sort((a, b) => a - b);
  const measured = all.length;
  const after = rss.filter((s) => s.t >= measuredFrom);
  const at = (frac: number) => after[Math.min(after.length - 1, Math.floor(frac * (after.length - 1)))]?.mb ?? NaN;
  // Least-squares slope of RSS over the measured window, in MB per minute.
  const meanT = after.reduce((s, x) => s + x.t, 0) / after.length;
  const meanM = after.reduce((s, x) => s + x.mb, 0) / after.length;
  const slope =
    (after.reduce((s, x) => s + (x.t - meanT) * (x.mb - meanM), 0) / after.reduce((s, x) => s + (x.t - meanT) ** 2, 0)) * 60_000;
  delivery.sort((a, b) => a - b);
  const perOp = MIX.map(([op]) => {
    const l = latencies.get(op)!.sort((a, b) => a - b);
    return `${op} ${ms(percentile(l, 50))} / ${ms(percentile(l, 99))} (${l.length})`;
  }).join('; ');
  const errorText = errors.size ? [...errors].map(([k, v]) => `${v} × ${k}`).join('; ') : 'none';
  const env: Record<string, string> = {
    [`${label}: rate asked / achieved`]: `${RATE} / ${(measured / elapsedS).toFixed(1)} operations/s over ${elapsedS.toFixed(0)} s measured (after ${WARMUP_S} s warm-up); ${backlogSkips} skipped at the ${MAX_IN_FLIGHT}-in-flight cap`,
    [`${label}: latency p50 / p99, all operations`]: `${ms(percentile(all, 50))} / ${ms(percentile(all, 99))} (max ${ms(all[all.length - 1] ?? NaN)})`,
    [`${label}: latency p50 / p99 by operation (count)`]: perOp,
    [`${label}: SSE`]: `${TAILS} concurrent tails, ${sseEvents} events delivered, append-ack → delivery p50 / p99 ${ms(percentile(delivery, 50))} / ${ms(percentile(delivery, 99))}`,
    [`${label}: written`]: `${runSeq} runs (${completed} completed during the soak), ${eventsAcked} keyed events acknowledged; verify: ${verify.ok ? 'ok' : 'FAILED'} (${verify.runsChecked} runs, ${verify.eventsChecked} events)`,
    [`${label}: server RSS before the load / at 10% / 50% / end of the load / max`]: `${rssStart.toFixed(0)} / ${at(0).toFixed(0)} / ${at(0.5).toFixed(0)} / ${at(1).toFixed(0)} / ${Math.max(...after.map((s) => s.mb)).toFixed(0)} MB; trend ${slope >= 0 ? '+' : ''}${slope.toFixed(1)} MB/min`,
    [`${label}: server RSS every 5 s (MB)`]: after
      .filter((_, i) => i % 5 === 0)
      .map((x) => x.mb.toFixed(0))
      .join(' '),
    [`${label}: errors`]: errorText,
  };
  for (const [k, v] of Object.entries(env)) log(`  ${k}: ${v}`);
  return { environment: env };
}

export const soak: BenchModule = {
  name: 'soak',
  description: `about a minute (${SECONDS} s) at a steady rate through a real server: creates, events, completions, reads, SSE tails; latency and server memory over time`,
  async run(ctx) {
    const environment: Record<string, string> = {
      'soak settings': `${SECONDS} s per backend at ${rateOf('postgres')} (PostgreSQL) and ${rateOf('pglite')} (PGlite) operations/s (open loop, latency from the due time), ${TAILS} SSE tails, ~${LIVE_TARGET} live runs, mix ${MIX.map(([op, w]) => `${op} ${Math.round((w / TOTAL_WEIGHT) * 100)}%`).join(', ')}; events in keyed batches of 5; server: \`runledger serve\` (tsx) in its own process`,
    };
    if (selected(ctx.only, 'soak/postgres')) {
      ctx.log('soak/postgres');
      const schema = benchSchema('soak');
      Object.assign(environment, (await soakOnce('postgres', ['--database-url', PG_URL, '--schema', schema], ctx.log)).environment);
    }
    if (selected(ctx.only, 'soak/pglite')) {
      ctx.log('soak/pglite');
      const dir = await mkdtemp(join(tmpdir(), 'runledger-soak-'));
      ctx.onCleanup(() => rm(dir, { recursive: true, force: true }));
      Object.assign(environment, (await soakOnce('pglite', ['--data-dir', dir], ctx.log)).environment);
    }
    return { comparisons: [], environment };
  },
};
