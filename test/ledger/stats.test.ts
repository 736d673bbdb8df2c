/** stats(): counts per status and duration percentiles per bucket and per job. */
import { beforeAll, describe, expect, it } from 'vitest';

import { rejectsWith, useFreshLedger } from '../helpers.js';

const ledger = useFreshLedger();

// Runs created in one hour with chosen durations (ms) and statuses.
const hour = '2025-03-01T10:00:00.000Z';
const runs: [number, 'completed' | 'failed'][] = [
  [100, 'completed'],
  [200, 'completed'],
  [300, 'completed'],
  [400, 'failed'],
  [5000, 'failed'],
];

describe('stats', () => {
  beforeAll(async () => {
    const base = Date.parse(hour) + 60_000;
    const records = runs.map(([ms, status], i) => ({
      sourceId: String(i),
      job: 'stats-job',
      status,
      startedAt: new Date(base + i * 1000).toISOString(),
      finishedAt: new Date(base + i * 1000 + ms).toISOString(),
    }));
    expect((await ledger.importRuns('stats-test', records)).inserted).toBe(5);
  });

  it('counts per status, and duration percentiles over the whole bucket', async () => {
    const s = await ledger.stats({ job: 'stats-job', from: hour, to: '2025-03-01T11:00:00Z', bucket: 'hour' });
    expect(s.buckets).toHaveLength(1);
    const [b] = s.buckets;
    expect(b.start).toBe(hour);
    expect(b.counts).toEqual({ completed: 3, failed: 2 });
    // Over all five durations 100, 200, 300, 400, 5000: p50 = 300, p95 = 400 + 0.8 × 4600 = 4080.
    expect(b.durationP50Ms).toBe(300);
    expect(b.durationP95Ms).toBe(4080);
    expect(s.jobs).toEqual([{ job: 'stats-job', count: 5, durationP50Ms: 300, durationP95Ms: 4080 }]);
  });

  it('refuses a range that is empty or has too many buckets', async () => {
    await rejectsWith(ledger.stats({ from: '2025-03-02T00:00:00Z', to: '2025-03-01T00:00:00Z' }), 'validation_failed');
    await rejectsWith(ledger.stats({ from: '2020-01-01T00:00:00Z', to: '2025-01-01T00:00:00Z', bucket: 'minute' }), 'validation_failed');
  });
});
