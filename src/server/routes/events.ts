/** Events: batched append with idempotency keys, and paged reads. */
import type { FastifyInstance } from 'fastify';

import type { SqlLedger } from '../../ledger/ledger.js';
import type { ServerMetrics } from '../metrics.js';
import { defineRoute } from '../route.js';
import { appendEventsBody, appendEventsEnvelope, listEventsQuery, runParams } from '../schemas.js';

export function registerEventRoutes(app: FastifyInstance, root: SqlLedger, metrics: ServerMetrics) {
  defineRoute(app, root, {
    method: 'POST',
    url: '/v1/runs/:id/events',
    scope: 'write',
    tag: 'events',
    summary: 'Append up to 1000 events in one transaction; a repeated key returns its original seq',
    params: runParams,
    body: appendEventsBody,
    bodyEnvelope: appendEventsEnvelope,
    responses: { 200: '{ results: [{ seq, key?, duplicate }] }', 409: 'key_conflict or run_finished' },
    async handler({ params, body, ledger }) {
      const results = await ledger.run(params.id).events(body.events as never);
      metrics.eventsAdded(results.filter((r) => !r.duplicate).length);
      return { results };
    },
  });

  defineRoute(app, root, {
    method: 'GET',
    url: '/v1/runs/:id/events',
    scope: 'read',
    tag: 'events',
    summary: 'A page of a run’s events in seq order',
    params: runParams,
    query: listEventsQuery,
    responses: { 200: '{ events, nextAfterSeq }', 404: 'not_found' },
    async handler({ params, query, ledger }) {
      const { namespace: _ns, ...opts } = query;
      return ledger.run(params.id).listEvents(opts);
    },
  });
}
