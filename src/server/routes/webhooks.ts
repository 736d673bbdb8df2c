/**
 * Webhooks: subscriptions (admin scope to change, read scope to look), their delivery log
 * and replay. The dispatcher that sends them is ../webhooks.ts.
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';

import { NotFoundError, ValidationError } from '../../core/errors.js';
import { deliveryQuerySchema, replayInputSchema, webhookInputSchema } from '../../core/webhooks.js';
import type { SqlLedger } from '../../ledger/ledger.js';
import { defineRoute } from '../route.js';
import { nsQuery } from '../schemas.js';
import { privateAddressesOf } from '../webhook-targets.js';

const webhookParams = z.strictObject({ id: z.string().max(100, 'id must be a webhook id') });
const deliveriesQuery = deliveryQuerySchema.extend(nsQuery.shape);

export interface WebhookRouteOptions {
  /** Accept targets in loopback, private and link-local ranges (`serve --allow-private-webhooks`). */
  allowPrivateTargets?: boolean;
}

export function registerWebhookRoutes(app: FastifyInstance, root: SqlLedger, opts: WebhookRouteOptions = {}) {
  defineRoute(app, root, {
    method: 'POST',
    url: '/v1/webhooks',
    scope: 'admin',
    tag: 'webhooks',
    summary:
      'Subscribe a URL to change types: { url, types, job?, description? }. The answer carries the signing secret (whsec_…), shown only here',
    body: webhookInputSchema,
    responses: {
      201: 'the webhook with its secret',
      400: 'validation_failed (url, types, job, description; a private or loopback target without --allow-private-webhooks)',
    },
    async handler({ body, ledger, reply }) {
      if (!opts.allowPrivateTargets) await refusePrivateTarget(body.url);
      const created = await ledger.createWebhook(body);
      reply.code(201);
      return created;
    },
  });

  defineRoute(app, root, {
    method: 'GET',
    url: '/v1/webhooks',
    scope: 'read',
    tag: 'webhooks',
    summary: 'The namespace’s webhooks with their pending and failed delivery counts (never the secret)',
    responses: { 200: '{ webhooks }' },
    async handler({ ledger }) {
      return { webhooks: await ledger.listWebhooks() };
    },
  });

  defineRoute(app, root, {
    method: 'GET',
    url: '/v1/webhooks/:id',
    scope: 'read',
    tag: 'webhooks',
    summary: 'One webhook',
    params: webhookParams,
    responses: { 200: 'the webhook', 404: 'not_found' },
    async handler({ params, ledger }) {
      return ledger.getWebhook(params.id);
    },
  });

  defineRoute(app, root, {
    method: 'DELETE',
    url: '/v1/webhooks/:id',
    scope: 'admin',
    tag: 'webhooks',
    summary: 'Remove a webhook with its deliveries and their log',
    params: webhookParams,
    responses: { 204: 'removed', 404: 'not_found' },
    async handler({ params, ledger, reply }) {
      if (!(await ledger.deleteWebhook(params.id))) throw new NotFoundError(`no webhook ${params.id} in namespace ${ledger.namespace}`);
      reply.code(204);
      return '';
    },
  });

  defineRoute(app, root, {
    method: 'GET',
    url: '/v1/webhooks/:id/deliveries',
    scope: 'read',
    tag: 'webhooks',
    summary: 'A webhook’s deliveries, newest first, each with every attempt (time, status code or error, duration)',
    params: webhookParams,
    query: deliveriesQuery,
    responses: { 200: '{ deliveries }', 404: 'not_found' },
    async handler({ params, query, ledger }) {
      const { namespace: _ns, ...q } = query;
      return { deliveries: await ledger.listWebhookDeliveries(params.id, q) };
    },
  });

  defineRoute(app, root, {
    method: 'POST',
    url: '/v1/webhooks/:id/replay',
    scope: 'admin',
    tag: 'webhooks',
    summary: 'Deliver again every matching change after a cursor ({ after }; 0 for the start) and enable the webhook if it was disabled',
    params: webhookParams,
    body: replayInputSchema,
    responses: { 200: '{ queued }', 400: 'validation_failed (after)', 404: 'not_found' },
    async handler({ params, body, ledger }) {
      return ledger.replayWebhook(params.id, body);
    },
  });
}

/**
 * Refuses a URL whose host resolves to a private address. A name that does not resolve now
 * (or not within 2 s) is accepted — DNS may be down, or the name not yet published: every
 * delivery checks the address it dials again.
 */
async function refusePrivateTarget(url: string): Promise<void> {
  const host = new URL(url).hostname;
  // Bounded: a slow resolver must not hold the request (the dial-time check still applies).
  let timer: NodeJS.Timeout | undefined;
  const bad = await Promise.race([
    privateAddressesOf(host).catch(() => [] as string[]),
    new Promise<string[]>((resolve) => (timer = setTimeout(() => resolve([]), 2000))),
  ]).finally(() => clearTimeout(timer));
  if (bad.length)
    throw new ValidationError(
      `url ${url} reaches ${bad.join(', ')}: private, loopback and link-local addresses are refused unless the server runs with --allow-private-webhooks`,
      [{ field: 'url', message: 'private address', addresses: bad }],
    );
}
