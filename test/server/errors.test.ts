/**
 * Client mistakes are problem+json 4xx, never 500, and store nothing; a real server
 * fault is a 500 that shows no internals.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { buildServer, type OpenedLedger } from '../../src/index.js';
import { dropSchemas, freshStore } from '../helpers.js';
import { api, expectProblem } from './support.js';

let ledger: OpenedLedger;
let app: Awaited<ReturnType<typeof buildServer>>;
let call: ReturnType<typeof api>;

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

const runCount = async () => (await ledger.listRuns({ limit: 500 })).runs.length;

describe('malformed requests', () => {
  it('malformed JSON is 400 validation_failed with the parser’s reason; nothing is stored', async () => {
    const before = await runCount();
    const p = expectProblem(
      await call('POST', '/v1/runs', '{"job": "j",', { 'content-type': 'application/json' }),
      400,
      'validation_failed',
    );
    expect(p.detail).toMatch(/^request body is not valid JSON: /);
    expect(await runCount()).toBe(before);
  });

  it('a body that is not a JSON object is 400', async () => {
    for (const body of ['[1,2]', '"text"', '42', 'null']) {
      const p = expectProblem(await call('POST', '/v1/runs', body, { 'content-type': 'application/json' }), 400, 'validation_failed');
      expect(p.detail).toMatch(/request body must be a JSON object|job is required/);
    }
  });

  it('bodies the ledger validates (server checks only the envelope) still fail field by field, as 400s that store nothing', async () => {
    const run = await ledger.startRun({ job: 'envelope', subject: 's' });
    const json = { 'content-type': 'application/json' };
    const cases: [string, string, string, RegExp][] = [
      ['/v1/runs', '{"job":""}', 'job', /job must be 1–200 characters/],
      ['/v1/runs', '{"job":"j","leaseS":0}', 'leaseS', /leaseS must be 1–604800/],
      [`/v1/runs/${run.id}/events`, '{"events":[{"type":"t","level":"loud"}]}', 'events.0.level', /"loud"/],
      [`/v1/runs/${run.id}/events`, '{"events":"x"}', 'events', /events must be an array/],
      [`/v1/runs/${run.id}/events`, '{"events":[{"type":"t"}],"extra":1}', '', /unknown field\(s\) extra/],
      [`/v1/runs/${run.id}/complete`, '{"outptu":1}', '', /unknown field\(s\) outptu/],
      [`/v1/runs/${run.id}/fail`, '{"error":{}}', 'error.message', /error\.message/],
      [`/v1/runs/${run.id}/cancel`, '{"reason":5}', 'reason', /reason/],
      [`/v1/runs/${run.id}/checkpoints`, '{"name":"c","metadata":"x"}', 'metadata', /metadata/],
      [`/v1/runs/${run.id}/complete`, '[1]', 'body', /request body must be a JSON object/],
    ];
    for (const [path, body, field, message] of cases) {
      const p = expectProblem(await call('POST', path, body, json), 400, 'validation_failed');
      expect(p.detail, `${path} ${body}`).toMatch(message);
      if (field)
        expect(
          (p.errors as { field?: string }[]).map((e) => e.field),
          `${path} ${body}`,
        ).toContain(field);
    }
    const after = await ledger.getRun(run.id);
    expect(after.status).toBe('running');
    expect(after.lastSeq).toBe(run.run.lastSeq);
    expect(await run.listCheckpoints()).toEqual([]);
  });

  it('the wrong shape reads the same over HTTP as in process, in our words: fail({ error: "msg" })', async () => {
    const run = await ledger.startRun({ job: 'shapes', subject: 's' });
    const json = { 'content-type': 'application/json' };
    for (const [path, body, inProcessCall] of [
      [`/v1/runs/${run.id}/fail`, { error: 'disk full' }, () => run.fail({ error: 'disk full' } as never)],
      [`/v1/runs/${run.id}/fail`, { error: { message: 5 } }, () => run.fail({ error: { message: 5 } } as never)],
      [`/v1/runs/${run.id}/events`, { events: ['progress'] }, () => run.events(['progress'] as never)],
      [`/v1/runs/${run.id}/complete`, { notes: 7 }, () => run.complete({ notes: 7 } as never)],
    ] as const) {
      const p = expectProblem(await call('POST', path, JSON.stringify(body), json), 400, 'validation_failed');
      const inProcess = await inProcessCall().then(
        () => 'succeeded',
        (err: Error) => err.message,
      );
      expect(p.detail).toBe(inProcess);
      expect(p.detail).not.toMatch(/Invalid input|expected \w+, received/);
      expect(p.detail).toMatch(/got /);
    }
    expect((await ledger.getRun(run.id)).status).toBe('running');
  });

  it('prototype poisoning in JSON is refused with 400', async () => {
    const res = await call('POST', '/v1/runs', '{"job":"j","__proto__":{"admin":true}}', { 'content-type': 'application/json' });
    expectProblem(res, 400, 'validation_failed');
  });

  it('a content type other than JSON is 415 validation_failed naming it', async () => {
    const p = expectProblem(
      await call('POST', '/v1/runs', 'job=j', { 'content-type': 'application/x-www-form-urlencoded' }),
      415,
      'validation_failed',
    );
    expect(p.detail).toContain('application/x-www-form-urlencoded');
    expectProblem(await call('POST', '/v1/runs', 'job', { 'content-type': 'text/plain' }), 415, 'validation_failed');
  });

  it('an empty body is an absent one: POST …/start needs none, POST /v1/runs says what is missing', async () => {
    const run = await ledger.startRun({ job: 'j', status: 'submitted' });
    const res = await call('POST', `/v1/runs/${run.id}/start`, '', { 'content-type': 'application/json' });
    expect(res.status).toBe(200);
    expect(
      expectProblem(await call('POST', '/v1/runs', '', { 'content-type': 'application/json' }), 400, 'validation_failed').detail,
    ).toContain('job is required');
  });

  it('a body over the limit is 413 payload_too_large (default 10 MB); nothing is stored', async () => {
    const before = await runCount();
    const big = JSON.stringify({ job: 'j', notes: 'x', params: { blob: 'x'.repeat(10 * 1024 * 1024) } });
    const p = expectProblem(await call('POST', '/v1/runs', big, { 'content-type': 'application/json' }), 413, 'payload_too_large');
    expect(p.detail).toContain(String(10 * 1024 * 1024));
    expect(await runCount()).toBe(before);
  });

  it('the body limit is configurable', async () => {
    const small = await buildServer({ ledger, auth: 'off', bodyLimit: 1024 });
    try {
      const res = await api(small)('POST', '/v1/runs', { job: 'j', notes: 'x'.repeat(2000) });
      expectProblem(res, 413, 'payload_too_large');
      expect((await api(small)('POST', '/v1/runs', { job: 'j', notes: 'short' })).status).toBe(201);
    } finally {
      await small.close();
    }
  });
});

describe('unknown routes and methods', () => {
  it('are 404 not_found problems', async () => {
    for (const [method, url] of [
      ['GET', '/v1/nothing'],
      ['GET', '/nothing'],
      ['DELETE', '/v1/runs/x'],
      ['PUT', '/v1/runs'],
      ['GET', '/v2/runs'],
    ] as const) {
      const p = expectProblem(await call(method, url), 404, 'not_found');
      expect(p.detail).toContain(url);
    }
  });
});

describe('server faults', () => {
  it('a database failure is a 5xx problem that shows no internals', async () => {
    const broken = await freshStore();
    const app2 = await buildServer({ ledger: broken, auth: 'off' });
    try {
      await broken.close();
      const res = await api(app2)('GET', '/v1/runs');
      expect(res.status).toBeGreaterThanOrEqual(500);
      expect(String(res.headers['content-type'])).toMatch(/^application\/problem\+json/);
      expect(Object.keys(res.body).sort()).toEqual(['code', 'detail', 'errors', 'status', 'title', 'type']);
      expect(res.body.detail).toMatch(/^(internal server error|the database is unavailable; try again)$/);
      expect(res.text).not.toMatch(/pool|PGlite|closed|at .*\.ts|stack/i);
    } finally {
      await app2.close();
    }
  });
});

describe('bodies read back exactly or are refused, naming where', () => {
  const json = { 'content-type': 'application/json' };
  const post = (body: string | Buffer, headers: Record<string, string> = json) => call('POST', '/v1/runs', body, headers);
  const jobRuns = async (job: string) => (await ledger.listRuns({ job, limit: 10 })).runs;

  it('bytes that are not UTF-8 are 400 naming the byte; a charset other than UTF-8 is 415; nothing is stored', async () => {
    const bad = Buffer.concat([Buffer.from('{"job":"utf8-bad","notes":"caf'), Buffer.from([0xe9]), Buffer.from('"}')]);
    const p = expectProblem(await post(bad), 400, 'validation_failed');
    expect(p.detail).toBe('request body is not valid UTF-8 (a malformed byte sequence at byte 30); JSON bodies must be UTF-8');
    const latin1 = expectProblem(
      await post('{"job":"utf8-bad"}', { 'content-type': 'application/json; charset=iso-8859-1' }),
      415,
      'validation_failed',
    );
    expect(latin1.detail).toContain('"iso-8859-1"');
    expect(await jobRuns('utf8-bad')).toEqual([]);
    // Declared UTF-8 (any spelling) is fine, and multi-byte text reads back exactly.
    const ok = await post('{"job":"utf8-ok","notes":"café 💥"}', { 'content-type': 'application/json; charset=UTF-8' });
    expect(ok.status).toBe(201);
    expect((ok.body as { notes: string }).notes).toBe('café 💥');
  });

  it('a key twice in one object is 400 naming the key and where; nothing is stored', async () => {
    const top = expectProblem(await post('{"job":"dup-a","job":"dup-b"}'), 400, 'validation_failed');
    expect(top.detail).toBe('job: the key "job" appears twice in one object; send each key once');
    const nested = expectProblem(await post('{"job":"dup-c","params":{"list":[{"x":1},{"y":1,"y":2}]}}'), 400, 'validation_failed');
    expect(nested.detail).toMatch(/^params\.list\.1\.y: the key "y" appears twice/);
    for (const job of ['dup-a', 'dup-b', 'dup-c']) expect(await jobRuns(job)).toEqual([]);
    // The same key in different objects is not a duplicate.
    expect((await post('{"job":"dup-ok","params":{"a":{"x":1},"b":{"x":1}}}')).status).toBe(201);
  });

  it('integers beyond 2^53 − 1 are 400 naming the field (never rounded); the largest exact ones read back exactly', async () => {
    const p = expectProblem(await post('{"job":"big-int","params":{"n":9007199254740993}}'), 400, 'validation_failed');
    expect(p.detail).toBe(
      'params.n: the integer 9007199254740993 cannot be stored exactly (JSON numbers are doubles: it would become 9007199254740992); send it as a string',
    );
    expectProblem(await post('{"job":"big-int","params":{"n":[1,-99999999999999999999]}}'), 400, 'validation_failed');
    expect(await jobRuns('big-int')).toEqual([]);
    const ok = await post(
      '{"job":"big-int-ok","params":{"max":9007199254740991,"min":-9007199254740991,"float":1e300,"exactDouble":100000000000000000000,"text":"9007199254740993"}}',
    );
    expect(ok.status).toBe(201);
    expect((ok.body as { params: unknown }).params).toEqual({
      max: 9007199254740991,
      min: -9007199254740991,
      float: 1e300,
      exactDouble: 1e20,
      text: '9007199254740993',
    });
    // On the completion path too (output, statistics).
    const run = (ok.body as { id: string }).id;
    const complete = expectProblem(
      await call('POST', `/v1/runs/${run}/complete`, '{"statistics":{"rows":12345678901234567890}}', json),
      400,
      'validation_failed',
    );
    expect(complete.detail).toMatch(/^statistics\.rows: the integer 12345678901234567890 cannot be stored exactly/);
    expect((await ledger.getRun(run)).status).toBe('running');
  });

  it('a __proto__ key is refused saying why, naming where', async () => {
    const p = expectProblem(await post('{"job":"proto","params":{"__proto__":{"admin":true}}}'), 400, 'validation_failed');
    expect(p.detail).toBe('params.__proto__: the key "__proto__" is not allowed (it could change object prototypes)');
    expectProblem(await post('{"job":"proto","params":{"constructor":{"prototype":{}}}}'), 400, 'validation_failed');
    // A key named constructor alone is ordinary data.
    expect((await post('{"job":"proto-ok","params":{"constructor":"x"}}')).status).toBe(201);
  });
});
