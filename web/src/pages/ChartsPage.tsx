/** Charts from GET /v1/stats: runs per status over time and duration p50/p95 per job (uPlot). */
import 'uplot/dist/uPlot.min.css';

import { useEffect, useMemo, useRef, useState } from 'react';
import uPlot from 'uplot';

import { api, type RunStatus, type StatsResult } from '../api';
import { Empty, ErrorState, Loading } from '../components/States';
import { formatDuration, STATUS_COLOURS, statusLabel } from '../format';
import { useAsync } from '../hooks';
import { href, navigate, type Route } from '../router';

const RANGES = {
  '24h': { ms: 24 * 3_600_000, bucket: 'hour' },
  '7d': { ms: 7 * 24 * 3_600_000, bucket: 'hour' },
  '30d': { ms: 30 * 24 * 3_600_000, bucket: 'day' },
} as const;
type RangeKey = keyof typeof RANGES;
const BUCKET_MS = { minute: 60_000, hour: 3_600_000, day: 86_400_000 } as const;
// Bottom of the stack first.
const STACK: RunStatus[] = ['completed', 'failed', 'timed_out', 'cancelled', 'running', 'retrying', 'submitted'];

/** A uPlot chart that follows its container's width. */
function Plot({ options, data, label }: { options: Omit<uPlot.Options, 'width'>; data: uPlot.AlignedData; label: string }) {
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const el = box.current!;
    const plot = new uPlot({ ...options, width: Math.max(280, el.clientWidth) } as uPlot.Options, data, el);
    const ro = new ResizeObserver(() => plot.setSize({ width: Math.max(280, el.clientWidth), height: options.height }));
    ro.observe(el);
    return () => {
      ro.disconnect();
      plot.destroy();
    };
  }, [options, data]);
  return <div ref={box} className="plot" role="img" aria-label={label} />;
}

function floorTo(ms: number, bucket: keyof typeof BUCKET_MS): number {
  if (bucket === 'day') {
    const d = new Date(ms);
    return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate());
  }
  return Math.floor(ms / BUCKET_MS[bucket]) * BUCKET_MS[bucket];
}

function statusChart(stats: StatsResult): { options: Omit<uPlot.Options, 'width'>; data: uPlot.AlignedData; total: number } {
  const step = BUCKET_MS[stats.bucket];
  const byStart = new Map(stats.buckets.map((b) => [Date.parse(b.start), b]));
  const xs: number[] = [];
  for (let t = floorTo(Date.parse(stats.from), stats.bucket); t < Date.parse(stats.to); t += step) xs.push(t);
  const present = STACK.filter((s) => stats.buckets.some((b) => b.counts[s]));
  const raw = present.map((s) => xs.map((t) => byStart.get(t)?.counts[s] ?? 0));
  // Stack: each series is the sum of itself and those below it; draw the tallest first.
  const stacked = raw.map((_, i) => xs.map((_, j) => raw.slice(0, i + 1).reduce((sum, r) => sum + r[j]!, 0)));
  const order = present.map((_, i) => i).reverse();
  const bars = uPlot.paths.bars!({ size: [0.85, 48] });
  const total = raw.reduce((sum, r) => sum + r.reduce((a, b) => a + b, 0), 0);
  return {
    total,
    data: [xs.map((t) => t / 1000), ...order.map((i) => stacked[i]!)],
    options: {
      height: 260,
      scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(1, max)] } },
      series: [
        {},
        ...order.map((i) => ({
          label: statusLabel(present[i]!),
          fill: STATUS_COLOURS[present[i]!],
          stroke: STATUS_COLOURS[present[i]!],
          width: 0,
          paths: bars,
          points: { show: false },
          value: (_u: uPlot, _v: number | null, _si: number, idx: number | null) => (idx === null ? '—' : String(raw[i]![idx])),
        })),
      ],
      axes: [{}, { label: 'runs', values: (_u, splits) => splits.map((v) => (Number.isInteger(v) ? String(v) : '')) }],
      legend: { live: true },
    },
  };
}

/** Axis labels: 0, 500ms, 20s, 5m, 1.5h. */
function axisDuration(ms: number): string {
  if (ms === 0) return '0';
  if (ms < 1000) return `${ms}ms`;
  if (ms < 60_000) return `${+(ms / 1000).toFixed(1)}s`;
  if (ms < 3_600_000) return `${+(ms / 60_000).toFixed(1)}m`;
  return `${+(ms / 3_600_000).toFixed(1)}h`;
}

function durationChart(stats: StatsResult): { options: Omit<uPlot.Options, 'width'>; data: uPlot.AlignedData } {
  const jobs = stats.jobs.filter((j) => j.durationP50Ms !== null);
  const xs = jobs.map((_, i) => i);
  const longest = Math.max(1, ...jobs.map((j) => j.job.length));
  const crowded = (u: uPlot) => u.width / Math.max(1, jobs.length) < Math.min(longest, 16) * 8;
  const fmt = (v: number | null) => (v === null ? '—' : formatDuration(v));
  return {
    data: [xs, jobs.map((j) => j.durationP50Ms), jobs.map((j) => j.durationP95Ms)],
    options: {
      height: 240,
      padding: [8, 28, 0, 0],
      scales: {
        x: { time: false, range: () => [-0.5, Math.max(0.5, jobs.length - 0.5)] },
        y: { range: (_u, _min, max) => [0, Math.max(1, max)] },
      },
      series: [
        { label: 'job', value: (_u, v) => (v === null ? '—' : (jobs[v]?.job ?? '')) },
        {
          label: 'p50',
          fill: '#60a5fa',
          stroke: '#2563eb',
          width: 1,
          paths: uPlot.paths.bars!({ size: [0.35, 60], align: -1 }),
          points: { show: false },
          value: (_u, v) => fmt(v),
        },
        {
          label: 'p95',
          fill: '#f59e0b',
          stroke: '#b45309',
          width: 1,
          paths: uPlot.paths.bars!({ size: [0.35, 60], align: 1 }),
          points: { show: false },
          value: (_u, v) => fmt(v),
        },
      ],
      axes: [
        {
          splits: () => xs,
          values: (u, splits) =>
            splits.map((i) => {
              const name = jobs[i]?.job ?? '';
              return crowded(u) && name.length > 12 ? `${name.slice(0, 11)}…` : name;
            }),
          grid: { show: false },
          // Slant the job names when they would not fit side by side (phones).
          rotate: (u) => (crowded(u) ? -30 : 0),
          size: (u) => (crowded(u) ? 90 : 40),
        },
        {
          values: (_u, splits) => splits.map(axisDuration),
          size: 64,
          incrs: [1, 10, 100, 1000, 5000, 10_000, 30_000, 60_000, 300_000, 600_000, 1_800_000, 3_600_000, 7_200_000, 21_600_000],
        },
      ],
    },
  };
}

export default function ChartsPage({ route }: { route: Route }) {
  const ns = route.namespace;
  const range = (route.query.get('range') as RangeKey) in RANGES ? (route.query.get('range') as RangeKey) : '24h';
  const job = route.query.get('job') ?? '';
  const stats = useAsync(
    () => {
      const to = Date.now();
      const r = RANGES[range];
      // Whole buckets, so the chart's first bar is not a partial one.
      const from = floorTo(to - r.ms, r.bucket) + BUCKET_MS[r.bucket];
      return api.stats(ns, { from: new Date(from).toISOString(), to: new Date(to).toISOString(), bucket: r.bucket, job });
    },
    [ns, range, job],
    30000,
  );
  const [knownJobs, setKnownJobs] = useState<string[]>([]);
  const data = stats.data;
  useEffect(() => {
    if (data) setKnownJobs((k) => [...new Set([...k, ...data.jobs.map((j) => j.job)])].sort());
  }, [data]);
  const charts = useMemo(() => (data ? { status: statusChart(data), duration: durationChart(data) } : undefined), [data]);
  const go = (q: Record<string, string>) => navigate(href('/charts', { range, job, ...q }));

  return (
    <section aria-labelledby="charts-title">
      <div className="page-head">
        <h1 id="charts-title">Charts</h1>
        <div className="field inline">
          <label htmlFor="range-select">Range</label>
          <select id="range-select" value={range} onChange={(e) => go({ range: e.target.value })}>
            <option value="24h">last 24 hours (hourly)</option>
            <option value="7d">last 7 days (hourly)</option>
            <option value="30d">last 30 days (daily)</option>
          </select>
        </div>
        <div className="field inline">
          <label htmlFor="chart-job">Job</label>
          <select id="chart-job" value={job} onChange={(e) => go({ job: e.target.value })}>
            <option value="">all jobs</option>
            {[...new Set([...knownJobs, ...(job ? [job] : [])])].map((j) => (
              <option key={j} value={j}>
                {j}
              </option>
            ))}
          </select>
        </div>
      </div>
      {stats.error && <ErrorState error={stats.error} onRetry={stats.reload} />}
      {!data || !charts ? (
        !stats.error && <Loading what="Loading statistics" />
      ) : charts.status.total === 0 ? (
        <Empty title="No runs in this range">
          <p>Pick a longer range, or another job.</p>
        </Empty>
      ) : (
        <>
          <section className="card" aria-labelledby="c1-title">
            <h2 id="c1-title">
              Runs per status{' '}
              <span className="muted small">
                by creation {data.bucket}, {charts.status.total} runs
              </span>
            </h2>
            <Plot options={charts.status.options} data={charts.status.data} label="Stacked bar chart of runs per status over time" />
          </section>
          <section className="card" aria-labelledby="c2-title">
            <h2 id="c2-title">Duration per job</h2>
            {data.jobs.some((j) => j.durationP50Ms !== null) ? (
              <Plot options={charts.duration.options} data={charts.duration.data} label="Bar chart of p50 and p95 duration per job" />
            ) : (
              <p className="muted">No finished run in this range.</p>
            )}
            <div className="table-wrap">
              <table>
                <thead>
                  <tr>
                    <th scope="col">Job</th>
                    <th scope="col" className="num">
                      Runs
                    </th>
                    <th scope="col" className="num">
                      p50
                    </th>
                    <th scope="col" className="num">
                      p95
                    </th>
                  </tr>
                </thead>
                <tbody>
                  {data.jobs.map((j) => (
                    <tr key={j.job}>
                      <td>
                        <a href={href('/runs', { job: j.job })}>{j.job}</a>
                      </td>
                      <td className="num">{j.count}</td>
                      <td className="num">{formatDuration(j.durationP50Ms)}</td>
                      <td className="num">{formatDuration(j.durationP95Ms)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          </section>
        </>
      )}
    </section>
  );
}
