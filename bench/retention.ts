/**
 * `retention`: pruning, space reuse and export at size, on PostgreSQL in a database of its own
 * (dropped at the end). Builds N runs by SQL (`generate_series`), each with 5 events and every
 * 10th with a checkpoint, half of them finished 100 days ago over 2000 subjects; a 30-day rule
 * then allows pruning the old half (but each subject's current run). Measures:
 *
 * - p50/p99 latency of concurrent lifecycles (start, 2 events, complete; through the library)
 *   without pruning, and while the pruner runs as a server runs it (chunks of 500, 50 ms apart);
 * - prune throughput (runs/s, with their events and checkpoints);
 * - table sizes before, after pruning, after a plain VACUUM (not FULL), and after writing as many
 *   runs again (space reuse);
 * - `runledger export` (the CLI, a subprocess) throughput and peak RSS against `COPY … TO STDOUT`
 *   of the same rows (runs, events and checkpoints tables) through psql.
 *
 *   RUNLEDGER_RETENTION_RUNS=400000 npm run bench -- retention
 *
 * RUNLEDGER_RETENTION_ONLY=export measures the export against COPY only; RUNLEDGER_RETENTION_KEEP=1
 * keeps the database (and reuses it when it already holds the runs), to measure export again.
 */
import { spawn } from 'node:child_process';
import { rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import pg from 'pg';

import { type Ledger, openLedger } from '../src/index.js';
import { adminQuery, withDatabase } from '../test/pg-admin.js';
import { type BenchModule, type ModuleContext } from './lib/module.js';
import { PG_URL } from './lib/postgres.js';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const RUNS = Number(process.env.RUNLEDGER_RETENTION_RUNS ?? 400_000);
const DB = process.env.RUNLEDGER_RETENTION_DB ?? 'rl_retention';
const WORKERS = Number(process.env.RUNLEDGER_RETENTION_WORKERS ?? 8);
const BASELINE_S = Number(process.env.RUNLEDGER_RETENTION_BASELINE_S ?? 20);
const SUBJECTS = 2000;
const ONLY_EXPORT = process.env.RUNLEDGER_RETENTION_ONLY === 'export';
const KEEP = process.env.RUNLEDGER_RETENTION_KEEP === '1';

const dbUrl = (name: string) => withDatabase(PG_URL, name);
const admin = (sql: string) => adminQuery(PG_URL, sql);

/** Runs from..to-1: even ones finished 100 days ago, odd ones within the last 10 days. */
const insertRuns = `
with r as (
  insert into runs (namespace, id, job, subject, status, created_at, started_at, finished_at, last_seq, last_hash, output)
  select 'default', 'run-' || lpad(i::text, 9, '0'), 'job-' || (i % 10), 'subject-' || (i % ${SUBJECTS}), 'completed',
         c.at, c.at, c.at + interval '30 seconds', 5, md5(i::text) || md5((i + 1)::text), jsonb_build_object('rows', i)
    from generate_series($1::bigint, $2::bigint - 1) i
    cross join lateral (select $3::timestamptz - case when i % 2 = 0 then interval '100 days' else interval '10 days' end
                               + make_interval(secs => (hashint8(i) & 2147483647)::float8 / 2147483647 * 86400 * 5) as at) c
  returning id, created_at
), e as (
  insert into events (namespace, run_id, seq, type, at, recorded_at, body, hash)
  select 'default', r.id, s, case when s in (1, 5) then 'run.status' else 'step' end, r.created_at, r.created_at,
         case when s = 1 then '{"status":"running"}'::jsonb when s = 5 then '{"status":"completed"}'::jsonb
              else jsonb_build_object('step', s, 'message', 'processed a batch of rows for the nightly export job') end,
         md5(r.id || s) || md5(s || r.id)
    from r cross join generate_series(1, 5) s
)
insert into checkpoints (namespace, run_id, name, metadata, content_hash, seq, created_at)
select 'default', r.id, 'result', jsonb_build_object('files', 3, 'bytes', 123456), md5(r.id) || md5(r.id), 4, r.created_at
  from r where right(r.id, 1) = '0'`;

const rebuildSubjects = [
  `truncate subject_status`,
  `insert into subject_status (namespace, job, subject, run_id, status, trigger, finished_at, status_changed_at)
   select distinct on (namespace, job, subject) namespace, job, subject, id, status, trigger, finished_at, finished_at
     from runs where subject is not null and finished_at is not null order by namespace, job, subject, finished_at desc, id desc`,
  `vacuum analyze runs`,
  `vacuum analyze events`,
  `vacuum analyze checkpoints`,
  `vacuum analyze subject_status`,
];

/** How many runs a kept database already holds (null when there is none). */
async function existingRuns(url: string): Promise<number | null> {
  const c = new pg.Client({ connectionString: url });
  try {
    await c.connect();
  } catch {
    return null;
  }
  try {
    return Number((await c.query(`select count(*) as n from runs`)).rows[0].n);
  } catch {
    return null;
  } finally {
    await c.end();
  }
}

const quantile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))];

/** Concurrent lifecycles until `stop()`: start, 2 events, complete; latency of each whole lifecycle. */
function lifecycles(ledger: Ledger, workers: number) {
  let running = true;
  const lat: number[] = [];
  let n = 0;
  const work = async (w: number) => {
    while (running) {
      const t = performance.now();
      const run = await ledger.startRun({ job: 'live', subject: `live-${w}-${n++ % 50}` });
      await run.events([
        { type: 'step', body: { a: 1 } },
        { type: 'step', body: { a: 2 } },
      ]);
      await run.complete({ output: { ok: true } });
      lat.push(performance.now() - t);
    }
  };
  const all = Promise.all(Array.from({ length: workers }, (_, w) => work(w)));
  return {
    async stop() {
      running = false;
      await all;
      return { n: lat.length, p50: quantile(lat, 0.5), p99: quantile(lat, 0.99) };
    },
  };
}

async function sizes(ledger: Awaited<ReturnType<typeof openLedger>>) {
  const { rows } = await ledger.database.query<{ runs: string; events: string; checkpoints: string; total: string }>(
    `select pg_total_relation_size('runs')::bigint as runs, pg_total_relation_size('events')::bigint as events,
            pg_total_relation_size('checkpoints')::bigint as checkpoints, pg_database_size(current_database())::bigint as total`,
  );
  const mb = (x: string) => Math.round(Number(x) / 1048576);
  return { runs: mb(rows[0].runs), events: mb(rows[0].events), checkpoints: mb(rows[0].checkpoints), total: mb(rows[0].total) };
}

/** Runs a command; its wall time and peak RSS (GNU time's %M, kB). */
function timed(cmd: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ seconds: number; maxRssMb: number; stderr: string }> {
  return new Promise((resolve, reject) => {
    const t = performance.now();
    const child = spawn('/usr/bin/time', ['-f', 'MAXRSS %M', ...cmd], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`${cmd.join(' ')} exited ${code}: ${stderr.slice(-500)}`));
      const m = stderr.match(/MAXRSS (\d+)/);
      resolve({ seconds: (performance.now() - t) / 1000, maxRssMb: m ? Math.round(Number(m[1]) / 1024) : NaN, stderr });
    });
  });
}

async function run(ctx: ModuleContext) {
  const now = new Date();
  const url = dbUrl(DB);
  const reuse = KEEP && (await existingRuns(url)) === RUNS;
  if (!reuse) {
    await admin(`drop database if exists ${DB}`);
    await admin(`create database ${DB}`);
  }
  if (!KEEP) ctx.onCleanup(() => admin(`drop database if exists ${DB} with (force)`));
  const ledger = await openLedger({ url, poolSize: WORKERS + 4 });
  const db = ledger.database;
  const out: Record<string, string> = {};
  const file = join(tmpdir(), `rl-retention-export-${process.pid}.ndjson`);
  try {
    const t0 = performance.now();
    for (let at = 0; !reuse && at < RUNS; at += 50_000) {
      await db.query(insertRuns, [at, Math.min(RUNS, at + 50_000), now]);
      ctx.log(`retention: ${Math.min(RUNS, at + 50_000)} runs (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
    }
    if (!reuse) for (const sql of rebuildSubjects) await db.query(sql);
    const before = await sizes(ledger);
    out['built'] = `${RUNS} runs, ${RUNS * 5} events, ${RUNS / 10} checkpoints in ${((performance.now() - t0) / 1000).toFixed(0)} s`;
    out['size before (MB: runs / events / checkpoints / database)'] =
      `${before.runs} / ${before.events} / ${before.checkpoints} / ${before.total}`;

    // Export (CLI subprocess) vs COPY of the same rows, before pruning: the whole ledger.
    const cli = [
      process.execPath,
      '--import',
      join(REPO, 'node_modules', 'tsx', 'dist', 'loader.mjs'),
      join(REPO, 'src', 'cli', 'main.ts'),
      '--database-url',
      url,
      'export',
      '--out',
      file,
      '--no-progress',
    ];
    const exp = await timed(cli);
    const bytes = statSync(file).size;
    rmSync(file, { force: true });
    const copySql = (t: string) => `copy (select * from ${t}) to stdout`;
    const copyRuns = await timed([
      'sh',
      '-c',
      `psql "${url}" -qAt -c "${copySql('runs')}" -c "${copySql('events')}" -c "${copySql('checkpoints')}" > /dev/null`,
    ]);
    out['export: runledger export (CLI) of every run'] =
      `${exp.seconds.toFixed(1)} s, ${Math.round(RUNS / exp.seconds)} runs/s, ${Math.round(bytes / 1048576 / exp.seconds)} MB/s (${Math.round(bytes / 1048576)} MB NDJSON), peak RSS ${exp.maxRssMb} MB`;
    out['export: COPY runs, events, checkpoints TO STDOUT (psql)'] =
      `${copyRuns.seconds.toFixed(1)} s, ${Math.round(RUNS / copyRuns.seconds)} runs/s; export ÷ COPY throughput ${(copyRuns.seconds / exp.seconds).toFixed(2)}×`;
    ctx.log('retention: export measured');
    if (ONLY_EXPORT) {
      for (const [k, v] of Object.entries(out)) console.log(`| ${k} | ${v} |`);
      return { comparisons: [], environment: out };
    }

    // Lifecycle latency without pruning.
    await ledger.setRetention([{ keepDays: 30 }]);
    const base = lifecycles(ledger, WORKERS);
    await new Promise((r) => setTimeout(r, BASELINE_S * 1000));
    const b = await base.stop();
    out[`lifecycles without pruning (${WORKERS} workers, ${BASELINE_S} s)`] =
      `${b.n} lifecycles, p50 ${b.p50.toFixed(1)} ms, p99 ${b.p99.toFixed(1)} ms`;
    const eligible = (await ledger.prune({ dryRun: true, limit: 1 })).eligible!;

    // Pruning as a server prunes (chunks of 500, 50 ms apart), with the same lifecycles running.
    const during = lifecycles(ledger, WORKERS);
    const tp = performance.now();
    let pruned = 0;
    let events = 0;
    let chunks = 0;
    for (;;) {
      const r = await ledger.prune({ limit: 500 });
      pruned += r.pruned;
      events += r.events;
      if (!r.more) break;
      await new Promise((res) => setTimeout(res, 50));
      if (++chunks % 100 === 0) ctx.log(`retention: pruned ${pruned} of ${eligible}`);
    }
    const pruneS = (performance.now() - tp) / 1000;
    const d = await during.stop();
    out['prune'] =
      `${pruned} runs (${events} events) of ${eligible} eligible in ${pruneS.toFixed(1)} s: ${Math.round(pruned / pruneS)} runs/s with 50 ms pauses (${Math.round(pruned / (pruneS - (pruned / 500) * 0.05))} runs/s of pruning time)`;
    out[`lifecycles during pruning (${WORKERS} workers)`] =
      `${d.n} lifecycles, p50 ${d.p50.toFixed(1)} ms, p99 ${d.p99.toFixed(1)} ms (p99 ${(d.p99 / b.p99).toFixed(2)}× without)`;

    const afterPrune = await sizes(ledger);
    out['size after pruning (MB)'] = `${afterPrune.runs} / ${afterPrune.events} / ${afterPrune.checkpoints} / ${afterPrune.total}`;
    const tv = performance.now();
    for (const t of ['runs', 'events', 'checkpoints']) await db.query(`vacuum ${t}`);
    out['plain VACUUM of runs, events, checkpoints (no lock that writers wait for)'] = `${((performance.now() - tv) / 1000).toFixed(1)} s`;
    const afterVacuum = await sizes(ledger);
    out['size after plain VACUUM (MB)'] = `${afterVacuum.runs} / ${afterVacuum.events} / ${afterVacuum.checkpoints} / ${afterVacuum.total}`;
    // As many runs again as were pruned: they fill the freed space.
    for (let at = RUNS; at < RUNS + pruned; at += 50_000) await db.query(insertRuns, [at, Math.min(RUNS + pruned, at + 50_000), now]);
    const refilled = await sizes(ledger);
    out[`size after writing ${pruned} runs again (MB)`] =
      `${refilled.runs} / ${refilled.events} / ${refilled.checkpoints} / ${refilled.total} (before pruning: ${before.total})`;
  } finally {
    await ledger.close();
    rmSync(file, { force: true });
  }
  for (const [k, v] of Object.entries(out)) console.log(`| ${k} | ${v} |`);
  return { comparisons: [], environment: out };
}

export const retention: BenchModule = {
  name: 'retention',
  description: 'prune throughput, lifecycle p99 during pruning, space reuse after VACUUM, export vs COPY (PostgreSQL, own database)',
  run,
};
