/**
 * `npx tsx bench/profile.ts [lifecycles]` — where a lifecycle's time goes, on
 * PostgreSQL and PGlite (memory): the users' lifecycle (startRun, one run.events([3]),
 * complete), with group commit off and on, first one call at a time (per call: wall latency, client CPU, server CPU, round
 * trips), then with 16 concurrent lifecycles (per lifecycle: CPU, round trips, commits).
 *
 * Round trips are counted where they leave the process: pg's Client.query (each is one
 * exchange with the server, begin and commit included) and PGlite's execProtocol. Commits on
 * PostgreSQL are pg_stat_database.xact_commit of the benchmark database. Server CPU is the
 * backends' /proc/<pid>/schedstat (bench/lib/postgres.ts). Figures are for BENCHMARKS.md.
 */
import { loadavg } from 'node:os';

import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';

import { openLedger } from '../src/index.js';
import { JOB, nextLifecycle, outputOf, paramsOf, progressBody, subjectOf, TRIGGER } from './core/workload.js';
import { backendCpu, dropSchemas, freshLedgerSchema, PG_URL } from './lib/postgres.js';

let roundTrips = 0;
const pgQuery = pg.Client.prototype.query;
pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
  roundTrips++;
  return (pgQuery as (...a: unknown[]) => unknown).apply(this, args);
} as typeof pgQuery;
// PGlite's query() and transaction() and the prepared statements all end in execProtocol.
const execProtocol = PGlite.prototype.execProtocol;
PGlite.prototype.execProtocol = function (this: PGlite, ...args: Parameters<typeof execProtocol>) {
  roundTrips++;
  return execProtocol.apply(this, args);
};

const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
const serverMs = async (on: boolean) => (on ? [...(await backendCpu()).values()].reduce((a, b) => a + b, 0) : 0);
async function commits(): Promise<number> {
  const c = new pg.Client({ connectionString: PG_URL });
  await c.connect();
  try {
    const { rows } = await c.query<{ n: string }>(`select xact_commit as n from pg_stat_database where datname = current_database()`);
    return Number(rows[0].n);
  } finally {
    await c.end();
  }
}

const EVENTS = [1, 2, 3].map((s) => ({ type: 'progress', body: progressBody(s) }));
const n = Number(process.argv[2] ?? 400);
const fmt = (v: number) => v.toFixed(2);

// Each backend with group commit off (each call its own transaction, as before group commit) and
// on, alternated over two rounds so that drift in the machine's load hits both alike.
const configs = (['postgres', 'pglite'] as const).flatMap((backend) =>
  [0, 1].flatMap((round) => (round ? [true, false] : [false, true]).map((batching) => ({ backend, batching }))),
);
for (const { backend, batching } of configs) {
  const onPg = backend === 'postgres';
  const store = onPg ? await freshLedgerSchema('profile') : undefined;
  const writeBatching = batching ? undefined : false;
  const ledger = onPg
    ? await openLedger({ url: PG_URL, schema: store!.schema, poolSize: 16, migrate: false, writeBatching })
    : await openLedger({ dataDir: 'memory://', writeBatching });
  const label = `${backend}, group commit ${batching ? 'on' : 'off'}`;
  const calls = ['startRun', 'events([3])', 'complete'] as const;
  const sums = Object.fromEntries(calls.map((c) => [c, { wall: 0, client: 0, server: 0, trips: 0 }]));
  const timed = async <T>(call: (typeof calls)[number], fn: () => Promise<T>, record: boolean): Promise<T> => {
    // The server CPU sampler is a query too: read it outside the client's clock and count.
    const s0 = record ? await serverMs(onPg) : 0;
    const [w0, c0, r0] = [performance.now(), cpuMs(), roundTrips];
    const out = await fn();
    if (record) {
      const s = sums[call];
      s.wall += performance.now() - w0;
      s.client += cpuMs() - c0;
      s.trips += roundTrips - r0;
      s.server += (await serverMs(onPg)) - s0;
    }
    return out;
  };
  const lifecycle = async (record: boolean) => {
    const k = nextLifecycle();
    const run = await timed(
      'startRun',
      () => ledger.startRun({ job: JOB, subject: subjectOf(k), trigger: TRIGGER, params: paramsOf(k) }),
      record,
    );
    await timed('events([3])', () => run.events(EVENTS), record);
    await timed('complete', () => run.complete({ output: outputOf(k) }), record);
  };
  for (let i = 0; i < 100; i++) await lifecycle(false);
  for (let i = 0; i < n; i++) await lifecycle(true);
  console.log(`\n### ${label}, one call at a time (${n} lifecycles; load ${loadavg()[0].toFixed(2)})\n`);
  console.log('| call | wall ms | client CPU ms | server CPU ms | round trips |\n|---|--:|--:|--:|--:|');
  for (const c of calls) {
    const s = sums[c];
    console.log(`| ${c} | ${fmt(s.wall / n)} | ${fmt(s.client / n)} | ${onPg ? fmt(s.server / n) : '—'} | ${fmt(s.trips / n)} |`);
  }
  const wall = calls.reduce((a, c) => a + sums[c].wall, 0) / n;
  console.log(`| lifecycle | ${fmt(wall)} | | | ${fmt(calls.reduce((a, c) => a + sums[c].trips, 0) / n)} |`);

  // 16 concurrent lifecycles, for a fixed number of them.
  const total = n * 4;
  let left = total;
  const settle = () => new Promise((r) => setTimeout(r, 1500)); // backends report xact_commit when idle
  if (onPg) await settle();
  const [s0, x0] = [await serverMs(onPg), onPg ? await commits() : 0];
  const [w0, c0, r0] = [performance.now(), cpuMs(), roundTrips];
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (left-- > 0) await lifecycle(false);
    }),
  );
  const [w1, c1, r1] = [performance.now(), cpuMs(), roundTrips];
  const s1 = await serverMs(onPg);
  if (onPg) await settle();
  const x1 = onPg ? await commits() : 0;
  console.log(`\n### ${label}, 16 concurrent lifecycles (${total}; load ${loadavg()[0].toFixed(2)})\n`);
  console.log(`- throughput: ${((total / (w1 - w0)) * 1000).toFixed(0)} lifecycles/s`);
  console.log(`- CPU per lifecycle: client ${fmt((c1 - c0) / total)} ms${onPg ? `, server ${fmt((s1 - s0) / total)} ms` : ''}`);
  console.log(`- round trips per lifecycle: ${fmt((r1 - r0) / total)}`);
  if (onPg) console.log(`- commits per lifecycle: ${fmt((x1 - x0 - 1) / total)} (pg_stat_database.xact_commit)`);
  await ledger.close();
  await store?.drop();
}
await dropSchemas();
