/**
 * watch() over HTTP: follows GET /v1/changes/stream (Server-Sent Events), reconnecting
 * with Last-Event-ID = the last cursor seen, so each change is delivered once and in feed
 * order across dropped connections and server restarts.
 */
import type { Change, Watcher, WatchOptions } from '../core/changes.js';
import { HttpError, pathWithQuery, toLedgerError, type Transport } from './http.js';
import { messages } from './tail.js';

export function watchOverHttp(t: Transport, namespace: string, opts: WatchOptions): Watcher {
  const stopper = new AbortController();
  if (opts.signal) {
    if (opts.signal.aborted) stopper.abort();
    else opts.signal.addEventListener('abort', () => stopper.abort(), { once: true });
  }
  const onError = opts.onError ?? ((err: unknown) => console.error('runledger watch:', err));
  let cursor: string | null = opts.after ?? null;
  const query = { namespace, types: opts.types, job: opts.job };
  const done = (async () => {
    for (let attempt = 0; !stopper.signal.aborted;) {
      try {
        const headers: Record<string, string> = { accept: 'text/event-stream' };
        if (cursor !== null) headers['last-event-id'] = cursor;
        if (t.token) headers.authorization = `Bearer ${t.token}`;
        const res = await t.fetch(t.baseUrl + pathWithQuery('/v1/changes/stream', query), { headers, signal: stopper.signal });
        if (res.status >= 400 && res.status !== 502 && res.status !== 503 && res.status !== 504) {
          const text = await res.text();
          let body: unknown;
          try {
            body = JSON.parse(text);
          } catch {
            throw new HttpError(res.status, `HTTP ${res.status} from the change stream: ${text.slice(0, 200)}`);
          }
          throw toLedgerError(res.status, body as object);
        }
        if (res.ok && res.body) {
          for await (const m of messages(res.body, true)) {
            attempt = 0;
            // A message without data only moves the cursor (past changes the filters left out).
            if (m.data) await opts.onChange(JSON.parse(m.data) as Change);
            if (m.id !== undefined) cursor = m.id;
          }
        } else await res.body?.cancel().catch(() => {});
      } catch (err) {
        if (stopper.signal.aborted) return;
        const network = (err instanceof HttpError && err.status === 0) || err instanceof TypeError;
        if (!network) throw err;
        onError(err);
      }
      attempt++;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(5000, 100 * 2 ** Math.min(attempt, 6)));
        stopper.signal.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
      });
    }
  })();
  done.catch(() => {});
  return {
    get cursor() {
      return cursor;
    },
    async stop() {
      stopper.abort();
      await done.catch(() => {});
    },
    done,
  };
}
