/**
 * Exclusive runs across servers: two servers (each with its own connection pool) on one
 * PostgreSQL schema receive 50 exclusive starts for one (job, subject) at once. The
 * database decides: exactly one run is live and the 49 others are answered 409
 * `run_active` with `activeRunId` naming it.
 */
import { afterAll, describe, expect, it } from 'vitest';

import { createClient, type OpenedLedger, type RunningServer, startServer } from '../../src/index.js';
import { BACKEND, dropSchemas, freshSchema, freshStore } from '../helpers.js';

const skip = BACKEND !== 'postgres' ? 'two servers share a database only on PostgreSQL (an embedded data dir has one owner)' : '';
const opened: { ledger: OpenedLedger; server: RunningServer }[] = [];

afterAll(async () => {
  for (const o of opened) {
    await o.server.close();
    await o.ledger.close();
  }
  await dropSchemas();
});

describe.skipIf(skip)('exclusive runs across two servers', () => {
  it('50 racing starts for one (job, subject): one live run, 49 run_active naming it', async () => {
    const schema = freshSchema();
    for (let i = 0; i < 2; i++) {
      const ledger = await freshStore({ schema, poolSize: 10 });
      const server = await startServer({ ledger, port: 0, auth: 'off', reapIntervalS: 0, logger: false, webRoot: false });
      opened.push({ ledger, server });
    }
    const urls = opened.map((o) => o.server.url);
    const answers = await Promise.all(
      Array.from({ length: 50 }, async (_, i) => {
        const res = await fetch(`${urls[i % 2]}/v1/runs`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ id: `race-${i}`, job: 'deploy', subject: 'prod', exclusive: true }),
        });
        return { status: res.status, body: (await res.json()) as { id?: string; code?: string; activeRunId?: string } };
      }),
    );
    const created = answers.filter((a) => a.status === 201);
    const refused = answers.filter((a) => a.status === 409);
    expect(created).toHaveLength(1);
    expect(refused).toHaveLength(49);
    const winner = created[0].body.id!;
    for (const r of refused) {
      expect(r.body.code).toBe('run_active');
      expect(r.body.activeRunId).toBe(winner);
    }
    const client = createClient({ baseUrl: urls[0] });
    const live = await client.listRuns({ job: 'deploy', status: ['submitted', 'running', 'retrying'] });
    expect(live.runs.map((r) => r.id)).toEqual([winner]);
    // The client maps the answer back to RunActiveError with the id.
    await expect(client.startRun({ job: 'deploy', subject: 'prod', exclusive: true })).rejects.toMatchObject({
      code: 'run_active',
      activeRunId: winner,
    });
    // Finishing frees the slot, through either server.
    await client.run(winner).complete();
    const next = await createClient({ baseUrl: urls[1] }).startRun({ job: 'deploy', subject: 'prod', exclusive: true });
    expect(next.created).toBe(true);
    await client.close();
  });
});
