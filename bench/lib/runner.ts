/**
 * Runs comparisons interleaved: every repeat measures every variant once, in an order
 * rotated per repeat, so that drift in the machine's load (other processes on a shared
 * box) spreads over all variants instead of favouring whichever ran first. Ratios are
 * taken within a repeat (variants measured seconds apart) and summarised by the median.
 */
import { loadavg } from 'node:os';

import { type Comparison, measure, median, type Settings } from './harness.js';

export interface VariantResult {
  name: string;
  label: string;
  /** Units per second, one per repeat. */
  samples: number[];
  median: number;
  /** Median CPU time per op (ms) of this process and, on PostgreSQL, of its server processes. */
  clientCpuPerOp: number;
  serverCpuPerOp?: number;
  /** The application server process's share of serverCpuPerOp (bench/http). */
  appServerCpuPerOp?: number;
}

export interface RatioResult {
  numerator: string;
  denominator: string;
  target?: number;
  /** numerator/denominator per repeat. */
  samples: number[];
  median: number;
}

export interface ComparisonResult {
  id: string;
  title: string;
  unit: string;
  variants: VariantResult[];
  ratios: RatioResult[];
}

export type Log = (line: string) => void;

const rotate = <T>(items: T[], by: number): T[] => items.map((_, i) => items[(i + by) % items.length]);

export async function runComparisons(comparisons: Comparison[], settings: Settings, log: Log): Promise<ComparisonResult[]> {
  const samples = new Map<string, number[]>();
  const cpu = new Map<string, { client: number[]; server: number[]; app: number[] }>();
  const key = (c: Comparison, v: string) => `${c.id}\u0000${v}`;
  for (let r = 0; r < settings.repeats; r++) {
    for (const c of comparisons) {
      for (const v of rotate(c.variants, r)) {
        const session = await v.open(settings.concurrency);
        let m;
        try {
          m = await measure(session, settings.concurrency, settings.warmupMs, settings.durationMs);
        } finally {
          await session.close();
        }
        const rate = (m.ops * c.unitsPerOp) / m.seconds;
        const list = samples.get(key(c, v.name)) ?? [];
        list.push(rate);
        samples.set(key(c, v.name), list);
        const costs = cpu.get(key(c, v.name)) ?? { client: [], server: [], app: [] };
        costs.client.push(m.clientCpuMs / m.ops);
        if (m.serverCpuMs !== undefined) costs.server.push(m.serverCpuMs / m.ops);
        if (m.appServerCpuMs !== undefined) costs.app.push(m.appServerCpuMs / m.ops);
        cpu.set(key(c, v.name), costs);
        log(
          `  repeat ${r + 1}/${settings.repeats}  ${c.title.padEnd(34)} ${v.label.padEnd(28)} ${rate.toFixed(0).padStart(8)} ${c.unit}` +
            `  (load ${loadavg()[0].toFixed(2)})`,
        );
      }
    }
  }
  return comparisons.map((c) => ({
    id: c.id,
    title: c.title,
    unit: c.unit,
    variants: c.variants.map((v) => {
      const s = samples.get(key(c, v.name))!;
      const costs = cpu.get(key(c, v.name))!;
      return {
        name: v.name,
        label: v.label,
        samples: s,
        median: median(s),
        clientCpuPerOp: median(costs.client),
        ...(costs.server.length ? { serverCpuPerOp: median(costs.server) } : {}),
        ...(costs.app.length ? { appServerCpuPerOp: median(costs.app) } : {}),
      };
    }),
    ratios: c.ratios.map((spec) => {
      const num = samples.get(key(c, spec.numerator))!;
      const den = samples.get(key(c, spec.denominator))!;
      const s = num.map((n, i) => n / den[i]);
      return { ...spec, samples: s, median: median(s) };
    }),
  }));
}
