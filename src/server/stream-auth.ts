/**
 * Revocation reaches open streams too (a run's events, the change feed). A token is checked when a request starts;
 * an SSE stream may then stay open for hours. So while a stream is open its token is
 * checked again every `everyMs` (no cache: one indexed lookup), and the stream is ended
 * as soon as the token is revoked. The client's reconnect then gets 401.
 */
import type { FastifyInstance } from 'fastify';

import type { Database } from '../store/database.js';
import { authenticate, bearerToken } from './tokens.js';

// Every long-lived stream: a run's events and the change feed.
const STREAM_ROUTE = /\/stream$/;

export function endStreamsOfRevokedTokens(app: FastifyInstance, db: Database, opts: { everyMs: number }): void {
  // Registered after the authentication hook: request.identity is set when this runs.
  app.addHook('onRequest', async (request, reply) => {
    if (!request.identity || !STREAM_ROUTE.test(request.routeOptions.url ?? '')) return;
    const token = bearerToken(request.headers.authorization);
    if (!token) return;
    const res = reply.raw;
    const timer = setInterval(() => {
      authenticate(db, token)
        .then((who) => {
          if (who || res.writableEnded) return;
          request.log.info({ tokenId: request.identity?.tokenId }, 'event stream ended: its token was revoked');
          if (res.headersSent) res.end();
          else res.destroy();
        })
        // The database is away: keep the stream; the next check decides.
        .catch(() => {});
    }, opts.everyMs);
    timer.unref();
    res.once('close', () => clearInterval(timer));
  });
}
