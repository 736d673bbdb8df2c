/**
 * `jsonorder`: the cost of migration 0009 (user JSON from jsonb to json, so that keys read back
 * in the order sent) on a big ledger, on PostgreSQL in a database of its own (dropped at the end).
 * Builds a ledger at migration 0008 by SQL — N runs with a tag, an external id and params, 10
 * events each, a checkpoint every 10th run — then, side by side on the same rows:
 *
 * - the reads that query inside the values (the tag and external id filters of a runs page,
 *   `tags @> …` on jsonb before, `tags::jsonb @> …` on the expression index after) and an
 *   events page, as p50/p95 of interleaved repeats, with the plans of the tag filters;
 * - how long the migration takes (it rewrites runs, events, checkpoints and changes);
 * - the table sizes before and after.
 *
 *   RUNLEDGER_JSONORDER_RUNS=100000 npm run bench -- jsonorder     # 1M events
 */
import pg from 'pg';

import { openLedger } from '../src/index.js';
import { RUN_COLUMNS } from '../src/ledger/rows.js';
import { migrate, MIGRATIONS } from '../src/store/migrate.js';
import { type BenchModule, type ModuleContext } from './lib/module.js';
import { PG_URL } from './lib/postgres.js';

const RUNS = Number(process.env.RUNLEDGER_JSONORDER_RUNS ?? 100_000);
const EVENTS = 10;
const READS = Number(process.env.RUNLEDGER_JSONORDER_READS ?? 40);
const DB = process.env.RUNLEDGER_JSONORDER_DB ?? 'rl_jsonorder';

const dbUrl = (name: string) => {
  const u = new URL(PG_URL);
  u.pathname = `/${name}`;
  return u.toString();
};

async function adminQuery(sql: string) {
  const c = new pg.Client({ connectionString: PG_URL });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

const build = [
  `insert into runs (namespace, id, job, subject, status, external_ids, params, tags, output, statistics,
                     created_at, started_at, finished_at, last_seq, last_hash)
   select 'default', 'run-' || lpad(i::text, 9, '0'), 'job-' || (i % 10), 'subject-' || (i * 7 % 2000), 'completed',
          jsonb_build_object('ci', 'build-' || i), jsonb_build_object('week', '2026-' || (i % 52), 'limit', i % 1000, 'dryRun', false),
          jsonb_build_object('team', 'team-' || (i % 20)), jsonb_build_object('files', 3, 'bytes', i),
          jsonb_build_object('rows', i, 'ms', i % 997), c.at, c.at, c.at + interval '30 seconds', ${EVENTS}, ''
     from generate_series(1, $1::int) i
     cross join lateral (select now() - make_interval(secs => (hashint8(i) & 2147483647)::float8 / 2147483647 * 30 * 86400) as at) c`,
  `insert into events (namespace, run_id, seq, type, at, recorded_at, body, hash)
   select r.namespace, r.id, s, 'progress', r.created_at, r.created_at,
          jsonb_build_object('step', s, 'message', 'processed a batch of rows for the nightly export job', 'rows', s * 100),
          md5(r.id || s)
     from runs r cross join generate_series(1, ${EVENTS}) s`,
  `insert into checkpoints (namespace, run_id, name, metadata, data, content_hash, seq, created_at)
   select namespace, id, 'result', jsonb_build_object('files', 3, 'bytes', 123456), jsonb_build_object('cursor', id), md5(id), ${EVENTS}, created_at
     from runs where right(id, 1) = '0'`,
];

const sizes = `select string_agg(format('%s %s', t, pg_size_pretty(pg_total_relation_size(t::regclass))), ', ' order by t) as s
                 from unnest(array['runs', 'events', 'checkpoints']) t`;

/** A runs page as queries.ts writes it, with the filter `where`; `cast` is '' before 0009, '::jsonb' after. */
const page = (where: string) =>
  `select ${RUN_COLUMNS} from runs where namespace = 'default' and ${where} order by created_at desc, id desc limit 51`;
const readsFor = (cast: string) => [
  { name: 'runs page: tag', sql: page(`tags${cast} @> '{"team":"team-3"}'::jsonb`) },
  { name: 'runs page: externalId', sql: page(`external_ids${cast} @> '{"ci":"build-4242"}'::jsonb`) },
  { name: 'runs page: job + tag', sql: page(`job = 'job-3' and tags${cast} @> '{"team":"team-3"}'::jsonb`) },
  { name: 'runs page: no filter', sql: page('true') },
  {
    name: 'events page (10 events)',
    sql: `select seq, key, type, level, at, recorded_at, body, hash from events where namespace = 'default' and run_id = 'run-000004242' and seq > 0 order by seq limit 100`,
  },
];

const quantile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))];

async function measure(db: pg.Client, cast: string) {
  const reads = readsFor(cast);
  const samples = new Map<string, number[]>(reads.map((r) => [r.name, []]));
  for (const r of reads) await db.query(r.sql); // warm the caches and plans
  for (let i = 0; i < READS; i++) {
    for (const r of reads) {
      const t = performance.now();
      await db.query(r.sql);
      samples.get(r.name)!.push(performance.now() - t);
    }
  }
  const plans: string[] = [];
  for (const r of reads.slice(0, 3)) {
    const { rows } = await db.query<{ 'QUERY PLAN': string }>(`explain ${r.sql}`);
    plans.push(`${r.name}:\n${rows.map((x) => `    ${x['QUERY PLAN']}`).join('\n')}`);
  }
  return { samples, plans };
}

async function run(ctx: ModuleContext) {
  await adminQuery(`drop database if exists ${DB}`);
  await adminQuery(`create database ${DB} template template0 locale 'C'`);
  ctx.onCleanup(() => adminQuery(`drop database if exists ${DB} with (force)`));
  const ledger = await openLedger({ url: dbUrl(DB), migrate: false });
  const db = new pg.Client({ connectionString: dbUrl(DB) });
  await db.connect();
  try {
    await migrate(
      ledger.database,
      MIGRATIONS.filter((m) => m.id < 9),
    );
    let t0 = performance.now();
    for (const sql of build) await db.query(sql, sql.includes('$1') ? [RUNS] : []);
    await db.query('vacuum analyze');
    ctx.log(`jsonorder: ${RUNS} runs, ${RUNS * EVENTS} events built at 0008 in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
    const sizeBefore = (await db.query<{ s: string }>(sizes)).rows[0].s;
    const before = await measure(db, '');

    t0 = performance.now();
    const migrated = await migrate(ledger.database);
    const migrateS = (performance.now() - t0) / 1000;
    ctx.log(`jsonorder: ${migrated.applied.join(', ')} in ${migrateS.toFixed(1)} s`);
    await db.query('vacuum analyze');
    const sizeAfter = (await db.query<{ s: string }>(sizes)).rows[0].s;
    const after = await measure(db, '::jsonb');

    const f = (ms: number) => (ms >= 100 ? ms.toFixed(0) : ms.toFixed(2));
    const lines = [
      `| read | 0008 (jsonb) p50 / p95 ms | 0009 (json) p50 / p95 ms | p50 after ÷ before |`,
      `|---|---:|---:|---:|`,
      ...[...before.samples].map(([name, xs]) => {
        const ys = after.samples.get(name)!;
        return `| ${name} | ${f(quantile(xs, 0.5))} / ${f(quantile(xs, 0.95))} | ${f(quantile(ys, 0.5))} / ${f(quantile(ys, 0.95))} | ${(quantile(ys, 0.5) / quantile(xs, 0.5)).toFixed(2)}× |`;
      }),
    ];
    console.log(`\n${lines.join('\n')}\n`);
    console.log(`plans at 0008:\n  ${before.plans.join('\n  ')}\n\nplans at 0009:\n  ${after.plans.join('\n  ')}\n`);
    return {
      comparisons: [],
      environment: {
        ledger: `${RUNS} runs, ${RUNS * EVENTS} events, ${RUNS / 10} checkpoints`,
        'migration 0009': `${migrateS.toFixed(1)} s`,
        'sizes at 0008': sizeBefore,
        'sizes at 0009': sizeAfter,
        'reads per variant': `${READS} of each, interleaved, after one warm-up round`,
        table: '(printed above)',
      },
    };
  } finally {
    await db.end();
    await ledger.close();
  }
}

export const jsonOrder: BenchModule = {
  name: 'jsonorder',
  description: 'migration 0009 (jsonb → json) at 1M events: its duration, sizes, filter reads before and after',
  run,
};
