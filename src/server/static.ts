/**
 * The built dashboard (dist/web) at `/`. Files are served as they are; any other GET
 * that wants HTML and is not an API path falls back to index.html (client-side
 * routing). API paths keep their problem+json 404s.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';

import fastifyStatic from '@fastify/static';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

const API_PREFIXES = ['/v1/', '/v1', '/docs', '/openapi.json', '/healthz', '/readyz', '/metrics'];

export const serveWeb = {
  async register(app: FastifyInstance, root: string): Promise<void> {
    await app.register(fastifyStatic, { root, prefix: '/', wildcard: false, index: 'index.html', decorateReply: true });
  },

  /** Serves index.html for a client-side route; false when the request is not one. */
  async fallback(request: FastifyRequest, reply: FastifyReply): Promise<boolean> {
    if (request.method !== 'GET' && request.method !== 'HEAD') return false;
    const path = request.url.split('?')[0];
    if (API_PREFIXES.some((p) => path === p || path.startsWith(p.endsWith('/') ? p : `${p}/`))) return false;
    // A missing asset (has an extension) is a real 404, not the app.
    if (/\.[a-z0-9]+$/i.test(path)) return false;
    await reply.type('text/html; charset=utf-8').sendFile('index.html');
    return true;
  },
};

/** `<package root>/dist/web` when it holds a built dashboard. */
export function defaultWebRoot(packageRoot: string): string | undefined {
  const dir = join(packageRoot, 'dist', 'web');
  return existsSync(join(dir, 'index.html')) ? dir : undefined;
}
