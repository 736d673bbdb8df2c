/**
 * Request schemas of the HTTP API. They are the library's zod schemas (core/validation.ts)
 * plus the HTTP envelope (namespace, path parameters, query-string coercion). The same
 * objects validate requests (validatorCompiler) and generate the OpenAPI document
 * (toOpenApiSchema), so the documentation cannot drift from what is enforced.
 */
import { z } from 'zod';

import { changesQuerySchema } from '../core/changes.js';
import { ValidationError } from '../core/errors.js';
import {
  cancelSchema,
  checkpointInputSchema,
  completeSchema,
  eventBatchSchema,
  failSchema,
  importOptionsSchema,
  importRecordSchema,
  json,
  LIMITS,
  listEventsSchema,
  listRunsSchema,
  listSubjectsSchema,
  namespaceSchema,
  parseInput,
  retrySchema,
  runIdSchema,
  sourceSchema,
  startRunSchema,
  statsSchema,
  updateRunSchema,
} from '../core/validation.js';

const namespace = { namespace: namespaceSchema.optional().meta({ description: 'namespace (default `default`)' }) };
const pathName = (what: string, max: number) =>
  z.string().min(1, `${what} must be 1–${max} characters`).max(max, `${what} must be 1–${max} characters`);

export const nsQuery = z.strictObject(namespace);
export const runParams = z.strictObject({ id: runIdSchema });
export const checkpointParams = z.strictObject({ id: runIdSchema, name: pathName('name', LIMITS.nameLength) });
export const subjectParams = z.strictObject({
  job: pathName('job', LIMITS.nameLength),
  subject: pathName('subject', LIMITS.subjectLength),
});

export const listRunsQuery = listRunsSchema.extend(namespace);
export const listSubjectsQuery = listSubjectsSchema.extend(namespace);
export const listEventsQuery = listEventsSchema.extend(namespace);
export const streamQuery = listEventsSchema.pick({ afterSeq: true }).extend(namespace);
export const statsQuery = statsSchema.extend(namespace);
export const changesQuery = changesQuerySchema.extend(namespace);
export const changesStreamQuery = changesQuerySchema.omit({ limit: true }).extend(namespace);

export const startRunBody = startRunSchema;
export const updateRunBody = updateRunSchema.omit({ ifVersion: true });
export const heartbeatBody = z.strictObject({ progress: json.optional() });
export const appendEventsBody = z.strictObject({ events: eventBatchSchema });
/**
 * Envelopes of bodies that the ledger validates (route.ts `bodyEnvelope`). "A JSON object"
 * is checked by zodValidatorCompiler before any body schema runs.
 */
export const anyObjectEnvelope = z.custom<Record<string, unknown>>(() => true);
export const appendEventsEnvelope = z.strictObject({ events: z.custom<unknown[]>(() => true) });
export const checkpointBody = checkpointInputSchema;
export const completeBody = completeSchema;
export const failBody = failSchema;
export const cancelBody = cancelSchema;
export const retryBody = retrySchema;
export const importBody = z.strictObject({
  source: sourceSchema,
  // Each record is validated on its own by the library, so one bad record does not reject the batch.
  // The batch limit (≤ 1000) is enforced by the library, with the same message in process and over HTTP.
  runs: z.array(z.unknown(), { error: 'runs must be an array of import records' }).meta({
    description: 'import records (see ImportRecord); each is validated and reported on its own',
    maxItems: LIMITS.importBatch,
  }),
  ...importOptionsSchema.shape,
});

/** Turns query-string text into the types the schema expects: numbers, and comma lists for arrays. */
function coerceQuery(schema: z.ZodType, raw: Record<string, unknown>): Record<string, unknown> {
  const shape = (schema as unknown as { shape?: Record<string, z.ZodType> }).shape;
  if (!shape) return raw;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(raw)) {
    let field = shape[key] as z.ZodType | undefined;
    while (field && (field.def.type === 'optional' || field.def.type === 'default'))
      field = (field.def as unknown as { innerType: z.ZodType }).innerType;
    const kind = field?.def.type;
    const acceptsArray =
      kind === 'array' ||
      (kind === 'union' && (field!.def as unknown as { options: z.ZodType[] }).options.some((o) => o.def.type === 'array'));
    if (kind === 'number' && typeof value === 'string' && /^-?\d+$/.test(value)) out[key] = Number(value);
    else if (kind === 'boolean' && (value === 'true' || value === 'false')) out[key] = value === 'true';
    else if (acceptsArray) out[key] = (Array.isArray(value) ? value : [value]).flatMap((v) => String(v).split(',')).filter((v) => v !== '');
    else out[key] = value;
  }
  return out;
}

/** Fastify validatorCompiler: validates with the zod schema; a failure is a ValidationError (400). */
export function zodValidatorCompiler({ schema, httpPart }: { schema: unknown; httpPart?: string }) {
  const zod = schema as z.ZodType;
  return (data: unknown) => {
    try {
      if (httpPart === 'body') {
        // An absent body (Fastify gives null or undefined) is an empty object: the schema then names any required field.
        const body = data === undefined || data === null ? {} : data;
        if (body === null || typeof body !== 'object' || Array.isArray(body))
          throw new ValidationError(`request body must be a JSON object; got ${Array.isArray(body) ? 'an array' : JSON.stringify(body)}`, [
            { field: 'body', message: 'not a JSON object' },
          ]);
        return { value: parseInput(zod, body) };
      }
      // Field names as the library reports them (`limit`, `id`), so errors read the same in process and over HTTP.
      const input = httpPart === 'querystring' ? coerceQuery(zod, { ...(data as Record<string, unknown>) }) : data;
      return { value: parseInput(zod, input) };
    } catch (err) {
      return { error: err as Error };
    }
  };
}

// JSON Schema for OpenAPI: `$defs` (the recursive JSON value) become shared components.
const registry = z.registry<{ id: string }>();
registry.add(json, { id: 'JsonValue' });

/** zod → JSON Schema (input side); `defs` collects shared definitions for `components.schemas`. */
export function toOpenApiSchema(schema: z.ZodType, defs: Record<string, unknown>): Record<string, unknown> {
  const out = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any', metadata: registry }) as Record<string, unknown>;
  delete out.$schema;
  const found = (out.$defs ?? {}) as Record<string, unknown>;
  delete out.$defs;
  const rewrite = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(rewrite);
    if (v && typeof v === 'object') {
      return Object.fromEntries(
        Object.entries(v).map(([k, x]) => [
          k,
          k === '$ref' && typeof x === 'string' ? x.replace('#/$defs/', '#/components/schemas/') : rewrite(x),
        ]),
      );
    }
    return v;
  };
  for (const [name, def] of Object.entries(found)) defs[name] = rewrite(def);
  return rewrite(out) as Record<string, unknown>;
}

/** Components added to the OpenAPI document besides the request schemas. */
export function extraComponents(defs: Record<string, unknown>): Record<string, unknown> {
  return { ImportRecord: toOpenApiSchema(importRecordSchema, defs) };
}

export function isZodSchema(value: unknown): value is z.ZodType {
  return value instanceof z.ZodType;
}
