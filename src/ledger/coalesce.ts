/**
 * Group commit for the ledger's hot writes: startRun's insert, event appends and
 * status transitions. With many callers, the cost of a write on this kind of machine is its
 * commit and per-transaction overhead, not its rows. So while one write transaction is in
 * flight, writes that arrive queue, and the next transaction takes all of them.
 *
 * What each caller keeps:
 * - its own result, delivered only after the shared COMMIT returned (an acknowledged write is
 *   durable, as before);
 * - its own error: when a write fails inside a batch (any throw: a constraint, a finished run,
 *   a deadlock), the batch is rolled back, that write is run again ALONE on the database (so
 *   its answer is exactly the one it gets without batching), and the others go back to the
 *   head of the queue for the next batch. Each retry removes one write, so this ends. When
 *   BEGIN or COMMIT itself fails (the connection is gone, the disk is full), the outcome of
 *   a commit is unknown, exactly as for a write made alone: every write of the batch gets
 *   that error and nothing is retried behind the caller's back;
 * - its order: a batch holds at most one write per run (`key`); a later write on the same run
 *   waits for the next batch, so one run's writes commit in the order they were made, and
 *   its seq and chain follow commit order as before;
 * - its latency when alone: a batch of one runs exactly as the write did before (its own
 *   statement in autocommit, or its own transaction), with no BEGIN/COMMIT added.
 *
 * Inside a batch the writes run in the order of their keys, so two batches lock run rows in
 * the same order. Writes are routed to a lane by key and each lane has one batch in flight;
 * the default is one lane (PGlite has one connection anyway). Rows that several runs
 * share (subject status, rollups) can still make two lanes, or a batch and another process,
 * wait on each other in a cycle: PostgreSQL then aborts one transaction with a deadlock,
 * and the rule above reruns the write it hit alone and requeues the rest.
 *
 * The statements are each write's own (sql/*.ts), unchanged: a write is `work(q)`, run with
 * `q` the database (alone) or the batch's transaction.
 */
import type { Database, Queryable } from '../store/database.js';

export interface CoalescedWrite<T> {
  /** The run written to (namespace and id): at most one write per key in a batch. */
  key: string;
  /** Whether the write, alone, needs a transaction of its own (several statements). */
  transactional: boolean;
  /** The write's statements on `q`: the database when alone, the batch's transaction otherwise. */
  work: (q: Queryable) => Promise<T>;
  /** Writes of one kind that a batch can make with one multi-row statement instead of one each. */
  combined?: Combinable<T>;
}

/**
 * `combine(tx, inputs)` makes the writes of one kind together and answers each: its value,
 * or `undefined` for a write it did not make (a missing or finished run, a key used for
 * other content…); such a write is then run alone after the batch commits, so its answer
 * (an error, mostly) is the one it gets alone. Writes of one `kind` share one `combine`.
 */
export interface Combinable<T> {
  kind: string;
  input: unknown;
  combine: (q: Queryable, inputs: unknown[]) => Promise<(T | undefined)[]>;
}

interface Pending {
  write: CoalescedWrite<unknown>;
  resolve(value: unknown): void;
  reject(err: unknown): void;
}

export interface CoalescerOptions {
  /** Batches in flight at once (each on its own connection); writes are routed by key. */
  lanes: number;
  /** Most writes in one transaction. */
  maxBatch: number;
}

/** A write that threw inside a batch: the batch is rolled back and the write retried alone. */
class FailedInBatch extends Error {
  constructor(readonly member: Pending) {
    super('a write failed inside a batch');
  }
}

/** SQLSTATE deadlock_detected. */
const DEADLOCK = '40P01';
const MAX_DEADLOCK_ATTEMPTS = 5;

/** A combined statement threw: the batch is rolled back and made again write by write. */
class CombinedFailed extends Error {
  constructor(readonly reason: unknown) {
    super('a combined statement failed inside a batch');
  }
}

class Lane {
  private queue: Pending[] = [];
  private draining = false;

  constructor(
    private readonly db: Database,
    private readonly maxBatch: number,
  ) {}

  submit(p: Pending): void {
    this.queue.push(p);
    if (!this.draining) void this.drain();
  }

  private async drain(): Promise<void> {
    this.draining = true;
    try {
      while (this.queue.length) {
        const batch = this.take();
        if (batch.length === 1) await this.alone(batch[0]);
        else await this.together(batch);
      }
    } finally {
      this.draining = false;
    }
  }

  /** The next batch: queued writes in arrival order, one per key, up to maxBatch; the rest stay queued in order. */
  private take(): Pending[] {
    const batch: Pending[] = [];
    const keys = new Set<string>();
    const rest: Pending[] = [];
    for (const p of this.queue) {
      if (batch.length < this.maxBatch && !keys.has(p.write.key)) {
        keys.add(p.write.key);
        batch.push(p);
      } else rest.push(p);
    }
    this.queue = rest;
    return batch;
  }

  private async alone(p: Pending): Promise<void> {
    const { transactional, work } = p.write;
    for (let attempt = 1; ; attempt++) {
      try {
        p.resolve(await (transactional ? this.db.withTransaction(work) : work(this.db)));
        return;
      } catch (err) {
        // A deadlock's victim was rolled back whole, so running it again is safe. Writes
        // alone never deadlock with each other; with another lane's batch they can.
        if ((err as { code?: string }).code === DEADLOCK && attempt < MAX_DEADLOCK_ATTEMPTS) continue;
        p.reject(err);
        return;
      }
    }
  }

  private async together(batch: Pending[], combining = true): Promise<void> {
    // Key order: every batch takes its run rows in the same order.
    const ordered = [...batch].sort((a, b) => (a.write.key < b.write.key ? -1 : a.write.key > b.write.key ? 1 : 0));
    // Writes of a kind that has a combined statement, two or more: one statement for them all.
    const byKind = new Map<string, Pending[]>();
    for (const p of ordered) {
      const kind = p.write.combined?.kind;
      if (combining && kind !== undefined) byKind.set(kind, [...(byKind.get(kind) ?? []), p]);
    }
    const groups = [...byKind.values()].filter((members) => members.length > 1);
    const inGroups = new Set(groups.flat());
    const single = ordered.filter((p) => !inGroups.has(p));
    const made = new Map<Pending, unknown>();
    const notMade: Pending[] = [];
    try {
      await this.db.withTransaction(async (tx) => {
        for (const members of groups) {
          let values: unknown[];
          try {
            values = await members[0].write.combined!.combine(
              tx,
              members.map((p) => p.write.combined!.input),
            );
          } catch (err) {
            throw new CombinedFailed(err);
          }
          members.forEach((p, i) => (values[i] === undefined ? notMade.push(p) : made.set(p, values[i])));
        }
        for (const p of single) {
          try {
            made.set(p, await p.write.work(tx));
          } catch {
            throw new FailedInBatch(p);
          }
        }
      });
    } catch (err) {
      // A combined statement failed: the same batch again, write by write, finds the culprit.
      if (err instanceof CombinedFailed) return this.together(batch, false);
      if (!(err instanceof FailedInBatch)) {
        for (const p of ordered) p.reject(err);
        return;
      }
      // Rolled back: the failing write alone (its own answer), then the others, first in the queue.
      await this.alone(err.member);
      this.queue.unshift(...batch.filter((p) => p !== err.member));
      return;
    }
    for (const [p, value] of made) p.resolve(value);
    // What the combined statements did not make: alone, now that the batch is committed.
    for (const p of notMade) await this.alone(p);
  }
}

/** One per database: the lanes, and the routing of writes to them. */
export class WriteCoalescer {
  private readonly lanes: Lane[];

  constructor(db: Database, opts: CoalescerOptions) {
    this.lanes = Array.from({ length: Math.max(1, opts.lanes) }, () => new Lane(db, Math.max(1, opts.maxBatch)));
  }

  submit<T>(write: CoalescedWrite<T>): Promise<T> {
    const lane = this.lanes.length === 1 ? this.lanes[0] : this.lanes[laneOf(write.key, this.lanes.length)];
    return new Promise<T>((resolve, reject) => {
      lane.submit({ write: write as CoalescedWrite<unknown>, resolve: resolve as (v: unknown) => void, reject });
    });
  }
}

/** FNV-1a of the key, modulo `lanes`: a run's writes always go to the same lane. */
function laneOf(key: string, lanes: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  return (h >>> 0) % lanes;
}

/**
 * openLedger's defaults. One lane on both backends: batches of one process then never wait on
 * each other (on PostgreSQL at 16 callers, 1 lane ran 523 lifecycles/s, 4 lanes 418, 16
 * lanes 455; BENCHMARKS.md).
 */
export const DEFAULT_COALESCER_OPTIONS: CoalescerOptions = { lanes: 1, maxBatch: 64 };

/**
 * Runs a hot write of run `runId` through the ledger's coalescer, or directly when the
 * context has none (a context bound to a caller's transaction, as the reaper's). `combined`
 * and `input`: the kind's multi-row statement, and this write's part in it.
 */
export function coalescedWrite<T, I>(
  ctx: { db: Database; namespace: string; writes?: WriteCoalescer },
  runId: string,
  transactional: boolean,
  work: (q: Queryable) => Promise<T>,
  combined?: { kind: string; combine: (q: Queryable, inputs: I[]) => Promise<(T | undefined)[]> },
  input?: I,
): Promise<T> {
  if (!ctx.writes) return transactional ? ctx.db.withTransaction(work) : work(ctx.db);
  return ctx.writes.submit({
    key: `${ctx.namespace}\u0000${runId}`,
    transactional,
    work,
    ...(combined ? { combined: { kind: combined.kind, input, combine: combined.combine as Combinable<T>['combine'] } } : {}),
  });
}
