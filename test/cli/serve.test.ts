/**
 * `runledger serve` and commands through it. Embedded: commands on the served data
 * directory find the server in its lock file and go through HTTP. PostgreSQL: commands
 * use --server.
 */
import type { ChildProcess } from 'node:child_process';

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import type { LedgerEvent, Run } from '../../src/core/types.js';
import { dropSchemas } from '../helpers.js';
import { type CliResult, type CliStore, cliStore, collect, runCli, spawnCli, waitForOutput } from './cli.js';

let store: CliStore;
const running: ChildProcess[] = [];

beforeAll(() => {
  store = cliStore();
});
afterEach(() => {
  // A failed test must not leave a server behind.
  for (const p of running.splice(0)) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
});
afterAll(async () => {
  store.cleanup();
  await dropSchemas();
});

async function serve(...flags: string[]): Promise<{ url: string; via: string[]; stop(): Promise<CliResult> }> {
  const child = spawnCli([...store.args, 'serve', '--port', '0', '--log-level', 'warn', ...flags]);
  running.push(child);
  const exited = collect(child);
  const [, url] = await waitForOutput(child, /runledger listening on (http:\/\/\S+)/);
  return {
    url,
    // Embedded: the same --data-dir (the CLI finds the server in the lock). PostgreSQL: --server.
    via: store.dataDir ? store.args : ['--server', url],
    async stop() {
      child.kill('SIGTERM');
      return exited;
    },
  };
}

describe('runledger serve', { timeout: 240_000 }, () => {
  it('serves; commands go through it; runs tail follows live over SSE; SIGTERM stops it gracefully', async () => {
    const server = await serve('--reap-interval-s', '1');
    const cli = (...args: string[]) => runCli([...server.via, ...args]);

    const started = await cli('start', '--job', 'served', '--subject', 'acme', '--lease-s', '60');
    expect(started.stderr).toBe('');
    expect(started.code).toBe(0);
    const id = started.stdout.trim();
    const res = await fetch(`${server.url}/v1/runs/${id}`);
    expect(res.status).toBe(200);
    expect(((await res.json()) as Run).job).toBe('served');

    if (store.dataDir) {
      const second = await runCli([...store.args, 'serve', '--port', '0']);
      expect(second.code).toBe(2);
      expect(second.stderr).toBe(`error: a runledger server at ${server.url} already serves this data directory\n`);
    }

    const tail = spawnCli([...server.via, 'runs', 'tail', id, '--json']);
    running.push(tail);
    const tailed = collect(tail);
    await waitForOutput(tail, /"seq":1/);
    expect((await cli('event', id, 'progress', '--body', '{"done":1}')).stdout).toBe('2\n');
    const exec = await cli('exec', '--job', 'served-exec', '-q', '--', 'echo', 'through the server');
    expect(exec.code).toBe(0);
    expect(exec.stdout).toBe('through the server\n');
    expect((await cli('complete', id, '--output', '{"ok":true}')).code).toBe(0);

    const t = await tailed;
    expect(t.code).toBe(0);
    const events = t.stdout
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as LedgerEvent);
    expect(events.map((e) => [e.seq, e.type])).toEqual([
      [1, 'run.status'],
      [2, 'progress'],
      [3, 'run.status'],
    ]);
    expect(events[2].body).toMatchObject({ status: 'completed' });

    const stopped = await server.stop();
    expect(stopped.code).toBe(0);
    expect(stopped.stderr).toContain('runledger: SIGTERM: shutting down\nrunledger: stopped\n');

    // The store is free again: direct access sees what went through the server.
    const after = await runCli([...store.args, 'runs', 'ls', '--json']);
    expect(after.code).toBe(0);
    const runs = (JSON.parse(after.stdout) as { runs: Run[] }).runs;
    expect(runs.map((r) => [r.job, r.status]).sort()).toEqual([
      ['served', 'completed'],
      ['served-exec', 'completed'],
    ]);
  });

  it('--max-future-skew-s sets how far ahead of the server a caller’s time may be', async () => {
    const server = await serve('--max-future-skew-s', '7200', '--reap-interval-s', '0');
    try {
      const post = (path: string, body: unknown) =>
        fetch(`${server.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      const run = (await (await post('/v1/runs', { job: 'skew' })).json()) as Run;
      const inAnHour = new Date(Date.now() + 3600_000).toISOString();
      const inThreeHours = new Date(Date.now() + 3 * 3600_000).toISOString();
      expect((await post(`/v1/runs/${run.id}/events`, { events: [{ type: 'soon', at: inAnHour }] })).status).toBe(200);
      const far = await post(`/v1/runs/${run.id}/events`, { events: [{ type: 'later', at: inThreeHours }] });
      expect(far.status).toBe(400);
      expect(((await far.json()) as { detail: string }).detail).toMatch(/^at .* is more than 7200 s ahead of the ledger's clock/);
    } finally {
      await server.stop();
    }
  });

  it('exec stops its command when the run is cancelled elsewhere', async () => {
    const server = await serve();
    const child = spawnCli([
      ...server.via,
      'exec',
      '--job',
      'cancel-me',
      '--lease-s',
      '3',
      '--',
      'bash',
      '-c',
      'trap "echo stopping; exit 143" TERM; echo "id=$RUNLEDGER_RUN_ID"; while true; do sleep 0.1; done',
    ]);
    running.push(child);
    const done = collect(child);
    const [, id] = await waitForOutput(child, /id=(\S+)\n/);
    expect((await runCli([...server.via, 'cancel', id, '--reason', 'from the dashboard'])).code).toBe(0);
    const r = await done;
    expect(r.code).toBe(143);
    expect(r.stdout).toBe(`id=${id}\nstopping\n`);
    expect(r.stderr).toContain(`runledger: run ${id} was cancelled elsewhere; stopping the command (SIGTERM, SIGKILL after`);
    const run = JSON.parse((await runCli([...server.via, 'runs', 'show', id, '--json'])).stdout) as { run: Run };
    expect(run.run).toMatchObject({ status: 'cancelled', error: { message: 'from the dashboard' } });
    expect((await server.stop()).code).toBe(0);
  });

  it('tokens: create prints the token last; --auth required refuses calls without it; revoke', async () => {
    const created = await runCli([...store.args, '--namespace', 'team-a', 'tokens', 'create', '--scope', 'write', '--name', 'ci']);
    expect(created.code).toBe(0);
    const token = created.stdout.trimEnd().split('\n').at(-1)!;
    expect(token).toMatch(/^rl_[0-9a-f]{16}_\S+$/);
    const tokenId = token.split('_')[1];
    const listed = JSON.parse((await runCli([...store.args, 'tokens', 'ls', '--json'])).stdout) as { id: string; namespace: string }[];
    expect(listed).toEqual([expect.objectContaining({ id: tokenId, namespace: 'team-a', scope: 'write', name: 'ci', revokedAt: null })]);

    const server = await serve('--auth', 'required');
    const none = await runCli([...server.via, '--namespace', 'team-a', 'runs', 'ls']);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/^error: .*token/i);
    const ok = await runCli([...server.via, '--namespace', 'team-a', '--token', token, 'start', '--job', 'authed']);
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
    const other = await runCli([...server.via, '--namespace', 'team-b', 'runs', 'ls'], { env: { RUNLEDGER_TOKEN: token } });
    expect(other.code).toBe(2);
    expect((await server.stop()).code).toBe(0);

    const revoked = await runCli([...store.args, 'tokens', 'revoke', tokenId]);
    expect(revoked.code).toBe(0);
    expect(revoked.stdout).toMatch(new RegExp(`^revoked ${tokenId} \\(namespace team-a, scope write\\) at \\S+Z\\n$`));
  });

  it('tokens go through a running server: create, ls and revoke in its namespace; tokens needs an admin token where tokens are required', async () => {
    type Created = { id: string; token: string; namespace: string; scope: string };
    const open = await serve();
    // Through the server that holds the data directory (embedded) or that --server names.
    const created = await runCli([...open.via, '--namespace', 'team-c', 'tokens', 'create', '--scope', 'admin', '--name', 'ops', '--json']);
    expect(created.stderr).toBe('');
    expect(created.code).toBe(0);
    const admin = JSON.parse(created.stdout) as Created;
    expect(admin).toMatchObject({ namespace: 'team-c', scope: 'admin' });
    const listed = JSON.parse((await runCli([...open.via, '--namespace', 'team-c', 'tokens', 'ls', '--json'])).stdout) as { id: string }[];
    // Only team-c's: the server shows a namespace its own tokens (team-a's from the test above are not there).
    expect(listed.map((t) => t.id)).toEqual([admin.id]);
    expect((await open.stop()).code).toBe(0);

    const strict = await serve('--auth', 'required');
    const teamC = ['--server', strict.url, '--namespace', 'team-c'];
    const made = await runCli([...teamC, '--token', admin.token, 'tokens', 'create', '--scope', 'write', '--json']);
    expect(made.code).toBe(0);
    const writer = JSON.parse(made.stdout) as Created;
    expect(writer).toMatchObject({ namespace: 'team-c', scope: 'write' });
    const byWriter = await runCli([...teamC, '--token', writer.token, 'tokens', 'create', '--scope', 'admin']);
    expect(byWriter.code).toBe(2);
    expect(byWriter.stderr).toMatch(/admin/);
    // An admin token of team-c cannot reach team-a's tokens.
    const foreign = await runCli(['--server', strict.url, '--namespace', 'team-a', '--token', admin.token, 'tokens', 'ls']);
    expect(foreign.code).toBe(2);
    const revoked = await runCli([...teamC, '--token', admin.token, 'tokens', 'revoke', writer.id]);
    expect(revoked.code).toBe(0);
    expect(revoked.stdout).toMatch(new RegExp(`^revoked ${writer.id} \\(namespace team-c, scope write\\) at \\S+Z\\n$`));
    expect((await runCli([...teamC, '--token', writer.token, 'runs', 'ls'])).code).toBe(2);
    expect((await strict.stop()).code).toBe(0);
  });
});
