/**
 * `scale`: how reads grow with the ledger. Builds one ledger on PostgreSQL, in a database of
 * its own (dropped at the end), by SQL (`insert … select generate_series`), grows it to each
 * size in turn — runs spread over the last 30 days, so every size is a denser month — and
 * times each read at each size: stats over 30 days (as the dashboard asks, and per hour and
 * per job), a runs page for every list filter and the pairs that are hardest for the indexes,
 * getRun and getSubject. Reports p50/p95 per read and size and the growth from the first size
 * to the last. Runs carry no events (no read here touches them).
 *
 *   npm run bench -- scale                                   # 100k, 1M, 10M (~12 GB, long)
 *   RUNLEDGER_SCALE_SIZES=100000,1000000 npm run bench -- scale
 *   RUNLEDGER_SCALE_KEEP=1 …   # keep the database afterwards, to look at plans (drop it yourself)
 */

import { type Ledger, openLedger } from '../src/index.js';
import { adminQuery, withDatabase } from '../test/pg-admin.js';
import { type BenchModule, type ModuleContext } from './lib/module.js';
import { PG_URL } from './lib/postgres.js';

const SIZES = (process.env.RUNLEDGER_SCALE_SIZES ?? '100000,1000000,10000000').split(',').map(Number);
const READS = Number(process.env.RUNLEDGER_SCALE_READS ?? 40);
const DB = process.env.RUNLEDGER_SCALE_DB ?? 'rl_scale';
const JOBS = 10;
const SUBJECTS = 2000;
const DAY = 86_400_000;

const dbUrl = (name: string) => withDatabase(PG_URL, name);
const admin = (sql: string) => adminQuery(PG_URL, sql);

/**
 * Runs from..to-1 (numbered), created over the 30 days before `now`: mostly completed, some
 * failed and timed out, 0.5% cancelled (a rare status), durations log-normal per job; 1% have
 * a parent, each an external id and a tag.
 */
const insertRuns = `
insert into runs (namespace, id, job, subject, trigger, actor, parent_id, status, external_ids, tags,
                  created_at, started_at, finished_at, last_seq, last_hash)
select 'default', 'run-' || lpad(i::text, 9, '0'), 'job-' || (i % ${JOBS}), 'subject-' || (i * 7 % ${SUBJECTS}),
       (array['schedule', 'manual', 'webhook', 'retry'])[1 + i % 4], 'actor-' || (i % 50),
       case when i % 100 = 7 then 'run-' || lpad((i - 7)::text, 9, '0') end,
       s.status, jsonb_build_object('ci', 'build-' || i), jsonb_build_object('team', 'team-' || (i % 20)),
       c.at, c.at, c.at + make_interval(secs => d.ms / 1000.0), 1, ''
  from generate_series($1::bigint, $2::bigint - 1) i
  cross join lateral (select $3::timestamptz - make_interval(secs => (hashint8(i) & 2147483647)::float8 / 2147483647 * 30 * 86400) as at) c
  cross join lateral (select case when i % 200 = 3 then 'cancelled' when i % 50 = 1 then 'timed_out'
                                  when i % 17 = 2 then 'failed' else 'completed' end as status) s
  cross join lateral (select round(exp(5 + (i % ${JOBS}) * 0.5 + ((hashint8(i * 31) & 65535)::float8 / 65535 - 0.5) * 3)) as ms) d`;

/**
 * Rebuilds the rollups as the migration's backfill does (one row per key: what the reaper's
 * fold leaves of live completions' shards) and the subject statuses.
 */
const rebuild = [
  `truncate run_rollups_hour, run_rollups_day`,
  `insert into run_rollups_hour (namespace, start, job, status, bin, shard, n)
   select namespace, date_trunc('hour', created_at, 'UTC'), job, status,
          runledger_duration_bin(extract(epoch from (finished_at - started_at))::float8 * 1000), 0, count(*)
     from runs where status in ('completed', 'failed', 'cancelled', 'timed_out') group by 1, 2, 3, 4, 5`,
  `insert into run_rollups_day (namespace, start, job, status, bin, shard, n)
   select namespace, date_trunc('day', start, 'UTC'), job, status, bin, 0, sum(n) from run_rollups_hour group by 1, 2, 3, 4, 5`,
  `truncate subject_status`,
  `insert into subject_status (namespace, job, subject, run_id, status, trigger, finished_at, status_changed_at)
   select distinct on (namespace, job, subject) namespace, job, subject, id, status, trigger, finished_at, finished_at
     from runs where subject is not null and finished_at is not null order by namespace, job, subject, finished_at desc, id desc`,
  `vacuum analyze runs`,
  `vacuum analyze run_rollups_hour`,
  `vacuum analyze run_rollups_day`,
  `vacuum analyze subject_status`,
];

type Read = { name: string; run: (l: Ledger) => Promise<unknown> };

function reads(now: Date): Read[] {
  const from = new Date(now.getTime() - 30 * DAY);
  const dayFrom = new Date(Math.floor(from.getTime() / DAY) * DAY + DAY).toISOString();
  const page = (name: string, f: Parameters<Ledger['listRuns']>[0]) => ({ name: `runs page: ${name}`, run: (l: Ledger) => l.listRuns(f) });
  return [
    { name: 'stats 30 days, day buckets (dashboard)', run: (l) => l.stats({ from: dayFrom, to: now.toISOString(), bucket: 'day' }) },
    { name: 'stats 30 days, hour buckets', run: (l) => l.stats({ from: from.toISOString(), to: now.toISOString(), bucket: 'hour' }) },
    { name: 'stats 30 days, one job', run: (l) => l.stats({ from: dayFrom, to: now.toISOString(), bucket: 'day', job: 'job-3' }) },
    { name: 'stats 24 h, hour buckets', run: (l) => l.stats({ to: now.toISOString() }) },
    page('no filter', {}),
    page('job', { job: 'job-3' }),
    page('subject', { subject: 'subject-77' }),
    page('status=completed', { status: 'completed' }),
    page('status=cancelled (rare)', { status: 'cancelled' }),
    page('status in (failed, timed_out)', { status: ['failed', 'timed_out'] }),
    page('trigger', { trigger: 'manual' }),
    page('actor', { actor: 'actor-7' }),
    page('parentId', { parentId: 'run-000001000' }),
    page('externalId', { externalId: 'ci:build-4242' }),
    page('tag', { tag: 'team:team-3' }),
    page('createdAfter', { createdAfter: new Date(now.getTime() - DAY).toISOString() }),
    page('createdBefore', { createdBefore: new Date(now.getTime() - 10 * DAY).toISOString() }),
    page('q (id prefix)', { q: 'run-00000100' }),
    page('job + status=cancelled', { job: 'job-3', status: 'cancelled' }),
    page('job + subject', { job: 'job-3', subject: 'subject-21' }),
    page('job + trigger', { job: 'job-3', trigger: 'manual' }),
    page('job + actor', { job: 'job-3', actor: 'actor-13' }),
    page('status=cancelled + trigger', { status: 'cancelled', trigger: 'manual' }),
    page('status=cancelled + actor', { status: 'cancelled', actor: 'actor-3' }),
    page('subject + status=failed', { subject: 'subject-77', status: 'failed' }),
    page('job + tag', { job: 'job-3', tag: 'team:team-3' }),
    page('job + createdBefore', { job: 'job-3', createdBefore: new Date(now.getTime() - 10 * DAY).toISOString() }),
    page('status=cancelled + createdBefore', { status: 'cancelled', createdBefore: new Date(now.getTime() - 10 * DAY).toISOString() }),
    { name: 'getRun', run: (l) => l.getRun('run-000001000') },
    { name: 'getSubject (status and recent runs)', run: (l) => l.getSubject('job-1', 'subject-7') },
  ];
}

const quantile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))];

async function run(ctx: ModuleContext) {
  const now = new Date();
  await admin(`drop database if exists ${DB}`);
  // Collation C: the one in which a `q` prefix search can use the indexes (docs/limits.md).
  await admin(`create database ${DB} template template0 locale 'C'`);
  if (!process.env.RUNLEDGER_SCALE_KEEP) ctx.onCleanup(() => admin(`drop database if exists ${DB} with (force)`));
  const ledger = await openLedger({ url: dbUrl(DB) });
  const db = ledger.database;
  const table = new Map<string, { p50: number; p95: number }[]>();
  let have = 0;
  try {
    for (const size of SIZES) {
      const t0 = performance.now();
      // In slices, so a big size reports progress and no one statement holds everything.
      for (let at = have; at < size; at += 1_000_000) {
        await db.query(insertRuns, [at, Math.min(size, at + 1_000_000), now]);
        ctx.log(`scale: ${Math.min(size, at + 1_000_000)} runs (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
      }
      have = size;
      for (const sql of rebuild) await db.query(sql);
      const { rows } = await db.query<{ size: string }>(`select pg_size_pretty(pg_database_size(current_database())) as size`);
      const counted = await db.query<{ hour: number; day: number }>(
        `select (select count(*) from run_rollups_hour)::int as hour, (select count(*) from run_rollups_day)::int as day`,
      );
      ctx.log(
        `scale: ${size} runs built in ${((performance.now() - t0) / 1000).toFixed(0)} s; database ${rows[0].size}; rollup rows ${counted.rows[0].hour} (hour), ${counted.rows[0].day} (day)`,
      );
      const all = reads(now);
      // Interleaved: each round reads everything once, so drifting load hits every read alike.
      const samples = new Map<string, number[]>(all.map((r) => [r.name, []]));
      for (const r of all) await r.run(ledger); // warm the caches and plans
      for (let i = 0; i < READS; i++) {
        for (const r of all) {
          const t = performance.now();
          await r.run(ledger);
          samples.get(r.name)!.push(performance.now() - t);
        }
      }
      for (const r of all) {
        const xs = samples.get(r.name)!;
        table.set(r.name, [...(table.get(r.name) ?? []), { p50: quantile(xs, 0.5), p95: quantile(xs, 0.95) }]);
      }
      ctx.log(`scale: ${size} measured`);
    }
  } finally {
    await ledger.close();
  }
  const label = (n: number) => (n >= 1e6 ? `${n / 1e6}M` : `${n / 1e3}k`);
  const f = (ms: number) => (ms >= 100 ? ms.toFixed(0) : ms.toFixed(2));
  const lines = [
    `| read | ${SIZES.map((s) => `${label(s)} p50 / p95 ms`).join(' | ')} | p50 ${label(SIZES.at(-1)!)} ÷ ${label(SIZES[0])} |`,
    `|---|${SIZES.map(() => '---:|').join('')}---:|`,
    ...[...table].map(
      ([name, xs]) =>
        `| ${name} | ${xs.map((x) => `${f(x.p50)} / ${f(x.p95)}`).join(' | ')} | ${(xs.at(-1)!.p50 / xs[0].p50).toFixed(2)}× |`,
    ),
  ];
  console.log(`\n${lines.join('\n')}\n`);
  return {
    comparisons: [],
    environment: {
      sizes: SIZES.join(', '),
      'reads per size': `${READS} of each, interleaved, after one warm-up round`,
      table: '(printed above)',
    },
  };
}

export const scale: BenchModule = {
  name: 'scale',
  description: 'reads at 100k, 1M and 10M runs (PostgreSQL, own database)',
  run,
};
