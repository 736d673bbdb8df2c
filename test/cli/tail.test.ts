/**
 * `runs tail` without a server: in process it wakes on the ledger's change feed; on
 * PostgreSQL it also follows writes made by other processes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { tailRun } from '../../src/cli/tail.js';
import { openTarget, type Target } from '../../src/cli/target.js';
import type { LedgerEvent } from '../../src/core/types.js';
import { dropSchemas, onPostgres, PG_URL, sleep } from '../helpers.js';
import { type CliStore, cliStore, collect, runCli, spawnCli, waitForOutput } from './cli.js';

let store: CliStore;
let ledger: Target;

beforeAll(async () => {
  store = cliStore();
  ledger = store.schema
    ? await openTarget({ databaseUrl: PG_URL, schema: store.schema, poolSize: 2 })
    : await openTarget({ dataDir: 'memory://' });
});
afterAll(async () => {
  await ledger.close();
  store.cleanup();
  await dropSchemas();
});

describe('runs tail without a server', { timeout: 240_000 }, () => {
  it('follows a run live in process until its terminal status', async () => {
    expect(ledger.target.kind).toBe('direct');
    const run = await ledger.startRun({ job: 'tail-in-process' });
    const lines: string[] = [];
    const tailing = tailRun(ledger, run.id, { lines: 10, json: true, write: (l) => lines.push(l) });
    await sleep(50);
    await run.event('step', { n: 1 });
    await sleep(50);
    await run.events([
      { type: 'step', body: { n: 2 } },
      { type: 'step', body: { n: 3 } },
    ]);
    await run.fail({ error: { message: 'stop' } });
    expect(await tailing).toBe(1); // failed
    const events = lines.map((l) => JSON.parse(l) as LedgerEvent);
    expect(events.map((e) => [e.seq, e.type])).toEqual([
      [1, 'run.status'],
      [2, 'step'],
      [3, 'step'],
      [4, 'step'],
      [5, 'run.status'],
    ]);
  });

  it('stops when interrupted, with exit code 130', async () => {
    const run = await ledger.startRun({ job: 'tail-in-process' });
    const abort = new AbortController();
    const tailing = tailRun(ledger, run.id, { lines: 0, write: () => {}, signal: abort.signal });
    await sleep(50);
    abort.abort();
    expect(await tailing).toBe(130);
  });

  // Embedded, the tailing process would hold the data directory and lock out the run's writers.
  it.skipIf(onPostgres)('on an embedded data directory, prints what is stored and asks for a server to follow a live run', async () => {
    const id = (await runCli([...store.args, 'start', '--job', 'tail-embedded'])).stdout.trim();
    const r = await runCli([...store.args, 'runs', 'tail', id]);
    expect(r.code).toBe(2);
    expect(r.stdout).toMatch(/^#1 \S+ run.status \{"status":"running"\}\n$/);
    expect(r.stderr).toBe(
      `error: run ${id} is still running; following it live on an embedded data directory needs a server, because this command ` +
        `would hold the directory and lock out the writers: start \`runledger serve --data-dir ${store.dataDir}\` and run tail again ` +
        `(commands on the directory then go through the server)\n`,
    );
  });

  // Other processes can write only to PostgreSQL (an embedded data directory has one process at a time).
  it.skipIf(!onPostgres)('on PostgreSQL, follows writes made by other processes', async () => {
    const started = await runCli([...store.args, 'start', '--job', 'tail-cross']);
    const id = started.stdout.trim();
    const tail = spawnCli([...store.args, 'runs', 'tail', id]);
    const tailed = collect(tail);
    await waitForOutput(tail, /#1 .* run.status/);
    expect((await runCli([...store.args, 'event', id, 'note', '--body', '"from another process"'])).code).toBe(0);
    expect((await runCli([...store.args, 'complete', id])).code).toBe(0);
    const r = await tailed;
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(
      /^#1 \S+ run.status \{"status":"running"\}\n#2 \S+ note from another process\n#3 \S+ run.status \{"status":"completed"\}\n$/,
    );
  });
});
