/**
 * A process that writes to an embedded (PGlite) data directory through the library as
 * fast as it can, for the embedded fault tests to SIGKILL. It prints one line per step,
 * before (`send`) and after (`ack`) each write, so the test knows exactly what was
 * acknowledged when the process died. Lines on stdout are synchronous on Linux pipes.
 *
 *   node --import tsx test/faults/embedded-writer.ts <dataDir> <prefix> [workers]
 *
 * With `workers` > 1 that many loops write concurrently (runs `<prefix>w<k>-r<n>`), so the
 * ledger coalesces their writes into shared transactions (src/ledger/coalesce.ts) and a kill
 * lands in the middle of a batch.
 */
import { openLedger } from '../../src/index.js';

const [dataDir, prefix, workersArg] = process.argv.slice(2);
const workers = Number(workersArg ?? 1);
const say = (line: object) => process.stdout.write(`${JSON.stringify(line)}\n`);

try {
  const ledger = await openLedger({ dataDir });
  say({ opened: process.pid });
  const loop = async (base: string) => {
    for (let n = 0; ; n++) {
      const id = `${base}-r${n}`;
      const subject = `subject-${id}`;
      say({ send: 'run', id });
      await ledger.startRun({ id, job: 'fault-embedded', subject });
      say({ ack: 'run', id });
      for (let b = 0; b < 3; b++) {
        const batch = [0, 1, 2].map((k) => ({ key: `${id}:${b}:${k}`, type: 'step', body: { n, b, k, pad: 'x'.repeat(200) } }));
        say({ send: 'events', id, keys: batch.map((e) => e.key) });
        const results = await ledger.run(id).events(batch);
        say({ ack: 'events', id, keys: batch.map((e) => e.key), results });
      }
      await ledger.run(id).checkpoint({ name: 'mid', metadata: { n }, data: { blob: 'y'.repeat(500) } });
      const output = { n, prefix };
      say({ send: 'complete', id });
      await ledger.run(id).complete({ output, statistics: { batches: 3 } });
      say({ ack: 'complete', id, subject, output });
    }
  };
  if (workers === 1) await loop(prefix);
  else await Promise.all(Array.from({ length: workers }, (_, k) => loop(`${prefix}w${k}`)));
} catch (err) {
  const e = err as { code?: string; pid?: number; message: string };
  say({ error: e.code ?? 'unknown', pid: e.pid, message: e.message });
  process.exit(3);
}
