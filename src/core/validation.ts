/**
 * Input schemas (zod) shared by the library and the HTTP server, and the one place
 * that turns a zod failure into a ValidationError whose message names the field, echoes
 * the value and says what is allowed.
 */
import { z } from 'zod';

import { ValidationError } from './errors.js';
import { RUN_ID_PATTERN } from './ids.js';
import { TERMINAL_STATUSES } from './status.js';
import { EVENT_LEVELS, type Json, RUN_STATUSES, type TerminalStatus } from './types.js';

/** Documented limits (README "Limits"). */
export const LIMITS = {
  idLength: 128,
  nameLength: 200,
  subjectLength: 1024,
  notesLength: 65_536,
  tagCount: 64,
  tagValueLength: 1024,
  externalIdValueLength: 1024,
  eventBatch: 1000,
  importBatch: 1000,
  pageSize: 500,
  eventPageSize: 1000,
  maxLeaseS: 7 * 24 * 3600,
} as const;

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
// Any surrogate at all: most text has none, so the exact (slower) test rarely runs.
const ANY_SURROGATE = /[\uD800-\uDFFF]/;

/**
 * What is wrong with text the database would refuse or alter, or null. PostgreSQL stores
 * neither text nor jsonb containing U+0000, and stores U+FFFD for an unpaired UTF-16
 * surrogate, so the stored text would differ from the text hashed. One rule and one
 * message for every path in (validation, HTTP bodies, imports).
 */
export function textProblem(s: string): string | null {
  if (s.includes('\u0000')) return 'must not contain the character \\u0000 (PostgreSQL cannot store it)';
  if (ANY_SURROGATE.test(s) && LONE_SURROGATE.test(s))
    return 'must be valid Unicode: it contains an unpaired UTF-16 surrogate (such as \\ud800)';
  return null;
}

/** A zod refinement: `what` + the text problem, if any. */
const storableText = (what: string) => (s: string, ctx: z.RefinementCtx) => {
  const problem = textProblem(s);
  if (problem) ctx.addIssue({ code: 'custom', message: `${what} ${problem}` });
};

/**
 * The message for a value that is not the object an operation takes: it shows the shape
 * (optional fields marked `?`), so a caller who passed a string or nothing sees what to pass.
 */
const takes =
  (what: string, shape: string) =>
  (iss: { code: string }): string | undefined =>
    iss.code === 'invalid_type' ? `${what ? `${what} ` : ''}must be an object ${shape}` : undefined;

const name = (what: string, max: number = LIMITS.nameLength) =>
  z
    .string({ error: (iss) => (iss.input === undefined ? `${what} is required` : `${what} must be a string`) })
    .min(1, `${what} must be 1–${max} characters`)
    .max(max, `${what} must be 1–${max} characters`)
    // Say so here, naming the field, rather than fail (or silently alter the text) in the database.
    .superRefine(storableText(what));

export const runIdSchema = z
  .string({ error: 'id must be a string' })
  .regex(RUN_ID_PATTERN, `id must be 1–${LIMITS.idLength} of letters, digits and ._:@+-`);

// An ISO 8601 date, optionally with a time (`T` or a space) and an offset.
// Digits past the millisecond are accepted and cut: the ledger keeps times to the
// millisecond (docs/limits.md), and clients such as Python's datetime send microseconds.
const ISO_TIME = /^(\d{4})-(\d\d)-(\d\d)(?:[T ](\d\d):(\d\d)(?::(\d\d)(?:\.\d+)?)?(?:Z|([+-](\d\d)(?::?(\d\d))?))?)?$/i;

const daysIn = (year: number, month: number) => new Date(Date.UTC(year, month, 0)).getUTCDate();

/**
 * What is wrong with an ISO 8601 time, or null. JavaScript would silently move an impossible
 * date (2026-02-30 becomes 2026-03-02); it is refused instead, so that a time reads back as
 * the instant that was sent.
 */
function isoTimeProblem(s: string): string | null {
  const m = ISO_TIME.exec(s);
  if (!m) return 'must be an ISO 8601 time such as 2026-01-31T12:00:00Z';
  const [, y, mo, d, h, mi, sec, offset, offsetH, offsetM] = m;
  const year = Number(y);
  if (year < 1000) return 'must be in the years 1000–9999';
  if (Number(mo) < 1 || Number(mo) > 12) return `has no month ${mo}`;
  if (Number(d) < 1 || Number(d) > daysIn(year, Number(mo))) return `is not a date: ${y}-${mo} has no day ${d}`;
  if (h !== undefined && (Number(h) > 23 || Number(mi) > 59 || (sec !== undefined && Number(sec) > 59)))
    return `is not a time of day: ${h}:${mi}${sec === undefined ? '' : `:${sec}`} (hours 00–23, minutes and seconds 00–59)`;
  if (Number(offsetH ?? 0) > 23 || Number(offsetM ?? 0) > 59) return `has no offset ${offset}`;
  return null;
}

/**
 * A time without an offset means UTC (never the server's local zone), as PostgreSQL would
 * otherwise guess; an hour-only offset (`+02`, as PostgreSQL prints one) is `+02:00`.
 */
function normalizeTime(s: string): string {
  const hourOffset = s.replace(/(T|\s)([\d:.]+)([+-]\d\d)$/i, '$1$2$3:00');
  const withZone = /[T ]\d\d:\d\d/i.test(hourOffset) && !/(Z|[+-]\d\d:?\d\d)$/i.test(hourOffset) ? `${hourOffset}Z` : hourOffset;
  return new Date(withZone.replace(' ', 'T')).toISOString();
}

const isoTime = (what: string) =>
  z
    .string({ error: `${what} must be an ISO 8601 time` })
    .superRefine((s, ctx) => {
      const problem = isoTimeProblem(s);
      if (problem) ctx.addIssue({ code: 'custom', message: `${what} ${problem}; got ${JSON.stringify(s.slice(0, 60))}` });
    })
    .transform(normalizeTime);

/** Deepest nesting of arrays and objects inside one JSON value (the value itself is level 1). */
export const JSON_MAX_DEPTH = 100;

/**
 * Where `value` stops being JSON, as a path and the offending value; null if it is JSON.
 * Recursion is bounded by JSON_MAX_DEPTH, so no input overflows the stack.
 */
function findNonJson(
  value: unknown,
  depth: number,
): { path: PropertyKey[]; value: unknown; tooDeep?: true; text?: string; key?: true } | null {
  switch (typeof value) {
    case 'string': {
      // json columns (migration 0009) store a \u0000 escape that jsonb refused: refuse it here,
      // as text columns and HTTP bodies do, so the stored text never differs in what it can hold.
      const text = textProblem(value);
      return text ? { path: [], value, text } : null;
    }
    case 'boolean':
      return null;
    case 'number':
      return Number.isFinite(value) ? null : { path: [], value };
    case 'object': {
      if (value === null) return null;
      if (depth >= JSON_MAX_DEPTH) return { path: [], value, tooDeep: true };
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) {
          const bad = findNonJson(value[i], depth + 1);
          if (bad) return (bad.path.unshift(i), bad);
        }
        return null;
      }
      const proto = Object.getPrototypeOf(value) as unknown;
      if (proto !== Object.prototype && proto !== null) return { path: [], value };
      for (const key in value) {
        const text = textProblem(key);
        if (text) return { path: [key], value: key, text, key: true };
        const bad = findNonJson((value as Record<string, unknown>)[key], depth + 1);
        if (bad) return (bad.path.unshift(key), bad);
      }
      return null;
    }
    default:
      return { path: [], value };
  }
}

/**
 * A JSON value: null, booleans, finite numbers, strings, arrays and plain objects, nested
 * at most JSON_MAX_DEPTH levels. One walk instead of z.json()'s union per node: this
 * schema validates every event body: a 100-event batch took 194 µs to validate with
 * z.json(), 61 µs with this.
 */
export const json: z.ZodType<Json> = z
  .custom<Json>(() => true)
  .superRefine((value, ctx) => {
    const bad = findNonJson(value, 0);
    if (!bad) return;
    ctx.addIssue({
      code: 'custom',
      path: bad.path,
      input: bad.value,
      message: bad.tooDeep
        ? `nests deeper than ${JSON_MAX_DEPTH} levels of arrays and objects; flatten it or store it as a string`
        : bad.text
          ? `${bad.key ? 'is a key that ' : ''}${bad.text}`
          : JSON_ALLOWED,
    });
  })
  .meta({ description: 'any JSON value' });
const jsonObject = z.record(z.string(), json, {
  error: (iss) => (iss.input === undefined ? 'is required (a JSON object)' : 'must be a JSON object'),
});
const stringMap = (what: string, maxValue: number) =>
  z
    .record(
      z.string().min(1, `${what} keys must be non-empty`).max(LIMITS.nameLength),
      z.string({ error: `${what} values must be strings` }).max(maxValue, `${what} values must be at most ${maxValue} characters`),
      {
        error: `${what} must be an object of string values`,
      },
    )
    .refine((m) => Object.keys(m).length <= LIMITS.tagCount, `${what} may have at most ${LIMITS.tagCount} keys`);

export const runErrorSchema = z.strictObject(
  {
    type: name('error.type').optional(),
    message: z
      .string({ error: (iss) => (iss.input === undefined ? 'error.message is required (a string)' : 'error.message must be a string') })
      .max(LIMITS.notesLength, `error.message must be at most ${LIMITS.notesLength} characters`),
    details: json.optional(),
    stack: z.string().max(LIMITS.notesLength, `error.stack must be at most ${LIMITS.notesLength} characters`).optional(),
  },
  { error: takes('error', '{ message, type?, details?, stack? }, e.g. { error: { message: "disk full", type: "io" } }') },
);

export const startRunSchema = z.strictObject(
  {
    id: runIdSchema.optional(),
    job: name('job'),
    subject: name('subject', LIMITS.subjectLength).optional(),
    trigger: name('trigger').optional(),
    actor: name('actor').optional(),
    parentId: runIdSchema.optional(),
    status: z.enum(['submitted', 'running'], { error: 'status must be submitted or running' }).optional(),
    externalIds: stringMap('externalIds', LIMITS.externalIdValueLength).optional(),
    params: jsonObject.optional(),
    tags: stringMap('tags', LIMITS.tagValueLength).optional(),
    notes: z.string().max(LIMITS.notesLength, `notes must be at most ${LIMITS.notesLength} characters`).optional(),
    leaseS: z
      .number({ error: 'leaseS must be a number of seconds' })
      .int('leaseS must be a whole number of seconds')
      .min(1, `leaseS must be 1–${LIMITS.maxLeaseS}`)
      .max(LIMITS.maxLeaseS, `leaseS must be 1–${LIMITS.maxLeaseS}`)
      .optional(),
    deadlineAt: isoTime('deadlineAt').optional(),
    exclusive: z.boolean({ error: 'exclusive must be true or false' }).optional(),
  },
  {
    error: takes(
      'startRun input',
      '{ job, subject?, trigger?, actor?, id?, parentId?, status?, params?, tags?, externalIds?, notes?, leaseS?, deadlineAt?, exclusive? }, e.g. { job: "nightly-export" }',
    ),
  },
);

export const eventInputSchema = z.strictObject(
  {
    key: name('key').optional(),
    type: name('type'),
    level: z.enum(EVENT_LEVELS, { error: `level must be one of ${EVENT_LEVELS.join(', ')}` }).optional(),
    at: isoTime('at').optional(),
    body: json.optional(),
  },
  { error: takes('', '{ type, key?, level?, at?, body? }, e.g. { type: "progress", body: { done: 3 } }') },
);

export const eventBatchSchema = z
  .array(eventInputSchema, { error: 'events must be an array' })
  .min(1, 'events must hold 1–1000 events')
  .max(LIMITS.eventBatch, `events must hold 1–${LIMITS.eventBatch} events`);

export const checkpointInputSchema = z.strictObject(
  {
    name: name('name'),
    kind: name('kind').optional(),
    ref: z.string().max(LIMITS.subjectLength).superRefine(storableText('ref')).optional(),
    metadata: jsonObject,
    data: json.optional(),
  },
  {
    error: takes(
      'checkpoint input',
      '{ name, metadata, kind?, ref?, data? }, e.g. { name: "pre_decision", metadata: { diffHash: "ab12" } }',
    ),
  },
);

const notes = z
  .string({ error: 'notes must be a string' })
  .max(LIMITS.notesLength, `notes must be at most ${LIMITS.notesLength} characters`);

export const completeSchema = z.strictObject(
  {
    output: json.optional(),
    statistics: jsonObject.optional(),
    notes: notes.optional(),
  },
  { error: takes('complete input', '{ output?, statistics?, notes? }, e.g. { output: { rows: 42 } }') },
);

export const failSchema = z.strictObject(
  {
    error: runErrorSchema,
    statistics: jsonObject.optional(),
    notes: notes.optional(),
  },
  { error: takes('fail input', '{ error: { message, type?, details? }, statistics?, notes? }, e.g. { error: { message: "disk full" } }') },
);

export const cancelSchema = z.strictObject(
  {
    reason: z
      .string({ error: 'reason must be a string' })
      .max(LIMITS.notesLength, `reason must be at most ${LIMITS.notesLength} characters`)
      .optional(),
  },
  { error: takes('cancel input', '{ reason? }, e.g. { reason: "superseded" }') },
);
export const retrySchema = z.strictObject(
  { error: runErrorSchema.optional() },
  { error: takes('retry input', '{ error? }, e.g. { error: { message: "503 from upstream" } }') },
);

export const updateRunSchema = z.strictObject(
  {
    tags: stringMap('tags', LIMITS.tagValueLength).optional(),
    notes: notes.optional(),
    externalIds: stringMap('externalIds', LIMITS.externalIdValueLength).optional(),
    ifVersion: z
      .number({ error: 'ifVersion must be a version number (a whole number ≥ 1)' })
      .int('ifVersion must be a whole number ≥ 1')
      .min(1, 'ifVersion must be a whole number ≥ 1')
      .optional(),
  },
  { error: takes('update input', '{ tags?, notes?, externalIds?, ifVersion? }, e.g. { tags: { env: "prod" } }') },
);

const statusList = z
  .union([z.enum(RUN_STATUSES), z.array(z.enum(RUN_STATUSES)).min(1)], {
    error: `status must be one or more of ${RUN_STATUSES.join(', ')}`,
  })
  .optional();

const keyValue = (what: string) => z.string().regex(/^[^:]+:.+$/s, `${what} must be key:value`);
const pageLimit = (max: number) =>
  z
    .number({ error: `limit must be a whole number 1–${max}` })
    .int(`limit must be a whole number 1–${max}`)
    .min(1, `limit must be 1–${max}`)
    .max(max, `limit must be 1–${max}`);

export const listRunsSchema = z.strictObject(
  {
    job: name('job').optional(),
    subject: name('subject', LIMITS.subjectLength).optional(),
    status: statusList,
    trigger: name('trigger').optional(),
    actor: name('actor').optional(),
    parentId: runIdSchema.optional(),
    externalId: keyValue('externalId').optional(),
    missingExternalId: name('missingExternalId').optional(),
    tag: keyValue('tag').optional(),
    createdAfter: isoTime('createdAfter').optional(),
    createdBefore: isoTime('createdBefore').optional(),
    q: name('q').optional(),
    withTotal: z.boolean({ error: 'withTotal must be true or false' }).optional(),
    limit: pageLimit(LIMITS.pageSize).optional(),
    cursor: z.string().max(1000).optional(),
  },
  {
    error: takes(
      'listRuns filter',
      '{ job?, subject?, status?, trigger?, actor?, parentId?, externalId?, missingExternalId?, tag?, createdAfter?, createdBefore?, q?, withTotal?, limit?, cursor? }',
    ),
  },
);

export const listSubjectsSchema = z.strictObject(
  {
    job: name('job').optional(),
    status: statusList,
    overdue: z.boolean({ error: 'overdue must be true or false' }).optional(),
    dueBefore: isoTime('dueBefore').optional(),
    limit: pageLimit(LIMITS.pageSize).optional(),
    cursor: z.string().max(1000).optional(),
  },
  { error: takes('listSubjects filter', '{ job?, status?, overdue?, dueBefore?, limit?, cursor? }') },
);

export const listEventsSchema = z.strictObject(
  {
    afterSeq: z
      .number({ error: 'afterSeq must be a whole number 0 or more' })
      .int('afterSeq must be a whole number 0 or more')
      .min(0, 'afterSeq must be 0 or more')
      .optional(),
    limit: pageLimit(LIMITS.eventPageSize).optional(),
  },
  { error: takes('listEvents options', '{ afterSeq?, limit? }') },
);

export const statsSchema = z.strictObject(
  {
    job: name('job').optional(),
    from: isoTime('from').optional(),
    to: isoTime('to').optional(),
    bucket: z.enum(['minute', 'hour', 'day'], { error: 'bucket must be minute, hour or day' }).optional(),
  },
  { error: takes('stats query', '{ job?, from?, to?, bucket? }') },
);

const terminal = z.enum(TERMINAL_STATUSES as [TerminalStatus, ...TerminalStatus[]], {
  error: 'status must be a terminal status: completed, failed, cancelled or timed_out',
});

/** One historical run to import (README "Import format"). */
export const importRecordSchema = z.strictObject(
  {
    sourceId: z
      .string({ error: 'sourceId is required (a string)' })
      .min(1, 'sourceId must be 1–1024 characters')
      .max(1024, 'sourceId must be 1–1024 characters'),
    id: runIdSchema.optional(),
    job: name('job'),
    subject: name('subject', LIMITS.subjectLength).optional(),
    trigger: name('trigger').optional(),
    actor: name('actor').optional(),
    parentId: runIdSchema.optional(),
    status: terminal.optional(),
    createdAt: isoTime('createdAt').optional(),
    startedAt: isoTime('startedAt').optional(),
    finishedAt: isoTime('finishedAt').optional(),
    params: jsonObject.optional(),
    tags: stringMap('tags', LIMITS.tagValueLength).optional(),
    notes: z.string().max(LIMITS.notesLength).optional(),
    output: json.optional(),
    statistics: jsonObject.optional(),
    error: runErrorSchema.optional(),
    externalIds: stringMap('externalIds', LIMITS.externalIdValueLength).optional(),
    events: z
      .array(eventInputSchema.omit({ key: true }))
      .max(LIMITS.eventBatch)
      .optional(),
  },
  { error: takes('an import record', '{ sourceId, job, … } (see docs/import.md)') },
);

export const importOptionsSchema = z.strictObject(
  {
    dryRun: z.boolean().optional(),
    cutover: z
      .union([z.literal('auto'), z.literal('none'), isoTime('cutover')], { error: 'cutover must be auto, none or an ISO time' })
      .optional(),
    subjectStatus: z.boolean().optional(),
  },
  { error: takes('import options', '{ dryRun?, cutover?, subjectStatus? }') },
);

export const sourceSchema = z
  .string({ error: 'source must be a string' })
  .regex(/^[A-Za-z0-9._:@+/-]{1,200}$/, 'source must be 1–200 of letters, digits and ._:@+/-');

/** PUT /v1/expectations/{job}: an interval or a cron schedule (checked by core/schedule.ts), a grace period. */
export const expectationInputSchema = z.strictObject({
  every: z.string({ error: 'every must be a duration such as 12h' }).optional(),
  cron: z
    .string({ error: 'cron must be a cron expression such as "0 */6 * * *"' })
    .max(200, 'cron must be at most 200 characters')
    .optional(),
  timezone: z.string({ error: 'timezone must be an IANA time zone such as Europe/Berlin' }).max(100).optional(),
  grace: z.string({ error: 'grace must be a duration such as 30m' }),
  perSubject: z.boolean({ error: 'perSubject must be true or false' }).optional(),
});

export const namespaceSchema = z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'namespace must be 1–64 of letters, digits and ._-');

const JSON_ALLOWED =
  'must be JSON: null, booleans, finite numbers, strings, arrays and plain objects (no undefined, NaN, Infinity, bigint, Date or functions)';

const NOT_PLAIN = Symbol('not a plain object');
/** A Date, Map, Error… — not a plain object (nor a null-prototype one, as Fastify builds for params). */
function isClassInstance(v: unknown): boolean {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v) as { constructor?: unknown } | null;
  return proto !== null && proto !== Object.prototype && typeof proto.constructor === 'function' && proto.constructor !== Object;
}

/** `verify(runId?)`'s argument: a run id, or nothing for every run (`{ all: true }` is the CLI's flag, not this). */
export function parseVerifyTarget(runId: unknown): string | undefined {
  if (runId === undefined) return undefined;
  if (typeof runId !== 'string')
    throw new ValidationError(`verify takes a run id (a string), or nothing to verify every run; got ${preview(runId)}`, [
      { field: 'runId', message: 'not a string' },
    ]);
  return parseInput(runIdSchema, runId, 'id');
}

/** A value as an error message shows it: JSON where it is JSON, and what it is where it is not. */
function preview(value: unknown): string {
  if (value === undefined) return 'nothing';
  // JSON.stringify would show a Date as a valid-looking ISO string, an Error as {}.
  if (value instanceof Date) return `a Date (${Number.isNaN(value.getTime()) ? 'Invalid Date' : value.toISOString()})`;
  if (value instanceof Error) return `an Error (${JSON.stringify(value.message)})`;
  if (isClassInstance(value))
    return `a ${(Object.getPrototypeOf(value) as { constructor: { name?: string } }).constructor.name || 'class'} object`;
  let text: string;
  try {
    // Show what JSON cannot hold (NaN, undefined, bigint…) instead of JSON.stringify's silent null/omission.
    const shown = (_key: string, v: unknown) =>
      v === undefined || typeof v === 'bigint' || typeof v === 'function' || (typeof v === 'number' && !Number.isFinite(v))
        ? `<${typeof v === 'function' ? 'function' : String(v)}>`
        : v;
    text = typeof value === 'string' ? JSON.stringify(value) : (JSON.stringify(value, shown) ?? String(value));
  } catch {
    text = String(value);
  }
  if (text.length <= 80) return text;
  return `${text.slice(0, 77)}...${typeof value === 'string' ? ` (${value.length} characters)` : ''}`;
}

const article = (noun: string) => (/^[aeiou]/.test(noun) ? `an ${noun}` : `a ${noun}`);

/**
 * zod's own wording ("Invalid input: expected object, received undefined", "Too big: …")
 * says neither the field nor what is allowed in our terms; every schema above words its
 * messages itself, and this covers whatever is left, from the issue's own facts.
 */
function ownWords(issue: z.core.$ZodIssue): string {
  const unit = (origin: string | undefined) =>
    origin === 'string' ? ' characters' : origin === 'array' || origin === 'set' ? ' items' : origin === 'object' ? ' keys' : '';
  switch (issue.code) {
    case 'invalid_type':
      return `must be ${article(issue.expected)}`;
    case 'too_big':
      return `must be at most ${String(issue.maximum)}${unit(issue.origin)}`;
    case 'too_small':
      return `must be at least ${String(issue.minimum)}${unit(issue.origin)}`;
    case 'invalid_value':
      return `must be ${issue.values.length === 1 ? JSON.stringify(issue.values[0]) : `one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`}`;
    case 'invalid_format':
      return `must be ${article(issue.format)}`;
    case 'invalid_union':
      return JSON_ALLOWED;
    default:
      return 'is not allowed here';
  }
}
const ZOD_WORDING = /^(Invalid|Too (big|small)|Unrecognized)/;

/** Parse `input` or throw a ValidationError listing every problem. `what` prefixes field paths. */
export function parseInput<S extends z.ZodType>(schema: S, input: unknown, what?: string): z.output<S> {
  // zod takes any object for an object schema: a Date passed as complete()'s input would be
  // an empty, valid input. Only plain objects (and arrays) are inputs.
  const plain = !isClassInstance(input);
  const result = schema.safeParse(plain ? input : NOT_PLAIN, { reportInput: true });
  if (result.success) return result.data;
  const details = result.error.issues.map((issue) => {
    const field = [what, ...issue.path.map(String)].filter(Boolean).join('.') || undefined;
    const shownInput = !plain && issue.path.length === 0 ? input : issue.input;
    let message = issue.message;
    if (issue.code === 'unrecognized_keys') message = `unknown field(s) ${issue.keys.join(', ')}`;
    else if (ZOD_WORDING.test(message)) message = ownWords(issue);
    let got = issue.code === 'unrecognized_keys' ? '' : `; got ${preview(shownInput)}`;
    // Times are ISO strings: say how to get one from the Date that was passed.
    if (shownInput instanceof Date) got += '; pass an ISO 8601 string such as date.toISOString()';
    // Name the whole field path once: "events.0.type is required", not "events.0.type: type is required".
    // A message that is a predicate ("must be…", "is required") reads as a sentence after the name.
    const leaf = issue.path.length ? String(issue.path[issue.path.length - 1]) : '';
    const predicate = /^(must|is|nests) /.test(message);
    const named = !field
      ? predicate
        ? `the input ${message}`
        : message
      : message.startsWith(field)
        ? message
        : leaf && message.startsWith(`${leaf} `)
          ? `${field}${message.slice(leaf.length)}`
          : `${field}${predicate ? ' ' : ': '}${message}`;
    return { field, message: `${named}${got}` };
  });
  throw new ValidationError(details.map((d) => d.message).join('; '), details);
}

/** PUT /v1/retention: the namespace's whole rule set, at most one rule per job and one default. */
export const retentionRuleSchema = z.strictObject(
  {
    job: name('job').optional(),
    keepDays: z
      .number({ error: 'keepDays is required: a whole number of days, 0–36500' })
      .int('keepDays must be a whole number of days, 0–36500')
      .min(0, 'keepDays must be a whole number of days, 0–36500')
      .max(36500, 'keepDays must be a whole number of days, 0–36500'),
    keepLastPerSubject: z
      .number({ error: 'keepLastPerSubject must be a whole number, 0–100000' })
      .int('keepLastPerSubject must be a whole number, 0–100000')
      .min(0, 'keepLastPerSubject must be a whole number, 0–100000')
      .max(100000, 'keepLastPerSubject must be a whole number, 0–100000')
      .optional(),
  },
  { error: takes('a retention rule', '{ job?, keepDays, keepLastPerSubject? }') },
);

export const retentionRulesSchema = z
  .array(retentionRuleSchema, { error: 'rules must be an array of { job?, keepDays, keepLastPerSubject? }' })
  .max(1000, 'rules must hold at most 1000 rules')
  .superRefine((rules, ctx) => {
    const seen = new Map<string, number>();
    rules.forEach((r, i) => {
      const key = r.job ?? '';
      const first = seen.get(key);
      if (first !== undefined)
        ctx.addIssue({
          code: 'custom',
          path: [i, 'job'],
          message: `${r.job === undefined ? 'the namespace default (no job)' : `job ${JSON.stringify(r.job)}`} has a rule already (rules.${first}); give one rule per job and at most one without a job`,
        });
      else seen.set(key, i);
    });
  });

export const pruneOptionsSchema = z.strictObject(
  {
    dryRun: z.boolean({ error: 'dryRun must be true or false' }).optional(),
    limit: z
      .number({ error: 'limit must be a whole number, 1–5000' })
      .int('limit must be a whole number, 1–5000')
      .min(1, 'limit must be a whole number, 1–5000')
      .max(5000, 'limit must be a whole number, 1–5000')
      .optional(),
    ids: z.array(runIdSchema, { error: 'ids must be an array of run ids' }).max(5000, 'ids must hold at most 5000 run ids').optional(),
  },
  { error: takes('prune options', '{ dryRun?, limit?, ids? }') },
);

export const exportQuerySchema = z.strictObject(
  {
    job: name('job').optional(),
    before: isoTime('before').optional(),
    prunable: z.boolean({ error: 'prunable must be true or false' }).optional(),
    after: z
      .string({ error: 'after must be the nextAfter of a previous page' })
      .max(1000, 'after must be at most 1000 characters')
      .optional(),
    limit: z
      .number({ error: 'limit must be a whole number, 1–1000' })
      .int('limit must be a whole number, 1–1000')
      .min(1, 'limit must be a whole number, 1–1000')
      .max(1000, 'limit must be a whole number, 1–1000')
      .optional(),
  },
  { error: takes('an export query', '{ job?, before?, prunable?, after?, limit? }') },
);

const nullable = <T extends z.ZodType>(s: T) => s.nullable();
const storedTime = (what: string) => isoTime(what);
const wholeNumber = (what: string, min: number) =>
  z
    .number({ error: `${what} must be a whole number` })
    .int(`${what} must be a whole number`)
    .min(min, `${what} must be at least ${min}`);
const sha256Text = (what: string) =>
  z.string({ error: `${what} must be a string` }).regex(/^([0-9a-f]{64})?$/, `${what} must be a sha256 hex digest`);

/** One line of an export (`ExportedRun`): what restoreRuns takes. Hashes are checked by the restore itself. */
export const exportedRunSchema = z.strictObject(
  {
    run: z.strictObject(
      {
        id: runIdSchema,
        job: name('job'),
        subject: nullable(name('subject', LIMITS.subjectLength)),
        trigger: nullable(name('trigger')),
        actor: nullable(name('actor')),
        parentId: nullable(runIdSchema),
        status: z.enum(RUN_STATUSES, { error: `status must be one of ${RUN_STATUSES.join(', ')}` }),
        attempt: wholeNumber('attempt', 1),
        externalIds: stringMap('externalIds', LIMITS.externalIdValueLength),
        params: jsonObject,
        tags: stringMap('tags', LIMITS.tagValueLength),
        notes: nullable(z.string().max(LIMITS.notesLength)),
        output: json.nullable(),
        statistics: nullable(jsonObject),
        error: nullable(runErrorSchema),
        progress: json.nullable(),
        createdAt: storedTime('createdAt'),
        startedAt: nullable(storedTime('startedAt')),
        finishedAt: nullable(storedTime('finishedAt')),
        heartbeatAt: nullable(storedTime('heartbeatAt')),
        leaseS: nullable(wholeNumber('leaseS', 1).max(LIMITS.maxLeaseS)),
        deadlineAt: nullable(storedTime('deadlineAt')),
        suspect: z.boolean(),
        version: wholeNumber('version', 1),
        lastSeq: wholeNumber('lastSeq', 0),
        lastHash: sha256Text('lastHash'),
        source: nullable(sourceSchema),
        sourceId: nullable(z.string().min(1).max(1024)),
        exclusive: z.boolean(),
      },
      { error: takes('run', '{ id, job, status, … } (a line of runledger export)') },
    ),
    events: z.array(
      z.strictObject({
        seq: wholeNumber('seq', 1),
        key: nullable(name('key')),
        type: name('type'),
        level: z.enum(EVENT_LEVELS).nullable(),
        at: storedTime('at'),
        recordedAt: storedTime('recordedAt'),
        body: json,
        hash: sha256Text('hash'),
      }),
      { error: 'events must be an array' },
    ),
    checkpoints: z.array(
      z.strictObject({
        name: name('name'),
        kind: nullable(name('kind')),
        ref: nullable(name('ref', LIMITS.subjectLength)),
        metadata: jsonObject,
        data: json.nullable(),
        contentHash: sha256Text('contentHash'),
        seq: wholeNumber('seq', 1),
        createdAt: storedTime('createdAt'),
      }),
      { error: 'checkpoints must be an array' },
    ),
  },
  { error: takes('an exported run', '{ run, events, checkpoints } (a line of runledger export)') },
);
