/**
 * Per-token rate limiting: a token bucket per API token (per client address when the
 * server runs without tokens). A request takes one token from its bucket; the bucket
 * refills at `perSecond` up to `burst`. An empty bucket is 429 rate_limited with
 * Retry-After (whole seconds until one token is back). In memory, per server process:
 * N servers behind a load balancer allow up to N × the rate.
 *
 * Default: on when tokens are required (100 requests/s, bursts of 200 per token); off
 * when the server runs without tokens (loopback) unless configured.
 */
import type { Scope } from './tokens.js';

export interface RateLimitDecision {
  allowed: boolean;
  retryAfterS?: number;
}

/** Per-request rate limit hook (buildServer's `rateLimit` option; resolveRateLimit below builds the default limiter). */
export type RateLimitHook = (who: {
  tokenId: string | null;
  namespace: string;
  ip: string;
  scope: Scope;
}) => RateLimitDecision | Promise<RateLimitDecision>;

export interface RateLimitSettings {
  /** Sustained requests per second per token (or per client address without tokens). */
  perSecond: number;
  /** Requests allowed at once after a quiet period (default 2 × perSecond, at least 1). */
  burst?: number;
}

/** What buildServer accepts: settings, your own hook, or false for none. */
export type RateLimitOption = RateLimitSettings | RateLimitHook | false;

export const DEFAULT_RATE_LIMIT: Required<RateLimitSettings> = { perSecond: 100, burst: 200 };

// Buckets of keys not seen for a while are full again and carry no information: they are
// swept, and the map never holds more than this many keys (the least recently used go first).
const MAX_KEYS = 100_000;
const SWEEP_EVERY = 1000;

interface Bucket {
  tokens: number;
  at: number;
}

export interface RateLimiter extends RateLimitHook {
  /** Keys currently tracked (for tests and metrics). */
  readonly size: number;
}

/**
 * A token-bucket limiter for buildServer's `rateLimit`.
 * @example
 * const app = await buildServer({ ledger, auth: 'required', rateLimit: createRateLimiter({ perSecond: 20 }) });
 */
export function createRateLimiter(settings: RateLimitSettings, now: () => number = () => performance.now()): RateLimiter {
  const perSecond = settings.perSecond;
  if (!(Number.isFinite(perSecond) && perSecond > 0))
    throw new RangeError(`rate limit perSecond must be a positive number; got ${JSON.stringify(perSecond)}`);
  const burst = settings.burst ?? Math.max(1, 2 * perSecond);
  if (!(Number.isFinite(burst) && burst >= 1)) throw new RangeError(`rate limit burst must be 1 or more; got ${JSON.stringify(burst)}`);
  const fullAfterMs = (burst / perSecond) * 1000;
  const buckets = new Map<string, Bucket>();
  let calls = 0;

  const sweep = (t: number) => {
    for (const [key, b] of buckets) if (t - b.at >= fullAfterMs) buckets.delete(key);
    // Insertion order is least recently used first (each hit re-inserts its key).
    for (const key of buckets.keys()) {
      if (buckets.size <= MAX_KEYS) break;
      buckets.delete(key);
    }
  };

  const hook = ((who): RateLimitDecision => {
    const key = who.tokenId !== null ? `token:${who.tokenId}` : `ip:${who.ip}`;
    const t = now();
    if (++calls % SWEEP_EVERY === 0 || buckets.size > MAX_KEYS) sweep(t);
    const b = buckets.get(key);
    const tokens = b ? Math.min(burst, b.tokens + ((t - b.at) / 1000) * perSecond) : burst;
    buckets.delete(key);
    if (tokens >= 1) {
      buckets.set(key, { tokens: tokens - 1, at: t });
      return { allowed: true };
    }
    buckets.set(key, { tokens, at: t });
    return { allowed: false, retryAfterS: Math.max(1, Math.ceil((1 - tokens) / perSecond)) };
  }) as RateLimiter;
  Object.defineProperty(hook, 'size', { get: () => buckets.size });
  return hook;
}

/**
 * The limiter a server runs with: the given hook or settings; `false` for none; by
 * default the DEFAULT_RATE_LIMIT when tokens are required and none without tokens.
 */
export function resolveRateLimit(option: RateLimitOption | undefined, auth: 'required' | 'off'): RateLimitHook | undefined {
  if (option === false) return undefined;
  if (typeof option === 'function') return option;
  if (option) return createRateLimiter(option);
  return auth === 'required' ? createRateLimiter(DEFAULT_RATE_LIMIT) : undefined;
}
