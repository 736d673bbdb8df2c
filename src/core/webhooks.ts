/**
 * Webhooks' model, shared by the library, the server, the client and the CLI: what a
 * subscription is, what its input may hold, the retry schedule, and the Standard Webhooks
 * signature (https://www.standardwebhooks.com): receivers verify with any of its libraries.
 */
import { createHmac, randomBytes } from 'node:crypto';

import { z } from 'zod';

import { CHANGE_TYPES, type ChangeType } from './changes.js';
import { ValidationError } from './errors.js';

export interface WebhookInput {
  /** Where to POST: http or https. */
  url: string;
  /** Which change types to deliver (at least one). */
  types: ChangeType[];
  /** Only changes of this job. */
  job?: string;
  description?: string;
}

export interface Webhook {
  id: string;
  namespace: string;
  url: string;
  types: ChangeType[];
  job: string | null;
  description: string | null;
  createdAt: string;
  /** Set when the receiver answered 410 Gone (or an operator disabled it); replay enables it again. */
  disabledAt: string | null;
  disabledReason: string | null;
  /** Deliveries waiting for a first or a further attempt. */
  pending: number;
  /** Deliveries that used up every attempt (kept; replay sends them again). */
  failed: number;
}

/** What creating a webhook returns: the only time its signing secret is shown. */
export interface CreatedWebhook extends Webhook {
  secret: string;
}

export type DeliveryState = 'pending' | 'delivered' | 'failed';
export type AttemptOutcome = 'delivered' | 'retry' | 'failed' | 'disabled';

export interface DeliveryAttempt {
  attempt: number;
  at: string;
  durationMs: number;
  /** The receiver's HTTP status; null when there was no answer (see error). */
  statusCode: number | null;
  error: string | null;
  outcome: AttemptOutcome;
}

export interface Delivery {
  /** The change delivered: also its `webhook-id`. */
  changeId: number;
  changeCursor: string;
  type: ChangeType;
  state: DeliveryState;
  attempts: number;
  createdAt: string;
  /** When the next attempt is due (pending only). */
  nextAt: string | null;
  finishedAt: string | null;
  /** Every attempt, newest first. */
  log: DeliveryAttempt[];
}

export interface DeliveryQuery {
  state?: DeliveryState;
  /** 1–200 (default 50), newest first. */
  limit?: number;
}

export interface ReplayInput {
  /** Deliver again every matching change after this cursor (a change's cursor, or 0 for the start). */
  after: string;
}

export interface ReplayResult {
  /** Deliveries created or made due again. */
  queued: number;
}

export const WEBHOOK_ID = /^wh_[A-Za-z0-9]{16}$/;

export function parseWebhookId(id: unknown): string {
  if (typeof id !== 'string' || !WEBHOOK_ID.test(id))
    throw new ValidationError(`webhook id must be wh_ and 16 letters or digits (as created); got ${JSON.stringify(id)}`, [
      { field: 'id', message: 'not a webhook id' },
    ]);
  return id;
}
export const newWebhookId = (): string => `wh_${randomBytes(12).toString('base64url').replace(/[-_]/g, 'x').slice(0, 16)}`;

/** A Standard Webhooks secret: `whsec_` + base64 of 32 random bytes. */
export const newWebhookSecret = (): string => `whsec_${randomBytes(32).toString('base64')}`;

const URL_MAX = 2000;

/** A target URL's own problem (null when acceptable): scheme, credentials, shape. Private ranges are the server's call. */
export function webhookUrlProblem(text: string): string | null {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return `url must be an absolute http or https URL; got ${JSON.stringify(text)}`;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    return `url must use http or https; got ${JSON.stringify(url.protocol.replace(/:$/, ''))} in ${JSON.stringify(text)}`;
  if (url.username || url.password)
    return `url must not carry credentials (user:password@); put a token in the URL's path or query instead`;
  if (url.hash) return `url must not have a #fragment (it is never sent); got ${JSON.stringify(text)}`;
  return null;
}

export const webhookInputSchema = z.strictObject({
  url: z
    .string({ error: 'url must be an http or https URL' })
    .min(1, 'url must be an http or https URL')
    .max(URL_MAX, `url must be at most ${URL_MAX} characters`)
    .superRefine((text, ctx) => {
      const problem = webhookUrlProblem(text);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    }),
  types: z
    .array(z.enum(CHANGE_TYPES, { error: `types must be among ${CHANGE_TYPES.join(', ')}` }), {
      error: `types must be a list of change types: ${CHANGE_TYPES.join(', ')}`,
    })
    .min(1, `types must name at least one of ${CHANGE_TYPES.join(', ')}`)
    .refine((t) => new Set(t).size === t.length, 'types must not repeat a type'),
  job: z
    .string({ error: 'job must be a string' })
    .min(1, 'job must be 1–200 characters')
    .max(200, 'job must be 1–200 characters')
    .optional(),
  description: z.string({ error: 'description must be a string' }).max(500, 'description must be at most 500 characters').optional(),
});

export const deliveryQuerySchema = z.strictObject({
  state: z.enum(['pending', 'delivered', 'failed'], { error: 'state must be pending, delivered or failed' }).optional(),
  limit: z
    .number({ error: 'limit must be a whole number 1–200' })
    .int('limit must be a whole number 1–200')
    .min(1, 'limit must be 1–200')
    .max(200, 'limit must be 1–200')
    .optional(),
});

export const replayInputSchema = z.strictObject({
  after: z.string({ error: 'after must be a change cursor (or 0 for the start)' }).max(60, 'after must be a change cursor'),
});

/**
 * Seconds to wait after each failed attempt (Svix's schedule): 8 attempts over ~28 h, then
 * the delivery is failed and kept. Each wait is jittered by ±20% so that receivers that come
 * back are not hit by every server's retries at the same instant.
 */
export const RETRY_SCHEDULE_S = [5, 300, 1800, 7200, 18_000, 36_000, 36_000] as const;
/** No answer within this is a failed attempt. */
export const DELIVERY_TIMEOUT_MS = 10_000;

/** The delay before the attempt after `failedAttempts` failures, or null when none is left. */
export function retryDelayMs(failedAttempts: number, scheduleS: readonly number[] = RETRY_SCHEDULE_S, random = Math.random): number | null {
  const base = scheduleS[failedAttempts - 1];
  if (base === undefined) return null;
  return Math.round(base * 1000 * (0.8 + 0.4 * random()));
}

/** `v1,<base64 HMAC-SHA256 of "id.timestamp.body">` under the secret (its bytes are the base64 after `whsec_`). */
export function signWebhook(secret: string, id: string, timestampS: number, body: string): string {
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  return `v1,${createHmac('sha256', key).update(`${id}.${timestampS}.${body}`).digest('base64')}`;
}
