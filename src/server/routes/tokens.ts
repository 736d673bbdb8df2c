/**
 * API tokens over HTTP (admin scope), so that `runledger tokens …` works while a server
 * holds the data directory. A token only ever manages its own namespace's tokens; the
 * first admin token of a server that requires tokens is made on the database itself
 * (`runledger tokens create --data-dir …` or `--database-url …`).
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';

import type { SqlLedger } from '../../ledger/ledger.js';
import { defineRoute } from '../route.js';
import { createToken, listTokens, revokeToken, SCOPES } from '../tokens.js';

const tokenInput = z.strictObject({
  scope: z.enum(SCOPES, { error: `scope must be one of ${SCOPES.join(', ')}` }),
  name: z.string().min(1, 'name must be 1–200 characters').max(200, 'name must be 1–200 characters').optional(),
});
const tokenParams = z.strictObject({ id: z.string().max(100, 'id must be a token id (16 hex digits, from GET /v1/tokens)') });

export function registerTokenRoutes(app: FastifyInstance, root: SqlLedger) {
  defineRoute(app, root, {
    method: 'POST',
    url: '/v1/tokens',
    scope: 'admin',
    tag: 'tokens',
    summary: 'Create a token for the namespace: { scope: read | write | admin, name? }. The answer carries the token, shown only here',
    body: tokenInput,
    responses: { 201: '{ id, token, namespace, scope }', 400: 'validation_failed (scope, name)' },
    async handler({ body, ledger, reply }) {
      const created = await createToken(ledger.database, { namespace: ledger.namespace, ...body });
      reply.code(201);
      return created;
    },
  });

  defineRoute(app, root, {
    method: 'GET',
    url: '/v1/tokens',
    scope: 'admin',
    tag: 'tokens',
    summary: 'The namespace’s tokens, newest first (never their secrets)',
    responses: { 200: '{ tokens }' },
    async handler({ ledger }) {
      return { tokens: await listTokens(ledger.database, { namespace: ledger.namespace }) };
    },
  });

  defineRoute(app, root, {
    method: 'DELETE',
    url: '/v1/tokens/:id',
    scope: 'admin',
    tag: 'tokens',
    summary: 'Revoke a token of the namespace: refused from the next request on, and its open streams end',
    params: tokenParams,
    responses: { 200: 'the revoked token', 404: 'not_found' },
    async handler({ params, ledger }) {
      return revokeToken(ledger.database, params.id, { namespace: ledger.namespace });
    },
  });
}
