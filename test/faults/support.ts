/**
 * Shared machinery of the fault tests: a real `runledger serve` process that can be
 * SIGKILLed and restarted on the same port, a throwaway PostgreSQL cluster, a retry
 * loop that behaves like a patient application, and the post-mortem checks that every
 * fault test ends with (nothing acknowledged lost, nothing duplicated, chains verify,
 * no run half-completed).
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';

import { expect } from 'vitest';

import type { Json, OpenedLedger } from '../../src/index.js';
import { spawnCli } from '../cli/cli.js';

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A TCP port that was free a moment ago (the server is then started on it, and restarted on it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

export interface ServeProcess {
  url: string;
  child: ChildProcess;
  /** Everything the process wrote to stderr and stdout so far (for failure messages). */
  output(): string;
  /** SIGKILL (no clean-up at all) and wait until it is gone. */
  kill(): Promise<void>;
  /** SIGTERM (graceful) and wait until it is gone. */
  stop(): Promise<void>;
}

/** Starts `runledger serve` as a subprocess on `port` and waits until it listens. */
export async function startServe(storeArgs: string[], port: number, extra: string[] = [], env: Record<string, string> = {}) {
  const child = spawnCli([...storeArgs, 'serve', '--port', String(port), '--log-level', 'warn', ...extra], { env });
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (out += d));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setInterval(() => {
      const m = /runledger listening on (http:\/\/\S+)/.exec(out);
      if (m) {
        clearInterval(timer);
        resolve(m[1]);
      }
    }, 20);
    child.once('exit', (code, signal) => {
      clearInterval(timer);
      reject(new Error(`runledger serve exited (${code ?? signal}) before listening:\n${out}`));
    });
  });
  const end = async (signal: NodeJS.Signals) => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    await exited;
  };
  return {
    url,
    child,
    output: () => out,
    kill: () => end('SIGKILL'),
    stop: () => end('SIGTERM'),
  } satisfies ServeProcess;
}

/** An error that a patient client should wait out: the server (or its database) is away. */
export function isTransient(err: unknown): boolean {
  const e = err as { name?: string; status?: number; code?: string };
  return e?.name === 'HttpError' && (e.status === 0 || (e.status !== undefined && e.status >= 500));
}

/**
 * Repeats `op` while it fails transiently (server down or restarting), like an application
 * that keeps its idempotency keys and tries again. Any other error is returned to the caller.
 */
export async function patiently<T>(op: () => Promise<T>, opts: { deadlineMs?: number; onRetry?: () => void } = {}): Promise<T> {
  const deadline = Date.now() + (opts.deadlineMs ?? 90_000);
  for (;;) {
    try {
      return await op();
    } catch (err) {
      if (!isTransient(err) || Date.now() > deadline) throw err;
      opts.onRetry?.();
      await sleep(50 + Math.random() * 100);
    }
  }
}

/** What the clients were told: acknowledged events (key → seq) and completions (run → output). */
export class Acks {
  readonly events = new Map<string, { runId: string; seq: number }>();
  readonly completed = new Map<string, { subject: string; job: string; output: Json }>();
  readonly created = new Set<string>();
  /** Every key ever sent (acknowledged or not). */
  readonly sentKeys = new Set<string>();
  retries = 0;
  duplicatesReported = 0;

  ackEvents(runId: string, keys: string[], results: { seq: number; duplicate: boolean }[]) {
    results.forEach((r, i) => {
      const before = this.events.get(keys[i]);
      if (before) expect(r.seq, `key ${keys[i]} acknowledged twice with different seqs`).toBe(before.seq);
      this.events.set(keys[i], { runId, seq: r.seq });
      if (r.duplicate) this.duplicatesReported++;
    });
  }
}

interface EventRow {
  run_id: string;
  seq: number;
  key: string | null;
  type: string;
  body: { status?: string } | null;
}
interface RunRow {
  id: string;
  job: string;
  subject: string | null;
  status: string;
  output: Json | null;
  finished_at: Date | null;
  last_seq: number;
}

/**
 * The post-mortem of a fault test, on the store itself (the server is stopped):
 * 1. every acknowledged event is present with its original seq; no key is stored twice;
 * 2. every key that was sent is stored (the retries finished the work) and nothing else;
 * 3. seqs are 1..lastSeq without gaps and every chain verifies;
 * 4. every acknowledged completion is whole; no run anywhere is half-completed.
 * Returns the counts for the report.
 */
export async function checkNothingLost(
  ledger: OpenedLedger,
  acks: Acks,
  opts: {
    namespace?: string;
    /** false when the writer was killed mid-write and not retried. */
    allSentAcknowledged?: boolean;
    /** Only runs whose id starts with this (other tests' runs in the same store are not ours). */
    runIdPrefix?: string;
  } = {},
) {
  const namespace = opts.namespace ?? 'default';
  const prefix = `${opts.runIdPrefix ?? ''}%`;
  const db = ledger.database;
  const { rows: events } = await db.query<EventRow>(
    `select run_id, seq, key, type, body from events where namespace = $1 and run_id like $2 order by run_id, seq`,
    [namespace, prefix],
  );
  const { rows: runs } = await db.query<RunRow>(
    `select id, job, subject, status, output, finished_at, last_seq from runs where namespace = $1 and id like $2`,
    [namespace, prefix],
  );
  const { rows: subjects } = await db.query<{ job: string; subject: string; run_id: string; status: string }>(
    `select job, subject, run_id, status from subject_status where namespace = $1 and run_id like $2`,
    [namespace, prefix],
  );

  // Step 1 and 2: keys.
  const byKey = new Map<string, EventRow[]>();
  for (const e of events) if (e.key !== null) byKey.set(e.key, [...(byKey.get(e.key) ?? []), e]);
  const lost: string[] = [];
  const moved: string[] = [];
  for (const [key, ack] of acks.events) {
    const stored = byKey.get(key);
    if (!stored) lost.push(key);
    else if (stored[0].run_id !== ack.runId || stored[0].seq !== ack.seq)
      moved.push(`${key}: acknowledged ${ack.runId}#${ack.seq}, stored ${stored[0].run_id}#${stored[0].seq}`);
  }
  expect(lost, 'acknowledged events missing after the fault').toEqual([]);
  expect(moved, 'acknowledged events stored under another seq').toEqual([]);
  const duplicated = [...byKey].filter(([, rows]) => rows.length > 1).map(([k]) => k);
  expect(duplicated, 'keys stored more than once').toEqual([]);
  const unsent = [...byKey.keys()].filter((k) => !acks.sentKeys.has(k));
  expect(unsent, 'stored keys nobody sent').toEqual([]);
  if (opts.allSentAcknowledged !== false) {
    const unfinished = [...acks.sentKeys].filter((k) => !acks.events.has(k));
    expect(unfinished, 'keys sent but never acknowledged (the retries did not finish the work)').toEqual([]);
  }

  // Step 3: gapless seqs and hash chains.
  const seqs = new Map<string, number[]>();
  for (const e of events) seqs.set(e.run_id, [...(seqs.get(e.run_id) ?? []), e.seq]);
  for (const r of runs) {
    const s = seqs.get(r.id) ?? [];
    expect(s, `run ${r.id}: seqs must be 1..${r.last_seq}`).toEqual(Array.from({ length: r.last_seq }, (_, i) => i + 1));
  }
  const verified = await ledger.inNamespace(namespace).verify();
  expect(verified.problems).toEqual([]);
  expect(verified.ok).toBe(true);

  // Step 4: completions are all-or-nothing.
  const subjectOf = new Map(subjects.map((s) => [`${s.job}\u0000${s.subject}`, s]));
  const statusEvents = new Map<string, string[]>();
  for (const e of events)
    if (e.type === 'run.status') statusEvents.set(e.run_id, [...(statusEvents.get(e.run_id) ?? []), e.body?.status ?? '?']);
  const half: string[] = [];
  for (const r of runs) {
    const sawCompleted = (statusEvents.get(r.id) ?? []).includes('completed');
    if (r.status === 'completed') {
      const s = r.subject === null ? undefined : subjectOf.get(`${r.job}\u0000${r.subject}`);
      if (r.output === null || r.finished_at === null || !sawCompleted || (r.subject !== null && !s))
        half.push(
          `${r.id}: completed but output=${JSON.stringify(r.output)} finishedAt=${r.finished_at} event=${sawCompleted} subject=${!!s}`,
        );
    } else if (sawCompleted || r.output !== null) half.push(`${r.id}: ${r.status} but has a completion event or output`);
  }
  expect(half, 'runs half-completed').toEqual([]);
  const byId = new Map(runs.map((r) => [r.id, r]));
  const wrong: string[] = [];
  for (const [id, c] of acks.completed) {
    const r = byId.get(id);
    const s = subjectOf.get(`${c.job}\u0000${c.subject}`);
    if (!r || r.status !== 'completed' || !isDeepStrictEqual(r.output, c.output) || s?.run_id !== id || s.status !== 'completed')
      wrong.push(`${id}: acknowledged completed, stored ${r?.status} output=${JSON.stringify(r?.output)} subject=${JSON.stringify(s)}`);
  }
  expect(wrong, 'acknowledged completions not stored whole').toEqual([]);
  const missingRuns = [...acks.created].filter((id) => !byId.has(id));
  expect(missingRuns, 'acknowledged runs missing').toEqual([]);
  return {
    runs: runs.length,
    events: events.length,
    keyedEvents: byKey.size,
    completed: acks.completed.size,
    eventsChecked: verified.eventsChecked,
  };
}

// ---------------------------------------------------------------------------------------
// A throwaway PostgreSQL cluster (never the shared one): initdb + pg_ctl as user postgres.

const PG_BIN_DIRS = [
  '/usr/lib/postgresql/17/bin',
  '/usr/lib/postgresql/16/bin',
  '/usr/lib/postgresql/15/bin',
  '/usr/lib/postgresql/14/bin',
];

/** Why a throwaway cluster cannot be made here, or null when it can. */
export function throwawayClusterUnavailable(): string | null {
  if (process.platform !== 'linux') return 'throwaway PostgreSQL clusters are set up for Linux only';
  if (!PG_BIN_DIRS.some((d) => existsSync(join(d, 'initdb')))) return `initdb not found in ${PG_BIN_DIRS.join(', ')}`;
  if (process.getuid?.() !== 0) return 'needs root to run initdb and pg_ctl as the postgres user (runuser)';
  if (spawnSync('id', ['-u', 'postgres']).status !== 0) return 'no postgres system user';
  return null;
}

export interface ThrowawayCluster {
  port: number;
  url: string;
  start(): void;
  /** `immediate` is a crash (no checkpoint, recovery on start); `fast` a clean stop. */
  stop(mode?: 'immediate' | 'fast'): void;
  destroy(): void;
}

/** initdb a new cluster in a temp dir, trust auth, listening on 127.0.0.1:`port`, small footprint. */
export function createThrowawayCluster(port: number): ThrowawayCluster {
  const bin = PG_BIN_DIRS.find((d) => existsSync(join(d, 'initdb')))!;
  const dir = mkdtempSync(join(tmpdir(), 'runledger-pgfault-'));
  chownSync(dir, Number(execFileSync('id', ['-u', 'postgres']).toString()), Number(execFileSync('id', ['-g', 'postgres']).toString()));
  const data = join(dir, 'data');
  const asPostgres = (cmd: string, args: string[]) =>
    execFileSync('runuser', ['-u', 'postgres', '--', join(bin, cmd), ...args], { stdio: 'pipe', timeout: 60_000 });
  asPostgres('initdb', ['-D', data, '--auth=trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8']);
  const opts = [
    `-p ${port}`,
    `-c listen_addresses=127.0.0.1`,
    `-c unix_socket_directories=${dir}`,
    '-c max_connections=40',
    '-c shared_buffers=16MB',
    '-c fsync=on',
  ].join(' ');
  const ctl = (args: string[]) => asPostgres('pg_ctl', ['-D', data, '-w', '-t', '30', ...args]);
  const log = join(dir, 'log');
  return {
    port,
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    start() {
      try {
        ctl(['-o', opts, '-l', log, 'start']);
      } catch (err) {
        const tail = existsSync(log) ? readFileSync(log, 'utf8').split('\n').slice(-15).join('\n') : '(no log)';
        throw new Error(`the throwaway PostgreSQL cluster did not start on port ${port}: ${(err as Error).message}\n${tail}`);
      }
    },
    stop: (mode = 'immediate') => ctl(['-m', mode, 'stop']),
    destroy() {
      try {
        ctl(['-m', 'immediate', 'stop']);
      } catch {
        // not running
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const PGBOUNCER_BIN = ['/usr/sbin/pgbouncer', '/usr/bin/pgbouncer'];

/** Why a PgBouncer cannot be started here, or null when it can. */
export function pgBouncerUnavailable(): string | null {
  if (!PGBOUNCER_BIN.some((b) => existsSync(b))) return 'pgbouncer not installed (apt-get install pgbouncer)';
  if (process.getuid?.() === 0 && spawnSync('id', ['-u', 'postgres']).status !== 0)
    return 'pgbouncer refuses root, and there is no postgres user';
  return null;
}

export interface PgBouncer {
  url: string;
  /** The pooler's log (for failure messages). */
  log(): string;
  stop(): Promise<void>;
}

/**
 * Starts a PgBouncer of its own (own directory, own port) in transaction pooling mode in
 * front of `database` on the PostgreSQL server at `upstream` (trust auth). As root it runs
 * as the postgres user: pgbouncer refuses to run as root.
 */
export async function startPgBouncer(upstream: string, database: string, port: number, poolSize = 6): Promise<PgBouncer> {
  const bin = PGBOUNCER_BIN.find((b) => existsSync(b))!;
  const u = new URL(upstream);
  const dir = mkdtempSync(join(tmpdir(), 'runledger-pgbouncer-'));
  const user = decodeURIComponent(u.username || 'postgres');
  writeFileSync(join(dir, 'users.txt'), `"${user}" ""\n`);
  writeFileSync(
    join(dir, 'pgbouncer.ini'),
    [
      '[databases]',
      `${database} = host=${u.hostname} port=${u.port || 5432} dbname=${database}`,
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      'unix_socket_dir =',
      'auth_type = trust',
      `auth_file = ${join(dir, 'users.txt')}`,
      'pool_mode = transaction',
      `default_pool_size = ${poolSize}`,
      'max_client_conn = 500',
      `logfile = ${join(dir, 'pgbouncer.log')}`,
      '',
    ].join('\n'),
  );
  const asRoot = process.getuid?.() === 0;
  if (asRoot) {
    const uid = Number(execFileSync('id', ['-u', 'postgres']).toString());
    const gid = Number(execFileSync('id', ['-g', 'postgres']).toString());
    for (const f of ['', 'users.txt', 'pgbouncer.ini']) chownSync(join(dir, f), uid, gid);
  }
  const child = asRoot
    ? spawn('runuser', ['-u', 'postgres', '--', bin, join(dir, 'pgbouncer.ini')], { stdio: 'pipe' })
    : spawn(bin, [join(dir, 'pgbouncer.ini')], { stdio: 'pipe' });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const log = () => (existsSync(join(dir, 'pgbouncer.log')) ? readFileSync(join(dir, 'pgbouncer.log'), 'utf8') : '(no log)');
  const url = `postgres://${encodeURIComponent(user)}@127.0.0.1:${port}/${database}`;
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`pgbouncer exited (${child.exitCode}):\n${log()}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1', () => {
        s.end();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) break;
    if (Date.now() > deadline) throw new Error(`pgbouncer did not listen on port ${port} within 15 s:\n${log()}`);
    await sleep(100);
  }
  return {
    url,
    log,
    async stop() {
      // runuser passes SIGTERM on to pgbouncer.
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
