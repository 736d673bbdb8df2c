/** Expectations: how often each job (or each of its subjects) is expected to run. */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';

import { NotFoundError } from '../../core/errors.js';
import { expectationInputSchema, LIMITS } from '../../core/validation.js';
import type { SqlLedger } from '../../ledger/ledger.js';
import { defineRoute } from '../route.js';

const jobParams = z.strictObject({
  job: z
    .string()
    .min(1, `job must be 1–${LIMITS.nameLength} characters`)
    .max(LIMITS.nameLength, `job must be 1–${LIMITS.nameLength} characters`),
});

export function registerExpectationRoutes(app: FastifyInstance, root: SqlLedger) {
  defineRoute(app, root, {
    method: 'PUT',
    url: '/v1/expectations/:job',
    scope: 'admin',
    tag: 'expectations',
    summary: 'Set the expectation of a job: { every | cron (+ timezone), grace, perSubject? }',
    params: jobParams,
    body: expectationInputSchema,
    responses: { 200: 'the expectation', 400: 'validation_failed (bad duration, cron expression or time zone)' },
    async handler({ params, body, ledger }) {
      return ledger.setExpectation(params.job, body);
    },
  });

  defineRoute(app, root, {
    method: 'GET',
    url: '/v1/expectations',
    scope: 'read',
    tag: 'expectations',
    summary: 'Every expectation of the namespace',
    responses: { 200: '{ expectations }' },
    async handler({ ledger }) {
      return { expectations: await ledger.listExpectations() };
    },
  });

  defineRoute(app, root, {
    method: 'DELETE',
    url: '/v1/expectations/:job',
    scope: 'admin',
    tag: 'expectations',
    summary: 'Remove the expectation of a job; its subjects are no longer due',
    params: jobParams,
    responses: { 204: 'removed', 404: 'not_found' },
    async handler({ params, ledger, reply }) {
      if (!(await ledger.deleteExpectation(params.job)))
        throw new NotFoundError(`job ${params.job} has no expectation in namespace ${ledger.namespace}`);
      reply.code(204);
      return '';
    },
  });
}
