/**
 * Embedded data directories are held by one process at a time: a second opener gets
 * `data_dir_locked` naming the holder's pid — never corruption. After the holder is
 * killed (SIGKILL, no clean-up), a new opener succeeds, every acknowledged write is
 * there and verify() is clean.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

import { afterEach, describe, expect, it } from 'vitest';

import { type OpenedLedger, openLedger } from '../../src/index.js';
import { onPostgres, rejectsWith } from '../helpers.js';

const CHILD = fileURLToPath(new URL('./fixtures/hold-data-dir.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'runledger-lock-'));
  cleanup.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Starts the holder; resolves once it holds the directory, with a way to wait for acknowledged seqs. */
async function startHolder(dir: string) {
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', CHILD, dir], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  cleanup.push(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
    }
  });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  let acked = 0;
  const waiters: { n: number; resolve: () => void }[] = [];
  const ready = new Promise<{ pid: number }>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`holder exited (${code}) before it was ready: ${stderr}`)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (line.startsWith('ready ')) resolve(JSON.parse(line.slice(6)));
      if (line.startsWith('ack ')) {
        acked = Number(line.slice(4));
        for (const w of waiters.filter((w) => acked >= w.n)) w.resolve();
      }
    });
  });
  const info = await ready;
  return {
    child,
    pid: info.pid,
    acked: () => acked,
    ackedAtLeast: (n: number) => new Promise<void>((resolve) => (acked >= n ? resolve() : waiters.push({ n, resolve }))),
  };
}

describe.skipIf(onPostgres)('embedded data directory lock (PGlite only: PostgreSQL has no data directory)', () => {
  it('a second process gets data_dir_locked naming the holder pid; after SIGKILL a new opener succeeds with every acknowledged write', async () => {
    const dir = await tempDir();
    const holder = await startHolder(dir);
    expect(JSON.parse(await readFile(join(dir, 'runledger.lock'), 'utf8'))).toMatchObject({ pid: holder.pid });

    // While it writes: refused, naming the pid, and nothing of ours touches the directory.
    const err = await rejectsWith(openLedger({ dataDir: dir }), 'data_dir_locked');
    expect(err.message).toContain(String(holder.pid));
    expect(err.message).toContain(dir);
    expect((err as unknown as { pid: number }).pid).toBe(holder.pid);

    // Kill it mid-write, with no chance to clean up.
    await holder.ackedAtLeast(30);
    holder.child.kill('SIGKILL');
    await new Promise((r) => holder.child.once('exit', r));
    const acked = holder.acked();

    const ledger: OpenedLedger = await openLedger({ dataDir: dir });
    cleanup.push(() => ledger.close());
    const run = await ledger.getRun('held-run');
    expect(run.status).toBe('running');
    // Every acknowledged event survived (an unacknowledged last one may or may not have).
    expect(run.lastSeq).toBeGreaterThanOrEqual(acked);
    const events = [];
    for (let after = 0; ;) {
      const page = await ledger.run('held-run').listEvents({ afterSeq: after, limit: 1000 });
      events.push(...page.events);
      if (page.nextAfterSeq === null) break;
      after = page.nextAfterSeq;
    }
    expect(events.map((e) => e.seq)).toEqual(Array.from({ length: run.lastSeq }, (_, i) => i + 1));
    expect((await ledger.run('held-run').getCheckpoint('cp')).metadata).toEqual({ pid: holder.pid });
    expect(await ledger.getRun('done-run')).toMatchObject({ status: 'completed', output: { pid: holder.pid } });
    expect((await ledger.getSubject('durability', 'lock')).runId).toBe('done-run');
    const verified = await ledger.verify();
    expect(verified.problems).toEqual([]);
    expect(verified.ok).toBe(true);
    // The new opener now holds the lock itself.
    expect(JSON.parse(await readFile(join(dir, 'runledger.lock'), 'utf8'))).toMatchObject({ pid: process.pid });
    // And the writes go on.
    expect((await ledger.run('held-run').complete({ output: 'recovered' })).status).toBe('completed');
  });

  it('a second opener in the same process is refused too; after close() the directory opens again', async () => {
    const dir = await tempDir();
    const first = await openLedger({ dataDir: dir });
    let closed = false;
    cleanup.push(async () => {
      if (!closed) await first.close();
    });
    await first.startRun({ id: 'r1', job: 'j' });
    const err = await rejectsWith(openLedger({ dataDir: dir }), 'data_dir_locked');
    expect(err.message).toContain(String(process.pid));
    // The refused opener did not disturb the holder.
    expect((await first.getRun('r1')).status).toBe('running');
    await first.close();
    closed = true;

    const second = await openLedger({ dataDir: dir });
    cleanup.push(() => second.close());
    expect((await second.getRun('r1')).status).toBe('running');
  });
});
