/**
 * `import`: `runledger import` of a generated JSONL file (streamed to a temp file first)
 * against a raw COPY of the same rows into the same tables (runs, their two run.status
 * events with the same hash chain, subject_status), in the same run, on PostgreSQL and on
 * PGlite. The import runs as the CLI in a subprocess under /usr/bin/time -v, so its peak
 * RSS is its own; the COPY baseline runs in this process. Each repeat (interleaved,
 * order rotated) writes into a fresh schema / data directory.
 *
 *   RUNLEDGER_BENCH_IMPORT_ROWS         records for PostgreSQL (default 1,000,000)
 *   RUNLEDGER_BENCH_IMPORT_PGLITE_ROWS  records for PGlite (default 100,000)
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';

import { chainHash } from '../../src/core/hash.js';
import { openLedger } from '../../src/index.js';
import { MIGRATIONS } from '../../src/store/migrate.js';
import { median } from '../lib/harness.js';
import { type BenchModule, type ModuleContext, selected } from '../lib/module.js';
import { benchSchema, createLedgerSchema, PG_URL, serverVersion } from '../lib/postgres.js';
import type { ComparisonResult } from '../lib/runner.js';

const SOURCE = 'legacy-bench';
const TRIGGERS = ['cron', 'manual', 'webhook'];

function positiveEnv(name: string, fallback: number): number {
  const v = process.env[name];
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${name} must be a positive integer; got ${JSON.stringify(v)}`);
  return n;
}

/** Legacy record number i: 5 jobs, 5,000 subjects, about 10% failed, 1 s apart, 1–61 s long. */
function record(i: number) {
  const started = Date.UTC(2024, 0, 1) + i * 1000;
  const status = i % 10 === 3 ? 'failed' : i % 97 === 5 ? 'cancelled' : 'completed';
  return {
    sourceId: `L${i}`,
    id: `imp-${i}`,
    job: `job-${i % 5}`,
    subject: `https://agent-${i % 5000}.example/mcp`,
    trigger: TRIGGERS[i % 3],
    status,
    startedAt: new Date(started).toISOString(),
    finishedAt: new Date(started + 1000 + (i % 600) * 100).toISOString(),
    params: { suite: 'v2', shard: i % 16, branch: 'main', model: `m-${i % 7}` },
    statistics: { passed: 30 - (i % 4), total: 30, durationMs: 1000 + (i % 600) * 100 },
  };
}
type LegacyRecord = ReturnType<typeof record>;

/** Writes `n` records as JSONL, streamed (backpressure honoured, never all in memory). */
async function generate(path: string, n: number): Promise<void> {
  const out = createWriteStream(path);
  let buf = '';
  for (let i = 1; i <= n; i++) {
    buf += JSON.stringify(record(i)) + '\n';
    if (buf.length > 1 << 16) {
      if (!out.write(buf)) await once(out, 'drain');
      buf = '';
    }
  }
  out.end(buf);
  await once(out, 'finish');
}

// ---------- the raw COPY baseline ----------

const esc = (s: string) => s.replace(/[\\\t\n\r]/g, (c) => (c === '\\' ? '\\\\' : c === '\t' ? '\\t' : c === '\n' ? '\\n' : '\\r'));
const RUN_COLS =
  'namespace, id, job, subject, trigger, status, params, statistics, created_at, started_at, finished_at, last_seq, last_hash, source, source_id';
const EVENT_COLS = 'namespace, run_id, seq, type, at, recorded_at, body, hash';
const STATUS_COLS = 'namespace, job, subject, run_id, status, trigger, finished_at, previous_status, status_changed_at';

interface Latest {
  runId: string;
  status: string;
  trigger: string;
  finishedAt: string;
}

/** COPY text for one record's run row and its two run.status events; tracks the latest run per subject. */
function rowsOf(r: LegacyRecord, recordedAt: string, latest: Map<string, Latest>): { run: string; events: string } {
  const startedAt = new Date(r.startedAt).toISOString();
  const finishedAt = new Date(r.finishedAt).toISOString();
  const startBody = { status: 'running' };
  const endBody = { status: r.status };
  const h1 = chainHash('', { at: startedAt, body: startBody, key: null, level: null, seq: 1, type: 'run.status' });
  const h2 = chainHash(h1, { at: finishedAt, body: endBody, key: null, level: null, seq: 2, type: 'run.status' });
  const run = [
    'default',
    esc(r.id),
    esc(r.job),
    esc(r.subject),
    esc(r.trigger),
    r.status,
    esc(JSON.stringify(r.params)),
    esc(JSON.stringify(r.statistics)),
    startedAt,
    startedAt,
    finishedAt,
    '2',
    h2,
    SOURCE,
    esc(r.sourceId),
  ].join('\t');
  const events =
    ['default', esc(r.id), '1', 'run.status', startedAt, recordedAt, JSON.stringify(startBody), h1].join('\t') +
    '\n' +
    ['default', esc(r.id), '2', 'run.status', finishedAt, recordedAt, JSON.stringify(endBody), h2].join('\t');
  const key = `${r.job}\u0000${r.subject}`;
  const cur = latest.get(key);
  if (!cur || finishedAt > cur.finishedAt || (finishedAt === cur.finishedAt && r.id > cur.runId))
    latest.set(key, { runId: r.id, status: r.status, trigger: r.trigger, finishedAt });
  return { run, events };
}

function statusRows(latest: Map<string, Latest>): string {
  let out = '';
  for (const [key, l] of latest) {
    const [job, subject] = key.split('\u0000');
    out += ['default', esc(job), esc(subject), esc(l.runId), l.status, esc(l.trigger), l.finishedAt, '\\N', l.finishedAt].join('\t') + '\n';
  }
  return out;
}

/** Copies text into a table through whatever the backend offers. */
type CopyTarget = {
  transaction(fn: (copy: (table: string, cols: string, text: string) => Promise<void>) => Promise<void>): Promise<void>;
};

function pgCopyTarget(client: pg.Client): CopyTarget {
  const copy = async (table: string, cols: string, text: string) => {
    const stream = client.query(copyFrom(`copy ${table} (${cols}) from stdin`));
    stream.end(text);
    await once(stream, 'finish');
  };
  return {
    async transaction(fn) {
      await client.query('begin');
      try {
        await fn(copy);
        await client.query('commit');
      } catch (err) {
        await client.query('rollback').catch(() => {});
        throw err;
      }
    },
  };
}

function pgliteCopyTarget(db: PGlite): CopyTarget {
  return {
    transaction: (fn) =>
      db.transaction(async (tx) => {
        await fn(async (table, cols, text) => {
          await tx.query(`copy ${table} (${cols}) from '/dev/blob'`, [], { blob: new Blob([text]) });
        });
      }),
  };
}

interface Outcome {
  seconds: number;
  rows: number;
  longestChunkMs: number;
  cpuMsPerRow: number;
  peakRssMb?: number;
}

/** Streams the file, COPYing runs then events per chunk of `chunk` records (one transaction each), subject_status at the end. */
async function rawCopy(target: CopyTarget, file: string, chunk = 10_000): Promise<Outcome> {
  const cpu0 = process.cpuUsage();
  const started = performance.now();
  const latest = new Map<string, Latest>();
  let runs: string[] = [];
  let events: string[] = [];
  let rows = 0;
  let longest = 0;
  const flush = async () => {
    if (!runs.length) return;
    const [r, e] = [runs.join('\n') + '\n', events.join('\n') + '\n'];
    runs = [];
    events = [];
    const t = performance.now();
    await target.transaction(async (copy) => {
      await copy('runs', RUN_COLS, r);
      await copy('events', EVENT_COLS, e);
    });
    longest = Math.max(longest, performance.now() - t);
  };
  const recordedAt = new Date().toISOString();
  for await (const line of createInterface({ input: createReadStream(file), crlfDelay: Infinity })) {
    if (!line) continue;
    const { run, events: ev } = rowsOf(JSON.parse(line) as LegacyRecord, recordedAt, latest);
    runs.push(run);
    events.push(ev);
    rows++;
    if (runs.length >= chunk) await flush();
  }
  await flush();
  await target.transaction((copy) => copy('subject_status', STATUS_COLS, statusRows(latest)));
  const seconds = (performance.now() - started) / 1000;
  const c = process.cpuUsage(cpu0);
  return { seconds, rows, longestChunkMs: longest, cpuMsPerRow: (c.user + c.system) / 1000 / rows };
}

// ---------- the import, as the CLI in a subprocess ----------

/** `runledger import <file> --json` under /usr/bin/time -v; `where` is --database-url/--schema or --data-dir. */
async function cliImport(
  file: string,
  where: string[],
  env: Record<string, string> = {},
): Promise<Outcome & { report: Record<string, unknown> }> {
  const cli = new URL('../../src/cli/main.ts', import.meta.url).pathname;
  const child = spawn(
    '/usr/bin/time',
    ['-v', process.execPath, '--import', 'tsx', cli, ...where, 'import', file, '--source', SOURCE, '--no-progress', '--json'],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } },
  );
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const [code] = (await once(child, 'exit')) as [number];
  if (code !== 0) throw new Error(`runledger import exited with ${code}:\n${err.slice(-2000)}`);
  const report = JSON.parse(out.trim().split('\n').pop()!) as {
    seconds: number;
    inserted: number;
    longestChunkMs: number;
    invalid: number;
  };
  if (report.invalid) throw new Error(`the import refused ${report.invalid} generated records: ${out.slice(-2000)}`);
  const num = (label: string) => Number(new RegExp(`${label}: ([0-9.]+)`).exec(err)?.[1]);
  const cpuMs = (num('User time \\(seconds\\)') + num('System time \\(seconds\\)')) * 1000;
  return {
    report,
    seconds: report.seconds,
    rows: report.inserted,
    longestChunkMs: report.longestChunkMs,
    cpuMsPerRow: cpuMs / report.inserted,
    peakRssMb: num('Maximum resident set size \\(kbytes\\)') / 1024,
  };
}

// ---------- the module ----------

const fmt = (n: number) => (n >= 100 ? n.toFixed(0) : n.toFixed(1));

interface Side {
  name: string;
  label: string;
  run(repeat: number): Promise<Outcome>;
}

/** Runs the sides interleaved (order rotated per repeat) and summarises as a comparison plus environment lines. */
async function compare(
  id: string,
  title: string,
  sides: [Side, Side],
  repeats: number,
  log: (l: string) => void,
  env: Record<string, string>,
): Promise<ComparisonResult> {
  const got = new Map<string, Outcome[]>(sides.map((s) => [s.name, []]));
  for (let r = 0; r < repeats; r++) {
    const order = r % 2 ? [...sides].reverse() : sides;
    for (const s of order) {
      const o = await s.run(r);
      got.get(s.name)!.push(o);
      log(
        `  ${id} repeat ${r + 1}/${repeats} ${s.name}: ${fmt(o.rows / o.seconds)} rows/s (${o.rows} rows, ${o.seconds.toFixed(1)} s, longest chunk ${o.longestChunkMs.toFixed(0)} ms${o.peakRssMb ? `, peak RSS ${o.peakRssMb.toFixed(0)} MB` : ''})`,
      );
    }
  }
  const rate = (o: Outcome) => o.rows / o.seconds;
  const [a, b] = sides.map((s) => got.get(s.name)!);
  const ratioSamples = a.map((o, i) => rate(o) / rate(b[i]));
  for (const s of sides) {
    const os = got.get(s.name)!;
    env[`${title}, ${s.name}: longest chunk transaction (ms, per repeat)`] = os.map((o) => o.longestChunkMs.toFixed(0)).join(', ');
    if (os[0].peakRssMb !== undefined)
      env[`${title}, ${s.name}: peak RSS of the CLI process (MB, per repeat; target < 300)`] = os
        .map((o) => o.peakRssMb!.toFixed(0))
        .join(', ');
  }
  return {
    id,
    title,
    unit: 'rows/s',
    variants: sides.map((s) => {
      const os = got.get(s.name)!;
      return {
        name: s.name,
        label: s.label,
        samples: os.map(rate),
        median: median(os.map(rate)),
        clientCpuPerOp: median(os.map((o) => o.cpuMsPerRow)),
      };
    }),
    ratios: [
      {
        numerator: sides[0].name,
        denominator: sides[1].name,
        target: 0.3,
        samples: ratioSamples,
        median: median(ratioSamples),
      },
    ],
  };
}

async function pgCount(schema: string): Promise<string> {
  const c = new pg.Client({ connectionString: PG_URL });
  await c.connect();
  try {
    await c.query(`set search_path to "${schema}"`);
    const { rows } = await c.query<{ r: number; e: number; s: number }>(
      `select (select count(*) from runs)::int r, (select count(*) from events)::int e, (select count(*) from subject_status)::int s`,
    );
    return `${rows[0].r} runs, ${rows[0].e} events, ${rows[0].s} subjects`;
  } finally {
    await c.end();
  }
}

async function dropSchema(schema: string) {
  const c = new pg.Client({ connectionString: PG_URL });
  await c.connect();
  await c.query(`drop schema if exists "${schema}" cascade`).finally(() => c.end());
}

export const imports: BenchModule = {
  name: 'import',
  description: 'runledger import of generated JSONL (CLI subprocess, peak RSS) vs raw COPY of the same rows, PostgreSQL and PGlite',
  async run(ctx: ModuleContext) {
    const { only, log, settings } = ctx;
    const pgRows = positiveEnv('RUNLEDGER_BENCH_IMPORT_ROWS', 1_000_000);
    const pgliteRows = positiveEnv('RUNLEDGER_BENCH_IMPORT_PGLITE_ROWS', 100_000);
    const environment: Record<string, string> = {
      PostgreSQL: `${await serverVersion()} at ${new URL(PG_URL).host}, database ${new URL(PG_URL).pathname.slice(1)}`,
      import: `\`runledger import <file> --source ${SOURCE} --json\` (tsx, default chunk size 1000) in a subprocess under /usr/bin/time -v`,
      'raw COPY':
        'this process: stream the same file, COPY runs then events per 10,000 records (one transaction each), subject_status at the end',
      'CPU ms/op column': 'CPU ms per row of the importing process (import: the CLI; COPY: this process); database CPU not counted',
    };
    const comparisons: ComparisonResult[] = [];
    const tmp = await mkdtemp(join(tmpdir(), 'runledger-bench-import-'));
    ctx.onCleanup(() => rm(tmp, { recursive: true, force: true }));

    if (selected(only, 'import/postgres')) {
      const file = join(tmp, 'pg.jsonl');
      let t = performance.now();
      await generate(file, pgRows);
      log(
        `  generated ${pgRows} records (${((await stat(file)).size / 2 ** 20).toFixed(0)} MiB) in ${((performance.now() - t) / 1000).toFixed(0)} s`,
      );
      environment['PostgreSQL input'] =
        `${pgRows.toLocaleString('en')} JSONL records, ${((await stat(file)).size / 2 ** 20).toFixed(0)} MiB`;
      const counts: string[] = [];
      let checked = false;
      const sides: [Side, Side] = [
        {
          name: 'import',
          label: 'runledger import (CLI)',
          async run() {
            // The CLI creates the schema and applies the migrations itself.
            const schema = benchSchema('imp');
            try {
              const o = await cliImport(file, ['--database-url', PG_URL], { RUNLEDGER_SCHEMA: schema });
              counts.push(`import: ${await pgCount(schema)}`);
              return o;
            } finally {
              await dropSchema(schema);
            }
          },
        },
        {
          name: 'copy',
          label: 'raw COPY (pg-copy-streams)',
          async run() {
            const schema = benchSchema('copy');
            await createLedgerSchema(schema);
            const client = new pg.Client({ connectionString: PG_URL, options: `-c search_path="${schema}"` });
            await client.connect();
            try {
              const o = await rawCopy(pgCopyTarget(client), file);
              counts.push(`copy: ${await pgCount(schema)}`);
              if (!checked) {
                // The baseline writes what the import writes: its runs pass the library's verify().
                const l = await openLedger({ url: PG_URL, schema, poolSize: 1, migrate: false });
                try {
                  for (const id of ['imp-1', `imp-${pgRows}`]) {
                    const v = await l.verify(id);
                    if (!v.ok) throw new Error(`the COPY baseline wrote rows the library does not verify: ${JSON.stringify(v.problems)}`);
                  }
                } finally {
                  await l.close();
                }
                checked = true;
              }
              return o;
            } finally {
              await client.end();
              await dropSchema(schema);
            }
          },
        },
      ];
      t = performance.now();
      comparisons.push(
        await compare(
          'import/postgres',
          `import ${pgRows.toLocaleString('en')} rows, PostgreSQL`,
          sides,
          settings.repeats,
          log,
          environment,
        ),
      );
      environment['PostgreSQL rows written (per side and repeat)'] = [...new Set(counts)].join('; ');
      await rm(file, { force: true });
    }

    if (selected(only, 'import/pglite')) {
      const file = join(tmp, 'pglite.jsonl');
      await generate(file, pgliteRows);
      environment['PGlite input'] = `${pgliteRows.toLocaleString('en')} JSONL records, data directory on local disk`;
      const migrations = MIGRATIONS;
      const sides: [Side, Side] = [
        {
          name: 'import',
          label: 'runledger import --data-dir (CLI)',
          async run(r) {
            const dir = join(tmp, `pglite-import-${r}`);
            try {
              return await cliImport(file, ['--data-dir', dir]);
            } finally {
              await rm(dir, { recursive: true, force: true });
            }
          },
        },
        {
          name: 'copy',
          label: "raw COPY FROM '/dev/blob'",
          async run(r) {
            const dir = join(tmp, `pglite-copy-${r}`);
            const db = await PGlite.create(dir);
            try {
              for (const m of migrations) await db.exec(m.sql);
              return await rawCopy(pgliteCopyTarget(db), file);
            } finally {
              await db.close();
              await rm(dir, { recursive: true, force: true });
            }
          },
        },
      ];
      comparisons.push(
        await compare(
          'import/pglite',
          `import ${pgliteRows.toLocaleString('en')} rows, PGlite data dir`,
          sides,
          settings.repeats,
          log,
          environment,
        ),
      );
    }
    return { comparisons, environment };
  },
};
