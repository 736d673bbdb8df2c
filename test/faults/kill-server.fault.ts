/**
 * SIGKILL the server while 8 clients create runs, append keyed events and complete runs;
 * restart it on the same port; repeat. The clients keep their ids and keys and retry
 * until acknowledged, as an application would. Afterwards, on the store itself: every
 * acknowledged event is present with its original seq, no key is stored twice, every
 * chain verifies (library and `runledger verify --all`), no run is half-completed.
 * Runs on the selected backend: a PGlite data directory or a PostgreSQL schema.
 */
import { afterAll, describe, expect, it } from 'vitest';

import { createClient, openLedger } from '../../src/index.js';
import { cliStore, runCli } from '../cli/cli.js';
import { BACKEND, dropSchemas, PG_URL } from '../helpers.js';
import { Acks, checkNothingLost, freePort, patiently, type ServeProcess, sleep, startServe } from './support.js';

const CLIENTS = 8;
// RUNLEDGER_FAULT_KILLS=N for a longer campaign.
const KILLS = Number(process.env.RUNLEDGER_FAULT_KILLS ?? 3);
const store = cliStore();
let server: ServeProcess | undefined;

afterAll(async () => {
  await server?.kill();
  store.cleanup();
  await dropSchemas();
});

describe(`SIGKILL of the server under load (${BACKEND})`, () => {
  it(`${CLIENTS} clients, ${KILLS} kills: nothing acknowledged is lost or duplicated, chains verify, no half-completed run`, async () => {
    const port = await freePort();
    server = await startServe(store.args, port, ['--reap-interval-s', '0']);
    const url = server.url;
    const acks = new Acks();
    const failures: string[] = [];
    let stopping = false;
    let acked = 0;

    async function worker(w: number) {
      const client = createClient({ baseUrl: url, retries: 2 });
      const onRetry = () => acks.retries++;
      for (let n = 0; !stopping; n++) {
        const id = `kill-w${w}-r${n}`;
        const subject = `subject-${id}`;
        try {
          await patiently(() => client.startRun({ id, job: 'fault-kill', subject, params: { w, n } }), { onRetry });
          acks.created.add(id);
          for (let b = 0; b < 4; b++) {
            const batch = Array.from({ length: 1 + ((n + b) % 3) }, (_, k) => ({
              key: `${id}:${b}:${k}`,
              type: 'step',
              body: { w, n, b, k },
            }));
            const keys = batch.map((e) => e.key);
            for (const k of keys) acks.sentKeys.add(k);
            const results = await patiently(() => client.run(id).events(batch), { onRetry });
            acks.ackEvents(id, keys, results);
            acked++;
          }
          const output = { w, n, done: true };
          await patiently(() => client.run(id).complete({ output, statistics: { batches: 4 } }), { onRetry });
          acks.completed.set(id, { subject, job: 'fault-kill', output });
        } catch (err) {
          failures.push(`${id}: ${(err as Error).message}`);
          return;
        }
      }
    }

    const workers = Array.from({ length: CLIENTS }, (_, w) => worker(w));
    for (let kill = 0; kill < KILLS; kill++) {
      // Let the clients get going, then kill at an arbitrary moment mid-traffic.
      const target = acked + 30 + Math.floor(Math.random() * 30);
      while (acked < target && !failures.length) await sleep(10);
      await sleep(Math.random() * 50);
      await server.kill();
      await sleep(200);
      server = await startServe(store.args, port, ['--reap-interval-s', '0']);
    }
    const target = acked + 30;
    while (acked < target && !failures.length) await sleep(10);
    stopping = true;
    await Promise.all(workers);
    expect(failures).toEqual([]);
    await server.stop();
    server = undefined;

    // The post-mortem, on the store directly.
    const ledger =
      BACKEND === 'postgres'
        ? await openLedger({ url: PG_URL, schema: store.schema, poolSize: 2 })
        : await openLedger({ dataDir: store.dataDir });
    try {
      const counts = await checkNothingLost(ledger, acks);
      expect(counts.completed).toBeGreaterThan(CLIENTS);
      expect(acks.retries, 'the kills must have interrupted the clients').toBeGreaterThan(0);
      console.log(
        `[faults] kill-server ${BACKEND}: ${KILLS} kills, ${CLIENTS} clients, retries=${acks.retries}, ${JSON.stringify(counts)}`,
      );
    } finally {
      await ledger.close();
    }
    const verify = await runCli([...store.args, 'verify', '--all']);
    expect(verify.stderr).toBe('');
    expect(verify.stdout).toMatch(/^ok: \d+ run\(s\), \d+ event\(s\) verified/);
    expect(verify.code).toBe(0);
  });
});
