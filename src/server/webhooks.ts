/**
 * The webhook dispatcher: every server runs one. It turns the change log into deliveries
 * and sends them (src/ledger/webhooks.ts holds the statements and why they are safe with
 * many servers). Sending never holds a database connection or a write: a receiver that
 * hangs costs one of its own slots for at most the timeout, never another receiver's
 * (at most `perWebhook` requests per endpoint, `concurrency` in all, per server).
 *
 * Delivery follows Standard Webhooks: POST `{ type, timestamp, data }` with `webhook-id`
 * (the change id, the same on every attempt), `webhook-timestamp` (seconds) and
 * `webhook-signature` (`v1,` + base64 HMAC-SHA256 of `id.timestamp.body`). A 2xx answer
 * delivers; 410 Gone disables the endpoint; anything else, a redirect or no answer within
 * the timeout is retried after RETRY_SCHEDULE_S (jittered), or after the receiver's
 * Retry-After, until the schedule is used up: then the delivery is failed and kept.
 */
import { isIP } from 'node:net';

import { Agent, request } from 'undici';

import { VERSION } from '../core/version.js';
import type { AttemptOutcome } from '../core/webhooks.js';
import { DELIVERY_TIMEOUT_MS, RETRY_SCHEDULE_S, retryDelayMs, signWebhook } from '../core/webhooks.js';
import type { ChangeNotice } from '../ledger/context.js';
import type { SqlLedger } from '../ledger/ledger.js';
import {
  type AttemptRecord,
  claimDeliveries,
  type ClaimedDelivery,
  fanOutWebhooks,
  recordAttempt,
  releaseClaim,
  webhooksWithDueDeliveries,
} from '../ledger/webhooks.js';
import { isPrivateAddress, PrivateTargetError, publicOnlyLookup } from './webhook-targets.js';

export interface WebhookDispatcherOptions {
  /** Send to loopback, private and link-local addresses too (default false; `serve --allow-private-webhooks`). */
  allowPrivateTargets?: boolean;
  /** Requests in flight per server (default 32). */
  concurrency?: number;
  /** Requests in flight per endpoint per server (default 8). */
  perWebhook?: number;
  /** No answer within this is a failed attempt (default 10 000 ms). */
  timeoutMs?: number;
  /** Seconds to wait after each failed attempt (default RETRY_SCHEDULE_S: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h). */
  retryScheduleS?: readonly number[];
  /** How often to look for new changes and due retries when nothing wakes it (default 500 ms). */
  pollMs?: number;
}

interface Logger {
  warn(obj: object, msg: string): void;
}

/** The longest Retry-After honoured: beyond it the schedule's own wait applies. */
const MAX_RETRY_AFTER_MS = 24 * 3600_000;
/** How much of an answer is read (then the connection is dropped): receivers answer with little. */
const MAX_ANSWER_BYTES = 64 * 1024;

export class WebhookDispatcher {
  private readonly allowPrivate: boolean;
  private readonly concurrency: number;
  private readonly perWebhook: number;
  private readonly timeoutMs: number;
  private readonly schedule: readonly number[];
  private readonly pollMs: number;
  private readonly agent: Agent;
  private readonly inFlight = new Map<string, number>();
  private readonly sending = new Set<Promise<void>>();
  private readonly aborter = new AbortController();
  private total = 0;
  private running = false;
  private passing: Promise<void> | null = null;
  private again = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly onNotice = (n: ChangeNotice) => {
    if (n.feed) this.wake();
  };

  constructor(
    private readonly ledger: SqlLedger,
    private readonly log: Logger,
    private readonly onAttempt: (outcome: AttemptOutcome) => void = () => {},
    opts: WebhookDispatcherOptions = {},
  ) {
    this.allowPrivate = opts.allowPrivateTargets ?? false;
    this.concurrency = opts.concurrency ?? 32;
    this.perWebhook = opts.perWebhook ?? 8;
    this.timeoutMs = opts.timeoutMs ?? DELIVERY_TIMEOUT_MS;
    this.schedule = opts.retryScheduleS ?? RETRY_SCHEDULE_S;
    this.pollMs = opts.pollMs ?? 500;
    this.agent = new Agent({
      connections: this.perWebhook,
      connect: this.allowPrivate ? {} : { lookup: publicOnlyLookup },
      headersTimeout: this.timeoutMs,
      bodyTimeout: this.timeoutMs,
    });
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.ledger.notices.on('change', this.onNotice);
    this.wake();
  }

  /** Stops looking for work and gives back what is in flight, due again at once (for this or another server). */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    clearTimeout(this.timer);
    this.ledger.notices.off('change', this.onNotice);
    this.aborter.abort();
    await this.passing;
    await Promise.allSettled([...this.sending]);
    await this.agent.close().catch(() => {});
  }

  /** Look for work now (a write appended a change, or a slot came free). */
  wake(): void {
    if (!this.running) return;
    if (this.passing) {
      this.again = true;
      return;
    }
    clearTimeout(this.timer);
    this.passing = this.pass()
      .catch((err) => this.log.warn({ err }, 'webhook dispatcher pass failed; the next one retries'))
      .finally(() => {
        this.passing = null;
        if (!this.running) return;
        if (this.again) {
          this.again = false;
          setImmediate(() => this.wake());
        } else {
          this.timer = setTimeout(() => this.wake(), this.pollMs);
          this.timer.unref();
        }
      });
  }

  private async pass(): Promise<void> {
    const db = this.ledger.database;
    await fanOutWebhooks({ db, now: () => this.ledger.now() });
    if (this.total >= this.concurrency) return;
    const hooks = await webhooksWithDueDeliveries(db, this.ledger.now());
    // A random order: when slots are short, no endpoint is always served last.
    hooks.sort(() => Math.random() - 0.5);
    for (const hook of hooks) {
      if (!this.running) return;
      const key = `${hook.namespace}\0${hook.id}`;
      const free = Math.min(this.perWebhook - (this.inFlight.get(key) ?? 0), this.concurrency - this.total);
      if (free <= 0) continue;
      const now = this.ledger.now();
      // The lease outlasts the request: a server killed mid-request leaves the delivery due again after it.
      const leaseUntil = new Date(now.getTime() + this.timeoutMs + 5000);
      for (const d of await claimDeliveries(db, hook, now, leaseUntil, free)) this.launch(key, d);
    }
  }

  private launch(key: string, d: ClaimedDelivery): void {
    this.total++;
    this.inFlight.set(key, (this.inFlight.get(key) ?? 0) + 1);
    const job = this.deliver(d)
      .catch((err) => this.log.warn({ err, webhook: d.webhookId, change: d.changeId }, 'webhook attempt could not be recorded'))
      .finally(() => {
        this.total--;
        const left = (this.inFlight.get(key) ?? 1) - 1;
        if (left) this.inFlight.set(key, left);
        else this.inFlight.delete(key);
        this.sending.delete(job);
        this.wake();
      });
    this.sending.add(job);
  }

  private async deliver(d: ClaimedDelivery): Promise<void> {
    const started = Date.now();
    const answer = await this.send(d);
    if (answer.aborted) {
      // Shutting down: not the receiver's fault. Hand the delivery back, due now.
      await releaseClaim(this.ledger.database, d, this.ledger.now());
      return;
    }
    const at = this.ledger.now();
    const record: AttemptRecord = {
      at,
      durationMs: Date.now() - started,
      statusCode: answer.status ?? null,
      error: answer.error ?? null,
      outcome: 'delivered',
    };
    if (answer.status !== undefined && answer.status >= 200 && answer.status < 300) record.outcome = 'delivered';
    else if (answer.status === 410) {
      record.outcome = 'disabled';
      record.error = 'the receiver answered 410 Gone: endpoint disabled (replay enables it again)';
    } else {
      const wait = answer.retryAfterMs ?? retryDelayMs(d.priorAttempts + 1, this.schedule);
      if (wait === null || d.priorAttempts + 1 > this.schedule.length) record.outcome = 'failed';
      else {
        record.outcome = 'retry';
        record.nextAt = new Date(at.getTime() + wait);
      }
    }
    if (await recordAttempt(this.ledger.database, d, record)) this.onAttempt(record.outcome);
  }

  /** One POST; never throws: no answer is an `error`. */
  private async send(d: ClaimedDelivery): Promise<{ status?: number; error?: string; retryAfterMs?: number; aborted?: boolean }> {
    const url = new URL(d.url);
    const host = url.hostname.replace(/^\[|\]$/g, '');
    // IP literals are dialled without a lookup, so they are checked here.
    if (!this.allowPrivate && isIP(host) && isPrivateAddress(host)) return { error: new PrivateTargetError(host, host).message };
    const data = typeof d.data === 'object' && d.data !== null && !Array.isArray(d.data) ? d.data : { value: d.data };
    const body = JSON.stringify({
      type: d.type,
      timestamp: d.at.toISOString(),
      data: {
        changeId: Number(d.changeId),
        cursor: d.cursor,
        namespace: d.namespace,
        job: d.job,
        subject: d.subject,
        runId: d.runId,
        ...data,
      },
    });
    const timestamp = Math.floor(Date.now() / 1000);
    const signal = AbortSignal.any([this.aborter.signal, AbortSignal.timeout(this.timeoutMs)]);
    try {
      const res = await request(url, {
        method: 'POST',
        dispatcher: this.agent,
        signal,
        headers: {
          'content-type': 'application/json',
          'user-agent': `runledger/${VERSION}`,
          'webhook-id': d.changeId,
          'webhook-timestamp': String(timestamp),
          'webhook-signature': signWebhook(d.secret, d.changeId, timestamp, body),
        },
        body,
      });
      await res.body.dump({ limit: MAX_ANSWER_BYTES }).catch(() => {});
      const retryAfter = res.statusCode >= 300 ? parseRetryAfter(res.headers['retry-after'], Date.now()) : undefined;
      const redirect = res.statusCode >= 300 && res.statusCode < 400;
      return {
        status: res.statusCode,
        ...(redirect ? { error: `redirects are not followed (Location: ${String(res.headers.location ?? 'none')})` } : {}),
        ...(retryAfter !== undefined ? { retryAfterMs: retryAfter } : {}),
      };
    } catch (err) {
      if (this.aborter.signal.aborted) return { aborted: true };
      if (signal.aborted) return { error: `no answer within ${this.timeoutMs} ms` };
      const e = err as Error & { code?: string; cause?: Error & { code?: string } };
      const cause = e.cause ?? e;
      return { error: `${cause.code ? `${cause.code}: ` : ''}${cause.message}`.slice(0, 500) };
    }
  }
}

/** Retry-After as ms from now: delay-seconds or an HTTP date; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | string[] | undefined, nowMs: number): number | undefined {
  const text = Array.isArray(value) ? value[0] : value;
  if (!text) return undefined;
  const ms = /^\d+$/.test(text.trim()) ? Number(text.trim()) * 1000 : Date.parse(text) - nowMs;
  if (!Number.isFinite(ms)) return undefined;
  return Math.min(Math.max(ms, 0), MAX_RETRY_AFTER_MS);
}
