/**
 * The embedded server on a disk that fills up (a small tmpfs of its own):
 * - batches of 200 events until refused: the refusal is a prompt 507 storage_full
 *   problem+json, and nothing acknowledged is lost;
 * - meanwhile /healthz answers, /readyz is 503 saying why, reads go on;
 * - once space is freed (a filler file put there first is deleted) writes work again;
 * - SIGTERM stops the server; below the reserve the directory still opens for reading;
 * - reopening the directory with its disk completely full exits 2 saying so.
 * And without a reserve (--min-free-mb 0), where PGlite meets ENOSPC while writing its WAL
 * and spins in XLogFlush for good (no answer, no /healthz, no SIGTERM, before the watchdog):
 * the wedged write answers 507, the server answers, SIGTERM stops it, nothing acknowledged is lost.
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

const mounts: string[] = [];
let server: ServeProcess | undefined;

afterAll(async () => {
  await server?.kill();
  for (const mnt of mounts) {
    execFileSync('umount', [mnt], { stdio: 'pipe' });
    rmSync(mnt, { recursive: true, force: true });
  }
});

/** A tmpfs of its own for one test (unmounted after the file). */
function mountTmpfs(): string {
  const mnt = mkdtempSync(join(tmpdir(), 'runledger-diskfull-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${TMPFS_MB}m`, 'tmpfs', mnt], { stdio: 'pipe' });
  mounts.push(mnt);
  return mnt;
}

type Answer = Awaited<ReturnType<typeof post>>;

/** 200-event batches to `runId` until one is refused; the acknowledged ones are recorded in `acks`. */
async function fillWithBatches(
  url: string,
  runId: string,
  acks: Acks,
  padLength: number,
): Promise<{ batches: number; refused: Answer | undefined }> {
  const pad = 'x'.repeat(padLength);
  for (let b = 0; b < 2000; b++) {
    const events = Array.from({ length: 200 }, (_, k) => ({ key: `b${b}:${k}`, type: 'step', body: { b, k, pad } }));
    const keys = events.map((e) => e.key);
    const res = await post(url, `/v1/runs/${runId}/events`, { events });
    // A refused batch's keys are not in sentKeys: none of them may be stored.
    if (res.status !== 200) return { batches: b, refused: res };
    for (const k of keys) acks.sentKeys.add(k);
    acks.ackEvents(runId, keys, (res.body as unknown as { results: { seq: number; duplicate: boolean }[] }).results);
  }
  return { batches: 2000, refused: undefined };
}

/** SIGTERM, and true when the process is gone within the bound. */
async function stopsOnSigterm(s: ServeProcess): Promise<boolean> {
  return Promise.race([s.stop().then(() => true), new Promise<false>((resolve) => setTimeout(() => resolve(false), ANSWER_MS))]);
}

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
    const mnt = mountTmpfs();
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
    // 1000-character pads are stored as they are (below TOAST's ~2 kB): the data files grow fast.
    const { batches, refused } = await fillWithBatches(url, runId, acks, 1000);
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
    const stopped = await stopsOnSigterm(server);
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

    // Step 6: below the reserve the directory still opens, for reading.
    fill(filler, free(mnt) - 8 * MiB);
    const reader = await openLedger({ dataDir });
    try {
      expect((await reader.getRun(runId)).id).toBe(runId);
      await expect(reader.startRun({ job: 'fault-disk-full' })).rejects.toMatchObject({ code: 'storage_full' });
    } finally {
      await reader.close();
    }

    // Step 7: a completely full disk at open: exit 2, saying what is wrong.
    rmSync(filler);
    fill(filler, free(mnt));
    const reopen = await runCli([...args, 'serve', '--port', '0']);
    expect(reopen.code, reopen.stderr).toBe(2);
    expect(reopen.stderr).toMatch(new RegExp(`disk full at ${dataDir}: \\d+ bytes free`));
    expect(reopen.stderr).not.toContain('Aborted()');
  });

  it('without a reserve, a PGlite wedged on a full disk is ended: the write answers 507, the server answers, SIGTERM stops it, nothing acknowledged is lost', async () => {
    const mnt = mountTmpfs();
    const dataDir = join(mnt, 'data');
    const filler = join(mnt, 'filler');
    server = await startServe(['--data-dir', dataDir], await freePort(), ['--reap-interval-s', '0', '--min-free-mb', '0']);
    const url = server.url;
    // Less than a WAL segment (16 MB) free, and events whose pads TOAST compresses to almost
    // nothing: the data files grow by ~5 MB while the first segment fills, so the WAL switch
    // meets ENOSPC first (measured) — the wedge, not the data files' 53100.
    fill(filler, free(mnt) - 12 * MiB);

    const acks = new Acks();
    const runId = 'disk-wedge';
    expect((await post(url, '/v1/runs', { id: runId, job: 'fault-disk-full' })).status).toBe(201);
    acks.created.add(runId);
    const { batches, refused } = await fillWithBatches(url, runId, acks, 3000);
    expect(refused, 'the disk filled within 2000 batches').toBeDefined();
    expect(refused!.status, JSON.stringify(refused!.body)).toBe(507);
    expect(refused!.body).toMatchObject({ code: 'storage_full' });
    expect(refused!.body.detail).toMatch(new RegExp(`the embedded database at ${dataDir} stopped: PGlite met a full disk`));

    expect(await get(url, '/healthz')).toMatchObject({ status: 200, body: { status: 'ok' } });
    const ready = await get(url, '/readyz');
    expect(ready.status).toBe(503);
    expect(ready.body).toMatchObject({ code: 'storage_full' });
    expect(await stopsOnSigterm(server), `SIGTERM did not stop the server:\n${server.output()}`).toBe(true);
    server = undefined;

    // Restarted with space: everything acknowledged is there.
    rmSync(filler);
    const ledger = await openLedger({ dataDir });
    try {
      const counts = await checkNothingLost(ledger, acks);
      expect(counts.keyedEvents).toBe(batches * 200);
      console.log(`[faults] disk-full wedge: ${batches} batches acknowledged before PGlite wedged, ${JSON.stringify(counts)}`);
    } finally {
      await ledger.close();
    }
  });
});
