/**
 * The client's transport: one JSON request with retries, and the mapping from
 * problem+json back to the LedgerError subclass the library would have thrown.
 *
 * Retry policy: a request that never reached the server (connection refused, DNS) is
 * always safe to repeat. Any other network failure, or a 502/503/504, is repeated only
 * for calls that are idempotent by design (reads, create with its client-generated id,
 * events that all carry keys, checkpoints, complete/fail/cancel with the same payload).
 *
 * Requests go through an undici Agent (keep-alive pool per client) with `request()`,
 * not `fetch()`: on this path fetch costs ~6× the CPU per call (WHATWG streams, Headers
 * and Response objects), and the client's CPU is most of what an HTTP call costs
 * besides the database. A caller-supplied `fetch` (ClientOptions.fetch) is still honoured.
 */
import { Agent, type Dispatcher } from 'undici';

import {
  ConfigurationError,
  DataDirLockedError,
  type ErrorCode,
  type ErrorDetail,
  IdConflictError,
  InvalidTransitionError,
  isErrorCode,
  KeyConflictError,
  LedgerError,
  MigrationError,
  NotFoundError,
  PrunedError,
  RunActiveError,
  RunFinishedError,
  ValidationError,
  VersionMismatchError,
} from '../core/errors.js';

// The subclass the library throws for each code, rebuilt from a problem+json body.
const CLASSES: Partial<Record<ErrorCode, abstract new (...args: never[]) => LedgerError>> = {
  validation_failed: ValidationError,
  not_found: NotFoundError,
  id_conflict: IdConflictError,
  invalid_transition: InvalidTransitionError,
  run_finished: RunFinishedError,
  version_mismatch: VersionMismatchError,
  key_conflict: KeyConflictError,
  data_dir_locked: DataDirLockedError,
  migration_mismatch: MigrationError,
  configuration: ConfigurationError,
  run_active: RunActiveError,
  pruned: PrunedError,
};

/**
 * A server-side failure or a response that is not a ledger problem. `status` 0 means no answer
 * came (the server is down or the URL is wrong); its `code` is then `unavailable`.
 */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly code?: string,
    opts?: { cause?: unknown },
  ) {
    super(message, opts);
    this.name = 'HttpError';
  }
}

interface ProblemBody {
  status?: number;
  detail?: string;
  title?: string;
  code?: string;
  errors?: ErrorDetail[];
  activeRunId?: string;
  tombstone?: Record<string, unknown>;
}

/** Rebuilds the LedgerError subclass for `code`, with the server's message and details. */
export function toLedgerError(status: number, body: ProblemBody): Error {
  const message = body.detail ?? body.title ?? `HTTP ${status}`;
  if (!isErrorCode(body.code) || status >= 500) return new HttpError(status, `server error ${status}: ${message}`, body.code);
  const args: ConstructorParameters<typeof LedgerError> = [body.code, message, { details: Array.isArray(body.errors) ? body.errors : [] }];
  // Construct the subclass around LedgerError's own constructor: the subclasses' constructors
  // build their message from parts, but here the server's message and details are the parts.
  const cls = CLASSES[body.code];
  if (!cls) return new LedgerError(...args);
  const err = Reflect.construct(LedgerError, args, cls) as LedgerError;
  if (cls === RunActiveError) Object.defineProperty(err, 'activeRunId', { value: body.activeRunId, enumerable: true });
  if (cls === PrunedError) Object.defineProperty(err, 'tombstone', { value: body.tombstone ?? {}, enumerable: true });
  return err;
}

export interface Transport {
  /** Origin plus any path prefix (a server behind a proxy at /runledger), without a trailing slash. */
  baseUrl: string;
  /** `baseUrl` split once: the origin the pool connects to, and the path prefix of every request. */
  origin: string;
  pathPrefix: string;
  token?: string;
  /** Used for the event stream (tail), and for every call when the caller supplied it. */
  fetch: typeof fetch;
  /** The keep-alive pool for JSON calls; absent when the caller supplied `fetch`. */
  agent?: Dispatcher;
  retries: number;
  timeoutMs: number;
}

/** The client's own connection pool (closed by `client.close()`). */
export function newAgent(timeoutMs: number): Dispatcher {
  return new Agent({ headersTimeout: timeoutMs, bodyTimeout: timeoutMs, keepAliveTimeout: 30_000 });
}

interface RawResponse {
  status: number;
  text: string;
}

/** One attempt: the status and the whole body as text. Network failures throw. */
async function send(
  t: Transport,
  path: string,
  method: RequestSpec['method'],
  headers: Record<string, string>,
  body: string | undefined,
): Promise<RawResponse> {
  if (t.agent) {
    const res = await t.agent.request({ origin: t.origin, path: t.pathPrefix + path, method, headers, body });
    return { status: res.statusCode, text: await res.body.text() };
  }
  const res = await t.fetch(t.baseUrl + path, { method, headers, body, signal: AbortSignal.timeout(t.timeoutMs) });
  return { status: res.status, text: await res.text() };
}

export interface RequestSpec {
  method: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE';
  path: string;
  query?: Record<string, unknown>;
  body?: unknown;
  headers?: Record<string, string>;
  /** Safe to send again after a failure that may have reached the server. */
  idempotent: boolean;
  /** Answer the body as text (NDJSON), not parsed JSON; problems are still LedgerErrors. */
  raw?: boolean;
}

export interface JsonResponse<T> {
  status: number;
  body: T;
}

const CONNECT_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'UND_ERR_CONNECT_TIMEOUT', 'EHOSTUNREACH', 'ENETUNREACH']);

function causeCode(err: unknown): string | undefined {
  let e = err as { code?: string; cause?: unknown } | undefined;
  for (let i = 0; e && i < 5; i++) {
    if (typeof e.code === 'string') return e.code;
    e = e.cause as typeof e;
  }
  return undefined;
}

/** `path?query` (query values: arrays as comma lists; undefined and null left out). */
export function pathWithQuery(path: string, query?: Record<string, unknown>): string {
  let qs = '';
  if (query) {
    for (const key in query) {
      const v = query[key];
      if (v === undefined || v === null) continue;
      qs += `${qs ? '&' : '?'}${encodeURIComponent(key)}=${encodeURIComponent(Array.isArray(v) ? v.join(',') : String(v))}`;
    }
  }
  return path + qs;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const backoff = (attempt: number) => Math.min(2000, 100 * 3 ** attempt) * (0.5 + Math.random() / 2);

/** Sends one request (retrying per the policy above) and parses the JSON answer. */
export async function request<T>(t: Transport, spec: RequestSpec): Promise<JsonResponse<T>> {
  const path = pathWithQuery(spec.path, spec.query);
  const headers: Record<string, string> = { accept: 'application/json, application/problem+json', ...spec.headers };
  if (t.token) headers.authorization = `Bearer ${t.token}`;
  let payload: string | undefined;
  if (spec.body !== undefined) {
    headers['content-type'] = 'application/json';
    payload = JSON.stringify(spec.body);
  }
  for (let attempt = 0; ; attempt++) {
    let res: RawResponse;
    try {
      res = await send(t, path, spec.method, headers, payload);
    } catch (err) {
      const neverSent = CONNECT_CODES.has(causeCode(err) ?? '');
      if (attempt < t.retries && (neverSent || spec.idempotent)) {
        await sleep(backoff(attempt));
        continue;
      }
      throw new HttpError(
        0,
        `cannot reach runledger server at ${t.baseUrl}: ${(err as Error).message} (${causeCode(err) ?? 'network error'})`,
        'unavailable',
        { cause: err },
      );
    }
    if ((res.status === 502 || res.status === 503 || res.status === 504) && spec.idempotent && attempt < t.retries) {
      await sleep(backoff(attempt));
      continue;
    }
    if (spec.raw && res.status < 400) return { status: res.status, body: res.text as T };
    let body: unknown;
    try {
      body = res.text ? JSON.parse(res.text) : undefined;
    } catch {
      body = undefined;
    }
    if (res.status >= 400) {
      if (body && typeof body === 'object') throw toLedgerError(res.status, body as ProblemBody);
      throw new HttpError(res.status, `HTTP ${res.status} from ${spec.method} ${spec.path}: ${res.text.slice(0, 200)}`);
    }
    return { status: res.status, body: body as T };
  }
}
