/** Runs: create, read, list, update (If-Match) and the status transitions. */
import type { FastifyInstance, FastifyReply } from 'fastify';

import type { Run } from '../../core/types.js';
import type { SqlLedger } from '../../ledger/ledger.js';
import type { ServerMetrics } from '../metrics.js';
import { HttpProblem } from '../problem.js';
import { defineRoute } from '../route.js';
import {
  anyObjectEnvelope,
  cancelBody,
  completeBody,
  failBody,
  heartbeatBody,
  listRunsQuery,
  retryBody,
  runParams,
  startRunBody,
  updateRunBody,
} from '../schemas.js';

const etagOf = (run: Run) => `"${run.version}"`;

function withEtag(reply: FastifyReply, run: Run): Run {
  reply.header('etag', etagOf(run));
  return run;
}

/** `If-Match: "3"` (or `W/"3"`, `3`, `*`) → the version to compare-and-set against. */
export function parseIfMatch(header: string | undefined): number | undefined {
  if (header === undefined || header.trim() === '*') return undefined;
  const m = /^\s*(?:W\/)?"?(\d{1,15})"?\s*$/.exec(header);
  if (!m || Number(m[1]) < 1)
    throw new HttpProblem(400, 'validation_failed', `If-Match must be a run's ETag such as "3"; got ${JSON.stringify(header)}`, [
      { field: 'if-match', message: 'not an ETag of this API' },
    ]);
  return Number(m[1]);
}

export function registerRunRoutes(app: FastifyInstance, root: SqlLedger, metrics: ServerMetrics) {
  defineRoute(app, root, {
    method: 'POST',
    url: '/v1/runs',
    scope: 'write',
    tag: 'runs',
    summary: 'Create (and by default start) a run; idempotent on id',
    body: startRunBody,
    bodyEnvelope: anyObjectEnvelope,
    responses: { 201: 'created', 200: 'an identical run with this id already existed', 409: 'id_conflict' },
    async handler({ body, ledger, reply }) {
      const started = await ledger.startRun(body);
      if (started.created) metrics.runCreated(started.run.status);
      reply.code(started.created ? 201 : 200).header('location', `/v1/runs/${encodeURIComponent(started.id)}`);
      return withEtag(reply, started.run);
    },
  });

  defineRoute(app, root, {
    method: 'GET',
    url: '/v1/runs',
    scope: 'read',
    tag: 'runs',
    summary: 'List runs, newest first, with keyset paging',
    query: listRunsQuery,
    responses: { 200: '{ runs, nextCursor }' },
    async handler({ query, ledger }) {
      const { namespace: _ns, ...filter } = query;
      return ledger.listRuns(filter);
    },
  });

  defineRoute(app, root, {
    method: 'GET',
    url: '/v1/runs/:id',
    scope: 'read',
    tag: 'runs',
    summary: 'One run; ETag = version',
    params: runParams,
    responses: { 200: 'the run', 304: 'not modified (If-None-Match)', 404: 'not_found' },
    async handler({ params, ledger, request, reply }) {
      const run = await ledger.getRun(params.id);
      const inm = request.headers['if-none-match'];
      if (inm && inm.split(',').some((t) => t.trim().replace(/^W\//, '') === etagOf(run))) {
        reply.code(304).header('etag', etagOf(run));
        return '';
      }
      return withEtag(reply, run);
    },
  });

  defineRoute(app, root, {
    method: 'PATCH',
    url: '/v1/runs/:id',
    scope: 'write',
    tag: 'runs',
    summary: 'Merge tags, set notes, add external ids; If-Match makes it compare-and-set',
    params: runParams,
    body: updateRunBody,
    responses: { 200: 'the run', 409: 'version_mismatch or key_conflict' },
    async handler({ params, body, ledger, request, reply }) {
      const ifVersion = parseIfMatch(request.headers['if-match']);
      const run = await ledger.run(params.id).update({ ...body, ...(ifVersion !== undefined ? { ifVersion } : {}) });
      return withEtag(reply, run);
    },
  });

  // [action, summary, body, envelope]: heartbeat's { progress } is the server's own schema;
  // the finishes are the library's, which it validates itself.
  const transitions = [
    ['start', 'Start a run: submitted → running, retrying → running', undefined, undefined],
    ['heartbeat', 'Renew the lease; optional { progress }', heartbeatBody, undefined],
    ['complete', 'Complete a run: { output?, statistics?, notes? }', completeBody, anyObjectEnvelope],
    ['fail', 'Fail a run: { error: { type?, message, details? }, statistics?, notes? }', failBody, anyObjectEnvelope],
    ['cancel', 'Cancel a run: { reason? }', cancelBody, anyObjectEnvelope],
    ['retry', 'running → retrying: { error? }', retryBody, anyObjectEnvelope],
  ] as const;
  for (const [action, summary, body, bodyEnvelope] of transitions) {
    defineRoute(app, root, {
      method: 'POST',
      url: `/v1/runs/:id/${action}`,
      scope: 'write',
      tag: 'runs',
      summary,
      params: runParams,
      body,
      ...(bodyEnvelope ? { bodyEnvelope } : {}),
      responses: { 200: 'the run', 404: 'not_found', 409: 'invalid_transition or run_finished' },
      async handler({ params, body, ledger, reply }) {
        const run = ledger.run(params.id);
        const input = (body ?? {}) as never;
        let result: Run;
        switch (action) {
          case 'start':
            result = await run.start();
            break;
          case 'heartbeat':
            result = await run.heartbeat((input as { progress?: never }).progress);
            break;
          default:
            result = await run[action](input);
        }
        return withEtag(reply, result);
      },
    });
  }
}
