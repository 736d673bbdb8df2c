/** `runledger exec`: a command as a tracked run. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { LedgerEvent, Run, RunPage } from '../../src/core/types.js';
import { dropSchemas } from '../helpers.js';
import { type CliStore, cliStore, collect, runBash, runCli, spawnCli, waitForOutput } from './cli.js';

let store: CliStore;
const cli = (...args: string[]) => runCli([...store.args, ...args]);
const json = <T>(text: string) => JSON.parse(text) as T;

beforeAll(() => {
  store = cliStore();
});
afterAll(async () => {
  store.cleanup();
  await dropSchemas();
});

async function onlyRun(job: string): Promise<Run> {
  const page = json<RunPage>((await cli('runs', 'ls', '--job', job, '--json')).stdout);
  expect(page.runs).toHaveLength(1);
  return page.runs[0];
}

async function logLines(id: string): Promise<{ stream: string; line: string; level: string | null }[]> {
  const shown = json<{ events: LedgerEvent[] }>((await cli('runs', 'show', id, '--events', '1000', '--json')).stdout);
  return shown.events.filter((e) => e.type === 'log').map((e) => ({ ...(e.body as { stream: string; line: string }), level: e.level }));
}

describe('runledger exec', { timeout: 240_000 }, () => {
  it('passes output through, stores each line as a log event, completes on exit 0', async () => {
    const r = await cli(
      'exec',
      '--job',
      'ok',
      '--subject',
      'db1',
      '--',
      'bash',
      '-c',
      'echo one; echo two >&2; printf "three"; echo "id=$RUNLEDGER_RUN_ID"',
    );
    expect(r.code).toBe(0);
    const run = await onlyRun('ok');
    // exec's stdout is exactly the command's; its own status lines go to stderr.
    expect(r.stdout).toBe(`one\nthreeid=${run.id}\n`);
    expect(r.stderr).toContain('two\n');
    expect(r.stderr).toContain(`runledger: run ${run.id} started (job ok)`);
    expect(run).toMatchObject({
      status: 'completed',
      subject: 'db1',
      output: { exitCode: 0 },
      params: { command: ['bash', '-c', expect.stringContaining('echo one')] },
      statistics: { stdoutLines: 2, stderrLines: 1 },
    });
    const lines = await logLines(run.id);
    expect(lines.filter((l) => l.stream === 'stdout')).toEqual([
      { stream: 'stdout', line: 'one', level: 'info' },
      { stream: 'stdout', line: `threeid=${run.id}`, level: 'info' },
    ]);
    expect(lines.filter((l) => l.stream === 'stderr')).toEqual([{ stream: 'stderr', line: 'two', level: 'error' }]);
  });

  it('fails the run on a non-zero exit and exits with the same code', async () => {
    const r = await cli('exec', '--job', 'bad', '-q', '--', 'bash', '-c', 'echo working; exit 7');
    expect(r.code).toBe(7);
    expect(r.stdout).toBe('working\n');
    expect(r.stderr).toBe(''); // --quiet
    const run = await onlyRun('bad');
    expect(run).toMatchObject({
      status: 'failed',
      error: { type: 'exit_code', message: 'command exited with code 7', details: { exitCode: 7 } },
    });
    expect(await logLines(run.id)).toEqual([{ stream: 'stdout', line: 'working', level: 'info' }]);
  });

  it('fails the run with exit 127 when the command cannot be started', async () => {
    const r = await cli('exec', '--job', 'missing', '--', 'no-such-command-runledger-test', 'arg');
    expect(r.code).toBe(127);
    expect(r.stderr).toContain('error: cannot run "no-such-command-runledger-test": ENOENT');
    const run = await onlyRun('missing');
    expect(run).toMatchObject({ status: 'failed', error: { type: 'spawn_failed' } });
  });

  it('ships many lines in order, in batches', async () => {
    const r = await cli('exec', '--job', 'many', '-q', '--', 'seq', '1', '2500');
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n').length).toBe(2501);
    const run = await onlyRun('many');
    expect(run.lastSeq).toBe(2502); // running + 2500 lines + completed
    const shown = json<{ events: LedgerEvent[] }>((await cli('runs', 'show', run.id, '--events', '1000', '--json')).stdout);
    const lines = shown.events.filter((e) => e.type === 'log').map((e) => (e.body as { line: string }).line);
    expect(lines).toEqual(Array.from({ length: 999 }, (_, i) => String(1502 + i)));
    expect(new Set(shown.events.map((e) => e.seq)).size).toBe(1000);
  });

  it('splits a very long line into several events without breaking a character in two', async () => {
    const line = 'a' + '😀'.repeat(20_000); // the 16 KiB cut falls inside a surrogate pair
    const r = await cli(
      'exec',
      '--job',
      'long',
      '-q',
      '--',
      process.execPath,
      '-e',
      `process.stdout.write(${JSON.stringify(line)} + '\\n')`,
    );
    expect(r.code).toBe(0);
    const run = await onlyRun('long');
    expect(run.statistics).toEqual({ stdoutLines: 3, stderrLines: 0 }); // nothing dropped
    expect((await logLines(run.id)).map((l) => l.line).join('')).toBe(line);
  });

  it('keeps recording when the reader of its output goes away (exec … | head)', async () => {
    const r = await runBash(`runledger exec --job piped -q -- seq 1 20000 | head -n 2`, store.args);
    expect(r.code).toBe(0); // pipefail: exec itself exited 0
    expect(r.stdout).toBe('1\n2\n');
    const run = await onlyRun('piped');
    expect(run).toMatchObject({ status: 'completed', statistics: { stdoutLines: 20000, stderrLines: 0 } });
    expect(run.lastSeq).toBe(20002);
  });

  it('forwards SIGTERM to the command, cancels the run and exits with the command’s code', async () => {
    const child = spawnCli([
      ...store.args,
      'exec',
      '--job',
      'sig',
      '--',
      'bash',
      '-c',
      'trap "echo got TERM; exit 143" TERM; echo ready; while true; do sleep 0.1; done',
    ]);
    const done = collect(child);
    await waitForOutput(child, /ready\n/);
    child.kill('SIGTERM');
    const r = await done;
    expect(r.code).toBe(143);
    expect(r.stdout).toBe('ready\ngot TERM\n'); // the command saw the signal and cleaned up
    const run = await onlyRun('sig');
    expect(run.status).toBe('cancelled');
    expect(run.error?.message).toBe('exec received SIGTERM; the command exited with code 143');
    expect((await logLines(run.id)).map((l) => l.line)).toEqual(['ready', 'got TERM']);
  });

  it('does not run the command again for an --id that already completed', async () => {
    const first = await cli('exec', '--job', 'once', '--id', 'once-2026-01-01', '--', 'echo', 'ran');
    expect(first.code).toBe(0);
    expect(first.stdout).toBe('ran\n');
    const again = await cli('exec', '--job', 'once', '--id', 'once-2026-01-01', '--', 'echo', 'ran');
    expect(again.code).toBe(0);
    expect(again.stdout).toBe('');
    expect(again.stderr).toContain('run once-2026-01-01 already completed; not running the command again');
  });

  it('needs a command', async () => {
    const r = await cli('exec', '--job', 'x');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/missing required argument 'command'/);
  });
});
