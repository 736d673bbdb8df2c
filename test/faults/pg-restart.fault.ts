/**
 * Restart PostgreSQL under load. A throwaway cluster (initdb + pg_ctl as the postgres
 * user, on its own port; never the shared server) is crashed (`pg_ctl stop -m immediate`)
 * and later stopped cleanly (`-m fast`) while clients write through one `runledger serve`.
 * While it is down /readyz answers 503 problem+json and /healthz stays 200; when it is
 * back the server recovers by itself (no restart) and the clients' own idempotent retries
 * (createClient's retry policy, nothing added by the test) finish the work. Nothing lost.
 */
import { afterAll, describe, expect, it } from 'vitest';

import { createClient, openLedger } from '../../src/index.js';
import { BACKEND } from '../helpers.js';
import {
  Acks,
  checkNothingLost,
  createThrowawayCluster,
  freePort,
  type ServeProcess,
  sleep,
  startServe,
  type ThrowawayCluster,
  throwawayClusterUnavailable,
} from './support.js';

const CLIENTS = 8;
// Outages alternate a crash (immediate) and a clean stop (fast); RUNLEDGER_FAULT_OUTAGES=N for a longer campaign.
const OUTAGES = Number(process.env.RUNLEDGER_FAULT_OUTAGES ?? 2);
const unavailable = BACKEND !== 'postgres' ? 'a PostgreSQL fault (runs with RUNLEDGER_TEST_DB=postgres)' : throwawayClusterUnavailable();
let cluster: ThrowawayCluster | undefined;
let server: ServeProcess | undefined;

afterAll(async () => {
  if (server && server.child.exitCode !== null) console.log(`[faults] server output:\n${server.output()}`);
  await server?.kill();
  cluster?.destroy();
});

async function readyz(url: string) {
  const res = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(10_000) });
  return { status: res.status, type: res.headers.get('content-type') ?? '', body: (await res.json()) as { code?: string } };
}

describe('PostgreSQL restarts under load', () => {
  it.skipIf(unavailable)(
    `${unavailable ? `skipped: ${unavailable}` : `${CLIENTS} clients`}; ${OUTAGES} outages (crash, clean stop, …): /readyz 503 while down, recovery without a server restart, nothing lost`,
    async () => {
      // A random port may be taken on a shared machine: another one then.
      for (let attempt = 1; ; attempt++) {
        cluster = createThrowawayCluster(55432 + Math.floor(Math.random() * 2000));
        try {
          cluster.start();
          break;
        } catch (err) {
          console.log(`[faults] ${(err as Error).message}`);
          cluster.destroy();
          cluster = undefined;
          if (attempt === 3) throw err;
        }
      }
      const storeArgs = ['--database-url', cluster!.url];
      server = await startServe(storeArgs, await freePort(), ['--reap-interval-s', '1']);
      const url = server.url;
      const acks = new Acks();
      const failures: string[] = [];
      let stopping = false;
      let acked = 0;

      async function worker(w: number) {
        // Enough retries to outlast an outage of ~30 s: backoff grows to 2 s per attempt.
        const client = createClient({ baseUrl: url, retries: 25 });
        for (let n = 0; !stopping; n++) {
          const id = `pg-w${w}-r${n}`;
          const subject = `subject-${id}`;
          try {
            await client.startRun({ id, job: 'fault-pg', subject });
            acks.created.add(id);
            for (let b = 0; b < 3; b++) {
              const batch = Array.from({ length: 2 }, (_, k) => ({ key: `${id}:${b}:${k}`, type: 'step', body: { w, n, b, k } }));
              const keys = batch.map((e) => e.key);
              for (const k of keys) acks.sentKeys.add(k);
              acks.ackEvents(id, keys, await client.run(id).events(batch));
              acked++;
            }
            const output = { w, n };
            await client.run(id).complete({ output });
            acks.completed.set(id, { subject, job: 'fault-pg', output });
          } catch (err) {
            failures.push(`${id}: ${(err as Error).message}`);
            return;
          }
        }
      }

      const workers = Array.from({ length: CLIENTS }, (_, w) => worker(w));
      const outages: { mode: string; readyz503: number; recoveredMs: number }[] = [];
      for (let o = 0; o < OUTAGES; o++) {
        const mode = o % 2 ? 'fast' : 'immediate';
        const target = acked + 40;
        while (acked < target && !failures.length) await sleep(10);
        cluster.stop(mode);
        const down = Date.now();
        // While it is down: not ready (503 problem+json), but alive.
        let readyz503 = 0;
        for (let i = 0; i < 3; i++) {
          const r = await readyz(url);
          expect(r.status).toBe(503);
          expect(r.type).toMatch(/^application\/problem\+json/);
          expect(r.body.code).toBe('unavailable');
          readyz503++;
          await sleep(300);
        }
        expect((await fetch(`${url}/healthz`)).status).toBe(200);
        const ackedWhileDown = acked;
        await sleep(500);
        expect(acked, 'no write can be acknowledged while the database is down').toBe(ackedWhileDown);
        cluster.start();
        // The same server process recovers by itself.
        for (;;) {
          if ((await readyz(url)).status === 200) break;
          await sleep(100);
        }
        outages.push({ mode, readyz503, recoveredMs: Date.now() - down });
        const resumed = acked + 20;
        while (acked < resumed && !failures.length) await sleep(10);
      }
      stopping = true;
      await Promise.all(workers);
      if (failures.length) console.log(`[faults] server output:\n${server.output()}`);
      expect(failures).toEqual([]);
      expect(server.child.exitCode, 'the server kept running through the outages').toBeNull();
      await server.stop();
      server = undefined;

      const ledger = await openLedger({ url: cluster.url, poolSize: 2 });
      try {
        const counts = await checkNothingLost(ledger, acks);
        console.log(`[faults] pg-restart: ${JSON.stringify(outages)} ${JSON.stringify(counts)}`);
      } finally {
        await ledger.close();
      }
    },
  );
});
