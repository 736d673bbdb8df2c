/** Current status per (job, subject). */
import type { FastifyInstance } from 'fastify';

import type { SqlLedger } from '../../ledger/ledger.js';
import { defineRoute } from '../route.js';
import { listSubjectsQuery, subjectParams } from '../schemas.js';

export function registerSubjectRoutes(app: FastifyInstance, root: SqlLedger) {
  defineRoute(app, root, {
    method: 'GET',
    url: '/v1/subjects',
    scope: 'read',
    tag: 'subjects',
    summary: 'Current status per subject',
    query: listSubjectsQuery,
    responses: { 200: '{ subjects, nextCursor }' },
    async handler({ query, ledger }) {
      const { namespace: _ns, ...filter } = query;
      return ledger.listSubjects(filter);
    },
  });

  defineRoute(app, root, {
    method: 'GET',
    url: '/v1/subjects/:job/:subject',
    scope: 'read',
    tag: 'subjects',
    summary: 'A subject’s current status and recent runs (path segments URL-encoded)',
    params: subjectParams,
    responses: { 200: 'the subject status with recentRuns', 404: 'not_found' },
    async handler({ params, ledger }) {
      return ledger.getSubject(params.job, params.subject);
    },
  });
}
