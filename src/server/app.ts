/**
 * buildServer(): the HTTP API (docs/design.md, "Interfaces") over a SqlLedger, as a Fastify instance.
 * Routes live in routes/*.ts, one concept each; this file wires the cross-cutting
 * parts: JSON parsing, validation, authentication, errors (problem+json), metrics,
 * the OpenAPI document and the embedded dashboard.
 */

import Fastify, { type FastifyInstance, LogController } from 'fastify';

import type { ChangeNotice } from '../ledger/context.js';
import type { SqlLedger } from '../ledger/ledger.js';
import { registerAuth } from './auth.js';
import { parseJsonBody } from './json-body.js';
import { frameworkErrorOptions, registerLimits } from './limits.js';
import { ChangeHub } from './live.js';
import { ServerMetrics } from './metrics.js';
import { registerOpenApi } from './openapi.js';
import { problem, PROBLEM_TYPE, toProblem } from './problem.js';
import { type RateLimitOption, resolveRateLimit } from './rate-limit.js';
import { registerAdminRoutes } from './routes/admin.js';
import { registerChangeRoutes } from './routes/changes.js';
import { registerCheckpointRoutes } from './routes/checkpoints.js';
import { registerEventRoutes } from './routes/events.js';
import { registerExpectationRoutes } from './routes/expectations.js';
import { registerOpsRoutes } from './routes/ops.js';
import { registerRetentionRoutes } from './routes/retention.js';
import { registerRunRoutes } from './routes/runs.js';
import { registerStreamRoutes, type StreamOptions } from './routes/stream.js';
import { registerSubjectRoutes } from './routes/subjects.js';
import { registerTokenRoutes } from './routes/tokens.js';
import { registerWebhookRoutes } from './routes/webhooks.js';
import { zodValidatorCompiler } from './schemas.js';
import { serveWeb } from './static.js';
import { endStreamsOfRevokedTokens } from './stream-auth.js';
import type { Scope } from './tokens.js';

export type { RateLimitDecision, RateLimitHook } from './rate-limit.js';

export const DEFAULT_BODY_LIMIT = 10 * 1024 * 1024;
export const DEFAULT_REQUEST_TIMEOUT_MS = 60_000;

/** Who is calling: null when auth is off. */
export interface Identity {
  tokenId: string;
  namespace: string;
  scope: Scope;
}

export interface BuildServerOptions {
  ledger: SqlLedger;
  /** `required`: every /v1 request needs a Bearer token; `off`: everything is allowed. */
  auth: 'required' | 'off';
  /** Fastify/pino logger options (default off). */
  logger?: boolean | object;
  /** Log every request and response (two lines each) when a logger is on (default true; `serve` turns it off unless --log-requests). */
  logRequests?: boolean;
  /** Largest request body in bytes (default 10 MB); larger answers 413. */
  bodyLimit?: number;
  /**
   * Per-token rate limit (rate-limit.ts): settings, a hook, or false. Default: 100/s with
   * bursts of 200 per token when auth is required; none when auth is off.
   */
  rateLimit?: RateLimitOption;
  /** Deepest nesting of arrays/objects in a request body (default 64; limits.ts). */
  jsonDepth?: number;
  /** A built dashboard to serve at `/` (SPA fallback to index.html). */
  webRoot?: string;
  /** Live tail tuning (tests shorten the intervals). */
  stream?: StreamOptions;
  /** Send NOTIFY after writes so streams on other servers wake (PostgreSQL; default true). */
  crossProcessNotify?: boolean;
  /** /readyz: how long `select 1` may take (default 2000 ms). */
  readyTimeoutMs?: number;
  /**
   * Longest time a client may take to send a whole request, headers and body (default
   * 60 000 ms; 0: no limit). A slower one is answered 408 and its connection closed, so
   * trickled bodies cannot hold connections and memory for ever.
   */
  requestTimeoutMs?: number;
  /** Accept webhooks to loopback, private and link-local addresses (default false). */
  allowPrivateWebhooks?: boolean;
}

declare module 'fastify' {
  interface FastifyInstance {
    runledger: { metrics: ServerMetrics; hub: ChangeHub };
  }
  interface FastifyRequest {
    identity: Identity | null;
  }
}

/**
 * Builds the HTTP service (not listening; see startServer).
 * @example
 * const app = await buildServer({ ledger, auth: 'off' });
 * const res = await app.inject({ method: 'POST', url: '/v1/runs', payload: { job: 'nightly' } });
 */
export async function buildServer(opts: BuildServerOptions): Promise<FastifyInstance> {
  const { ledger } = opts;
  const bodyLimit = opts.bodyLimit ?? DEFAULT_BODY_LIMIT;
  const requestTimeout = opts.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  if (!Number.isInteger(requestTimeout) || requestTimeout < 0)
    throw new RangeError(`requestTimeoutMs must be a whole number of ms ≥ 0; got ${JSON.stringify(opts.requestTimeoutMs)}`);
  const app = Fastify({
    logger: opts.logger ?? false,
    logController: new LogController({ disableRequestLogging: opts.logRequests === false }),
    bodyLimit,
    requestTimeout,
    // Node checks request deadlines every connectionsCheckingInterval (30 s by default):
    // check often enough that the limit holds to within a quarter of itself.
    ...(requestTimeout > 0
      ? {
          http: {
            headersTimeout: Math.min(60_000, requestTimeout),
            connectionsCheckingInterval: Math.min(5000, Math.max(50, Math.floor(requestTimeout / 4))),
          },
        }
      : {}),
    // Run ids are up to 128 characters and subjects up to 1024 (URL-encoded: 3 × that).
    routerOptions: { maxParamLength: 8192 },
    ...frameworkErrorOptions(),
  });
  const rateLimit = resolveRateLimit(opts.rateLimit, opts.auth);
  const metrics = new ServerMetrics();
  metrics.watch(ledger.database, () => ledger.now());
  const hub = new ChangeHub(ledger, app.log, { crossProcess: opts.crossProcessNotify });
  const streams = new Set<() => void>();
  app.decorate('runledger', { metrics, hub });
  app.decorateRequest('identity', null);
  const countChange = (n: ChangeNotice) => metrics.change(n);
  ledger.notices.on('change', countChange);

  // Step 1: bodies. Only JSON; an empty body is an absent one (so `POST …/start` needs none).
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body, done) => {
    try {
      done(null, parseJsonBody(body as Buffer, request.headers['content-type']));
    } catch (err) {
      done(err as Error);
    }
  });
  app.removeContentTypeParser('text/plain');

  // Step 2: validation with the zod schemas; the OpenAPI document from the same schemas.
  app.setValidatorCompiler(zodValidatorCompiler);
  await registerOpenApi(app);

  // Step 3: every /v1 route declares the scope it needs.
  app.addHook('onRoute', (route) => {
    if (route.url.startsWith('/v1') && !route.config?.scope) throw new Error(`route ${route.method} ${route.url} declares no scope`);
  });

  // Step 4: authentication, scope, namespace binding, rate limit — before the body is read.
  registerAuth(app, ledger, { auth: opts.auth, rateLimit });

  if (opts.auth === 'required') endStreamsOfRevokedTokens(app, ledger.database, { everyMs: opts.stream?.recheckMs ?? 5000 });

  // Callback-style hooks (not async): they run on every request, and skip a promise each.
  app.addHook('onResponse', (request, reply, done) => {
    metrics.request(request.method, request.routeOptions.url ?? 'unmatched', reply.statusCode, reply.elapsedTime / 1000);
    done();
  });

  // Step 5: one error handler for everything.
  app.setErrorHandler((err, request, reply) => {
    const { problem: p, internal } = toProblem(err, { bodyLimit, contentType: request.headers['content-type'] });
    if (internal) request.log.error({ err }, 'request failed');
    reply.code(p.status).type(PROBLEM_TYPE).send(p);
  });
  app.setNotFoundHandler(async (request, reply) => {
    if (opts.webRoot && (await serveWeb.fallback(request, reply))) return reply;
    reply.code(404).type(PROBLEM_TYPE);
    return problem(404, 'not_found', `no route ${request.method} ${request.url.split('?')[0]}; see /docs for the API`);
  });

  // Step 6: routes, behind the limits that run before validation.
  registerLimits(app, { jsonDepth: opts.jsonDepth });
  registerRunRoutes(app, ledger, metrics);
  registerEventRoutes(app, ledger, metrics);
  registerStreamRoutes(app, ledger, hub, streams, opts.stream);
  registerChangeRoutes(app, ledger, hub, streams, opts.stream);
  registerCheckpointRoutes(app, ledger);
  registerSubjectRoutes(app, ledger);
  registerExpectationRoutes(app, ledger);
  registerRetentionRoutes(app, ledger);
  registerAdminRoutes(app, ledger, metrics);
  registerWebhookRoutes(app, ledger, { allowPrivateTargets: opts.allowPrivateWebhooks });
  registerTokenRoutes(app, ledger);
  registerOpsRoutes(app, ledger, metrics, { readyTimeoutMs: opts.readyTimeoutMs ?? 2000 });
  if (opts.webRoot) await serveWeb.register(app, opts.webRoot);

  // Graceful close: live streams never finish on their own, so end them; requests still
  // in flight finish, and their connections close after the response instead of idling
  // on keep-alive (which would hold close() open).
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
    for (const stop of [...streams]) stop();
  });
  app.addHook('onSend', (_request, reply, payload, done) => {
    if (closing) reply.header('connection', 'close');
    done(null, payload);
  });
  app.addHook('onClose', async () => {
    ledger.notices.off('change', countChange);
    await hub.close();
  });
  return app;
}
