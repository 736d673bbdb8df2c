/**
 * The dashboard's only way to the ledger: the HTTP API v1. Adds the namespace to every call,
 * sends the stored token as a Bearer token, and on a 401 asks the user for a token (once,
 * shared by every request waiting on it) and retries.
 */
import type { Change } from '../../src/core/changes.js';
import type {
  Checkpoint,
  EventPage,
  LedgerEvent,
  RetentionRules,
  Run,
  RunPage,
  StatsResult,
  SubjectDetail,
  SubjectPage,
  Tombstone,
  VerifyResult,
} from '../../src/core/types.js';
import type { Delivery, Webhook } from '../../src/core/webhooks.js';

export type { Change } from '../../src/core/changes.js';
export type {
  Checkpoint,
  Json,
  JsonObject,
  LedgerEvent,
  RetentionRules,
  Run,
  RunError,
  RunPage,
  RunStatus,
  StatsResult,
  SubjectDetail,
  SubjectStatus,
  Tombstone,
  VerifyResult,
} from '../../src/core/types.js';
export type { Delivery, Webhook } from '../../src/core/webhooks.js';

const TOKEN_KEY = 'runledger.token';

/** An API answer that was not 2xx, with the problem+json fields the server sent. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** A 410 `pruned` answer's tombstone: what is left of a run that retention deleted. */
    readonly tombstone?: Tombstone,
  ) {
    super(message);
  }
}

export function getToken(): string | null {
  try {
    return localStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

export function setToken(token: string | null): void {
  if (token) localStorage.setItem(TOKEN_KEY, token);
  else localStorage.removeItem(TOKEN_KEY);
  notify();
}

// --- the token prompt: one pending request for a token, whatever number of calls wait on it ---

export interface AuthState {
  /** True while a call is waiting for the user to give a token. */
  needed: boolean;
  /** True when the stored token was sent and refused. */
  rejected: boolean;
}

let authState: AuthState = { needed: false, rejected: false };
let waiters: (() => void)[] = [];
const listeners = new Set<() => void>();

function notify() {
  for (const l of listeners) l();
}

export function subscribeAuth(listener: () => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

export function getAuthState(): AuthState {
  return authState;
}

function waitForToken(rejected: boolean): Promise<void> {
  if (!authState.needed || authState.rejected !== rejected) {
    authState = { needed: true, rejected };
    notify();
  }
  return new Promise((resolve) => waiters.push(resolve));
}

/** Called by the token form: stores the token and releases every waiting call. */
export function provideToken(token: string): void {
  authState = { needed: false, rejected: false };
  setToken(token);
  const w = waiters;
  waiters = [];
  for (const resolve of w) resolve();
}

// --- requests ---

export type Query = Record<string, string | number | undefined | null>;

export function apiUrl(path: string, namespace: string, query: Query = {}): string {
  const params = new URLSearchParams();
  if (namespace && namespace !== 'default') params.set('namespace', namespace);
  for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null && v !== '') params.set(k, String(v));
  const qs = params.toString();
  return `/v1${path}${qs ? `?${qs}` : ''}`;
}

async function problemOf(res: Response): Promise<ApiError> {
  let code = `http_${res.status}`;
  let message = `${res.status} ${res.statusText}`.trim();
  try {
    const body = (await res.json()) as { code?: string; detail?: string; title?: string; message?: string; tombstone?: Tombstone };
    code = body.code ?? code;
    message = body.detail ?? body.message ?? body.title ?? message;
    if (code === 'pruned' && body.tombstone) return new ApiError(res.status, code, message, body.tombstone);
  } catch {
    // not JSON: keep the status line
  }
  return new ApiError(res.status, code, message);
}

export async function request<T>(path: string, namespace: string, query: Query = {}, init: RequestInit = {}): Promise<T> {
  const url = apiUrl(path, namespace, query);
  for (let attempt = 0; ; attempt++) {
    const token = getToken();
    const headers = new Headers(init.headers);
    headers.set('accept', 'application/json');
    if (token) headers.set('authorization', `Bearer ${token}`);
    let res: Response;
    try {
      res = await fetch(url, { ...init, headers });
    } catch (err) {
      throw new ApiError(0, 'network', `cannot reach the runledger server (${(err as Error).message})`);
    }
    if (res.status === 401) {
      // Ask for a token; a stored token that was refused is reported as such.
      await waitForToken(Boolean(token));
      continue;
    }
    if (!res.ok) throw await problemOf(res);
    return (await res.json()) as T;
  }
}

export const api = {
  listRuns: (ns: string, q: Query) => request<RunPage>('/runs', ns, q),
  getRun: (ns: string, id: string) => request<Run>(`/runs/${encodeURIComponent(id)}`, ns),
  listEvents: (ns: string, id: string, afterSeq: number, limit = 500) =>
    request<EventPage>(`/runs/${encodeURIComponent(id)}/events`, ns, { afterSeq, limit }),
  listCheckpoints: async (ns: string, id: string) => {
    const body = await request<Checkpoint[] | { checkpoints: Checkpoint[] }>(`/runs/${encodeURIComponent(id)}/checkpoints`, ns);
    return Array.isArray(body) ? body : body.checkpoints;
  },
  getCheckpoint: (ns: string, id: string, name: string) =>
    request<Checkpoint>(`/runs/${encodeURIComponent(id)}/checkpoints/${encodeURIComponent(name)}`, ns),
  verify: (ns: string, id: string) => request<VerifyResult>(`/runs/${encodeURIComponent(id)}/verify`, ns),
  listSubjects: (ns: string, q: Query) => request<SubjectPage>('/subjects', ns, q),
  getSubject: (ns: string, job: string, subject: string) =>
    request<SubjectDetail>(`/subjects/${encodeURIComponent(job)}/${encodeURIComponent(subject)}`, ns),
  stats: (ns: string, q: Query) => request<StatsResult>('/stats', ns, q),
  getRetention: (ns: string) => request<RetentionRules>('/retention', ns),
  listWebhooks: async (ns: string) => (await request<{ webhooks: Webhook[] }>('/webhooks', ns)).webhooks,
  webhookDeliveries: async (ns: string, id: string, limit = 20) =>
    (await request<{ deliveries: Delivery[] }>(`/webhooks/${encodeURIComponent(id)}/deliveries`, ns, { limit })).deliveries,
  /** Needs a write token: a 401 asks for one. */
  cancelRun: (ns: string, id: string, reason: string) =>
    request<Run>(
      `/runs/${encodeURIComponent(id)}/cancel`,
      ns,
      {},
      {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ reason }),
      },
    ),
};

// --- live streams (SSE) ---

type StreamState = 'live' | 'reconnecting' | 'ended';

/**
 * Follows a Server-Sent Events stream of JSON messages. Without a token this is a plain
 * EventSource (which resumes by itself with Last-Event-ID); with one, EventSource cannot send
 * the header, so the same stream is read through fetch and resumed after the last id.
 * Returns a function that stops it.
 */
function followStream<T>(url: string, onData: (value: T) => void, onState: (state: StreamState) => void): () => void {
  const token = getToken();
  if (!token && typeof EventSource !== 'undefined') {
    const source = new EventSource(url);
    source.onopen = () => onState('live');
    source.onmessage = (m) => onData(JSON.parse(m.data) as T);
    source.onerror = () => onState(source.readyState === EventSource.CLOSED ? 'ended' : 'reconnecting');
    return () => source.close();
  }
  const controller = new AbortController();
  void (async () => {
    let lastId = '';
    while (!controller.signal.aborted) {
      try {
        const headers: Record<string, string> = { accept: 'text/event-stream' };
        if (token) headers.authorization = `Bearer ${token}`;
        if (lastId) headers['last-event-id'] = lastId;
        const res = await fetch(url, { headers, signal: controller.signal });
        if (!res.ok || !res.body) throw new Error(`stream answered ${res.status}`);
        onState('live');
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          let cut: number;
          while ((cut = buffer.indexOf('\n\n')) >= 0) {
            const block = buffer.slice(0, cut);
            buffer = buffer.slice(cut + 2);
            let data = '';
            for (const line of block.split('\n')) {
              if (line.startsWith('id:')) lastId = line.slice(3).trim();
              else if (line.startsWith('data:')) data += (data ? '\n' : '') + line.slice(5).replace(/^ /, '');
            }
            if (data) onData(JSON.parse(data) as T);
          }
        }
        // A run's stream ends after its terminal event, and the caller stops us on that event;
        // any other end is a dropped connection: resume after the last id.
        if (controller.signal.aborted) return;
        onState('reconnecting');
        await new Promise((r) => setTimeout(r, 1000));
      } catch {
        if (controller.signal.aborted) return;
        onState('reconnecting');
        await new Promise((r) => setTimeout(r, 3000));
      }
    }
  })();
  return () => controller.abort();
}

/** Follows a run's event stream. */
export function followEvents(
  namespace: string,
  runId: string,
  onEvent: (e: LedgerEvent) => void,
  onState: (state: StreamState) => void,
): () => void {
  return followStream(apiUrl(`/runs/${encodeURIComponent(runId)}/events/stream`, namespace), onEvent, onState);
}

/** Follows the namespace's change feed from now on (run.finished, run.suspect, subject.changed, …). */
export function followChanges(namespace: string, onChange: (c: Change) => void, onState: (state: StreamState) => void): () => void {
  return followStream(apiUrl('/changes/stream', namespace, { after: 'now' }), onChange, onState);
}
