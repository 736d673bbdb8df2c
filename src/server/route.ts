/**
 * `defineRoute`: one declaration per endpoint — method, path, required scope, zod
 * schemas and handler. The schemas validate (see schemas.ts) and document the route;
 * the handler receives the parsed values and the ledger for the request's namespace.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { z } from 'zod';

import type { SqlLedger } from '../ledger/ledger.js';
import { nsQuery, zodValidatorCompiler } from './schemas.js';
import type { Scope } from './tokens.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Least token scope the route needs; `public` routes need no token. */
    scope?: Scope | 'public';
    /** Response descriptions for the OpenAPI document, by status. */
    responses?: Record<number, string>;
  }
}

type Out<S> = S extends z.ZodType ? z.output<S> : undefined;

export interface RouteContext<P, Q, B> {
  params: Out<P>;
  query: Out<Q>;
  body: Out<B>;
  /** The ledger addressing the request's namespace. */
  ledger: SqlLedger;
  request: FastifyRequest;
  reply: FastifyReply;
}

export interface RouteSpec<P extends z.ZodType | undefined, Q extends z.ZodType, B extends z.ZodType | undefined> {
  method: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE';
  url: string;
  scope: Scope;
  summary: string;
  tag: string;
  params?: P;
  /** Query schema; must include `namespace`. Defaults to `{ namespace? }`. */
  query?: Q;
  body?: B;
  /**
   * Set when the handler passes the body to a ledger method that validates it with the
   * `body` schema itself (same messages): the server then enforces only this envelope —
   * e.g. "a JSON object", or `{ events }` — instead of validating every field twice.
   * `body` still documents the route.
   */
  bodyEnvelope?: z.ZodType;
  responses: Record<number, string>;
  handler(ctx: RouteContext<P, Q, B>): Promise<unknown>;
}

export function defineRoute<
  P extends z.ZodType | undefined,
  Q extends z.ZodType = typeof nsQuery,
  B extends z.ZodType | undefined = undefined,
>(app: FastifyInstance, root: SqlLedger, spec: RouteSpec<P, Q, B>): void {
  const query = spec.query ?? nsQuery;
  app.route({
    method: spec.method,
    url: spec.url,
    config: { scope: spec.scope, responses: spec.responses },
    schema: {
      summary: spec.summary,
      tags: [spec.tag],
      querystring: query,
      ...(spec.params ? { params: spec.params } : {}),
      ...(spec.body ? { body: spec.body } : {}),
    },
    ...(spec.bodyEnvelope
      ? {
          validatorCompiler: (req: { schema: unknown; httpPart?: string }) =>
            zodValidatorCompiler(req.httpPart === 'body' ? { ...req, schema: spec.bodyEnvelope } : req),
        }
      : {}),
    handler: async (request, reply) => {
      const q = request.query as { namespace?: string };
      const ledger = q.namespace && q.namespace !== root.namespace ? root.inNamespace(q.namespace) : root;
      return spec.handler({
        params: request.params as Out<P>,
        query: request.query as Out<Q>,
        body: request.body as Out<B>,
        ledger,
        request,
        reply,
      });
    },
  });
}
