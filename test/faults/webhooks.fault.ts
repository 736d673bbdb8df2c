/**
 * Webhooks across two `runledger serve` processes on one PostgreSQL database, one of them
 * SIGKILLed in the middle of the work and restarted: 200 runs finish concurrently through
 * both, the receiver verifies every request with the `standardwebhooks` package, fails the
 * first attempt of every third change on purpose and deduplicates by webhook-id. Every
 * run.finished arrives, exactly once after deduplication, and nothing is left undelivered.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createClient, type OpenedLedger, openLedger, type RunledgerClient } from '../../src/index.js';
import { BACKEND, dropSchemas, freshSchema, PG_URL } from '../helpers.js';
import { type Receiver, startReceiver } from '../server/webhook-receiver.js';
import { freePort, isTransient, type ServeProcess, sleep, startServe } from './support.js';

const skip = BACKEND !== 'postgres' ? 'skipped: two servers share a database only on PostgreSQL (an embedded data dir has one owner)' : '';
const RUNS = 200;
const WEBHOOK_FLAGS = ['--allow-private-webhooks', '--webhook-retry-schedule', '0.3,0.3,0.3,0.3,0.3,0.3'];

let args: string[];
let portA: number;
let a: ServeProcess | undefined;
let b: ServeProcess | undefined;
let ledger: OpenedLedger | undefined;
let receiver: Receiver | undefined;

beforeAll(async () => {
  if (skip) return;
  args = ['--database-url', PG_URL, '--schema', freshSchema()];
  portA = await freePort();
  a = await startServe(args, portA, WEBHOOK_FLAGS);
  b = await startServe(args, await freePort(), WEBHOOK_FLAGS);
  ledger = await openLedger({ url: PG_URL, schema: args[3], poolSize: 2 });
  receiver = await startReceiver();
});

afterAll(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
  await receiver?.close();
  await ledger?.close();
  await dropSchemas();
});

describe.skipIf(skip)(`webhooks from two servers${skip ? ` (${skip})` : ''}`, () => {
  it(
    `every run.finished of ${RUNS} concurrent completions arrives once (after dedup), with a server SIGKILLed midway`,
    { timeout: 180_000 },
    async () => {
      const ca: RunledgerClient = createClient({ baseUrl: a!.url, retries: 0 });
      const cb: RunledgerClient = createClient({ baseUrl: b!.url, retries: 0 });
      const hook = await ca.createWebhook({ url: receiver!.url, types: ['run.finished'] });
      receiver!.secret = hook.secret;
      receiver!.answer = (r, attempt) => (Number(r.id) % 3 === 0 && attempt === 1 ? 503 : 204);

      // Each run through one server; if that one is down, the application tries the other.
      const ids = Array.from({ length: RUNS }, (_, i) => `wh-run-${i}`);
      let acked = 0;
      const finish = async (id: string, i: number) => {
        for (let round = 0; ; round++) {
          const c = (i + round) % 2 ? ca : cb;
          try {
            await c.startRun({ id, job: 'fault-webhooks', subject: `s${i % 17}` });
            await c.run(id).complete({ output: { i } });
            acked++;
            return;
          } catch (err) {
            if (!isTransient(err) || round > 200) throw err;
            await sleep(20);
          }
        }
      };
      const work = (async () => {
        const queue = ids.map((id, i) => [id, i] as const);
        await Promise.all(
          Array.from({ length: 16 }, async () => {
            for (let next = queue.shift(); next; next = queue.shift()) await finish(...next);
          }),
        );
      })();
      // Midway (deliveries in flight on both servers), kill A without warning, then bring it back.
      while (acked < RUNS / 2) await sleep(10);
      await a!.kill();
      await sleep(500);
      a = await startServe(args, portA, WEBHOOK_FLAGS);
      await work;

      const finishedIds = new Set((await ledger!.changes({ types: ['run.finished'], limit: 1000 })).changes.map((c) => String(c.id)));
      expect(finishedIds.size).toBe(RUNS);
      // A delivery claimed by the killed server is due again after its lease (15 s): allow for it.
      await expect.poll(() => receiver!.uniqueIds().size, { timeout: 90_000, interval: 200 }).toBe(RUNS);
      expect(receiver!.uniqueIds()).toEqual(finishedIds);
      expect(receiver!.received.filter((r) => !r.verified)).toEqual([]);
      const runIds = new Set(receiver!.received.map((r) => r.payload.data.runId));
      expect(runIds).toEqual(new Set(ids));
      // The failed first attempts were retried: more requests than changes.
      expect(receiver!.received.length).toBeGreaterThan(RUNS);
      // Nothing is left undelivered: a delivery whose answer the killed server never recorded
      // is sent again after its lease and then recorded (the receiver deduplicates it).
      const states = async () =>
        (
          await ledger!.database.query<{ state: string; n: number }>(
            `select state, count(*)::int as n from webhook_deliveries group by state`,
          )
        ).rows;
      await expect.poll(states, { timeout: 60_000, interval: 250 }).toEqual([{ state: 'delivered', n: RUNS }]);
    },
  );
});
