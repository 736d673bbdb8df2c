/**
 * The OpenAPI document (`/openapi.json`, `/docs`) from the same zod schemas that validate
 * the requests: one source, so the document cannot drift from what the server accepts.
 */
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';

import { VERSION } from '../core/version.js';
import { extraComponents, isZodSchema, toOpenApiSchema } from './schemas.js';

export async function registerOpenApi(app: FastifyInstance): Promise<void> {
  const defs: Record<string, unknown> = {};
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'runledger',
        version: VERSION,
        description:
          'A durable ledger of runs. Errors are RFC 9457 application/problem+json with a stable `code`. Every endpoint takes `namespace` (default `default`).',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
    transform: ({ schema, url, route }) => {
      if (!schema) return { schema, url };
      const out: Record<string, unknown> = { ...schema };
      for (const part of ['body', 'querystring', 'params'] as const) {
        const s = (schema as Record<string, unknown>)[part];
        if (isZodSchema(s)) out[part] = toOpenApiSchema(s, defs);
      }
      const responses = route.config?.responses;
      if (responses) out.response = Object.fromEntries(Object.entries(responses).map(([code, description]) => [code, { description }]));
      if (route.config?.scope === 'public' || !url.startsWith('/v1')) out.security = [];
      return { schema: out as typeof schema, url };
    },
    transformObject: (doc) => {
      const openapi = (doc as { openapiObject: { components?: { schemas?: object } } }).openapiObject;
      const extra = extraComponents(defs);
      openapi.components = { ...openapi.components, schemas: { ...openapi.components?.schemas, ...defs, ...extra } };
      return openapi as Parameters<typeof Object.assign>[0];
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
}
