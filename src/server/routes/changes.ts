/**
 * The change feed over HTTP: GET /v1/changes (a page after a cursor) and
 * GET /v1/changes/stream (Server-Sent Events: `id:` is the change's cursor, `data:` the
 * change; resumes after Last-Event-ID; never ends). Between pages the stream sleeps on the
 * ChangeHub's feed subscription; a slow re-check covers wake-ups that cannot reach it
 * (writes by processes that run no server, a transaction outside runledger that held the
 * feed back).
 */
import type { FastifyInstance } from 'fastify';

import { heldBackRetryMs, parseCursor } from '../../core/changes.js';
import type { SqlLedger } from '../../ledger/ledger.js';
import type { ChangeHub } from '../live.js';
import { defineRoute } from '../route.js';
import { changesQuery, changesStreamQuery } from '../schemas.js';
import type { StreamOptions } from './stream.js';

const PAGE = 1000;

export function registerChangeRoutes(
  app: FastifyInstance,
  root: SqlLedger,
  hub: ChangeHub,
  streams: Set<() => void>,
  opts: StreamOptions = {},
) {
  const recheckMs = opts.recheckMs ?? 5000;
  const heartbeatMs = opts.heartbeatMs ?? 15_000;
  const maxMs = opts.maxMs;

  defineRoute(app, root, {
    method: 'GET',
    url: '/v1/changes',
    scope: 'read',
    tag: 'changes',
    summary:
      'The namespace’s change log after a cursor, in feed order: run.finished, run.suspect, subject.changed… Resume with nextAfter; each change is seen once',
    query: changesQuery,
    responses: { 200: '{ changes, nextAfter }', 400: 'validation_failed (after, types, job, limit)' },
    async handler({ query, ledger }) {
      const { namespace: _ns, ...q } = query;
      return ledger.changes(q);
    },
  });

  defineRoute(app, root, {
    method: 'GET',
    url: '/v1/changes/stream',
    scope: 'read',
    tag: 'changes',
    summary:
      'Follow the change log live (Server-Sent Events): `id:` = the change’s cursor, `data:` = the change. Resumes after Last-Event-ID (else `after`; `after=now` for only new changes); never ends',
    query: changesStreamQuery,
    responses: {
      200: 'text/event-stream',
      400: 'validation_failed (Last-Event-ID, after, types, job)',
      410: 'cursor_expired: the cursor is older than the pruned part of the change log',
    },
    async handler({ query, ledger, request, reply }) {
      const header = request.headers['last-event-id'];
      const lastEventId = Array.isArray(header) ? header[0] : header;
      // Before any byte is sent: a malformed cursor is a plain 400 problem.
      let cursor: string | undefined = lastEventId?.trim() || query.after;
      parseCursor(cursor, lastEventId?.trim() ? 'last-event-id' : 'after');
      if (cursor === 'now') cursor = (await ledger.changes({ after: 'now' })).nextAfter;
      // A cursor from before the pruned part of the log: a 410 cursor_expired problem, not a stream.
      else if (cursor !== undefined) await ledger.changes({ after: cursor, limit: 1 });

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
      let lifetime: NodeJS.Timeout | undefined;
      const sub = hub.subscribeFeed(ledger.namespace);
      const stop = () => {
        if (!open) return;
        open = false;
        clearInterval(ping);
        clearTimeout(lifetime);
        sub.close();
        streams.delete(stop);
        res.end();
      };
      streams.add(stop);
      res.on('close', stop);
      const ping = setInterval(() => open && res.write(': ping\n\n'), heartbeatMs);
      if (maxMs !== undefined) lifetime = setTimeout(stop, maxMs);
      const write = async (text: string) => {
        if (!res.write(text) && open) await new Promise<void>((r) => res.once('drain', r).once('close', r));
      };

      try {
        let readyTimer: NodeJS.Timeout | undefined;
        await Promise.race([sub.ready, new Promise((r) => (readyTimer = setTimeout(r, 2000)))]);
        clearTimeout(readyTimer);
        // Started at 'now': the first read sends where that was as an id-only message, so a
        // client that reconnects before any change resumes there, not at a later 'now'.
        let sent = query.after === 'now' && !lastEventId?.trim() ? null : cursor;
        let heldReads = 0;
        while (open) {
          sub.clear();
          const page = await ledger.changes({ after: cursor, types: query.types, job: query.job, limit: PAGE });
          for (const change of page.changes) {
            if (!open) break;
            await write(`id: ${change.cursor}\ndata: ${JSON.stringify(change)}\n\n`);
            sent = cursor = change.cursor;
          }
          if (!open) break;
          cursor = page.nextAfter;
          // Past changes the filters left out: a message with only an id moves Last-Event-ID.
          if (cursor !== sent) {
            await write(`id: ${cursor}\n\n`);
            sent = cursor;
          }
          if (page.changes.length === PAGE) continue;
          heldReads = page.heldBack ? heldReads + 1 : 0;
          await sub.next(page.heldBack ? Math.min(recheckMs, heldBackRetryMs(heldReads)) : recheckMs);
        }
      } catch (err) {
        if (open) request.log.warn({ err }, 'change stream ended by an error');
      } finally {
        stop();
      }
    },
  });
}
