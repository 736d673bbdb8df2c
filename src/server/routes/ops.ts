/** Operations endpoints: liveness, readiness, Prometheus metrics, the OpenAPI document. */
import type { FastifyInstance } from 'fastify';

import { VERSION } from '../../core/version.js';
import type { SqlLedger } from '../../ledger/ledger.js';
import type { ServerMetrics } from '../metrics.js';
import { problem, PROBLEM_TYPE } from '../problem.js';

const ops = { scope: 'public' as const };

export function registerOpsRoutes(app: FastifyInstance, root: SqlLedger, metrics: ServerMetrics, opts: { readyTimeoutMs: number }) {
  app.get('/healthz', { config: ops, schema: { hide: true } }, async () => ({ status: 'ok', version: VERSION }));

  // Ready means the database answers: `select 1` within a short timeout.
  app.get('/readyz', { config: ops, schema: { hide: true } }, async (request, reply) => {
    // Not ready for writes: the embedded store's disk is below its reserve (the reason is the answer).
    const refusal = root.database.writeRefusal?.();
    if (refusal) {
      reply.code(503).type(PROBLEM_TYPE);
      return problem(503, refusal.code, refusal.message);
    }
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        root.database.query('select 1'),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer within ${opts.readyTimeoutMs} ms`)), opts.readyTimeoutMs);
        }),
      ]);
      return { status: 'ready' };
    } catch (err) {
      request.log.warn({ err }, 'readyz: database unreachable');
      reply.code(503).type(PROBLEM_TYPE);
      return problem(503, 'unavailable', 'the database is unreachable (select 1 failed or timed out)');
    } finally {
      clearTimeout(timer);
    }
  });

  app.get('/metrics', { config: ops, schema: { hide: true } }, async (_request, reply) => {
    reply.type(metrics.registry.contentType);
    return metrics.registry.metrics();
  });

  app.get('/openapi.json', { config: ops, schema: { hide: true } }, async () => app.swagger());
}
