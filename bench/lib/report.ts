/** The printed result: the machine, the settings and one markdown table per module. */
import { cpus, loadavg, release, totalmem, type } from 'node:os';

import type { Settings } from './harness.js';
import type { ComparisonResult } from './runner.js';

export function machine(): Record<string, string> {
  const cpu = cpus();
  return {
    date: new Date().toISOString(),
    CPU: `${cpu[0]?.model ?? 'unknown'} × ${cpu.length}`,
    memory: `${(totalmem() / 2 ** 30).toFixed(0)} GiB`,
    OS: `${type()} ${release()}`,
    Node: process.version,
    'load average (1 min) at start': loadavg()[0].toFixed(2),
  };
}

export const describeSettings = (s: Settings, batchSize: number) =>
  `concurrency ${s.concurrency}, warm-up ${s.warmupMs / 1000} s + ${s.durationMs / 1000} s measured per variant, ` +
  `${s.repeats} interleaved repeats, batch ${batchSize}`;

const fmt = (n: number) => (n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2));

export function resultTable(results: ComparisonResult[]): string {
  const lines = [
    '| benchmark | variant | median | min – max (per repeat) | CPU ms/op: client + server |',
    '|---|---|--:|--:|--:|',
    ...results.flatMap((c) =>
      c.variants.map(
        (v) =>
          `| ${c.title} | ${v.label} | ${fmt(v.median)} ${c.unit} | ${fmt(Math.min(...v.samples))} – ${fmt(Math.max(...v.samples))} | ` +
          `${v.clientCpuPerOp.toFixed(2)}${v.serverCpuPerOp === undefined ? '' : ` + ${v.serverCpuPerOp.toFixed(2)}`}` +
          `${v.appServerCpuPerOp === undefined ? '' : ` (app server ${v.appServerCpuPerOp.toFixed(2)})`} |`,
      ),
    ),
    '',
    '| benchmark | ratio | median | per repeat | target | met |',
    '|---|---|--:|---|--:|---|',
    ...results.flatMap((c) =>
      c.ratios.map(
        (r) =>
          `| ${c.title} | ${r.numerator} / ${r.denominator} | **${r.median.toFixed(2)}** | ${r.samples.map((s) => s.toFixed(2)).join(', ')} | ` +
          `${r.target === undefined ? '' : `≥ ${r.target}`} | ${r.target === undefined ? '' : r.median >= r.target ? 'yes' : 'no'} |`,
      ),
    ),
  ];
  return lines.join('\n');
}

export const keyValues = (kv: Record<string, string>) => Object.entries(kv).map(([k, v]) => `- ${k}: ${v}`);
