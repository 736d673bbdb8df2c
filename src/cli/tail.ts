/**
 * `runs tail`: print a run's events as they are appended, until its terminal status.
 * Through a server it reads the Server-Sent Events stream; in process it wakes on the
 * ledger's change feed.
 */
import { isTerminal } from '../core/status.js';
import type { LedgerEvent, RunStatus } from '../core/types.js';
import { EXIT_FAILURE, EXIT_OK, UsageError } from './errors.js';
import { oneLine } from './output.js';
import type { Target } from './target.js';

export interface TailOptions {
  /** How many events before the current end to print first. */
  lines: number;
  json?: boolean;
  /** Stop following (SIGINT); resolves the tail with exit code 130. */
  signal?: AbortSignal;
  /** Re-reads the run this often on PostgreSQL, where writers may be other processes (ms). */
  pollMs?: number;
  /** Where lines go (default stdout). */
  write?: (line: string) => void;
}

function time(iso: string): string {
  return iso.slice(11, 23);
}

export function formatEvent(e: LedgerEvent): string {
  const body = e.body as { stream?: unknown; line?: unknown } | null;
  if (e.type === 'log' && body && typeof body === 'object' && typeof body.line === 'string') {
    return `#${e.seq} ${time(e.at)} ${typeof body.stream === 'string' ? body.stream : 'log'}| ${body.line}`;
  }
  return `#${e.seq} ${time(e.at)} ${e.type}${e.level ? ` [${e.level}]` : ''} ${oneLine(e.body, 200)}`.trimEnd();
}

/** The terminal status an event announces, if it is a terminal `run.status` event. */
function terminalOf(e: LedgerEvent): RunStatus | undefined {
  const status = (e.body as { status?: unknown } | null)?.status;
  return e.type === 'run.status' && typeof status === 'string' && isTerminal(status as RunStatus) ? (status as RunStatus) : undefined;
}

class Printer {
  lastSeq: number;
  terminal: RunStatus | undefined;
  constructor(
    after: number,
    private readonly json: boolean,
    private readonly write: (line: string) => void,
  ) {
    this.lastSeq = after;
  }
  print(e: LedgerEvent): void {
    if (e.seq <= this.lastSeq) return;
    this.lastSeq = e.seq;
    this.write((this.json ? JSON.stringify(e) : formatEvent(e)) + '\n');
    this.terminal ??= terminalOf(e);
  }
}

/** Prints every event after p.lastSeq that is stored now. */
async function drain(ledger: Target, id: string, p: Printer): Promise<void> {
  for (;;) {
    const page = await ledger.run(id).listEvents({ afterSeq: p.lastSeq, limit: 1000 });
    for (const e of page.events) p.print(e);
    if (page.nextAfterSeq === null || page.events.length === 0) return;
  }
}

async function followInProcess(ledger: Target, id: string, p: Printer, opts: TailOptions): Promise<void> {
  if (ledger.target.kind !== 'direct') throw new Error('followInProcess needs a direct target');
  const direct = ledger.target.ledger;
  const namespace = ledger.namespace;
  let wake: (() => void) | undefined;
  const onChange = (n: { namespace: string; runId: string }) => {
    if (n.namespace === namespace && n.runId === id) wake?.();
  };
  direct.notices.on('change', onChange);
  // Other processes write a PostgreSQL ledger too; their writes do not reach this process's
  // change feed, so re-read at a calm interval there. Embedded, this process holds the data
  // directory and the change feed sees every write.
  const poll = direct.database.kind === 'postgres' ? setInterval(() => wake?.(), opts.pollMs ?? 1000) : undefined;
  const onAbort = () => wake?.();
  opts.signal?.addEventListener('abort', onAbort);
  try {
    while (!p.terminal && !opts.signal?.aborted) {
      const woken = new Promise<void>((r) => (wake = r));
      await drain(ledger, id, p);
      if (p.terminal || opts.signal?.aborted) break;
      await woken;
    }
  } finally {
    direct.notices.off('change', onChange);
    if (poll) clearInterval(poll);
    opts.signal?.removeEventListener('abort', onAbort);
  }
}

/** Through a server: its Server-Sent Events stream (the client resumes after a dropped connection). */
async function followSse(ledger: Target, id: string, p: Printer, opts: TailOptions): Promise<void> {
  if (ledger.target.kind !== 'http') throw new Error('followSse needs an http target');
  await ledger.target.client.tail(id, { afterSeq: p.lastSeq, onEvent: (e) => p.print(e), signal: opts.signal });
}

/** Follows run `id` until its terminal status; exit 0 when it completed, 1 otherwise, 130 when interrupted. */
export async function tailRun(ledger: Target, id: string, opts: TailOptions): Promise<number> {
  const run = await ledger.getRun(id);
  const write = opts.write ?? ((line: string) => void process.stdout.write(line));
  const p = new Printer(Math.max(0, run.lastSeq - opts.lines), Boolean(opts.json), write);
  await drain(ledger, id, p);
  // Already finished (its status event may be before the window printed): nothing to follow.
  if (!p.terminal && isTerminal(run.status)) p.terminal = run.status;
  if (!p.terminal) {
    if (ledger.target.kind === 'http') await followSse(ledger, id, p, opts);
    else if (ledger.target.ledger.database.kind === 'pglite' && ledger.target.location !== 'memory://') {
      // This process holds the data directory: while it waited, nobody could write the run.
      throw new UsageError(
        `run ${id} is still ${run.status}; following it live on an embedded data directory needs a server, because this ` +
          `command would hold the directory and lock out the writers: start \`runledger serve --data-dir ${ledger.target.location}\` ` +
          `and run tail again (commands on the directory then go through the server)`,
      );
    } else await followInProcess(ledger, id, p, opts);
  }
  if (!p.terminal) return 130;
  if (!opts.json) process.stderr.write(`run ${id} ${p.terminal}\n`);
  return p.terminal === 'completed' ? EXIT_OK : EXIT_FAILURE;
}
