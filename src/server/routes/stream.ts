/**
 * GET /v1/runs/{id}/events/stream — Server-Sent Events. Each message is `id: <seq>` and
 * `data: <event JSON>` (no `event:` field). Resumes after `Last-Event-ID` (or
 * `?afterSeq`), ends after the terminal `run.status` event. Between changes the stream
 * sleeps on the ChangeHub; a slow re-check covers wake-ups that cannot reach it.
 */
import type { FastifyInstance } from 'fastify';

import { isTerminal, isTerminalEvent } from '../../core/status.js';
import type { SqlLedger } from '../../ledger/ledger.js';
import type { ChangeHub } from '../live.js';
import { HttpProblem } from '../problem.js';
import { defineRoute } from '../route.js';
import { runParams, streamQuery } from '../schemas.js';

export interface StreamOptions {
  /** Re-check the run even without a wake-up after this long (default 5000 ms). */
  recheckMs?: number;
  /** Comment line to keep idle connections open (default every 15000 ms). */
  heartbeatMs?: number;
  /**
   * End a change stream after this long (default: never). Clients resume with
   * Last-Event-ID, so nothing is missed; proxies that cut long connections can be met
   * with a shorter, clean end.
   */
  maxMs?: number;
}

const PAGE = 1000;

function parseLastEventId(header: string | string[] | undefined): number | undefined {
  if (header === undefined) return undefined;
  const text = Array.isArray(header) ? header[0] : header;
  if (!/^\d{1,15}$/.test(text.trim()))
    throw new HttpProblem(400, 'validation_failed', `Last-Event-ID must be an event seq (a whole number); got ${JSON.stringify(text)}`, [
      { field: 'last-event-id', message: 'not a whole number' },
    ]);
  return Number(text.trim());
}

export function registerStreamRoutes(
  app: FastifyInstance,
  root: SqlLedger,
  hub: ChangeHub,
  streams: Set<() => void>,
  opts: StreamOptions = {},
) {
  const recheckMs = opts.recheckMs ?? 5000;
  const heartbeatMs = opts.heartbeatMs ?? 15_000;

  defineRoute(app, root, {
    method: 'GET',
    url: '/v1/runs/:id/events/stream',
    scope: 'read',
    tag: 'events',
    summary: 'Follow a run’s events live (Server-Sent Events); resumes after Last-Event-ID; ends after the terminal status event',
    params: runParams,
    query: streamQuery,
    responses: { 200: 'text/event-stream: `id: <seq>` and `data: <event JSON>` per event', 404: 'no such run' },
    async handler({ params, query, ledger, request, reply }) {
      let cursor = parseLastEventId(request.headers['last-event-id']) ?? query.afterSeq ?? 0;
      // Before any byte is sent: an unknown run is a plain 404 problem.
      await ledger.getRun(params.id);

      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache, no-transform',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
      });
      res.write('retry: 1000\n\n');

      let open = true;
      const sub = hub.subscribe(ledger.namespace, params.id);
      const stop = () => {
        if (!open) return;
        open = false;
        clearInterval(ping);
        sub.close();
        streams.delete(stop);
        res.end();
      };
      streams.add(stop);
      res.on('close', stop);
      const ping = setInterval(() => open && res.write(': ping\n\n'), heartbeatMs);

      const write = async (text: string) => {
        if (!res.write(text) && open) await new Promise<void>((r) => res.once('drain', r).once('close', r));
      };

      try {
        // Wait for LISTEN (bounded: an unreachable database must not hold back what can be sent).
        let readyTimer: NodeJS.Timeout | undefined;
        await Promise.race([sub.ready, new Promise((r) => (readyTimer = setTimeout(r, 2000)))]);
        clearTimeout(readyTimer);
        while (open) {
          sub.clear();
          const page = await ledger.run(params.id).listEvents({ afterSeq: cursor, limit: PAGE });
          let ended = false;
          for (const event of page.events) {
            if (!open) break;
            await write(`id: ${event.seq}\ndata: ${JSON.stringify(event)}\n\n`);
            cursor = event.seq;
            if (isTerminalEvent(event)) {
              ended = true;
              break;
            }
          }
          if (ended) break;
          if (page.events.length === PAGE) continue;
          if (!page.events.length) {
            // Caught up: a finished run has nothing more to say (e.g. resumed after its last event).
            const run = await ledger.getRun(params.id);
            if (isTerminal(run.status) && run.lastSeq <= cursor) break;
          }
          await sub.next(recheckMs);
        }
      } catch (err) {
        // Mid-stream there is no status code to send: log, end; the client resumes with Last-Event-ID.
        if (open) request.log.warn({ err, runId: params.id }, 'event stream ended by an error');
      } finally {
        stop();
      }
    },
  });
}
