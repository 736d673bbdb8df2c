/** Imports, verification, statistics and the reaper. */
import type { FastifyInstance } from 'fastify';

import type { SqlLedger } from '../../ledger/ledger.js';
import type { ServerMetrics } from '../metrics.js';
import { defineRoute } from '../route.js';
import { importBody, runParams, statsQuery } from '../schemas.js';

export function registerAdminRoutes(app: FastifyInstance, root: SqlLedger, metrics: ServerMetrics) {
  defineRoute(app, root, {
    method: 'POST',
    url: '/v1/imports',
    scope: 'write',
    tag: 'imports',
    summary: 'Import a batch (≤ 1000) of historical runs, idempotent on (source, sourceId); per-item results',
    body: importBody,
    responses: {
      200: '{ results, inserted, duplicates, skippedCutover, invalid }',
      400: 'validation_failed (source, options, batch size)',
    },
    async handler({ body, ledger }) {
      const { source, runs, ...opts } = body;
      return ledger.importRuns(source, runs, opts);
    },
  });

  defineRoute(app, root, {
    method: 'GET',
    url: '/v1/runs/:id/verify',
    scope: 'read',
    tag: 'verify',
    summary: 'Recompute a run’s hash chain and checkpoint hashes',
    params: runParams,
    responses: { 200: '{ ok, problems, runsChecked, eventsChecked }', 404: 'not_found' },
    async handler({ params, ledger }) {
      return ledger.verify(params.id);
    },
  });

  defineRoute(app, root, {
    method: 'GET',
    url: '/v1/verify',
    scope: 'read',
    tag: 'verify',
    summary: 'Recompute every hash chain and checkpoint hash in the namespace',
    responses: { 200: '{ ok, problems, runsChecked, eventsChecked }' },
    async handler({ ledger }) {
      return ledger.verify();
    },
  });

  defineRoute(app, root, {
    method: 'GET',
    url: '/v1/stats',
    scope: 'read',
    tag: 'stats',
    summary: 'Counts by status and duration percentiles per time bucket',
    query: statsQuery,
    responses: { 200: '{ bucket, from, to, buckets, jobs }' },
    async handler({ query, ledger }) {
      const { namespace: _ns, ...q } = query;
      return ledger.stats(q);
    },
  });

  defineRoute(app, root, {
    method: 'POST',
    url: '/v1/reap',
    scope: 'admin',
    tag: 'operations',
    summary: 'Run the reaper once now (acts on every namespace; one reaper at a time)',
    responses: { 200: '{ acquired, suspected, timedOut }' },
    async handler({ ledger }) {
      const result = await ledger.reap();
      metrics.reaped(result);
      return result;
    },
  });
}
