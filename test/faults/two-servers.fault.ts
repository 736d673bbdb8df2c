/**
 * Two `runledger serve` processes on one PostgreSQL database (one schema):
 * - both run the reaper every second; each expired run is timed out exactly once
 *   (one `run.status` timed_out event, one transition) however the two race;
 * - the same run completed at the same moment through both servers has one winner:
 *   with the same payload both answer 200 and one completion is stored; with different
 *   payloads one answers 200 and the other 409 run_finished, and the winner's output is
 *   the stored one;
 * - the same keyed events sent through both servers at once are stored once, gapless.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createClient, type OpenedLedger, openLedger, type RunledgerClient } from '../../src/index.js';
import { BACKEND, dropSchemas, freshSchema, PG_URL } from '../helpers.js';
import { freePort, type ServeProcess, sleep, startServe } from './support.js';

const skip = BACKEND !== 'postgres' ? 'skipped: two servers share a database only on PostgreSQL (an embedded data dir has one owner)' : '';
const RUNS = 30;
let a: ServeProcess | undefined;
let b: ServeProcess | undefined;
let ca: RunledgerClient;
let cb: RunledgerClient;
let ledger: OpenedLedger | undefined;

beforeAll(async () => {
  if (skip) return;
  const schema = freshSchema();
  const args = ['--database-url', PG_URL, '--schema', schema];
  // The first one creates the schema; the second starts once it exists.
  a = await startServe(args, await freePort(), ['--reap-interval-s', '1']);
  b = await startServe(args, await freePort(), ['--reap-interval-s', '1']);
  ca = createClient({ baseUrl: a.url });
  cb = createClient({ baseUrl: b.url });
  ledger = await openLedger({ url: PG_URL, schema, poolSize: 2 });
});

afterAll(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
  await ledger?.close();
  await dropSchemas();
});

describe.skipIf(skip)(`two servers on one PostgreSQL database${skip ? ` (${skip})` : ''}`, () => {
  it(`the reaper acts once per expired run (${RUNS} runs, two reapers every second)`, async () => {
    const ids = Array.from({ length: RUNS }, (_, i) => `reap-${i}`);
    // Half created through each server; leaseS 1 and never renewed → timed out after 2 s.
    await Promise.all(ids.map((id, i) => (i % 2 ? ca : cb).startRun({ id, job: 'fault-reap', subject: id, leaseS: 1 })));
    for (;;) {
      const page = await ca.listRuns({ job: 'fault-reap', status: ['timed_out'], limit: 500 });
      if (page.runs.length === RUNS) break;
      await sleep(250);
    }
    // Give both reapers a few more passes to act twice if they could.
    await sleep(3000);
    const { rows } = await ledger!.database.query<{ run_id: string; n: number }>(
      `select run_id, count(*)::int as n from events where type = 'run.status' and body->>'status' = 'timed_out' and run_id like 'reap-%' group by run_id`,
    );
    expect(rows.length).toBe(RUNS);
    expect(rows.filter((r) => r.n !== 1)).toEqual([]);
    for (const id of ids) {
      const run = await cb.getRun(id);
      expect(run).toMatchObject({ status: 'timed_out', error: { type: 'lease_expired' } });
      expect((await cb.verify(id)).ok).toBe(true);
    }
  });

  it(`concurrent completions of one run through both servers have one winner (${RUNS} runs × 2 payload cases)`, async () => {
    let bothOk = 0;
    let oneConflict = 0;
    for (let i = 0; i < RUNS; i++) {
      for (const samePayload of [true, false]) {
        const id = `race-${i}-${samePayload ? 'same' : 'diff'}`;
        await ca.startRun({ id, job: 'fault-race', subject: id });
        const outputs = samePayload ? [{ v: 1 }, { v: 1 }] : [{ from: 'a' }, { from: 'b' }];
        const settled = await Promise.allSettled([
          ca.run(id).complete({ output: outputs[0] }),
          cb.run(id).complete({ output: outputs[1] }),
        ]);
        const ok = settled.filter((s) => s.status === 'fulfilled');
        const failed = settled.flatMap((s) => (s.status === 'rejected' ? [s.reason as { code?: string }] : []));
        if (samePayload) {
          expect(failed).toEqual([]);
          bothOk++;
        } else {
          expect(ok.length).toBe(1);
          expect(failed.map((e) => e.code)).toEqual(['run_finished']);
          oneConflict++;
        }
        const winner = settled.findIndex((s) => s.status === 'fulfilled');
        const run = await ca.getRun(id);
        expect(run.status).toBe('completed');
        expect(run.output).toEqual(outputs[winner]);
        const { events } = await cb.run(id).listEvents();
        expect(events.filter((e) => e.type === 'run.status' && (e.body as { status: string }).status === 'completed').length).toBe(1);
        const subject = await cb.getSubject('fault-race', id);
        expect(subject).toMatchObject({ runId: id, status: 'completed' });
      }
    }
    expect({ bothOk, oneConflict }).toEqual({ bothOk: RUNS, oneConflict: RUNS });
  });

  it('the same keyed events sent through both servers at once are stored once, in one gapless chain', async () => {
    const id = 'race-events';
    await ca.startRun({ id, job: 'fault-race' });
    const batches = Array.from({ length: 20 }, (_, i) => [0, 1, 2].map((k) => ({ key: `k${i}.${k}`, type: 'step', body: { i, k } })));
    const [ra, rb] = await Promise.all([
      Promise.all(batches.map((batch) => ca.run(id).events(batch))),
      Promise.all(batches.map((batch) => cb.run(id).events(batch))),
    ]);
    // Both servers report the same seq for each key; exactly one of them reports it as new.
    ra.forEach((results, i) =>
      results.forEach((r, k) => {
        expect(r.seq).toBe(rb[i][k].seq);
        expect(r.duplicate).not.toBe(rb[i][k].duplicate);
      }),
    );
    const { events } = await ca.run(id).listEvents({ limit: 1000 });
    expect(events.map((e) => e.seq)).toEqual(Array.from({ length: events.length }, (_, i) => i + 1));
    expect(events.filter((e) => e.key).length).toBe(60);
    expect((await ca.verify(id)).ok).toBe(true);
  });
});
