/**
 * Webhooks in the database: subscriptions, the fan-out of the change log into deliveries,
 * claims, and the attempt log (migrations 0003 and 0008). The HTTP side — signing, sending,
 * deciding what an answer means — is the server's dispatcher (src/server/webhooks.ts).
 *
 * How a change becomes a delivery, with many servers on one database:
 *  1. Fan-out: a server locks the enabled subscriptions it can (FOR UPDATE SKIP LOCKED) and,
 *     per subscription, reads the feed after the subscription's position exactly as
 *     `changes()` does (only transactions that have ended: the outbox gap cannot skip a
 *     change), inserts one pending delivery per matching change and moves the position, in
 *     one statement. A server killed mid-way rolls back: the next one does it again.
 *  2. Claim: a server takes due deliveries (SKIP LOCKED), counts the attempt and pushes
 *     `next_at` past the request timeout: a lease. Killed mid-request, the delivery is due
 *     again when the lease ends, for whichever server comes first.
 *  3. Record: the answer is written only if `attempts` is still the claimed value, so a late
 *     answer to a lease that another server has since taken over cannot overwrite its result.
 * Receivers deduplicate by `webhook-id` (the change id), the same on every attempt.
 */
import { type ChangeType, formatCursor, parseCursor } from '../core/changes.js';
import { NotFoundError, ValidationError } from '../core/errors.js';
import type { Json } from '../core/json.js';
import { parseInput } from '../core/validation.js';
import {
  type AttemptOutcome,
  type CreatedWebhook,
  type Delivery,
  type DeliveryQuery,
  deliveryQuerySchema,
  type DeliveryState,
  newWebhookId,
  newWebhookSecret,
  parseWebhookId,
  type ReplayInput,
  replayInputSchema,
  type ReplayResult,
  type Webhook,
  type WebhookInput,
  webhookInputSchema,
} from '../core/webhooks.js';
import { prepared, type Queryable } from '../store/database.js';
import type { LedgerContext } from './context.js';
import { checkCursor } from './feed-retention.js';
import { iso } from './rows.js';

interface WebhookRow {
  namespace: string;
  id: string;
  url: string;
  types: ChangeType[];
  job: string | null;
  description: string | null;
  created_at: Date;
  disabled_at: Date | null;
  disabled_reason: string | null;
  pending: number;
  failed: number;
}

const toWebhook = (r: WebhookRow): Webhook => ({
  id: r.id,
  namespace: r.namespace,
  url: r.url,
  types: r.types,
  job: r.job,
  description: r.description,
  createdAt: iso(r.created_at)!,
  disabledAt: iso(r.disabled_at),
  disabledReason: r.disabled_reason,
  pending: r.pending,
  failed: r.failed,
});

const COUNTS = `
  (select count(*)::int from webhook_deliveries d where d.namespace = w.namespace and d.webhook_id = w.id and d.state = 'pending') as pending,
  (select count(*)::int from webhook_deliveries d where d.namespace = w.namespace and d.webhook_id = w.id and d.state = 'failed') as failed`;

const notFound = (ctx: LedgerContext, id: string) => new NotFoundError(`no webhook ${id} in namespace ${ctx.namespace}`);

/**
 * A new subscription. It delivers changes recorded after it was created (replay reaches
 * back further). The secret is returned here only.
 */
export async function createWebhook(ctx: LedgerContext, input: WebhookInput): Promise<CreatedWebhook> {
  const w = parseInput(webhookInputSchema, input);
  const id = newWebhookId();
  const secret = newWebhookSecret();
  // Start at the feed's frontier: everything below it has ended; what is above is new.
  const { rows } = await ctx.db.query<WebhookRow>(
    `insert into webhooks (namespace, id, url, types, job, description, secret, created_at, after_xid, after_id)
     values ($1, $2, $3, $4, $5, $6, $7, $8, pg_snapshot_xmin(pg_current_snapshot()), 0)
     returning namespace, id, url, types, job, description, created_at, disabled_at, disabled_reason, 0 as pending, 0 as failed`,
    [ctx.namespace, id, w.url, w.types, w.job ?? null, w.description ?? null, secret, ctx.now()],
  );
  return { ...toWebhook(rows[0]), secret };
}

export async function listWebhooks(ctx: LedgerContext): Promise<Webhook[]> {
  const { rows } = await ctx.db.query<WebhookRow>(
    `select namespace, id, url, types, job, description, created_at, disabled_at, disabled_reason, ${COUNTS}
       from webhooks w where namespace = $1 order by created_at, id`,
    [ctx.namespace],
  );
  return rows.map(toWebhook);
}

export async function getWebhook(ctx: LedgerContext, id: string): Promise<Webhook> {
  const { rows } = await ctx.db.query<WebhookRow>(
    `select namespace, id, url, types, job, description, created_at, disabled_at, disabled_reason, ${COUNTS}
       from webhooks w where namespace = $1 and id = $2`,
    [ctx.namespace, parseWebhookId(id)],
  );
  if (!rows[0]) throw notFound(ctx, id);
  return toWebhook(rows[0]);
}

/** Removes a subscription with its deliveries and their log. False when there was none. */
export async function deleteWebhook(ctx: LedgerContext, id: string): Promise<boolean> {
  const { rows } = await ctx.db.query(`delete from webhooks where namespace = $1 and id = $2 returning id`, [
    ctx.namespace,
    parseWebhookId(id),
  ]);
  return rows.length > 0;
}

interface DeliveryRow {
  change_id: string;
  change_xid: string;
  type: ChangeType | null;
  state: DeliveryState;
  attempts: number;
  created_at: Date;
  next_at: Date;
  finished_at: Date | null;
  log: { attempt: number; at: string; duration_ms: number; status_code: number | null; error: string | null; outcome: AttemptOutcome }[];
}

/** An endpoint's deliveries, newest first, each with its attempts (newest first). */
export async function listDeliveries(ctx: LedgerContext, id: string, query: DeliveryQuery = {}): Promise<Delivery[]> {
  const webhookId = parseWebhookId(id);
  const q = parseInput(deliveryQuerySchema, query);
  const { rows } = await ctx.db.query<DeliveryRow>(
    `select d.change_id::text, d.change_xid::text, c.type, d.state, d.attempts, d.created_at, d.next_at, d.finished_at,
            coalesce((select jsonb_agg(jsonb_build_object('attempt', a.attempt, 'at', a.at, 'duration_ms', a.duration_ms,
                        'status_code', a.status_code, 'error', a.error, 'outcome', a.outcome) order by a.attempt desc)
                        from webhook_attempts a
                       where a.namespace = d.namespace and a.webhook_id = d.webhook_id and a.change_id = d.change_id), '[]') as log
       from webhook_deliveries d
       left join changes c on c.namespace = d.namespace and c.xid = d.change_xid and c.id = d.change_id
      where d.namespace = $1 and d.webhook_id = $2 and ($3::text is null or d.state = $3)
      order by d.created_at desc, d.change_id desc limit $4`,
    [ctx.namespace, webhookId, q.state ?? null, q.limit ?? 50],
  );
  if (rows.length === 0) await getWebhook(ctx, webhookId); // 404 for an unknown endpoint, [] for a quiet one
  return rows.map((r) => ({
    changeId: Number(r.change_id),
    changeCursor: formatCursor({ xid: r.change_xid, id: r.change_id }),
    type: r.type as ChangeType,
    state: r.state,
    attempts: r.attempts,
    createdAt: iso(r.created_at)!,
    nextAt: r.state === 'pending' ? iso(r.next_at) : null,
    finishedAt: iso(r.finished_at),
    log: r.log.map((a) => ({
      attempt: a.attempt,
      at: iso(a.at)!,
      durationMs: a.duration_ms,
      statusCode: a.status_code,
      error: a.error,
      outcome: a.outcome,
    })),
  }));
}

/**
 * Delivers again every matching change after `after` that the endpoint has already read
 * (delivered, failed or pending: each becomes due now), and enables a disabled endpoint;
 * what it has not read yet the fan-out delivers as usual.
 */
export async function replayWebhook(ctx: LedgerContext, id: string, input: ReplayInput): Promise<ReplayResult> {
  const webhookId = parseWebhookId(id);
  const { after } = parseInput(replayInputSchema, input);
  if (after === 'now')
    throw new ValidationError('after must be a change cursor or 0 for the start (now would replay nothing)', [
      { field: 'after', message: 'now replays nothing' },
    ]);
  const from = parseCursor(after)!;
  return ctx.db.withTransaction(async (tx) => {
    // Replaying from before the pruned prefix of the change log would skip changes silently.
    await checkCursor(tx, ctx.namespace, from, 'after');
    const { rows: hooks } = await tx.query(
      `update webhooks set disabled_at = null, disabled_reason = null where namespace = $1 and id = $2 returning id`,
      [ctx.namespace, webhookId],
    );
    if (!hooks[0]) throw notFound(ctx, webhookId);
    const { rows } = await tx.query<{ queued: number }>(
      `with src as (
         select c.namespace, c.xid, c.id from changes c join webhooks w on w.namespace = c.namespace and w.id = $2
          where c.namespace = $1 and (c.xid, c.id) > ($3::xid8, $4::bigint) and (c.xid, c.id) <= (w.after_xid, w.after_id)
            and c.type = any(w.types) and (w.job is null or c.job = w.job)),
       q as (
         insert into webhook_deliveries (namespace, webhook_id, change_xid, change_id, state, next_at, created_at)
         select namespace, $2, xid, id, 'pending', $5, $5 from src
         on conflict (namespace, webhook_id, change_id) do update
           set state = 'pending', next_at = excluded.next_at, finished_at = null, round_start = webhook_deliveries.attempts
         returning 1)
       select count(*)::int as queued from q`,
      [ctx.namespace, webhookId, from.xid, from.id, ctx.now()],
    );
    return { queued: rows[0].queued };
  });
}

// ---- The dispatcher's statements (src/server/webhooks.ts drives them) -------------------

/** One page of the fan-out for one locked subscription: deliveries created, changes read. */
const FAN_OUT_SQL = prepared(`
with w as (select * from webhooks where namespace = $1 and id = $2),
s as (select pg_snapshot_xmin(pg_current_snapshot()) as xmin),
page as (
  select c.namespace, c.xid, c.id, c.type, c.job from changes c, w, s
   where c.namespace = w.namespace and (c.xid, c.id) > (w.after_xid, w.after_id) and c.xid < s.xmin
   order by c.xid, c.id limit $4),
ins as (
  insert into webhook_deliveries (namespace, webhook_id, change_xid, change_id, state, next_at, created_at)
  select p.namespace, w.id, p.xid, p.id, 'pending', $3, $3 from page p, w
   where p.type = any(w.types) and (w.job is null or p.job = w.job)
  on conflict do nothing
  returning 1),
n as (select count(*)::int as n from page),
last as (select xid, id from page order by xid desc, id desc limit 1),
-- A full page resumes after its last change; a short one saw everything below the frontier.
pos as (
  select case when n.n = $4 then (select xid from last) else s.xmin end as xid,
         case when n.n = $4 then (select id from last) else 0 end as id
    from n, s),
upd as (
  update webhooks t set after_xid = pos.xid, after_id = pos.id from pos
   where t.namespace = $1 and t.id = $2 and (pos.xid, pos.id) > (t.after_xid, t.after_id)
  returning 1)
select (select count(*)::int from ins) as queued, n.n as read, (select count(*)::int from upd) as moved from n`);

export const FAN_OUT_PAGE = 1000;

/**
 * Turns new changes into deliveries for every enabled subscription this caller can lock
 * (others are being fanned out by another server right now). Returns deliveries created.
 */
export async function fanOutWebhooks(ctx: Pick<LedgerContext, 'db' | 'now'>): Promise<number> {
  return ctx.db.withTransaction(async (tx) => {
    const { rows: hooks } = await tx.query<{ namespace: string; id: string }>(
      `select namespace, id from webhooks where disabled_at is null order by namespace, id for update skip locked`,
    );
    let queued = 0;
    const now = ctx.now();
    for (const h of hooks) {
      for (;;) {
        const { rows } = await tx.query<{ queued: number; read: number }>(FAN_OUT_SQL, [h.namespace, h.id, now, FAN_OUT_PAGE]);
        queued += rows[0].queued;
        if (rows[0].read < FAN_OUT_PAGE) break;
      }
    }
    return queued;
  });
}

/** A delivery this server now holds the lease on, with what it needs to send it. */
export interface ClaimedDelivery {
  namespace: string;
  webhookId: string;
  changeId: string;
  /** The claim's attempt number (fences the answer). */
  attempt: number;
  /** Attempts made before this one in the current round (0 on the first). */
  priorAttempts: number;
  url: string;
  secret: string;
  type: ChangeType;
  at: Date;
  runId: string | null;
  job: string;
  subject: string | null;
  cursor: string;
  data: Json;
}

/** Enabled subscriptions with a delivery due now. */
export async function webhooksWithDueDeliveries(db: Queryable, now: Date): Promise<{ namespace: string; id: string }[]> {
  const { rows } = await db.query<{ namespace: string; id: string }>(
    `select w.namespace, w.id from webhooks w
      where w.disabled_at is null
        and exists (select 1 from webhook_deliveries d
                     where d.namespace = w.namespace and d.webhook_id = w.id and d.state = 'pending' and d.next_at <= $1)`,
    [now],
  );
  return rows;
}

const CLAIM_SQL = prepared(`
with due as (
  select namespace, webhook_id, change_id from webhook_deliveries
   where namespace = $1 and webhook_id = $2 and state = 'pending' and next_at <= $3
   order by next_at limit $5
   for update skip locked),
claimed as (
  update webhook_deliveries d set attempts = d.attempts + 1, next_at = $4
    from due where d.namespace = due.namespace and d.webhook_id = due.webhook_id and d.change_id = due.change_id
  returning d.namespace, d.webhook_id, d.change_xid, d.change_id, d.attempts, d.round_start)
select cl.namespace, cl.webhook_id, cl.change_id::text, cl.change_xid::text, cl.attempts, cl.round_start,
       w.url, w.secret, c.type, c.at, c.run_id, c.job, c.subject, c.data
  from claimed cl
  join webhooks w on w.namespace = cl.namespace and w.id = cl.webhook_id
  join changes c on c.namespace = cl.namespace and c.xid = cl.change_xid and c.id = cl.change_id
 order by cl.change_xid, cl.change_id`);

/** Takes up to `limit` due deliveries of one endpoint and holds them until `leaseUntil`. */
export async function claimDeliveries(
  db: Queryable,
  hook: { namespace: string; id: string },
  now: Date,
  leaseUntil: Date,
  limit: number,
): Promise<ClaimedDelivery[]> {
  const { rows } = await db.query<{
    namespace: string;
    webhook_id: string;
    change_id: string;
    change_xid: string;
    attempts: number;
    round_start: number;
    url: string;
    secret: string;
    type: ChangeType;
    at: Date;
    run_id: string | null;
    job: string;
    subject: string | null;
    data: Json;
  }>(CLAIM_SQL, [hook.namespace, hook.id, now, leaseUntil, limit]);
  return rows.map((r) => ({
    namespace: r.namespace,
    webhookId: r.webhook_id,
    changeId: r.change_id,
    attempt: r.attempts,
    priorAttempts: r.attempts - r.round_start - 1,
    url: r.url,
    secret: r.secret,
    type: r.type,
    at: r.at,
    runId: r.run_id,
    job: r.job,
    subject: r.subject,
    cursor: formatCursor({ xid: r.change_xid, id: r.change_id }),
    data: r.data,
  }));
}

export interface AttemptRecord {
  at: Date;
  durationMs: number;
  statusCode: number | null;
  error: string | null;
  outcome: AttemptOutcome;
  /** When to try again (outcome `retry`). */
  nextAt?: Date;
}

const RECORD_SQL = prepared(`
with d as (
  update webhook_deliveries
     set state = $5, next_at = coalesce($6, next_at), finished_at = case when $5 = 'pending' then null else $7::timestamptz end
   where namespace = $1 and webhook_id = $2 and change_id = $3 and attempts = $4 and state = 'pending'
  returning namespace, webhook_id, change_id, attempts),
a as (
  insert into webhook_attempts (namespace, webhook_id, change_id, attempt, at, duration_ms, status_code, error, outcome)
  select namespace, webhook_id, change_id, attempts, $7, $8, $9, $10, $11 from d
  returning 1),
off as (
  update webhooks set disabled_at = $7, disabled_reason = $10
   where $11 = 'disabled' and namespace = $1 and id = $2 and disabled_at is null and exists (select 1 from d)
  returning 1)
select (select count(*)::int from a) as recorded`);

/**
 * Writes an attempt's result, if the claim still holds (false: another server took the
 * delivery over after the lease ran out; its result stands).
 */
export async function recordAttempt(db: Queryable, d: ClaimedDelivery, r: AttemptRecord): Promise<boolean> {
  const state: DeliveryState = r.outcome === 'delivered' ? 'delivered' : r.outcome === 'retry' ? 'pending' : 'failed';
  const { rows } = await db.query<{ recorded: number }>(RECORD_SQL, [
    d.namespace,
    d.webhookId,
    d.changeId,
    d.attempt,
    state,
    r.nextAt ?? null,
    r.at,
    r.durationMs,
    r.statusCode,
    r.error,
    r.outcome,
  ]);
  return rows[0].recorded > 0;
}

/**
 * Seconds since the oldest change that some enabled endpoint still waits for was recorded
 * (pending deliveries, and changes not yet fanned out); 0 when nothing waits. What an operator alerts on.
 */
export async function oldestUndeliveredAgeS(db: Queryable, now: Date): Promise<number> {
  const { rows } = await db.query<{ oldest: Date | null }>(
    `select least(
       (select min(d.created_at) from webhook_deliveries d
          join webhooks w on w.namespace = d.namespace and w.id = d.webhook_id and w.disabled_at is null
         where d.state = 'pending'),
       (select min(c.at) from webhooks w
          cross join lateral (select c.at from changes c
                               where c.namespace = w.namespace and (c.xid, c.id) > (w.after_xid, w.after_id)
                                 and c.type = any(w.types) and (w.job is null or c.job = w.job)
                               order by c.xid, c.id limit 1) c
         where w.disabled_at is null)) as oldest`,
  );
  const oldest = rows[0]?.oldest;
  return oldest ? Math.max(0, (now.getTime() - new Date(oldest).getTime()) / 1000) : 0;
}

/** Gives a claimed delivery back unattempted (the server is stopping): due at `now`, the attempt not counted. */
export async function releaseClaim(db: Queryable, d: ClaimedDelivery, now: Date): Promise<void> {
  await db.query(
    `update webhook_deliveries set attempts = attempts - 1, next_at = $5
      where namespace = $1 and webhook_id = $2 and change_id = $3 and attempts = $4 and state = 'pending'`,
    [d.namespace, d.webhookId, d.changeId, d.attempt, now],
  );
}
