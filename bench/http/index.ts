/**
 * `http`: the library served over HTTP (src/server, a separate process) and driven by
 * createClient with keep-alive connections, against the library in process and a raw
 * multi-row INSERT, on PostgreSQL — each variant on its own fresh schema.
 *   http-lifecycle/postgres  start, 3 events, complete with output — lifecycles per second
 *   http-append/postgres     POST /v1/runs/{id}/events batches vs one multi-row INSERT — events per second
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';

import { createClient } from '../../src/client/client.js';
import { openLedger } from '../../src/index.js';
import { type LedgerSource, libraryAppend, libraryLifecycle } from '../core/library.js';
import { pgRawSource, rawAppend } from '../core/raw.js';
import type { Comparison, Session, Variant } from '../lib/harness.js';
import { type BenchModule, type ModuleContext, selected } from '../lib/module.js';
import { backendCpu, benchSchema, createLedgerSchema, PG_URL, serverVersion } from '../lib/postgres.js';
import { runComparisons } from '../lib/runner.js';

const renamed = (v: Variant, name: string): Variant => ({ ...v, name });

/** CPU ms (user + system) of one process, from /proc/<pid>/stat (clock ticks of 10 ms). */
async function processCpuMs(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** Starts bench/http/server.ts on `schema`; resolves with its URL once it listens. */
async function startServerProcess(schema: string, poolSize: number): Promise<{ url: string; child: ChildProcess; stop(): Promise<void> }> {
  const child = spawn(
    process.execPath,
    [
      ...(process.env.RUNLEDGER_BENCH_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${process.env.RUNLEDGER_BENCH_PROFILE}`] : []),
      '--import',
      'tsx',
      new URL('./server.ts', import.meta.url).pathname,
      PG_URL,
      schema,
      String(poolSize),
    ],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = await new Promise<string>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`the benchmark server exited with code ${code} before listening`)));
    createInterface({ input: child.stdout! }).once('line', resolve);
  });
  return {
    url,
    child,
    async stop() {
      child.stdin!.end();
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

export const http: BenchModule = {
  name: 'http',
  description:
    'run lifecycles and batched event ingest over HTTP (16 keep-alive clients) vs the library in process and raw INSERT, PostgreSQL',
  async run(ctx: ModuleContext) {
    const { batchSize, only, log, settings } = ctx;
    const comparisons: Comparison[] = [];
    const environment: Record<string, string> = {
      PostgreSQL: `${await serverVersion()} at ${new URL(PG_URL).host}, database ${new URL(PG_URL).pathname.slice(1)}`,
      server: `bench/http/server.ts in its own Node process: startServer({ auth: 'off' }) on 127.0.0.1, pool ${settings.concurrency}`,
      client: `one createClient() per worker (${settings.concurrency}), Node fetch (undici) keep-alive`,
      'server CPU': 'the server process plus its PostgreSQL backends (client column: this process, i.e. the HTTP clients)',
    };
    const wantLifecycle = selected(only, 'http-lifecycle/postgres');
    const wantAppend = selected(only, 'http-append/postgres');
    if (!wantLifecycle && !wantAppend) return { comparisons: [], environment };

    const libSchema = benchSchema('httplib');
    const httpSchema = benchSchema('http');
    const rawSchema = benchSchema('httpraw');
    for (const s of [libSchema, httpSchema, rawSchema]) await createLedgerSchema(s);

    const server = await startServerProcess(httpSchema, settings.concurrency);
    ctx.onCleanup(() => server.stop());
    log(`  server listening at ${server.url} (pid ${server.child.pid})`);

    // One long-lived library ledger, as an application keeps its pool (and as the server
    // keeps its own): both sides then run on connections of the same age.
    const library = await openLedger({ url: PG_URL, schema: libSchema, poolSize: settings.concurrency, migrate: false });
    ctx.onCleanup(() => library.close());
    const libSource: LedgerSource = async () => ({ ledger: library, release: async () => {}, serverCpu: backendCpu });
    // The server process's CPU plus its PostgreSQL backends (it inherits PGAPPNAME).
    const httpServerCpu = async () => {
      const cpu = await backendCpu();
      cpu.set(-server.child.pid!, await processCpuMs(server.child.pid!));
      return cpu;
    };
    // One client per worker: workers call through their own client (and connection pool).
    const httpSource = (concurrency: number) => {
      const clients = Array.from({ length: concurrency }, () => createClient({ baseUrl: server.url }));
      let next = 0;
      const source: LedgerSource = async () => ({
        ledger: clients[next++ % concurrency],
        release: async () => {},
        serverCpu: httpServerCpu,
      });
      return source;
    };

    // Sanity: a lifecycle over HTTP verifies, so the server writes what the library writes.
    {
      const client = createClient({ baseUrl: server.url });
      const run = await client.startRun({ job: 'bench', subject: 'acme/check', trigger: 'bench' });
      await run.event('progress', { step: 1 });
      await run.complete({ output: { ok: true } });
      const check = await client.verify(run.id);
      if (!check.ok) throw new Error(`a run written over HTTP does not verify: ${JSON.stringify(check.problems)}`);
      log('  checked: a lifecycle written over HTTP passes verify()');
    }

    if (wantLifecycle) {
      comparisons.push({
        id: 'http-lifecycle/postgres',
        title: 'lifecycle, PostgreSQL',
        unit: 'lifecycles/s',
        unitsPerOp: 1,
        variants: [
          renamed(
            perWorker((src) => libraryLifecycle('HTTP (createClient → server)', src), httpSource),
            'http',
          ),
          libraryLifecycle('library in process (openLedger)', libSource),
        ],
        ratios: [{ numerator: 'http', denominator: 'library', target: 0.5 }],
      });
    }
    if (wantAppend) {
      comparisons.push({
        id: 'http-append/postgres',
        title: `event ingest ×${batchSize}, PostgreSQL`,
        unit: 'events/s',
        unitsPerOp: batchSize,
        variants: [
          renamed(
            perWorker((src) => libraryAppend('HTTP POST /v1/runs/{id}/events', src, batchSize), httpSource),
            'http',
          ),
          libraryAppend('library run.events() in process', libSource, batchSize),
          rawAppend('raw multi-row INSERT', pgRawSource(rawSchema), batchSize),
        ],
        ratios: [
          { numerator: 'http', denominator: 'raw', target: 0.5 },
          { numerator: 'http', denominator: 'library' },
        ],
      });
    }
    // One unmeasured round of every variant first: a deployed server is warm (JIT-compiled,
    // connections open, tables past their first rows); a fresh one spent its first repeat
    // compiling. The library in this process gets the same round.
    await runComparisons(comparisons, { ...settings, repeats: 1, warmupMs: 0, durationMs: 3000 }, (line) =>
      log(line.replace(/repeat 1\/1/, 'warm-up   ')),
    );
    const results = await runComparisons(comparisons, settings, log);
    await server.stop();
    return { comparisons: results, environment };
  },
};

/**
 * Builds a variant whose workers each use their own client. The core variants take one
 * ledger per session; here the session's op for worker w is delegated to a session opened
 * on client w (each opened with concurrency 1, so it prepares one run for append).
 */
function perWorker(make: (src: LedgerSource) => Variant, sourceFor: (concurrency: number) => LedgerSource): Variant {
  const template = make(async () => {
    throw new Error('unused');
  });
  return {
    name: template.name,
    label: template.label,
    async open(concurrency) {
      const source = sourceFor(concurrency);
      const sessions: Session[] = [];
      for (let w = 0; w < concurrency; w++) sessions.push(await make(source).open(1));
      return {
        serverCpu: sessions[0].serverCpu,
        op: (w) => sessions[w].op(0),
        close: async () => {
          await Promise.all(sessions.map((s) => s.close()));
        },
      };
    },
  };
}
