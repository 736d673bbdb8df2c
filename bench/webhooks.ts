/**
 * `npx tsx bench/webhooks.ts [seconds] [deliveries]` — two figures for the change feed and
 * webhooks on PostgreSQL (16 workers, pool 16):
 *
 * 1. What the change row costs a lifecycle (start, 3 events, complete): the library as it
 *    is, against the same library on a schema where a BEFORE INSERT trigger drops every
 *    change row (the nearest thing to "no change log" without another build). Alternated
 *    in rounds of `seconds` (default 5) each, 3 rounds; medians of lifecycles/s.
 * 2. Webhook delivery: a server in this process delivers `deliveries` (default 2000)
 *    run.finished changes to a local receiver that verifies each with standardwebhooks and
 *    answers 204 at once. Throughput (deliveries/s, from the first completion to the last
 *    arrival) and lag (arrival minus the change's time) at p50 and p99, for the burst and
 * 3. at a steady 200 completions/s (below capacity: the lag a receiver sees day to day).
 */
import { type OpenedLedger, openLedger, startServer } from '../src/index.js';
import { startReceiver } from '../test/server/webhook-receiver.js';
import { dropSchemas, freshLedgerSchema, PG_URL } from './lib/postgres.js';

const SECONDS = Number(process.argv[2] ?? 5);
const DELIVERIES = Number(process.argv[3] ?? 2000);
const WORKERS = 16;
const ROUNDS = 3;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];

async function lifecycles(ledger: OpenedLedger, seconds: number): Promise<number> {
  const end = Date.now() + seconds * 1000;
  let n = 0;
  await Promise.all(
    Array.from({ length: WORKERS }, async (_, w) => {
      while (Date.now() < end) {
        const run = await ledger.startRun({ job: 'bench', subject: `s${(n + w) % 500}` });
        for (let i = 0; i < 3; i++) await run.event('step', { i });
        await run.complete({ output: { ok: true } });
        n++;
      }
    }),
  );
  return n / seconds;
}

try {
  // Part 1: the change row's cost.
  const withLog = await freshLedgerSchema('withlog');
  const withoutLog = await freshLedgerSchema('nolog');
  const a = await openLedger({ url: PG_URL, schema: withLog.schema, migrate: false, poolSize: WORKERS });
  const b = await openLedger({ url: PG_URL, schema: withoutLog.schema, migrate: false, poolSize: WORKERS });
  await b.database.exec(`
    create function drop_change() returns trigger language plpgsql as $$ begin return null; end $$;
    create trigger drop_change before insert on changes for each row execute function drop_change();`);
  await lifecycles(a, 1);
  await lifecycles(b, 1);
  const rates = { with: [] as number[], without: [] as number[] };
  for (let r = 0; r < ROUNDS; r++) {
    rates.with.push(await lifecycles(a, SECONDS));
    rates.without.push(await lifecycles(b, SECONDS));
  }
  const changeRows = (await a.database.query<{ n: string }>(`select count(*)::text as n from changes`)).rows[0].n;
  const dropped = (await b.database.query<{ n: string }>(`select count(*)::text as n from changes`)).rows[0].n;
  const [mw, mo] = [median(rates.with), median(rates.without)];
  console.log(`## change row cost (PostgreSQL, ${WORKERS} workers, ${ROUNDS} × ${SECONDS} s alternated)`);
  console.log(
    `lifecycles/s with the change log: ${rates.with.map((x) => x.toFixed(0)).join(', ')} (median ${mw.toFixed(0)}; ${changeRows} change rows)`,
  );
  console.log(
    `lifecycles/s, change rows dropped: ${rates.without.map((x) => x.toFixed(0)).join(', ')} (median ${mo.toFixed(0)}; ${dropped} change rows)`,
  );
  console.log(`cost of the change row: ${(((mo - mw) / mo) * 100).toFixed(1)}% of lifecycle throughput`);
  await a.close();
  await b.close();

  // Part 2: delivery throughput and lag.
  const store = await freshLedgerSchema('webhooks');
  const ledger = await openLedger({ url: PG_URL, schema: store.schema, migrate: false, poolSize: WORKERS });
  const server = await startServer({
    ledger,
    port: 0,
    auth: 'off',
    reapIntervalS: 0,
    logger: false,
    webRoot: false,
    webhooks: { allowPrivateTargets: true },
  });
  const receiver = await startReceiver();
  const hook = await ledger.createWebhook({ url: receiver.url, types: ['run.finished'] });
  receiver.secret = hook.secret;
  const t0 = Date.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: WORKERS }, async () => {
      while (next < DELIVERIES) {
        next++;
        const run = await ledger.startRun({ job: 'bench' });
        await run.complete();
      }
    }),
  );
  const written = Date.now();
  while (receiver.uniqueIds().size < DELIVERIES) await new Promise((r) => setTimeout(r, 20));
  const done = Math.max(...receiver.received.map((r) => r.at));
  const lags = receiver.received.map((r) => r.at - Date.parse(r.payload.timestamp)).sort((x, y) => x - y);
  const unverified = receiver.received.filter((r) => !r.verified).length;
  console.log(`\n## webhook delivery (PostgreSQL, one receiver on 127.0.0.1 answering 204, standardwebhooks verifying)`);
  console.log(
    `${DELIVERIES} run.finished written in ${((written - t0) / 1000).toFixed(2)} s; all delivered ${((done - t0) / 1000).toFixed(2)} s after the first write`,
  );
  console.log(
    `throughput: ${(DELIVERIES / ((done - t0) / 1000)).toFixed(0)} deliveries/s overall, ${(DELIVERIES / ((done - written) / 1000)).toFixed(0)}/s from the last write on (the writers hold the pool until then); burst lag p50 ${pct(lags, 50)} ms, p99 ${pct(lags, 99)} ms; ${receiver.received.length} requests, ${unverified} unverified`,
  );

  // Part 3: lag at a steady rate below capacity (what a receiver sees day to day).
  const RATE = 200;
  const before = receiver.received.length;
  const steadyStart = Date.now();
  const total = RATE * SECONDS;
  await Promise.all(
    Array.from({ length: total }, async (_, i) => {
      await new Promise((r) => setTimeout(r, (i / RATE) * 1000));
      const run = await ledger.startRun({ job: 'steady' });
      await run.complete();
    }),
  );
  while (receiver.received.length - before < total) await new Promise((r) => setTimeout(r, 20));
  const steady = receiver.received
    .slice(before)
    .map((r) => r.at - Date.parse(r.payload.timestamp))
    .sort((x, y) => x - y);
  console.log(
    `steady ${RATE} completions/s for ${SECONDS} s (${((Date.now() - steadyStart) / 1000).toFixed(1)} s): lag p50 ${pct(steady, 50)} ms, p99 ${pct(steady, 99)} ms`,
  );
  await server.close();
  await receiver.close();
  await ledger.close();
} finally {
  await dropSchemas();
}
