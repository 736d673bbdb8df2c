/**
 * Hostile input, with fast-check (bounded runs). Every /v1 endpoint gets random and
 * malformed JSON, wrong types, huge strings, deep nesting, invalid UTF-8, unpaired
 * surrogates and NUL, unknown fields, boundary sizes, odd content types, hostile path and
 * query values. The answer is never a 5xx; every refusal is application/problem+json with
 * a known `code`; afterwards every hash chain in every namespace still verifies.
 * Then: every list filter with SQL-injection payloads gives exactly the right rows (or a
 * validation error), and there is no sort parameter to inject into.
 */
import fc from 'fast-check';
import type { FastifyInstance, InjectOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { buildServer, LIMITS, type OpenedLedger } from '../../src/index.js';
import { BACKEND, dropSchemas, freshStore } from '../helpers.js';
import { documentedEndpoints, encodeBytes, type Endpoint, ENDPOINTS, fillPath, listed } from './endpoints.js';

const CODES = new Set([
  'validation_failed',
  'not_found',
  'id_conflict',
  'invalid_transition',
  'run_finished',
  'version_mismatch',
  'key_conflict',
  'unauthorized',
  'forbidden',
  'payload_too_large',
  'rate_limited',
]);
const RUNS = Number(process.env.RUNLEDGER_FUZZ_RUNS ?? 80);
// Replays a reported failure: RUNLEDGER_FUZZ_SEED=<seed from the report>.
const SEED = process.env.RUNLEDGER_FUZZ_SEED ? { seed: Number(process.env.RUNLEDGER_FUZZ_SEED) } : {};

let ledger: OpenedLedger;
let app: FastifyInstance;
let requests = 0;
const statuses = new Map<number, number>();
let counter = 0;

beforeAll(async () => {
  ledger = await freshStore();
  app = await buildServer({ ledger, auth: 'off', stream: { maxMs: 50, recheckMs: 20 } });
  const live = await ledger.startRun({ id: 'live', job: 'job-a', subject: 'subj-a', leaseS: 3600 });
  await live.events([{ key: 'e1', type: 'step', body: { a: 1 } }]);
  await live.checkpoint({ name: 'cp', metadata: { m: 1 }, data: { d: 1 } });
  const done = await ledger.startRun({ id: 'done', job: 'job-a', subject: 'subj-b' });
  await done.event('step', { b: 2 });
  await done.complete({ output: { ok: true } });
});
afterAll(async () => {
  await app?.close();
  await ledger?.close();
  await dropSchemas();
  console.log(`[faults] hostile ${BACKEND}: ${requests} requests; statuses ${JSON.stringify(Object.fromEntries([...statuses].sort()))}`);
});

interface Sent {
  method: string;
  url: string;
  headers?: Record<string, string>;
  payload?: string | Buffer;
}

/** Sends one request and checks the answer is sane; returns it parsed. */
async function send(req: Sent) {
  const res = await app.inject(req as InjectOptions);
  requests++;
  statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
  const what = `${req.method} ${req.url.slice(0, 300)} ${String(req.payload ?? '').slice(0, 300)} → ${res.statusCode} ${res.body.slice(0, 300)}`;
  expect(res.statusCode, what).toBeLessThan(500);
  if (res.statusCode >= 400 && req.method !== 'HEAD') {
    expect(String(res.headers['content-type']), what).toMatch(/^application\/problem\+json/);
    const body = JSON.parse(res.body) as { code: string; status: number; detail: string };
    expect(CODES.has(body.code), what).toBe(true);
    expect(body.status, what).toBe(res.statusCode);
    expect(typeof body.detail, what).toBe('string');
  } else if (
    res.statusCode !== 304 &&
    res.statusCode !== 204 &&
    req.method !== 'HEAD' &&
    !String(res.headers['content-type']).startsWith('text/event-stream')
  ) {
    // NDJSON (GET /v1/export): every line is JSON.
    if (String(res.headers['content-type']).startsWith('application/x-ndjson'))
      for (const line of res.body.trimEnd().split('\n')) expect(() => JSON.parse(line), what).not.toThrow();
    else expect(() => JSON.parse(res.body), what).not.toThrow();
  }
  return res;
}

// ---------------------------------------------------------------------------------------
// Arbitraries.

const NASTY = [
  '',
  ' ',
  '\u0000',
  'a\u0000b',
  '\ud800',
  'x\udc00y',
  '\ufffd',
  '\u202e',
  '💥',
  '%',
  '%00',
  '%ff',
  '../../etc/passwd',
  "' or 1=1 --",
  '"; drop table runs; --',
  '$1',
  '${process.exit()}',
  '__proto__',
  'constructor',
  'null',
  'NaN',
  '-1',
  '0',
  '1e309',
  '9007199254740993',
  '2026-13-45T99:99:99Z',
  '0000-01-01',
  'infinity',
  'x'.repeat(LIMITS.nameLength),
  'x'.repeat(LIMITS.nameLength + 1),
  'x'.repeat(LIMITS.subjectLength + 1),
  'x'.repeat(LIMITS.notesLength + 1),
];

const hostileString = fc.oneof(
  fc.constantFrom(...NASTY),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ maxLength: 20 }),
  fc.constantFrom(200, 201, 1024, 1025, 65_536, 65_537, 300_000).map((n) => 'y'.repeat(n)),
);

const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  hostileString,
  fc.constantFrom(null, true, false, 0, -1, 1.5, 1e308, -0, Number.MAX_SAFE_INTEGER + 2, [], {}),
  fc.jsonValue({ maxDepth: 4 }),
  fc.array(hostileString, { maxLength: 5 }),
  fc.dictionary(hostileString, hostileString, { maxKeys: 4 }),
);

/** Nested `[[[…]]]` or `{"a":{"a":…}}`, as text (depth around and far past the limit). */
const deepText = fc
  .tuple(fc.oneof(fc.integer({ min: 60, max: 70 }), fc.integer({ min: 1000, max: 100_000 })), fc.boolean())
  .map(([n, arrays]) => (arrays ? '['.repeat(n) + ']'.repeat(n) : '{"a":'.repeat(n) + '1' + '}'.repeat(n)));

/** A mutation of a valid body: one field replaced, an unknown field added, or a field removed. */
function mutated(valid: Record<string, unknown>): fc.Arbitrary<unknown> {
  const keys = Object.keys(valid);
  const paths = keys.flatMap((k) => {
    const v = valid[k];
    if (Array.isArray(v) && v[0] && typeof v[0] === 'object') return [[k], ...Object.keys(v[0] as object).map((kk) => [k, 0, kk])];
    if (v && typeof v === 'object') return [[k], ...Object.keys(v).map((kk) => [k, kk])];
    return [[k]];
  }) as (string | number)[][];
  const set = (path: (string | number)[], value: unknown) => {
    const copy = structuredClone(valid) as Record<string, unknown>;
    let at = copy as Record<string | number, unknown>;
    for (const p of path.slice(0, -1)) at = at[p] as Record<string | number, unknown>;
    if (value === undefined) delete at[path[path.length - 1]];
    else at[path[path.length - 1]] = value;
    return copy;
  };
  return fc.oneof(
    paths.length ? fc.tuple(fc.constantFrom(...paths), hostileValue).map(([p, v]) => set(p, v)) : fc.constant(valid),
    paths.length ? fc.constantFrom(...paths).map((p) => set(p, undefined)) : fc.constant(valid),
    fc.tuple(hostileString, hostileValue).map(([k, v]) => ({ ...valid, [k || 'unknownField']: v })),
    paths.length ? fc.constantFrom(...paths).map((p) => set([...p.slice(0, -1), `${p[p.length - 1]}Extra`], 1)) : fc.constant(valid),
  );
}

/** The raw body text for an endpoint: mutated, random, malformed, deep, or broken bytes. */
function bodyFor(e: Endpoint): fc.Arbitrary<string | Buffer> {
  const valid = e.body ? e.body(++counter) : {};
  const text = JSON.stringify(valid);
  return fc.oneof(
    { weight: 4, arbitrary: mutated(valid).map((v) => JSON.stringify(v) ?? 'null') },
    { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)) },
    { weight: 1, arbitrary: fc.string({ maxLength: 60 }) },
    { weight: 1, arbitrary: fc.integer({ min: 0, max: text.length }).map((n) => text.slice(0, n)) },
    { weight: 1, arbitrary: deepText.map((d) => text.replace(/("[^"]+":)/, `$1${d},$1`)) },
    { weight: 1, arbitrary: deepText },
    {
      weight: 1,
      arbitrary: fc
        .tuple(fc.uint8Array({ minLength: 1, maxLength: 8 }), fc.integer({ min: 0, max: text.length }))
        .map(([bytes, at]) => Buffer.concat([Buffer.from(text.slice(0, at)), Buffer.from(bytes), Buffer.from(text.slice(at))])),
    },
    {
      weight: 1,
      // Invalid UTF-8 inside a JSON string: a lone continuation byte, an overlong form, a surrogate encoded as UTF-8.
      arbitrary: fc.constantFrom([0x80], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xff], [0xf8, 0x88, 0x80, 0x80, 0x80]).map((bytes) => {
        // Just after the opening quote of the first string value (or at the start when there is none).
        const at = Math.max(0, text.indexOf(':"') + 2);
        return Buffer.concat([Buffer.from(text.slice(0, at)), Buffer.from(bytes), Buffer.from(text.slice(at))]);
      }),
    },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)) },
  );
}

const runIdArb = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom('live', 'done', 'missing') },
  { weight: 2, arbitrary: hostileString.map(encodeBytes) },
  { weight: 1, arbitrary: fc.constantFrom('%', '%zz', '%ff', '%00', '..', '%2e%2e', 'a%2Fb', 'x'.repeat(200), '%E2%80') },
);

const queryArb = (keys: string[]) =>
  fc
    .array(fc.tuple(fc.oneof(fc.constantFrom(...keys, 'namespace', 'sort', 'order'), hostileString.map(encodeBytes)), hostileString), {
      maxLength: 4,
    })
    .map((pairs) => pairs.map(([k, v]) => `${encodeBytes(k)}=${encodeBytes(v)}`).join('&'));

const contentType = fc.constantFrom(
  'application/json',
  'application/json',
  'application/json; charset=utf-8',
  'application/json; charset=latin1',
  'text/plain',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  'application/problem+json',
  '',
);

// ---------------------------------------------------------------------------------------

describe(`hostile input (${BACKEND})`, () => {
  it('the fuzzed list is every documented /v1 endpoint', async () => {
    expect(listed()).toEqual(await documentedEndpoints(app));
  });

  for (const e of ENDPOINTS) {
    const streaming = e.path.endsWith('/stream');
    it(`${e.method} ${e.path}: ${RUNS} hostile requests, never a 5xx, always problem+json`, async () => {
      await fc.assert(
        fc.asyncProperty(
          // A live stream of a running run never ends: streams get finished or missing runs only.
          streaming ? fc.constantFrom('done', 'missing', '%00', 'x'.repeat(129)) : runIdArb,
          fc.oneof(fc.constantFrom('cp', 'missing'), hostileString.map(encodeBytes)),
          fc.tuple(fc.constantFrom('job-a', 'x'), fc.oneof(fc.constantFrom('subj-a'), hostileString.map(encodeBytes))),
          e.query ? queryArb(e.query) : fc.constant(''),
          e.method !== 'GET' ? bodyFor(e) : fc.constant(undefined),
          contentType,
          fc.option(fc.constantFrom('"1"', 'W/"2"', '*', 'garbage', '"0"', '"99999999999999999999"'), { nil: undefined }),
          fc.option(fc.constantFrom('1', '-1', 'abc', '99999999999999999', ''), { nil: undefined }),
          async (id, name, [job, subject], query, payload, type, ifMatch, lastEventId) => {
            const url = fillPath(e.path, { id, name, job, subject }) + (query ? `?${query}` : '');
            const headers: Record<string, string> = {};
            if (payload !== undefined && type) headers['content-type'] = type;
            if (ifMatch) headers['if-match'] = ifMatch;
            if (lastEventId !== undefined && streaming) headers['last-event-id'] = lastEventId;
            await send({ method: e.method, url, headers, payload });
          },
        ),
        { numRuns: RUNS, ...SEED },
      );
    });
  }

  it('other methods, unknown paths and malformed URLs are problem+json too', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('PUT', 'DELETE', 'OPTIONS', 'HEAD', 'PATCH', 'TRACE'),
        fc.oneof(
          fc.constantFrom(...ENDPOINTS.map((e) => fillPath(e.path, { id: 'live', name: 'cp', job: 'job-a', subject: 'subj-a' }))),
          hostileString.map((s) => `/v1/${encodeBytes(s)}`),
        ),
        async (method, url) => {
          const res = await send({ method, url });
          if (method !== 'HEAD' && res.statusCode >= 400) expect(res.json().code).toBeTruthy();
        },
      ),
      { numRuns: RUNS, ...SEED },
    );
    for (const url of ['/v1/runs/%', '/v1/subjects/%ff/b', '/v1/runs/%E0%A4%A', '/v1/runs/live/events?afterSeq=%'])
      await send({ method: 'GET', url });
  });

  it('afterwards every hash chain in every namespace verifies', async () => {
    const { rows } = await ledger.database.query<{ namespace: string }>('select distinct namespace from runs');
    let events = 0;
    for (const { namespace } of rows) {
      const result = await ledger.inNamespace(namespace).verify();
      expect(result.problems, namespace).toEqual([]);
      events += result.eventsChecked;
    }
    expect(events).toBeGreaterThan(2);
    // And the store still works normally (no connection left in an aborted transaction).
    const after = await send({
      method: 'POST',
      url: '/v1/runs',
      payload: JSON.stringify({ id: 'after-fuzz', job: 'after' }),
      headers: { 'content-type': 'application/json' },
    });
    expect(after.statusCode).toBe(201);
    expect(
      (await send({ method: 'POST', url: '/v1/runs/after-fuzz/complete', payload: '{}', headers: { 'content-type': 'application/json' } }))
        .statusCode,
    ).toBe(200);
    expect((await ledger.verify('after-fuzz')).ok).toBe(true);
  });
});

describe(`text integrity in the library (${BACKEND})`, () => {
  // Any UTF-16: astral characters, unpaired surrogate halves, NUL, U+FFFD — mostly valid text,
  // so that both outcomes (stored, refused) occur in every run.
  const hostileText = fc
    .array(
      fc.oneof(
        fc.string({ unit: 'binary', maxLength: 3 }),
        fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c)),
        fc.constantFrom('\u0000', '\ufffd', 'a'),
      ),
      { minLength: 1, maxLength: 6 },
    )
    .map((parts) => parts.join(''));
  const validText = fc.string({ unit: 'binary', minLength: 1, maxLength: 8 }).map((t) => t.split('\u0000').join('0'));
  const anyText = fc.oneof({ weight: 4, arbitrary: validText }, { weight: 1, arbitrary: hostileText });

  it(`what the library accepts it stores exactly as hashed (${RUNS} random texts in event and checkpoint fields); the rest is validation_failed`, async () => {
    const run = await ledger.startRun({ id: 'text-integrity', job: 'text' });
    let stored = 0;
    let refused = 0;
    await fc.assert(
      fc.asyncProperty(anyText, anyText, anyText, anyText, async (type, key, ref, value) => {
        const attempts: [() => Promise<unknown>, () => Promise<void>][] = [
          [
            () => run.events([{ type, key: `${key}-${stored + refused}`, body: { [value]: value } }]),
            async () => {
              const { events } = await run.listEvents({ afterSeq: (await run.get()).lastSeq - 1 });
              expect([events[0].type, events[0].key, events[0].body]).toEqual([type, `${key}-${stored + refused}`, { [value]: value }]);
            },
          ],
          [
            () => run.checkpoint({ name: `${key}-${stored + refused}`, kind: type, ref, metadata: { v: value } }),
            async () => {
              const cp = await run.getCheckpoint(`${key}-${stored + refused}`);
              expect([cp.kind, cp.ref, cp.metadata]).toEqual([type, ref, { v: value }]);
            },
          ],
        ];
        for (const [write, check] of attempts) {
          try {
            await write();
          } catch (err) {
            expect((err as { code?: string }).code, String(err)).toBe('validation_failed');
            refused++;
            continue;
          }
          await check();
          stored++;
        }
      }),
      {
        numRuns: RUNS,
        ...SEED,
        examples: [
          ['type', 'key', 'ref', 'value'],
          ['t\ud800', 'k', 'r', 'v'],
        ],
      },
    );
    const verified = await ledger.verify('text-integrity');
    expect(verified.problems).toEqual([]);
    expect(stored).toBeGreaterThan(0);
    expect(refused).toBeGreaterThan(0);
  });
});

describe(`SQL injection in list filters (${BACKEND})`, () => {
  const PAYLOADS = [
    "' or '1'='1",
    "x' or 1=1 --",
    "'; drop table runs; --",
    "') or ('a'='a",
    "\\' or 1=1 --",
    '" or ""="',
    "' union select * from tokens --",
    '%',
    '_',
    '*',
    "$1'",
    '1; select pg_sleep(10)',
    "job-a' --",
    '{"$gt": ""}',
  ];
  let total: number;

  beforeAll(async () => {
    // One run whose every attribute is literally an injection payload: a filter must find exactly it.
    const ns = ledger.inNamespace('sqli');
    for (const [i, p] of PAYLOADS.entries()) {
      const run = await ns.startRun({
        id: `sqli-${i}`,
        job: p,
        subject: p,
        trigger: p,
        actor: p,
        externalIds: { [p]: p },
        tags: { [p]: p },
      });
      await run.complete({});
    }
    await ns.startRun({ id: 'plain', job: 'plain', subject: 'plain', trigger: 'plain', actor: 'plain' });
    total = PAYLOADS.length + 1;
  });

  const get = async (url: string) => {
    const res = await send({ method: 'GET', url: `${url}${url.includes('?') ? '&' : '?'}namespace=sqli` });
    return { status: res.statusCode, body: res.statusCode === 200 ? res.json() : res.json() };
  };

  it('exact-match filters (job, subject, trigger, actor, externalId, tag, missingExternalId) return exactly the matching run', async () => {
    let checked = 0;
    for (const [i, p] of PAYLOADS.entries()) {
      const q = encodeBytes(p);
      // key:value filters split at the first colon: a key holding one cannot be filtered on (docs/limits.md).
      const keyed = p.includes(':') ? [] : [`externalId=${q}:${q}`, `tag=${q}:${q}`];
      for (const filter of [`job=${q}`, `subject=${q}`, `trigger=${q}`, `actor=${q}`, ...keyed]) {
        const r = await get(`/v1/runs?${filter}`);
        expect(r.status, filter).toBe(200);
        expect(
          r.body.runs.map((x: { id: string }) => x.id),
          filter,
        ).toEqual([`sqli-${i}`]);
        checked++;
      }
      const missing = await get(`/v1/runs?missingExternalId=${q}&limit=500`);
      expect(missing.status).toBe(200);
      expect(missing.body.runs.length, `missingExternalId=${p}`).toBe(total - 1);
      const subjects = await get(`/v1/subjects?job=${q}`);
      expect(subjects.body.subjects.map((s: { runId: string }) => s.runId)).toEqual([`sqli-${i}`]);
      const one = await get(`/v1/subjects/${q}/${q}`);
      expect(one.status).toBe(200);
      expect(one.body.runId).toBe(`sqli-${i}`);
      const stats = await get(`/v1/stats?job=${q}`);
      expect(stats.status).toBe(200);
      expect(stats.body.jobs.map((j: { job: string; count: number }) => [j.job, j.count])).toEqual([[p, 1]]);
      checked += 4;
    }
    expect(checked).toBe(PAYLOADS.length * 10 - 2 * PAYLOADS.filter((p) => p.includes(':')).length);
  });

  it('typed filters (status, parentId, times, limit, cursor, afterSeq, bucket) refuse payloads as validation errors', async () => {
    for (const p of PAYLOADS) {
      const q = encodeBytes(p);
      for (const url of [
        `/v1/runs?status=${q}`,
        `/v1/runs?parentId=${q}`,
        `/v1/runs?createdAfter=${q}`,
        `/v1/runs?createdBefore=${q}`,
        `/v1/runs?limit=${q}`,
        `/v1/runs?cursor=${q}`,
        `/v1/subjects?status=${q}`,
        `/v1/subjects?cursor=${q}`,
        `/v1/subjects?limit=${q}`,
        `/v1/runs/plain/events?afterSeq=${q}`,
        `/v1/runs/plain/events?limit=${q}`,
        `/v1/stats?bucket=${q}`,
        `/v1/stats?from=${q}`,
      ]) {
        const r = await get(url);
        // parentId takes run-id characters only: a payload is refused, or (for `*`, `%`…) simply matches nothing.
        if (r.status === 200) expect(r.body.runs ?? r.body.subjects ?? r.body.events, url).toEqual([]);
        else expect([r.status, r.body.code], url).toEqual([400, 'validation_failed']);
      }
    }
    // Nothing was dropped or changed.
    expect((await get('/v1/runs?limit=500')).body.runs.length).toBe(total);
    const { rows } = await ledger.database.query<{ n: number }>('select count(*)::int as n from tokens');
    expect(rows[0].n).toBeGreaterThanOrEqual(0);
  });

  it('there is no sort parameter to inject into: sort, order and orderBy are refused as unknown', async () => {
    for (const param of ['sort', 'order', 'orderBy', 'sortBy']) {
      for (const url of ['/v1/runs', '/v1/subjects', '/v1/runs/plain/events']) {
        const r = await get(`${url}?${param}=${encodeBytes('created_at; drop table runs')}`);
        expect([r.status, r.body.code], `${url}?${param}`).toEqual([400, 'validation_failed']);
        expect(r.body.detail).toContain(param);
      }
    }
  });
});
