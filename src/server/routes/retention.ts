/** Retention rules, pruning, export (NDJSON stream) and restore of an export. */
import { Readable } from 'node:stream';

import type { FastifyInstance } from 'fastify';
import { z } from 'zod';

import { exportQuerySchema, namespaceSchema, pruneOptionsSchema, retentionRulesSchema } from '../../core/validation.js';
import type { SqlLedger } from '../../ledger/ledger.js';
import { EXPORT_FORMAT } from '../../ledger/retention.js';
import { defineRoute } from '../route.js';

const retentionBody = z.strictObject({ rules: retentionRulesSchema });
const restoreBody = z.strictObject({
  runs: z.array(z.unknown(), { error: 'runs must be an array of exported runs' }).meta({
    description: 'lines of an export ({ run, events, checkpoints }); each is checked and reported on its own',
    maxItems: 1000,
  }),
});
const exportQuery = exportQuerySchema
  .omit({ limit: true })
  .extend({
    limit: z
      .number({ error: 'limit must be a whole number of runs, at least 1' })
      .int('limit must be a whole number of runs, at least 1')
      .min(1, 'limit must be a whole number of runs, at least 1')
      .optional()
      .meta({ description: 'stop after this many runs (the last line then carries nextAfter); default: every run' }),
  })
  .extend({ namespace: namespaceSchema.optional() });

/** Runs read from the ledger per page while streaming an export. */
const STREAM_PAGE = 1000;

export function registerRetentionRoutes(app: FastifyInstance, root: SqlLedger) {
  defineRoute(app, root, {
    method: 'PUT',
    url: '/v1/retention',
    scope: 'admin',
    tag: 'retention',
    summary: 'Replace the namespace’s retention rules: { rules: [{ job?, keepDays, keepLastPerSubject? }] }',
    body: retentionBody,
    responses: { 200: '{ rules }', 400: 'validation_failed (keepDays, keepLastPerSubject, a job with two rules)' },
    async handler({ body, ledger }) {
      return ledger.setRetention(body.rules);
    },
  });

  defineRoute(app, root, {
    method: 'GET',
    url: '/v1/retention',
    scope: 'read',
    tag: 'retention',
    summary: 'The namespace’s retention rules',
    responses: { 200: '{ rules }' },
    async handler({ ledger }) {
      return ledger.getRetention();
    },
  });

  defineRoute(app, root, {
    method: 'POST',
    url: '/v1/prune',
    scope: 'admin',
    tag: 'retention',
    summary: 'Prune one chunk (one transaction) under the rules: { dryRun?, limit?, ids? }; repeat while more',
    body: pruneOptionsSchema,
    responses: { 200: '{ runs, pruned, events, checkpoints, eligible?, more }' },
    async handler({ body, ledger }) {
      return ledger.prune(body);
    },
  });

  defineRoute(app, root, {
    method: 'GET',
    url: '/v1/export',
    scope: 'read',
    tag: 'retention',
    summary: 'Whole runs as NDJSON: a header line, one { run, events, checkpoints } line per run, and an end line { end, runs, nextAfter }',
    query: exportQuery,
    responses: { 200: 'application/x-ndjson' },
    async handler({ query, ledger, reply }) {
      const { namespace: _ns, limit, ...q } = query;
      // Validate the cursor before the 200 is sent: a bad one is a 400, not a broken stream.
      const first = await ledger.exportLines({ ...q, limit: Math.min(limit ?? STREAM_PAGE, STREAM_PAGE) });
      async function* lines() {
        yield (
          JSON.stringify({ format: EXPORT_FORMAT, version: 1, namespace: ledger.namespace, exportedAt: ledger.now().toISOString() }) + '\n'
        );
        let page = first;
        let n = 0;
        for (;;) {
          // One line per run. The next page is read while this one is sent: two pages in memory at most.
          const sent = n + page.lines.length;
          const next =
            page.nextAfter && (limit === undefined || sent < limit)
              ? ledger.exportLines({ ...q, after: page.nextAfter, limit: Math.min(STREAM_PAGE, (limit ?? Infinity) - sent) })
              : null;
          next?.catch(() => {});
          if (page.lines.length) yield page.lines.join('\n') + '\n';
          n = sent;
          if (!next) break;
          page = await next;
        }
        yield JSON.stringify({ end: true, runs: n, nextAfter: page.nextAfter }) + '\n';
      }
      reply.type('application/x-ndjson; charset=utf-8');
      return reply.send(Readable.from(lines(), { objectMode: false }));
    },
  });

  defineRoute(app, root, {
    method: 'POST',
    url: '/v1/restore',
    scope: 'admin',
    tag: 'retention',
    summary: 'Restore exported runs exactly (same ids, seqs, hashes), over a tombstone only when the chain ends in its hash',
    body: restoreBody,
    responses: { 200: '{ results, restored, duplicates, invalid }', 400: 'validation_failed (batch size)' },
    async handler({ body, ledger }) {
      return ledger.restoreRuns(body.runs);
    },
  });
}
