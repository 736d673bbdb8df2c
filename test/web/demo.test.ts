/** `runledger demo` as a subprocess: fills an empty ledger once, refuses a second time, and what it wrote is sound. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { DEMO_AGENTS, DEMO_SOURCE } from '../../src/cli/demo.js';
import { type OpenedLedger, openLedger } from '../../src/index.js';
import { type CliStore, cliStore, runCli } from '../cli/cli.js';
import { dropSchemas, PG_URL } from '../helpers.js';

let store: CliStore;
const cli = (...args: string[]) => runCli([...store.args, ...args]);

async function openStore(): Promise<OpenedLedger> {
  return store.dataDir ? openLedger({ dataDir: store.dataDir }) : openLedger({ url: PG_URL, schema: store.schema, poolSize: 2 });
}

beforeAll(() => {
  store = cliStore();
});
afterAll(async () => {
  store.cleanup();
  await dropSchemas();
});

describe('runledger demo', { timeout: 180_000 }, () => {
  it('refuses a bad --stuck-lease before writing anything', async () => {
    const r = await cli('demo', '--stuck-lease', '0');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--stuck-lease must be a whole number of seconds ≥ 1; got "0"');
  });

  it('fills an empty ledger, then refuses to fill it again', async () => {
    const first = await cli('demo', '--stuck-lease', '3600');
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(/Imported \d+ historical runs \(source runledger-demo\) and recorded 20 live runs\./);

    const again = await cli('demo');
    expect(again.code).toBe(2);
    expect(again.stderr).toContain('namespace default already has runs');
    expect(again.stderr).toContain('--force');
  });

  it('wrote the seed teams’ runs: verdicts per agent, a collection with execution ids, a failure, a live run', async () => {
    const ledger = await openStore();
    try {
      const { subjects } = await ledger.listSubjects({ job: 'compliance-check' });
      expect(subjects.map((s) => s.subject).sort()).toEqual([...DEMO_AGENTS].sort());
      const billing = subjects.find((s) => s.subject.endsWith('billing-agent'))!;
      expect(billing).toMatchObject({ status: 'completed', trigger: 'owner_test', previousStatus: 'failed' });

      const detail = await ledger.getSubject('compliance-check', billing.subject);
      const triggers = new Set(detail.recentRuns.map((r) => r.trigger));
      expect(triggers).toEqual(new Set(['heartbeat', 'owner_test']));

      const [collection] = (await ledger.listRuns({ job: 'week-collection', status: 'running' })).runs;
      expect(collection).toBeDefined();
      const children = (await ledger.listRuns({ parentId: collection!.id, limit: 100 })).runs;
      expect(children.map((c) => c.status).sort()).toEqual([
        'completed',
        'completed',
        'completed',
        'completed',
        'completed',
        'failed',
        'running',
        'submitted',
      ]);
      const missing = (await ledger.listRuns({ parentId: collection!.id, missingExternalId: 'amc.executionId' })).runs;
      expect(missing.map((c) => c.status)).toEqual(['submitted']);

      const failed = (await ledger.listRuns({ job: 'agent-md', status: 'failed', trigger: 'schedule', limit: 500 })).runs.find(
        (r) => r.source === null,
      )!;
      expect(failed).toMatchObject({ attempt: 2, error: { type: 'ContextLengthExceeded' } });
      expect(failed.error!.stack).toContain('at buildPrompt');

      const history = (await ledger.listRuns({ limit: 500 })).runs.filter((r) => r.source === DEMO_SOURCE);
      expect(history.length).toBeGreaterThan(200);
      expect(Math.min(...history.map((r) => Date.parse(r.createdAt)))).toBeLessThan(Date.now() - 6 * 86_400_000);

      const live = (await ledger.listRuns({ job: 'agent-md', status: 'running', limit: 10 })).runs;
      expect(live.map((r) => r.subject).sort()).toEqual(['globex/etl', 'initech/tps-reports']);

      const verify = await ledger.verify();
      expect(verify.problems).toEqual([]);
      expect(verify.ok).toBe(true);
    } finally {
      await ledger.close();
    }
  });
});
