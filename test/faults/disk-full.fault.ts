/**
 * The embedded server on a disk that fills up (a small tmpfs of its own):
 * - batches of 200 events until refused: the refusal is a prompt 507 storage_full
 *   problem+json, and nothing acknowledged is lost;
 * - meanwhile /healthz answers, /readyz is 503 saying why, reads go on;
 * - once space is freed (a filler file put there first is deleted) writes work again;
 * - SIGTERM stops the server;
 * - reopening the directory with its disk completely full exits 2 saying so.
 * Without the free-space reserve PGlite meets ENOSPC while writing WAL and spins in
 * XLogFlush for good: no answer, no /healthz, no SIGTERM.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, statfsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { openLedger } from '../../src/index.js';
import { runCli } from '../cli/cli.js';
import { BACKEND } from '../helpers.js';
import { Acks, checkNothingLost, freePort, type ServeProcess, startServe } from './support.js';

const MiB = 1024 * 1024;
// A fresh PGlite directory takes about 40 MB (measured: 23 MB of base, one 16 MB WAL segment).
const TMPFS_MB = 160;
const RESERVE_MB = 64;
// Room for writing beyond the reserve before the refusals start: ~100 batches.
const MARGIN = 24 * MiB;
// A bound on "answers at all", not on speed.
const ANSWER_MS = 30_000;

/** Why a tmpfs cannot be mounted here, or '' when it can (probed once, with a throwaway mount). */
function mountUnavailable(): string {
  if (BACKEND !== 'pglite') return 'skipped: embedded data directories are PGlite (runs with RUNLEDGER_TEST_DB=pglite)';
  if (process.platform !== 'linux') return 'skipped: needs Linux to mount a tmpfs';
  const probe = mkdtempSync(join(tmpdir(), 'runledger-tmpfs-probe-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', probe], { stdio: 'pipe' });
    execFileSync('umount', [probe], { stdio: 'pipe' });
    return '';
  } catch (err) {
    return `skipped: cannot mount a tmpfs here (${String((err as Error).message).split('\n')[0]})`;
  } finally {
    rmSync(probe, { recursive: true, force: true });
  }
}

const skip = mountUnavailable();
const free = (dir: string) => {
  const s = statfsSync(dir);
  return s.bavail * s.bsize;
};
const fill = (path: string, bytes: number) => execFileSync('fallocate', ['-l', String(bytes), path]);

let mnt: string | undefined;
let server: ServeProcess | undefined;

afterAll(async () => {
  await server?.kill();
  if (mnt) {
    execFileSync('umount', [mnt], { stdio: 'pipe' });
    rmSync(mnt, { recursive: true, force: true });
  }
});

async function post(url: string, path: string, body: unknown) {
  const res = await fetch(url + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(ANSWER_MS),
  });
  return { status: res.status, type: res.headers.get('content-type'), body: (await res.json()) as Record<string, unknown> };
}

async function get(url: string, path: string) {
  const res = await fetch(url + path, { signal: AbortSignal.timeout(ANSWER_MS) });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe.skipIf(skip)(`embedded server on a full disk${skip ? ` (${skip})` : ''}`, () => {
  it('refuses writes with 507 storage_full, keeps answering, resumes when space is freed, stops on SIGTERM, and a full disk at open exits 2', async () => {
    mnt = mkdtempSync(join(tmpdir(), 'runledger-diskfull-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${TMPFS_MB}m`, 'tmpfs', mnt], { stdio: 'pipe' });
    const dataDir = join(mnt, 'data');
    const filler = join(mnt, 'filler');
    const args = ['--data-dir', dataDir];
    server = await startServe(args, await freePort(), ['--reap-interval-s', '0', '--min-free-mb', String(RESERVE_MB)]);
    const url = server.url;
    fill(filler, free(mnt) - RESERVE_MB * MiB - MARGIN);

    // Step 1: 200-event batches until refused.
    const acks = new Acks();
    const runId = 'disk-full';
    expect((await post(url, '/v1/runs', { id: runId, job: 'fault-disk-full' })).status).toBe(201);
    acks.created.add(runId);
    const pad = 'x'.repeat(1000);
    let refused: Awaited<ReturnType<typeof post>> | undefined;
    let batches = 0;
    for (let b = 0; b < 2000 && !refused; b++) {
      const events = Array.from({ length: 200 }, (_, k) => ({ key: `b${b}:${k}`, type: 'step', body: { b, k, pad } }));
      const keys = events.map((e) => e.key);
      const res = await post(url, `/v1/runs/${runId}/events`, { events });
      if (res.status === 200 || res.status === 201) {
        for (const k of keys) acks.sentKeys.add(k);
        acks.ackEvents(runId, keys, (res.body as unknown as { results: { seq: number; duplicate: boolean }[] }).results);
        batches++;
      } else refused = res; // its keys are not in sentKeys: none of them may be stored
    }
    expect(batches, 'some batches fit before the disk filled').toBeGreaterThan(0);
    expect(refused, 'the disk filled within 2000 batches').toBeDefined();
    expect(refused!.status).toBe(507);
    expect(refused!.type).toMatch(/^application\/problem\+json/);
    expect(refused!.body).toMatchObject({ type: 'urn:runledger:problem:storage_full', code: 'storage_full', status: 507 });
    expect(refused!.body.detail).toMatch(new RegExp(`disk full at ${dataDir}: \\d+ bytes free`));

    // Step 2: the server keeps answering, says why it is not ready, and reads go on.
    expect(await get(url, '/healthz')).toMatchObject({ status: 200, body: { status: 'ok' } });
    const ready = await get(url, '/readyz');
    expect(ready.status).toBe(503);
    expect(ready.body).toMatchObject({ code: 'storage_full' });
    expect(ready.body.detail).toContain(`disk full at ${dataDir}`);
    expect((await get(url, `/v1/runs/${runId}`)).status).toBe(200);

    // Step 3: free space; writes work again.
    rmSync(filler);
    const events = [{ key: 'after-free', type: 'step', body: { after: true } }];
    const again = await post(url, `/v1/runs/${runId}/events`, { events });
    expect(again.status, JSON.stringify(again.body)).toBe(200);
    acks.sentKeys.add('after-free');
    acks.ackEvents(runId, ['after-free'], (again.body as unknown as { results: { seq: number; duplicate: boolean }[] }).results);
    expect((await get(url, '/readyz')).status).toBe(200);

    // Step 4: SIGTERM stops it (bounded: a wedged process would never exit).
    const stopped = await Promise.race([
      server.stop().then(() => true),
      new Promise<false>((resolve) => setTimeout(() => resolve(false), ANSWER_MS)),
    ]);
    expect(stopped, `SIGTERM did not stop the server:\n${server.output()}`).toBe(true);
    expect(server.child.exitCode, server.output()).toBe(0);
    server = undefined;

    // Step 5: everything acknowledged is there, whole; nothing of the refused batch is.
    const ledger = await openLedger({ dataDir });
    try {
      const counts = await checkNothingLost(ledger, acks);
      expect(counts.keyedEvents).toBe(batches * 200 + 1);
      console.log(`[faults] disk-full: ${batches} batches acknowledged before the refusal, ${JSON.stringify(counts)}`);
    } finally {
      await ledger.close();
    }

    // Step 6: a completely full disk at open: exit 2, saying what is wrong.
    fill(filler, free(mnt));
    const reopen = await runCli([...args, 'serve', '--port', '0']);
    expect(reopen.code, reopen.stderr).toBe(2);
    expect(reopen.stderr).toMatch(new RegExp(`disk full at ${dataDir}: \\d+ bytes free`));
    expect(reopen.stderr).not.toContain('Aborted()');
  });
});
