/**
 * Every /v1 endpoint with a valid request for it, for the fuzz and the auth tests. The
 * tests compare this list with the OpenAPI document, so a new endpoint fails them until
 * it is listed here (and thereby fuzzed and checked for namespace isolation).
 */
import type { FastifyInstance } from 'fastify';

export interface Endpoint {
  method: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE';
  /** OpenAPI form, e.g. /v1/runs/{id}/events. */
  path: string;
  scope: 'read' | 'write' | 'admin';
  /** A valid body (a fresh value each call: keys must not collide between calls). */
  body?: (n: number) => Record<string, unknown>;
  /** Query parameters the endpoint takes (besides namespace). */
  query?: string[];
}

export const ENDPOINTS: Endpoint[] = [
  { method: 'POST', path: '/v1/runs', scope: 'write', body: (n) => ({ id: `fz-${n}`, job: 'fuzz', subject: `s${n}` }) },
  {
    method: 'GET',
    path: '/v1/runs',
    scope: 'read',
    query: [
      'job',
      'subject',
      'status',
      'trigger',
      'actor',
      'parentId',
      'externalId',
      'missingExternalId',
      'tag',
      'createdAfter',
      'createdBefore',
      'limit',
      'cursor',
    ],
  },
  { method: 'GET', path: '/v1/runs/{id}', scope: 'read' },
  { method: 'PATCH', path: '/v1/runs/{id}', scope: 'write', body: (n) => ({ tags: { fuzz: String(n) }, notes: `n${n}` }) },
  { method: 'POST', path: '/v1/runs/{id}/start', scope: 'write', body: () => ({}) },
  { method: 'POST', path: '/v1/runs/{id}/heartbeat', scope: 'write', body: (n) => ({ progress: { n } }) },
  { method: 'POST', path: '/v1/runs/{id}/complete', scope: 'write', body: (n) => ({ output: { n }, statistics: { n }, notes: 'ok' }) },
  { method: 'POST', path: '/v1/runs/{id}/fail', scope: 'write', body: (n) => ({ error: { type: 'x', message: `m${n}` } }) },
  { method: 'POST', path: '/v1/runs/{id}/cancel', scope: 'write', body: () => ({ reason: 'r' }) },
  { method: 'POST', path: '/v1/runs/{id}/retry', scope: 'write', body: () => ({ error: { message: 'again' } }) },
  {
    method: 'POST',
    path: '/v1/runs/{id}/events',
    scope: 'write',
    body: (n) => ({ events: [{ key: `k${n}`, type: 'step', level: 'info', body: { n } }] }),
  },
  { method: 'GET', path: '/v1/runs/{id}/events', scope: 'read', query: ['afterSeq', 'limit'] },
  { method: 'GET', path: '/v1/runs/{id}/events/stream', scope: 'read', query: ['afterSeq'] },
  {
    method: 'POST',
    path: '/v1/runs/{id}/checkpoints',
    scope: 'write',
    body: (n) => ({ name: `cp${n}`, kind: 'k', ref: 'r', metadata: { n }, data: { n } }),
  },
  { method: 'GET', path: '/v1/runs/{id}/checkpoints', scope: 'read' },
  { method: 'GET', path: '/v1/runs/{id}/checkpoints/{name}', scope: 'read' },
  { method: 'GET', path: '/v1/subjects', scope: 'read', query: ['job', 'status', 'overdue', 'dueBefore', 'limit', 'cursor'] },
  { method: 'GET', path: '/v1/subjects/{job}/{subject}', scope: 'read' },
  {
    method: 'POST',
    path: '/v1/imports',
    scope: 'write',
    body: (n) => ({
      source: 'fuzz',
      runs: [{ sourceId: `i${n}`, job: 'imported', subject: `s${n}`, status: 'completed', finishedAt: '2025-01-01T00:00:00Z' }],
    }),
  },
  { method: 'GET', path: '/v1/runs/{id}/verify', scope: 'read' },
  { method: 'GET', path: '/v1/verify', scope: 'read' },
  { method: 'GET', path: '/v1/stats', scope: 'read', query: ['job', 'from', 'to', 'bucket'] },
  { method: 'POST', path: '/v1/reap', scope: 'admin' },
  { method: 'GET', path: '/v1/changes', scope: 'read', query: ['after', 'types', 'job', 'limit'] },
  // Never ends by itself: the tests' servers end change streams after `stream.maxMs`.
  { method: 'GET', path: '/v1/changes/stream', scope: 'read', query: ['after', 'types', 'job'] },
  { method: 'GET', path: '/v1/expectations', scope: 'read' },
  {
    method: 'PUT',
    path: '/v1/expectations/{job}',
    scope: 'admin',
    body: (n) => ({ every: `${n}h`, grace: '30m', perSubject: n % 2 === 0 }),
  },
  { method: 'DELETE', path: '/v1/expectations/{job}', scope: 'admin' },
  // A documentation address (TEST-NET-3): public, so servers without --allow-private-webhooks accept it.
  { method: 'POST', path: '/v1/webhooks', scope: 'admin', body: (n) => ({ url: `https://203.0.113.10/fz-${n}`, types: ['run.finished'] }) },
  { method: 'GET', path: '/v1/webhooks', scope: 'read' },
  { method: 'GET', path: '/v1/webhooks/{id}', scope: 'read' },
  { method: 'DELETE', path: '/v1/webhooks/{id}', scope: 'admin' },
  { method: 'GET', path: '/v1/webhooks/{id}/deliveries', scope: 'read', query: ['state', 'limit'] },
  { method: 'POST', path: '/v1/webhooks/{id}/replay', scope: 'admin', body: () => ({ after: '0' }) },
  { method: 'POST', path: '/v1/tokens', scope: 'admin', body: (n) => ({ scope: 'read', name: `fz-${n}` }) },
  { method: 'GET', path: '/v1/tokens', scope: 'admin' },
  { method: 'DELETE', path: '/v1/tokens/{id}', scope: 'admin' },
  { method: 'PUT', path: '/v1/retention', scope: 'admin', body: (n) => ({ rules: [{ keepDays: 3650 + (n % 100) }] }) },
  { method: 'GET', path: '/v1/retention', scope: 'read' },
  { method: 'POST', path: '/v1/prune', scope: 'admin', body: () => ({ dryRun: true, limit: 10 }) },
  { method: 'GET', path: '/v1/export', scope: 'read', query: ['job', 'before', 'prunable', 'after', 'limit'] },
  { method: 'POST', path: '/v1/restore', scope: 'admin', body: () => ({ runs: [] }) },
];

/** The /v1 endpoints the server documents, as `METHOD path`. */
export async function documentedEndpoints(app: FastifyInstance): Promise<string[]> {
  await app.ready();
  const doc = app.swagger() as { paths: Record<string, Record<string, unknown>> };
  return Object.entries(doc.paths)
    .filter(([path]) => path.startsWith('/v1'))
    .flatMap(([path, methods]) => Object.keys(methods).map((m) => `${m.toUpperCase()} ${path}`))
    .sort();
}

export const listed = () => ENDPOINTS.map((e) => `${e.method} ${e.path}`).sort();

/**
 * Percent-encodes the UTF-8 bytes of `s` (encodeURIComponent throws on unpaired
 * surrogates; this sends what a careless client would: their U+FFFD bytes).
 */
export function encodeBytes(s: string): string {
  return [...Buffer.from(s, 'utf8')]
    .map((b) =>
      /[A-Za-z0-9._~-]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `%${b.toString(16).padStart(2, '0').toUpperCase()}`,
    )
    .join('');
}

/** Fills the path template: each `{param}` from `values` (already encoded). */
export function fillPath(path: string, values: Record<string, string>): string {
  return path.replace(/\{(\w+)\}/g, (_, k: string) => values[k] ?? 'x');
}
