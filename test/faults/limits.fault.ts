/**
 * Every documented limit (docs/limits.md), at its boundary: the largest allowed value is
 * accepted, one more is refused with the documented status and a problem naming the
 * field and the limit, and nothing is stored by a refused request.
 */
import net from 'node:net';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { buildServer, createToken, LIMITS, type OpenedLedger } from '../../src/index.js';
import { createRateLimiter, DEFAULT_RATE_LIMIT, resolveRateLimit } from '../../src/server/rate-limit.js';
import { BACKEND, dropSchemas, freshStore } from '../helpers.js';
import { api, expectProblem } from '../server/support.js';
import { freePort, startServe } from './support.js';

let ledger: OpenedLedger;
let app: Awaited<ReturnType<typeof buildServer>>;
let call: ReturnType<typeof api>;
let n = 0;
const fresh = async () => {
  const id = `lim-${++n}`;
  expect((await call('POST', '/v1/runs', { id, job: 'limits' })).status).toBe(201);
  return id;
};
const eventCount = async (id: string) => (await call('GET', `/v1/runs/${id}`)).body.lastSeq as number;

beforeAll(async () => {
  ledger = await freshStore();
  app = await buildServer({ ledger, auth: 'off' });
  call = api(app);
});
afterAll(async () => {
  await app?.close();
  await ledger?.close();
  await dropSchemas();
});

const nest = (depth: number): unknown => (depth === 0 ? 1 : { a: nest(depth - 1) });

/** Over a raw socket: headers promise a 40-byte body, half of it arrives, the rest never does. */
function sendHalfABody(port: number): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk) => (text += chunk));
    socket.on('error', reject);
    socket.on('close', () => resolve({ text, closed: true }));
    socket.write('POST /v1/runs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 40\r\n\r\n{"job":"slow-');
    setTimeout(() => reject(new Error(`no answer after 10 s; got ${JSON.stringify(text)}`)), 10_000).unref();
  });
}

describe(`limits (${BACKEND})`, () => {
  it('body size: the default is 10 MB; a larger body is 413 payload_too_large naming the limit; the limit is configurable', async () => {
    const id = await fresh();
    const big = JSON.stringify({ events: [{ type: 'big', body: { s: 'x'.repeat(10 * 1024 * 1024) } }] });
    const res = await call('POST', `/v1/runs/${id}/events`, big, { 'content-type': 'application/json' });
    const p = expectProblem(res, 413, 'payload_too_large');
    expect(p.detail).toContain(String(10 * 1024 * 1024));
    expect(await eventCount(id)).toBe(1);

    const small = await buildServer({ ledger, auth: 'off', bodyLimit: 1000 });
    try {
      const body = (len: number) => {
        const skeleton = JSON.stringify({ job: 'limits', notes: '' });
        return JSON.stringify({ job: 'limits', notes: 'n'.repeat(len - skeleton.length) });
      };
      expect(body(1000).length).toBe(1000);
      expect((await api(small)('POST', '/v1/runs', body(1000), { 'content-type': 'application/json' })).status).toBe(201);
      expectProblem(await api(small)('POST', '/v1/runs', body(1001), { 'content-type': 'application/json' }), 413, 'payload_too_large');
    } finally {
      await small.close();
    }
  });

  it(`batch size: ${LIMITS.eventBatch} events per append and ${LIMITS.importBatch} records per import; one more is 400 and stores nothing`, async () => {
    const id = await fresh();
    const events = (k: number) => ({ events: Array.from({ length: k }, (_, i) => ({ key: `k${k}-${i}`, type: 'step' })) });
    expect((await call('POST', `/v1/runs/${id}/events`, events(LIMITS.eventBatch))).status).toBe(200);
    const p = expectProblem(await call('POST', `/v1/runs/${id}/events`, events(LIMITS.eventBatch + 1)), 400, 'validation_failed');
    expect(p.detail).toContain(String(LIMITS.eventBatch));
    expect(await eventCount(id)).toBe(1 + LIMITS.eventBatch);
    expectProblem(await call('POST', `/v1/runs/${id}/events`, { events: [] }), 400, 'validation_failed');

    const records = (k: number, tag: string) => ({
      source: `limits-${tag}`,
      runs: Array.from({ length: k }, (_, i) => ({
        sourceId: `s${i}`,
        job: 'imported',
        status: 'completed',
        finishedAt: '2025-01-01T00:00:00Z',
      })),
    });
    const ok = await call('POST', '/v1/imports', records(LIMITS.importBatch, 'ok'));
    expect([ok.status, ok.body.inserted]).toEqual([200, LIMITS.importBatch]);
    const over = await call('POST', '/v1/imports', records(LIMITS.importBatch + 1, 'over'));
    expect(expectProblem(over, 400, 'validation_failed').detail).toContain(String(LIMITS.importBatch));
    const { rows } = await ledger.database.query<{ n: number }>(`select count(*)::int as n from runs where source = 'limits-over'`);
    expect(rows[0].n).toBe(0);
  });

  it('JSON depth: 64 levels of arrays/objects (the body itself is level 1) pass; 65 is 400 naming the limit and the place; configurable', async () => {
    const id = await fresh();
    // { events: [ { body: <d levels> } ] } = 3 levels around the event body.
    const at = (bodyDepth: number) => ({ events: [{ key: `d${bodyDepth}`, type: 'deep', body: nest(bodyDepth) }] });
    expect((await call('POST', `/v1/runs/${id}/events`, at(61))).status).toBe(200);
    const p = expectProblem(await call('POST', `/v1/runs/${id}/events`, at(62)), 400, 'validation_failed');
    expect(p.detail).toContain('deeper than 64 levels');
    expect(p.errors[0]).toMatchObject({ field: expect.stringMatching(/^events\.0\.body\.a\.a/), limit: 64 });
    // Far deeper (stack-overflow territory for recursive code) is the same clean 400.
    const deep = `{"events":[{"type":"deep","body":${'['.repeat(200_000)}${']'.repeat(200_000)}}]}`;
    expectProblem(await call('POST', `/v1/runs/${id}/events`, deep, { 'content-type': 'application/json' }), 400, 'validation_failed');
    expect(await eventCount(id)).toBe(2);

    const shallow = await buildServer({ ledger, auth: 'off', jsonDepth: 4 });
    try {
      // body (1) → params (2) → a (3) → b (4)
      expect((await api(shallow)('POST', '/v1/runs', { job: 'limits', params: { a: { b: { c: 1 } } } })).status).toBe(201);
      expectProblem(
        await api(shallow)('POST', '/v1/runs', { job: 'limits', params: { a: { b: { c: { d: 1 } } } } }),
        400,
        'validation_failed',
      );
    } finally {
      await shallow.close();
    }
  });

  it('string lengths: each named field at its maximum is stored; one character more is 400 naming the field', async () => {
    const s = (k: number) => 'x'.repeat(k);
    const cases: [string, number, (v: string) => unknown][] = [
      ['id', LIMITS.idLength, (v) => ({ id: v, job: 'limits' })],
      ['job', LIMITS.nameLength, (v) => ({ job: v })],
      ['subject', LIMITS.subjectLength, (v) => ({ job: 'limits', subject: v })],
      ['trigger', LIMITS.nameLength, (v) => ({ job: 'limits', trigger: v })],
      ['actor', LIMITS.nameLength, (v) => ({ job: 'limits', actor: v })],
      ['notes', LIMITS.notesLength, (v) => ({ job: 'limits', notes: v })],
      ['tags.k', LIMITS.tagValueLength, (v) => ({ job: 'limits', tags: { k: v } })],
      ['externalIds.k', LIMITS.externalIdValueLength, (v) => ({ job: 'limits', externalIds: { k: v } })],
    ];
    for (const [field, max, body] of cases) {
      expect((await call('POST', '/v1/runs', body(s(max)))).status, `${field} at ${max}`).toBe(201);
      const p = expectProblem(await call('POST', '/v1/runs', body(s(max + 1))), 400, 'validation_failed');
      expect(
        p.errors.map((e) => e.field),
        field,
      ).toContain(field);
    }
    const tags = (k: number) => Object.fromEntries(Array.from({ length: k }, (_, i) => [`t${i}`, 'v']));
    expect((await call('POST', '/v1/runs', { job: 'limits', tags: tags(LIMITS.tagCount) })).status).toBe(201);
    expectProblem(await call('POST', '/v1/runs', { job: 'limits', tags: tags(LIMITS.tagCount + 1) }), 400, 'validation_failed');

    const id = await fresh();
    const eventCases: [string, (v: string) => unknown][] = [
      ['events.0.type', (v) => ({ events: [{ type: v }] })],
      ['events.0.key', (v) => ({ events: [{ type: 't', key: v }] })],
    ];
    for (const [field, body] of eventCases) {
      expect((await call('POST', `/v1/runs/${id}/events`, body(s(LIMITS.nameLength)))).status, field).toBe(200);
      const p = expectProblem(await call('POST', `/v1/runs/${id}/events`, body(s(LIMITS.nameLength + 1))), 400, 'validation_failed');
      expect(p.errors.map((e) => e.field)).toContain(field);
    }
    expect((await call('POST', `/v1/runs/${id}/checkpoints`, { name: s(LIMITS.nameLength), metadata: {} })).status).toBe(201);
    expectProblem(
      await call('POST', `/v1/runs/${id}/checkpoints`, { name: s(LIMITS.nameLength + 1), metadata: {} }),
      400,
      'validation_failed',
    );
  });

  it('text PostgreSQL cannot store as sent (U+0000, unpaired surrogates) is 400 naming the field, in the body, the query and the path', async () => {
    const id = await fresh();
    for (const [body, field] of [
      [`{"events":[{"type":"t","body":{"a":"x\\u0000"}}]}`, 'events.0.body.a'],
      [`{"events":[{"type":"\\ud800"}]}`, 'events.0.type'],
      [`{"events":[{"type":"t","body":{"\\udc00":1}}]}`, 'events.0.body."\\udc00"'],
    ] as const) {
      const p = expectProblem(
        await call('POST', `/v1/runs/${id}/events`, body, { 'content-type': 'application/json' }),
        400,
        'validation_failed',
      );
      expect(p.errors[0].field).toBe(field);
    }
    expectProblem(await call('GET', '/v1/runs?job=%00'), 400, 'validation_failed');
    expectProblem(await call('GET', '/v1/subjects/a%00/b'), 400, 'validation_failed');
    expect(await eventCount(id)).toBe(1);
  });

  it(`page size: runs and subjects 1–${LIMITS.pageSize}, events 1–${LIMITS.eventPageSize}; outside is 400, not clamped`, async () => {
    const id = await fresh();
    for (const [url, max] of [
      ['/v1/runs', LIMITS.pageSize],
      ['/v1/subjects', LIMITS.pageSize],
      [`/v1/runs/${id}/events`, LIMITS.eventPageSize],
    ] as const) {
      expect((await call('GET', `${url}?limit=${max}`)).status, url).toBe(200);
      for (const bad of [0, max + 1, -1, 1.5]) {
        const p = expectProblem(await call('GET', `${url}?limit=${bad}`), 400, 'validation_failed');
        expect(p.errors[0].field).toBe('limit');
      }
    }
  });

  it('path parameters beyond the router limit (8192 characters) and headers beyond 16 KB are problem+json', async () => {
    const res = await call('GET', `/v1/subjects/j/${'s'.repeat(9000)}`);
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
    expect(String(res.headers['content-type'])).toMatch(/^application\/problem\+json/);
    // Node's HTTP parser refuses oversized headers before Fastify: over a real socket.
    const port = await freePort();
    await app.listen({ port, host: '127.0.0.1' });
    try {
      const long = await fetch(`http://127.0.0.1:${port}/v1/runs?job=${'j'.repeat(20_000)}`);
      expect(long.status).toBe(431);
      expect(long.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(((await long.json()) as { code: string }).code).toBe('validation_failed');
    } finally {
      await app.close();
      app = await buildServer({ ledger, auth: 'off' });
      call = api(app);
    }
  });

  it('request time: a body trickled slower than the request timeout is answered 408 and its connection closed; nothing is stored', async () => {
    const slow = await buildServer({ ledger, auth: 'off', requestTimeoutMs: 400 });
    const port = await freePort();
    await slow.listen({ port, host: '127.0.0.1' });
    try {
      const before = (await ledger.listRuns({ job: 'slow-body' })).runs.length;
      const started = Date.now();
      const answer = await sendHalfABody(port);
      expect(answer.text).toMatch(/^HTTP\/1\.1 408 /);
      expect(answer.text).toMatch(/content-type: application\/problem\+json/i);
      expect(answer.text).toContain('"code":"validation_failed"');
      expect(answer.closed).toBe(true);
      // Within the timeout and Node's checking interval (a quarter of it), with slack for a loaded machine.
      expect(Date.now() - started).toBeLessThan(5000);
      expect((await ledger.listRuns({ job: 'slow-body' })).runs.length).toBe(before);
      // A request sent in time is served as usual.
      const ok = await fetch(`http://127.0.0.1:${port}/v1/runs`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ job: 'fast-body' }),
      });
      expect(ok.status).toBe(201);
    } finally {
      await slow.close();
    }
  });
});

describe(`rate limit (${BACKEND})`, () => {
  it('a token bucket per token: the burst passes, the next is 429 rate_limited with Retry-After; other tokens and /healthz are unaffected', async () => {
    const a = await createToken(ledger.database, { namespace: 'rl', scope: 'write' });
    const b = await createToken(ledger.database, { namespace: 'rl', scope: 'read' });
    const limited = await buildServer({ ledger, auth: 'required', rateLimit: { perSecond: 1, burst: 5 } });
    try {
      const asA = api(limited, { token: a.token });
      for (let i = 0; i < 5; i++) expect((await asA('GET', '/v1/runs?namespace=rl')).status).toBe(200);
      const res = await asA('POST', '/v1/runs?namespace=rl', { job: 'limited' });
      expectProblem(res, 429, 'rate_limited');
      expect(Number(res.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      expect((await asA('GET', '/v1/runs?namespace=rl&job=limited')).status).toBe(429);
      expect((await api(limited, { token: b.token })('GET', '/v1/runs?namespace=rl&job=limited')).body.runs).toEqual([]);
      expect((await api(limited)('GET', '/healthz')).status).toBe(200);
    } finally {
      await limited.close();
    }
  });

  it('refills at the configured rate; Retry-After is the whole seconds until the next request may pass', () => {
    let t = 0;
    const limiter = createRateLimiter({ perSecond: 0.5, burst: 2 }, () => t);
    const who = { tokenId: 'x', namespace: 'default', ip: '127.0.0.1', scope: 'read' as const };
    expect([limiter(who), limiter(who)]).toEqual([{ allowed: true }, { allowed: true }]);
    expect(limiter(who)).toEqual({ allowed: false, retryAfterS: 2 });
    t = 1000;
    expect(limiter(who)).toEqual({ allowed: false, retryAfterS: 1 });
    t = 2000;
    expect(limiter(who)).toEqual({ allowed: true });
    // Without tokens the bucket is per client address.
    expect(limiter({ ...who, tokenId: null })).toEqual({ allowed: true });
    expect(limiter.size).toBe(2);
  });

  it(`is on by default with tokens (${DEFAULT_RATE_LIMIT.perSecond}/s, bursts of ${DEFAULT_RATE_LIMIT.burst}) and off without tokens unless set`, async () => {
    // The default limiter, driven synchronously (microseconds: nothing refills meanwhile).
    const byDefault = resolveRateLimit(undefined, 'required')!;
    const who = { tokenId: 't', namespace: 'default', ip: '127.0.0.1', scope: 'read' as const };
    const decisions = Array.from({ length: DEFAULT_RATE_LIMIT.burst + 1 }, () => byDefault(who) as { allowed: boolean });
    expect(decisions.filter((d) => d.allowed).length).toBe(DEFAULT_RATE_LIMIT.burst);
    expect(decisions[DEFAULT_RATE_LIMIT.burst]).toEqual({ allowed: false, retryAfterS: 1 });
    expect(resolveRateLimit(undefined, 'off')).toBeUndefined();
    expect(resolveRateLimit(false, 'required')).toBeUndefined();

    const openLimited = await buildServer({ ledger, auth: 'off', rateLimit: { perSecond: 1, burst: 3 } });
    try {
      const few = await Promise.all(Array.from({ length: 5 }, () => api(openLimited)('GET', '/v1/verify?namespace=rl-default')));
      expect(few.map((r) => r.status).sort()).toEqual([200, 200, 200, 429, 429]);
    } finally {
      await openLimited.close();
    }
  });

  it.skipIf(BACKEND !== 'pglite')(
    '`runledger serve --request-timeout-s N` sets the request timeout (408 over a real socket; backend-independent)',
    async () => {
      const server = await startServe(['--data-dir', 'memory://'], await freePort(), ['--request-timeout-s', '1']);
      try {
        const started = Date.now();
        const answer = await sendHalfABody(Number(new URL(server.url).port));
        expect(answer.text).toMatch(/^HTTP\/1\.1 408 /);
        expect(Date.now() - started).toBeLessThan(8000);
      } finally {
        await server.stop();
      }
    },
  );

  it.skipIf(BACKEND !== 'pglite')(
    '`runledger serve --rate-limit N` sets it (429 over a real socket; the option is backend-independent)',
    async () => {
      const server = await startServe(['--data-dir', 'memory://'], await freePort(), ['--rate-limit', '2']);
      try {
        const answers = await Promise.all(Array.from({ length: 12 }, () => fetch(`${server.url}/v1/runs`)));
        const statuses = answers.map((r) => r.status);
        expect(statuses.filter((s) => s === 200).length).toBeGreaterThanOrEqual(4);
        const refused = answers.find((r) => r.status === 429)!;
        expect(refused, String(statuses)).toBeDefined();
        expect(refused.headers.get('retry-after')).toBe('1');
        expect(refused.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      } finally {
        await server.stop();
      }
    },
  );
});
