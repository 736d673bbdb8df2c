/**
 * `runledger exec` stops its command when its run is cancelled from outside (the
 * dashboard, `runledger cancel`, another client): SIGTERM first, SIGKILL once
 * --cancel-grace-s has passed. The server runs in this process over the test store; exec
 * talks to it with --server, as a worker on another machine would.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createClient, type OpenedLedger, type RunledgerClient, type RunningServer, startServer } from '../../src/index.js';
import { dropSchemas, freshStore } from '../helpers.js';
import { collect, spawnCli, waitForOutput } from './cli.js';

let ledger: OpenedLedger;
let server: RunningServer;
let client: RunledgerClient;

beforeAll(async () => {
  ledger = await freshStore();
  server = await startServer({ ledger, port: 0, auth: 'off', reapIntervalS: 0, logger: false, webRoot: false });
  client = createClient({ baseUrl: server.url });
});
afterAll(async () => {
  await client?.close();
  await server?.close();
  await ledger?.close();
  await dropSchemas();
});

async function cancelWhenReady(job: string, script: string, graceS: number) {
  const child = spawnCli([
    '--server',
    server.url,
    'exec',
    '--job',
    job,
    '--lease-s',
    '3',
    '--cancel-grace-s',
    String(graceS),
    '--',
    'bash',
    '-c',
    script,
  ]);
  const done = collect(child);
  await waitForOutput(child, /ready\n/);
  const [run] = (await client.listRuns({ job })).runs;
  await client.run(run.id).cancel({ reason: 'stop it' });
  return { result: await done, id: run.id };
}

describe('runledger exec, cancelled from outside', { timeout: 120_000 }, () => {
  it('sends SIGTERM; a command that stops on it exits with its code and the run stays cancelled', async () => {
    const { result, id } = await cancelWhenReady(
      'cancel-term',
      'trap "echo got TERM; exit 143" TERM; echo ready; while true; do sleep 0.1; done',
      10,
    );
    expect(result.stdout).toBe('ready\ngot TERM\n');
    expect(result.code).toBe(143);
    expect(result.stderr).toContain(`run ${id} was cancelled elsewhere; stopping the command`);
    expect(result.stderr).not.toContain('SIGKILL;');
    const run = await client.getRun(id);
    expect(run).toMatchObject({ status: 'cancelled', error: { message: 'stop it' } });
  });

  it('a command that ignores SIGTERM is killed with SIGKILL after the grace', async () => {
    const { result, id } = await cancelWhenReady(
      'cancel-kill',
      'trap "echo ignoring TERM" TERM; echo ready; while true; do sleep 0.1; done',
      1,
    );
    expect(result.stdout).toContain('ignoring TERM'); // it did receive SIGTERM first
    expect(result.stderr).toContain('the command did not stop within 1s; sending SIGKILL');
    expect(result.code).toBe(137); // 128 + SIGKILL
    expect((await client.getRun(id)).status).toBe('cancelled');
  });
});
