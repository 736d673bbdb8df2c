/**
 * Wake-ups for live tails. A stream sleeps until its run changes; it never polls the
 * database in a loop.
 *
 * - In process: the ledger's `notices` fire after each committed write.
 * - Across processes (PostgreSQL): after a write commits, this server sends one
 *   `NOTIFY runledger_changes` naming the changed runs, and every server LISTENs. The
 *   NOTIFY is sent here, after commit and outside the ledger's transactions, so the
 *   write path holds no extra lock and pays no extra statement. Notices are coalesced:
 *   one NOTIFY at a time, at most every NOTIFY_COALESCE_MS, carries every change since
 *   the previous one; and it commits asynchronously (a NOTIFY assigns a transaction id,
 *   so a synchronous commit would wait for a WAL flush that a wake-up does not need).
 *   Under load this keeps NOTIFY to ~40/s instead of one per write.
 *   Writes by a library process that runs no server send no NOTIFY; streams pick those
 *   up at their safety re-check (every few seconds), as they do after a lost LISTEN
 *   connection.
 */
import { randomBytes } from 'node:crypto';

import type { SqlLedger } from '../ledger/ledger.js';

export const NOTIFY_CHANNEL = 'runledger_changes';
// PostgreSQL refuses NOTIFY payloads of 8000 bytes or more.
const MAX_PAYLOAD = 7000;
/** Changes made within this window share one NOTIFY: a little latency for other servers' tails. */
export const NOTIFY_COALESCE_MS = 25;
/** How long LISTEN's own test notice may take to come back before the server warns that it does not. */
const PROBE_TIMEOUT_MS = 3000;

interface Payload {
  /** Schema: one database may hold several ledgers (tests use a schema each). */
  s: string;
  /** Sending server instance: a server ignores its own notices (it saw them in process). */
  o: string;
  /** [namespace, runId] pairs. */
  c?: [string, string][];
  /** A probe: the sender's test that notices reach its LISTEN (not so behind a transaction pooler). */
  p?: string;
}

const keyOf = (namespace: string, runId: string) => `${namespace}\u0000${runId}`;
/**
 * The run id that stands for "the namespace's change log grew" (no run id is empty):
 * change-feed streams subscribe to it, and it travels in NOTIFY like any other pair.
 */
const FEED = '';

/** One stream's subscription: `next()` resolves at the next change (or after `timeoutMs`). */
export interface Subscription {
  /**
   * Resolves when changes from other servers can reach this subscription (LISTEN is in
   * place); read the run only after it, so that no write falls between the read and LISTEN.
   */
  ready: Promise<void>;
  /** Forget changes seen so far (call right before reading). */
  clear(): void;
  next(timeoutMs: number): Promise<void>;
  close(): void;
}

interface Waiter {
  dirty: boolean;
  wake?: () => void;
}

export class ChangeHub {
  private readonly waiters = new Map<string, Set<Waiter>>();
  private readonly instance = randomBytes(8).toString('hex');
  private readonly onChange = (n: { namespace: string; runId: string; feed?: boolean }) => {
    this.wake(keyOf(n.namespace, n.runId));
    if (this.notify) this.queueNotify(n.namespace, n.runId);
    if (n.feed) {
      this.wake(keyOf(n.namespace, FEED));
      if (this.notify) this.queueNotify(n.namespace, FEED);
    }
  };
  private schema: string | null = null;
  private listening: Promise<void> | null = null;
  private unlisten: (() => Promise<void>) | null = null;
  private pending = new Map<string, [string, string]>();
  private sending: Promise<void> | null = null;
  private closed = false;
  private probe: { nonce: string; arrived(): void } | null = null;
  private readonly notify: boolean;

  constructor(
    private readonly ledger: SqlLedger,
    private readonly log: { warn(obj: unknown, msg: string): void },
    opts: { crossProcess?: boolean } = {},
  ) {
    this.notify = ledger.database.kind === 'postgres' && opts.crossProcess !== false;
    ledger.notices.on('change', this.onChange);
  }

  subscribe(namespace: string, runId: string): Subscription {
    const key = keyOf(namespace, runId);
    const waiter: Waiter = { dirty: false };
    let set = this.waiters.get(key);
    if (!set) this.waiters.set(key, (set = new Set()));
    set.add(waiter);
    return {
      ready: this.notify ? this.ensureListening() : Promise.resolve(),
      clear: () => {
        waiter.dirty = false;
      },
      next: (timeoutMs) =>
        new Promise<void>((resolve) => {
          if (waiter.dirty || this.closed) return resolve();
          const timer = setTimeout(done, timeoutMs);
          function done() {
            clearTimeout(timer);
            waiter.wake = undefined;
            resolve();
          }
          waiter.wake = done;
        }),
      close: () => {
        set!.delete(waiter);
        if (!set!.size) this.waiters.delete(key);
        waiter.wake?.();
      },
    };
  }

  /** A subscription that wakes when the namespace's change log may have grown. */
  subscribeFeed(namespace: string): Subscription {
    return this.subscribe(namespace, FEED);
  }

  private wake(key: string): void {
    for (const w of this.waiters.get(key) ?? []) {
      w.dirty = true;
      w.wake?.();
    }
  }

  /** Resolves once LISTEN is in place (or has failed: streams then rely on their re-check). */
  private ensureListening(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.listening ??= (async () => {
      try {
        // The schema first: a notice that arrives right after LISTEN must not be dropped for want of it.
        this.schema ??= await this.currentSchema();
        const unlisten = await this.ledger.database.listen(NOTIFY_CHANNEL, (text) => this.onNotify(text));
        if (this.closed) await unlisten();
        else {
          this.unlisten = unlisten;
          void this.probeDelivery();
        }
      } catch (err) {
        this.log.warn({ err }, 'live tail: LISTEN failed; streams fall back to their periodic re-check');
        // Try again at a later subscription.
        setTimeout(() => (this.listening = null), 5000).unref();
      }
    })();
    return this.listening;
  }

  /**
   * LISTEN succeeds behind a pooler in transaction mode (PgBouncer), but the notices then
   * go to whichever client holds the server connection next, not to us. Send ourselves
   * one; if it does not come back, say so: other servers' changes reach this server's
   * streams only at their periodic re-check.
   */
  private async probeDelivery(): Promise<void> {
    const nonce = randomBytes(8).toString('hex');
    const arrived = new Promise<boolean>((resolve) => {
      this.probe = { nonce, arrived: () => resolve(true) };
      setTimeout(() => resolve(false), PROBE_TIMEOUT_MS).unref();
    });
    try {
      await this.ledger.database.query('select pg_notify($1, $2)', [
        NOTIFY_CHANNEL,
        JSON.stringify({ s: this.schema!, o: this.instance, p: nonce } satisfies Payload),
      ]);
    } catch {
      this.probe = null;
      return;
    }
    const ok = await arrived;
    this.probe = null;
    if (!ok && !this.closed)
      this.log.warn(
        { channel: NOTIFY_CHANNEL, waitedMs: PROBE_TIMEOUT_MS },
        'live tail: LISTEN is in place but its own test notice never arrived (a pooler in transaction mode, such as PgBouncer, ' +
          'does not pass notices on): live tails and change streams see changes made through other servers only at their ' +
          'periodic re-check, every few seconds; point this server at PostgreSQL directly or through a session-mode pool for instant ones',
      );
  }

  private async currentSchema(): Promise<string> {
    const { rows } = await this.ledger.database.query<{ s: string }>('select current_schema() as s');
    return rows[0].s;
  }

  private onNotify(text: string): void {
    let payload: Payload;
    try {
      payload = JSON.parse(text) as Payload;
    } catch {
      return;
    }
    if (payload.p !== undefined) {
      if (payload.p === this.probe?.nonce) this.probe.arrived();
      return;
    }
    if (payload.o === this.instance || payload.s !== this.schema || !Array.isArray(payload.c)) return;
    for (const [ns, id] of payload.c) this.wake(keyOf(ns, id));
  }

  private queueNotify(namespace: string, runId: string): void {
    this.pending.set(keyOf(namespace, runId), [namespace, runId]);
    if (!this.sending) this.sending = this.flush();
  }

  private async flush(): Promise<void> {
    try {
      this.schema ??= await this.currentSchema();
      while (this.pending.size && !this.closed) {
        await new Promise((resolve) => setTimeout(resolve, NOTIFY_COALESCE_MS));
        const batch = [...this.pending.values()];
        this.pending = new Map();
        const payloads: string[] = [];
        let chunk: [string, string][] = [];
        const emit = () => {
          if (chunk.length) payloads.push(JSON.stringify({ s: this.schema!, o: this.instance, c: chunk } satisfies Payload));
          chunk = [];
        };
        let size = 100;
        for (const pair of batch) {
          const add = pair[0].length + pair[1].length + 8;
          if (size + add > MAX_PAYLOAD) {
            emit();
            size = 100;
          }
          chunk.push(pair);
          size += add;
        }
        emit();
        await this.ledger.database.query(
          `select set_config('synchronous_commit', 'off', true), pg_notify($1, p) from unnest($2::text[]) as p`,
          [NOTIFY_CHANNEL, payloads],
        );
      }
    } catch (err) {
      if (!this.closed) this.log.warn({ err }, 'live tail: NOTIFY failed; other servers see the change at their re-check');
      this.pending.clear();
    } finally {
      this.sending = null;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.ledger.notices.off('change', this.onChange);
    for (const set of this.waiters.values()) for (const w of set) w.wake?.();
    await this.sending;
    await this.listening;
    await this.unlisten?.().catch(() => {});
  }
}
