/**
 * `jsonorder`: the cost of migration 0009 (user JSON from jsonb to json, so that keys read back
 * in the order sent) on a big ledger, on PostgreSQL in a database of its own (dropped at the end).
 * Builds a ledger at migration 0008 by SQL — N runs with a tag, an external id and params, 10
 * events each, a checkpoint every 10th run — and a copy of it in a second schema, migrates the
 * copy to 0009, and measures, side by side on the same rows:
 *
 * - the reads that query inside the values (the tag and external id filters of a runs page,
 *   `tags @> …` on jsonb before, `tags::jsonb @> …` on the expression index after) and an
 *   events page, as p50/p95 of repeats interleaved between the two, with the plans;
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
  // Every run's tags tested (no index can help an aggregate's filter): the cast's cost per row.
  { name: 'count a tag over every run (scan)', sql: `select count(*) filter (where tags${cast} @> '{"team":"team-3"}'::jsonb) from runs` },
  {
    name: 'events page (10 events)',
    sql: `select seq, key, type, level, at, recorded_at, body, hash from events where namespace = 'default' and run_id = 'run-000004242' and seq > 0 order by seq limit 100`,
  },
];

const quantile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))];

/** Every read on both ledgers, interleaved (before, after, next read…), so drifting load hits both alike. */
async function measure(before: pg.Client, after: pg.Client) {
  const sides = [
    { db: before, reads: readsFor('') },
    { db: after, reads: readsFor('::jsonb') },
  ];
  const samples = sides.map((side) => new Map<string, number[]>(side.reads.map((r) => [r.name, []])));
  for (const side of sides) for (const r of side.reads) await side.db.query(r.sql); // warm the caches and plans
  for (let i = 0; i < READS; i++) {
    for (let r = 0; r < sides[0].reads.length; r++) {
      for (const [k, side] of sides.entries()) {
        const t = performance.now();
        await side.db.query(side.reads[r].sql);
        samples[k].get(side.reads[r].name)!.push(performance.now() - t);
      }
    }
  }
  const plans = async (side: (typeof sides)[number]) => {
    const out: string[] = [];
    for (const r of side.reads.slice(0, 3)) {
      const { rows } = await side.db.query<{ 'QUERY PLAN': string }>(`explain ${r.sql}`);
      out.push(`${r.name}:\n${rows.map((x) => `    ${x['QUERY PLAN']}`).join('\n')}`);
    }
    return out;
  };
  return { samples, plans: [await plans(sides[0]), await plans(sides[1])] };
}

async function client(schema: string) {
  const c = new pg.Client({ connectionString: dbUrl(DB) });
  await c.connect();
  await c.query(`set search_path to ${schema}`);
  return c;
}

async function run(ctx: ModuleContext) {
  await adminQuery(`drop database if exists ${DB}`);
  await adminQuery(`create database ${DB} template template0 locale 'C'`);
  ctx.onCleanup(() => adminQuery(`drop database if exists ${DB} with (force)`));
  // Two copies of one ledger at 0008: "before" stays there, "after" is migrated to 0009.
  const ledgers = [
    await openLedger({ url: dbUrl(DB), schema: 'before', migrate: false }),
    await openLedger({ url: dbUrl(DB), schema: 'after', migrate: false }),
  ];
  const [before, after] = [await client('before'), await client('after')];
  try {
    for (const l of ledgers)
      await migrate(
        l.database,
        MIGRATIONS.filter((m) => m.id < 9),
      );
    let t0 = performance.now();
    for (const sql of build) await before.query(sql, sql.includes('$1') ? [RUNS] : []);
    for (const t of ['runs', 'events', 'checkpoints']) await after.query(`insert into after.${t} select * from before.${t}`);
    await before.query('vacuum analyze');
    ctx.log(`jsonorder: ${RUNS} runs, ${RUNS * EVENTS} events built at 0008 (twice) in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
    const sizeBefore = (await after.query<{ s: string }>(sizes)).rows[0].s;

    t0 = performance.now();
    const migrated = await migrate(ledgers[1].database);
    const migrateS = (performance.now() - t0) / 1000;
    ctx.log(`jsonorder: ${migrated.applied.join(', ')} in ${migrateS.toFixed(1)} s`);
    await after.query('vacuum analyze');
    const sizeAfter = (await after.query<{ s: string }>(sizes)).rows[0].s;
    const m = await measure(before, after);

    const f = (ms: number) => (ms >= 100 ? ms.toFixed(0) : ms.toFixed(2));
    const lines = [
      `| read | 0008 (jsonb) p50 / p95 ms | 0009 (json) p50 / p95 ms | p50 after ÷ before |`,
      `|---|---:|---:|---:|`,
      ...[...m.samples[0]].map(([name, xs]) => {
        const ys = m.samples[1].get(name)!;
        return `| ${name} | ${f(quantile(xs, 0.5))} / ${f(quantile(xs, 0.95))} | ${f(quantile(ys, 0.5))} / ${f(quantile(ys, 0.95))} | ${(quantile(ys, 0.5) / quantile(xs, 0.5)).toFixed(2)}× |`;
      }),
    ];
    console.log(`\n${lines.join('\n')}\n`);
    console.log(`plans at 0008:\n  ${m.plans[0].join('\n  ')}\n\nplans at 0009:\n  ${m.plans[1].join('\n  ')}\n`);
    return {
      comparisons: [],
      environment: {
        ledger: `${RUNS} runs, ${RUNS * EVENTS} events, ${RUNS / 10} checkpoints`,
        'migration 0009': `${migrateS.toFixed(1)} s`,
        'sizes at 0008': sizeBefore,
        'sizes at 0009': sizeAfter,
        'reads per variant': `${READS} of each, interleaved between the two ledgers, after one warm-up round`,
        table: '(printed above)',
      },
    };
  } finally {
    await before.end();
    await after.end();
    for (const l of ledgers) await l.close();
  }
}

export const jsonOrder: BenchModule = {
  name: 'jsonorder',
  description: 'migration 0009 (jsonb → json) at 1M events: its duration, sizes, filter reads before and after',
  run,
};
