/**
 * `npm run bench [-- <module>…] [options]` — runs benchmark modules and prints a markdown
 * report (machine, settings, ops/s and ratios). Figures are for BENCHMARKS.md; nothing
 * here is a pass/fail test. With no module named, every module runs.
 *
 *   --repeats N      interleaved repeats per variant (default 3; the median is reported)
 *   --duration S     measured seconds per variant and repeat (default 3)
 *   --warmup S       unmeasured seconds before each measurement (default 1)
 *   --concurrency N  concurrent workers, and pool size on PostgreSQL (default 16)
 *   --batch N        events per batch in append benchmarks (default 100)
 *   --only A,B       only benchmarks whose id contains A or B (e.g. postgres, append/pglite-memory)
 *   --json FILE      also write the raw samples as JSON
 *
 * RUNLEDGER_BENCH_DATABASE_URL overrides postgres://postgres@127.0.0.1:5432/test.
 */
import { writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';

import { core } from './core/index.js';
import { http } from './http/index.js';
import { imports } from './import/index.js';
import { jsonOrder } from './json-order.js';
import type { Settings } from './lib/harness.js';
import type { BenchModule, ModuleResult } from './lib/module.js';
import { dropSchemas } from './lib/postgres.js';
import { describeSettings, keyValues, machine, resultTable } from './lib/report.js';
import { retention } from './retention.js';
import { scale } from './scale.js';
import { soak } from './soak.js';

// One module per family of measurements (bench/<name>/index.ts), selected by name.
const MODULES: BenchModule[] = [core, http, imports, soak, scale, retention, jsonOrder];

function positiveNumber(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} must be a positive number; got ${JSON.stringify(value)}`);
  return n;
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    repeats: { type: 'string' },
    duration: { type: 'string' },
    warmup: { type: 'string' },
    concurrency: { type: 'string' },
    batch: { type: 'string' },
    only: { type: 'string' },
    json: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
});

if (values.help) {
  console.log(`usage: npm run bench [-- <module>…] [options]

Runs benchmark modules and prints a markdown report (BENCHMARKS.md explains each).
modules: ${MODULES.map((m) => `\n  ${m.name.padEnd(8)} ${m.description}`).join('')}

options:
  --repeats N      interleaved repeats per variant (default 3; the median is reported)
  --duration S     measured seconds per variant and repeat (default 3)
  --warmup S       unmeasured seconds before each measurement (default 1)
  --concurrency N  concurrent workers, and pool size on PostgreSQL (default 16)
  --batch N        events per batch in append benchmarks (default 100)
  --only A,B       only benchmarks whose id contains A or B (e.g. postgres, append/pglite-memory)
  --json FILE      also write the raw samples as JSON

RUNLEDGER_BENCH_DATABASE_URL overrides postgres://postgres@127.0.0.1:5432/test.
RUNLEDGER_BENCH_PROFILE=DIR writes a CPU profile of the http module's server process to DIR.`);
  process.exit(0);
}

const unknown = positionals.filter((p) => !MODULES.some((m) => m.name === p));
if (unknown.length) {
  console.error(
    `unknown benchmark module ${unknown.join(', ')}; available: ${MODULES.map((m) => `${m.name} (${m.description})`).join('; ')}`,
  );
  process.exit(2);
}
const modules = positionals.length ? MODULES.filter((m) => positionals.includes(m.name)) : MODULES;
const settings: Settings = {
  repeats: Math.round(positiveNumber('repeats', values.repeats, 3)),
  durationMs: positiveNumber('duration', values.duration, 3) * 1000,
  warmupMs: positiveNumber('warmup', values.warmup, 1) * 1000,
  concurrency: Math.round(positiveNumber('concurrency', values.concurrency, 16)),
};
const batchSize = Math.round(positiveNumber('batch', values.batch, 100));
const only = values.only ? values.only.split(',').filter(Boolean) : [];

const cleanups: (() => Promise<void>)[] = [];
async function cleanup() {
  for (const fn of cleanups.splice(0).reverse()) await fn().catch((err) => console.error('clean-up failed:', err));
  await dropSchemas().catch((err) => console.error('dropping benchmark schemas failed:', err));
}
// Ctrl-C, or a `timeout` around the command: drop the schemas and temp directories first.
for (const [signal, code] of [
  ['SIGINT', 130],
  ['SIGTERM', 143],
] as const) {
  process.once(signal, () => {
    console.error(`\n${signal}: cleaning up`);
    void cleanup().finally(() => process.exit(code));
  });
}

const log = (line: string) => console.error(line);
const header = machine();
const started = performance.now();
const results: (ModuleResult & { module: string })[] = [];
try {
  for (const m of modules) {
    log(`${m.name}: ${m.description}`);
    results.push({ module: m.name, ...(await m.run({ settings, only, batchSize, log, onCleanup: (fn) => cleanups.push(fn) })) });
  }
} finally {
  await cleanup();
}

const out = [
  `# runledger benchmarks`,
  '',
  ...keyValues({
    ...header,
    'load average (1 min) at end': loadavg()[0].toFixed(2),
    command: `npm run bench -- ${process.argv.slice(2).join(' ')}`.trim(),
    settings: describeSettings(settings, batchSize),
    'wall time': `${((performance.now() - started) / 1000).toFixed(0)} s`,
  }),
  ...results.flatMap((r) => [
    '',
    `## ${r.module}`,
    '',
    ...keyValues(r.environment),
    ...(r.comparisons.length ? ['', resultTable(r.comparisons)] : []),
  ]),
];
console.log(out.join('\n'));
if (values.json) await writeFile(values.json, JSON.stringify({ header, settings, batchSize, results }, null, 2));
