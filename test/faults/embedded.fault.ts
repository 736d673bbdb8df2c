/**
 * Embedded (PGlite) data directories:
 * - a second process opening a directory that a server holds is refused cleanly
 *   (data_dir_locked, naming the holder's pid), and so is a second `runledger serve`;
 *   once the holder is SIGKILLed its stale lock does not keep anyone out;
 * - a process SIGKILLed while it writes (events, checkpoints, completions) leaves a
 *   directory that opens, verifies, and holds everything it acknowledged, whole.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { createClient, openLedger } from '../../src/index.js';
import { REPO, runCli } from '../cli/cli.js';
import { BACKEND } from '../helpers.js';
import { Acks, checkNothingLost, freePort, type ServeProcess, sleep, startServe } from './support.js';

const skip = BACKEND !== 'pglite' ? 'skipped: embedded data directories are PGlite (runs with RUNLEDGER_TEST_DB=pglite)' : '';
const LOADER = join(REPO, 'node_modules', 'tsx', 'dist', 'loader.mjs');
const WRITER = join(REPO, 'test', 'faults', 'embedded-writer.ts');
// RUNLEDGER_FAULT_KILLS=N for a longer campaign.
const ROUNDS = Number(process.env.RUNLEDGER_FAULT_KILLS ?? 3);
const dirs: string[] = [];
const children: ChildProcess[] = [];
let server: ServeProcess | undefined;

afterAll(async () => {
  await server?.kill();
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

// One directory for the file: creating a PGlite cluster (initdb) is the slow part, and
// each test works on its own runs in it.
let shared: string | undefined;
function dataDirOfFile() {
  if (!shared) {
    shared = mkdtempSync(join(tmpdir(), 'runledger-embedded-'));
    dirs.push(shared);
  }
  return shared;
}

interface WriterLine {
  opened?: number;
  send?: string;
  ack?: string;
  error?: string;
  message?: string;
  pid?: number;
  id?: string;
  keys?: string[];
  results?: { seq: number; duplicate: boolean }[];
  subject?: string;
  output?: { n: number; prefix: string };
}

/** Starts the writer; `onLine` sees each line as it is printed. */
function startWriter(dataDir: string, prefix: string, onLine: (line: WriterLine) => void, workers = 1) {
  const child = spawn(process.execPath, ['--import', LOADER, WRITER, dataDir, prefix, String(workers)], {
    cwd: REPO,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let buffer = '';
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    buffer += d;
    let nl;
    while ((nl = buffer.indexOf('\n')) >= 0) {
      const text = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      if (text.trim()) onLine(JSON.parse(text) as WriterLine);
    }
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal, stderr })),
  );
  return { child, exited };
}

describe.skipIf(skip)(`embedded data directory${skip ? ` (${skip})` : ''}`, () => {
  it('a second process opening a held data directory is refused cleanly, naming the holder; a SIGKILLed holder keeps nobody out', async () => {
    const dataDir = dataDirOfFile();
    server = await startServe(['--data-dir', dataDir], await freePort(), ['--reap-interval-s', '0']);
    await createClient({ baseUrl: server.url }).startRun({ id: 'held', job: 'fault-lock' });

    // The library in another process: data_dir_locked with the server's pid.
    const lines: WriterLine[] = [];
    const second = startWriter(dataDir, 'second', (l) => lines.push(l));
    const end = await second.exited;
    expect(end.code).toBe(3);
    expect(lines).toEqual([
      { error: 'data_dir_locked', pid: server.child.pid, message: expect.stringContaining(`process ${server.child.pid}`) },
    ]);
    expect(lines[0].message).toContain(server.url);

    // A second server: refused with a message naming the running one; the first keeps serving.
    const again = await runCli(['--data-dir', dataDir, 'serve', '--port', '0']);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toContain(`already serves this data directory`);
    expect(again.stderr).toContain(server.url);
    expect((await createClient({ baseUrl: server.url }).getRun('held')).status).toBe('running');

    // SIGKILL leaves the lock file behind; the next opener sees its holder is gone.
    await server.kill();
    server = undefined;
    const ledger = await openLedger({ dataDir });
    try {
      expect((await ledger.getRun('held')).status).toBe('running');
      expect((await ledger.verify()).ok).toBe(true);
    } finally {
      await ledger.close();
    }
  });

  it.each([
    { workers: 1, prefix: 'k', what: 'a writer' },
    // 16 concurrent loops in one process: their writes share transactions (group commit), so kills land mid-batch.
    { workers: 16, prefix: 'b', what: '16 concurrent writers (batched writes)' },
  ])(
    `$what SIGKILLed ${ROUNDS} times mid-write leave a directory that opens, verifies and holds everything acknowledged`,
    async ({ workers, prefix }) => {
      const dataDir = dataDirOfFile();
      const acks = new Acks();
      const kills: number[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        let ackLines = 0;
        const stopAt = workers * (10 + Math.floor(Math.random() * 40));
        let opened = false;
        const writer = startWriter(
          dataDir,
          `${prefix}${round}`,
          (l) => {
            if (l.opened) opened = true;
            if (l.send === 'run' && l.id) acks.created.add(l.id);
            if (l.send === 'events') for (const k of l.keys!) acks.sentKeys.add(k);
            if (l.ack === 'events') acks.ackEvents(l.id!, l.keys!, l.results!);
            if (l.ack === 'complete') acks.completed.set(l.id!, { subject: l.subject!, job: 'fault-embedded', output: l.output! });
            if (l.ack) ackLines++;
          },
          workers,
        );
        while (ackLines < stopAt && writer.child.exitCode === null) await sleep(5);
        writer.child.kill('SIGKILL');
        const end = await writer.exited;
        expect(end.signal, `the writer must die by SIGKILL, not by itself: ${end.stderr}`).toBe('SIGKILL');
        expect(opened).toBe(true);
        kills.push(ackLines);
      }
      // A run whose create was sent but not acknowledged may be missing: only acknowledged ones must exist.
      const ledger = await openLedger({ dataDir });
      try {
        const created = [...acks.created];
        const existing = new Set(
          (await ledger.database.query<{ id: string }>(`select id from runs where id = any($1::text[])`, [created])).rows.map((r) => r.id),
        );
        acks.created.clear();
        for (const id of created) if (existing.has(id)) acks.created.add(id);
        const counts = await checkNothingLost(ledger, acks, { allSentAcknowledged: false, runIdPrefix: prefix });
        expect(counts.completed).toBeGreaterThan(0);
        const { rows } = await ledger.database.query<{ n: number }>(`select count(*)::int as n from checkpoints`);
        console.log(
          `[faults] embedded kill (${workers} writers): ${ROUNDS} kills after ${kills.join(', ')} acknowledged writes; ${rows[0].n} checkpoints; ${JSON.stringify(counts)}`,
        );
      } finally {
        await ledger.close();
      }
      const verify = await runCli(['--data-dir', dataDir, 'verify', '--all']);
      expect(verify.stdout).toMatch(/^ok: /);
      expect(verify.code).toBe(0);
    },
  );
});
