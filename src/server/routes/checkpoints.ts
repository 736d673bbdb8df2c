/** Checkpoints: written once, whole; the same content again is a no-op, other content a conflict. */
import type { FastifyInstance } from 'fastify';

import type { SqlLedger } from '../../ledger/ledger.js';
import { defineRoute } from '../route.js';
import { anyObjectEnvelope, checkpointBody, checkpointParams, runParams } from '../schemas.js';

export function registerCheckpointRoutes(app: FastifyInstance, root: SqlLedger) {
  defineRoute(app, root, {
    method: 'POST',
    url: '/v1/runs/:id/checkpoints',
    scope: 'write',
    tag: 'checkpoints',
    summary: 'Write a checkpoint (immutable, content-hashed)',
    params: runParams,
    body: checkpointBody,
    bodyEnvelope: anyObjectEnvelope,
    responses: { 201: 'the checkpoint, created', 200: 'the same content was already stored', 409: 'other content under this name' },
    async handler({ params, body, ledger, reply }) {
      const { checkpoint, created } = await ledger.run(params.id).checkpoint(body);
      reply.code(created ? 201 : 200);
      return checkpoint;
    },
  });

  defineRoute(app, root, {
    method: 'GET',
    url: '/v1/runs/:id/checkpoints',
    scope: 'read',
    tag: 'checkpoints',
    summary: 'A run’s checkpoints (without data), in seq order',
    params: runParams,
    responses: { 200: '{ checkpoints }', 404: 'not_found' },
    async handler({ params, ledger }) {
      return { checkpoints: await ledger.run(params.id).listCheckpoints() };
    },
  });

  defineRoute(app, root, {
    method: 'GET',
    url: '/v1/runs/:id/checkpoints/:name',
    scope: 'read',
    tag: 'checkpoints',
    summary: 'One checkpoint, whole (with data)',
    params: checkpointParams,
    responses: { 200: 'the checkpoint', 404: 'not_found' },
    async handler({ params, ledger }) {
      return ledger.run(params.id).getCheckpoint(params.name);
    },
  });
}
