/**
 * Who may call what, before the body is read: the bearer token (known, not revoked), its
 * scope against the route's, its namespace against the request's, then the rate limit.
 * Tokens themselves are kept in tokens.ts.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';

import type { SqlLedger } from '../ledger/ledger.js';
import { HttpProblem } from './problem.js';
import type { RateLimitHook } from './rate-limit.js';
import { authenticate, bearerToken, scopeAllows } from './tokens.js';

export function registerAuth(
  app: FastifyInstance,
  ledger: SqlLedger,
  opts: { auth: 'required' | 'off'; rateLimit: RateLimitHook | null | undefined },
): void {
  const { rateLimit } = opts;
  // With auth off and no rate limit there is nothing to check: no hook on the hot path.
  if (opts.auth === 'required' || rateLimit)
    app.addHook('onRequest', async (request: FastifyRequest, reply) => {
      const need = request.routeOptions.config?.scope;
      if (!need || need === 'public') return;
      const raw = (request.query as { namespace?: unknown }).namespace;
      const namespace = typeof raw === 'string' ? raw : 'default';
      if (opts.auth === 'required') {
        const header = request.headers.authorization;
        const token = bearerToken(header);
        if (!token) {
          reply.header('www-authenticate', 'Bearer realm="runledger"');
          throw new HttpProblem(
            401,
            'unauthorized',
            header ? 'the Authorization header must be "Bearer <token>"' : 'this request needs an Authorization: Bearer <token> header',
          );
        }
        const who = await authenticate(ledger.database, token);
        if (!who) {
          reply.header('www-authenticate', 'Bearer realm="runledger", error="invalid_token"');
          throw new HttpProblem(401, 'unauthorized', 'the token is unknown or revoked');
        }
        if (!scopeAllows(who.scope, need))
          throw new HttpProblem(
            403,
            'forbidden',
            `this token has scope ${who.scope}; ${request.method} ${request.routeOptions.url} needs ${need}`,
            [{ field: 'scope', message: `needs ${need}`, have: who.scope, need }],
          );
        const requested = raw === undefined ? 'default' : raw;
        if (requested !== who.namespace)
          throw new HttpProblem(
            403,
            'forbidden',
            `this token is bound to namespace ${who.namespace}; the request is for namespace ${typeof requested === 'string' ? requested : JSON.stringify(requested)}`,
            [{ field: 'namespace', message: `must be ${who.namespace}` }],
          );
        request.identity = { tokenId: who.id, namespace: who.namespace, scope: who.scope };
      }
      if (rateLimit) {
        const decision = await rateLimit({
          tokenId: request.identity?.tokenId ?? null,
          namespace,
          ip: request.ip,
          scope: need,
        });
        if (!decision.allowed) {
          if (decision.retryAfterS !== undefined) reply.header('retry-after', String(Math.ceil(decision.retryAfterS)));
          throw new HttpProblem(429, 'rate_limited', 'too many requests; slow down and retry later');
        }
      }
    });
}
