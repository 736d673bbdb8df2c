/**
 * tail(): follows a run's events over Server-Sent Events until its terminal status
 * event, reconnecting with Last-Event-ID after a dropped connection, so each event is
 * delivered once and in seq order.
 */
import { isTerminal, isTerminalEvent } from '../core/status.js';
import type { LedgerEvent, RunStatus } from '../core/types.js';
import { HttpError, pathWithQuery, request, toLedgerError, type Transport } from './http.js';

export interface TailOptions {
  /** Start after this seq (default 0: from the first event). */
  afterSeq?: number;
  onEvent(event: LedgerEvent): void | Promise<void>;
  signal?: AbortSignal;
}

export interface TailResult {
  /** Seq of the last event delivered (or afterSeq). */
  lastSeq: number;
  /** True when the run finished; false when stopped by the signal. */
  finished: boolean;
}

interface SseMessage {
  id?: string;
  data: string;
}

/**
 * Splits an SSE byte stream into messages (comments and `retry:` are skipped; so are
 * messages without data unless `idOnly`: those only move Last-Event-ID).
 */
export async function* messages(body: ReadableStream<Uint8Array>, idOnly = false): AsyncGenerator<SseMessage> {
  const decoder = new TextDecoder();
  let buffer = '';
  let current: { id?: string; data: string[] } = { data: [] };
  for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true });
    let nl: number;
    while ((nl = buffer.search(/\r\n|\r|\n/)) >= 0) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + (buffer.startsWith('\r\n', nl) ? 2 : 1));
      if (line === '') {
        if (current.data.length || (idOnly && current.id !== undefined)) yield { id: current.id, data: current.data.join('\n') };
        current = { data: [] };
        continue;
      }
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'data') current.data.push(value);
      else if (field === 'id') current.id = value;
    }
  }
}

export async function tailRun(t: Transport, namespace: string, runId: string, opts: TailOptions): Promise<TailResult> {
  let lastSeq = opts.afterSeq ?? 0;
  const path = `/v1/runs/${encodeURIComponent(runId)}/events/stream`;
  for (let attempt = 0; ;) {
    if (opts.signal?.aborted) return { lastSeq, finished: false };
    let res: Response | undefined;
    try {
      const headers: Record<string, string> = { accept: 'text/event-stream', 'last-event-id': String(lastSeq) };
      if (t.token) headers.authorization = `Bearer ${t.token}`;
      res = await t.fetch(t.baseUrl + pathWithQuery(path, { namespace }), { headers, signal: opts.signal });
      if (res.status >= 400 && res.status !== 502 && res.status !== 503 && res.status !== 504) {
        const text = await res.text();
        let body: unknown;
        try {
          body = JSON.parse(text);
        } catch {
          throw new HttpError(res.status, `HTTP ${res.status} from the event stream: ${text.slice(0, 200)}`);
        }
        throw toLedgerError(res.status, body as object);
      }
      if (res.ok && res.body) {
        for await (const m of messages(res.body)) {
          const event = JSON.parse(m.data) as LedgerEvent;
          if (event.seq <= lastSeq) continue;
          await opts.onEvent(event);
          lastSeq = event.seq;
          attempt = 0;
          if (isTerminalEvent(event)) {
            await res.body.cancel().catch(() => {});
            return { lastSeq, finished: true };
          }
        }
        // A clean end without the terminal event: either the run had already finished
        // before `lastSeq`, or the server went away (restart). Ask which.
        const run = await request<{ status: RunStatus; lastSeq: number }>(t, {
          method: 'GET',
          path: `/v1/runs/${encodeURIComponent(runId)}`,
          query: { namespace },
          idempotent: true,
        });
        if (isTerminal(run.body.status) && run.body.lastSeq <= lastSeq) return { lastSeq, finished: true };
      } else {
        await res.body?.cancel().catch(() => {});
      }
    } catch (err) {
      if (opts.signal?.aborted) return { lastSeq, finished: false };
      // Ledger errors (not found, unauthorized…) are final; network failures (fetch's TypeError) reconnect.
      const network = (err instanceof HttpError && err.status === 0) || err instanceof TypeError;
      if (!network) throw err;
    }
    attempt++;
    if (attempt > 50) throw new HttpError(0, `event stream of run ${runId} kept failing; last seq ${lastSeq}`);
    await new Promise((r) => setTimeout(r, Math.min(5000, 100 * 2 ** Math.min(attempt, 6))));
  }
}
