/**
 * startServer and the operations endpoints: binding and auth rules, the reaper loop,
 * the data-dir lock's server URL, graceful close, structured logs, /healthz, /readyz,
 * /metrics, /openapi.json, /docs and the embedded dashboard.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { buildServer, type OpenedLedger, openLedger, type RunningServer, startServer } from '../../src/index.js';
import { isLoopback } from '../../src/server/serve.js';
import { dropSchemas, freshStore, onPostgres, rejectsWith, sleep } from '../helpers.js';
import { api, expectProblem } from './support.js';

let ledger: OpenedLedger;
const quiet = { logger: false, webRoot: false as const };
const PACKAGE_VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

beforeAll(async () => {
  ledger = await freshStore();
});
afterAll(async () => {
  await ledger?.close();
  await dropSchemas();
});

describe('startServer', () => {
  it('refuses a non-loopback address without authentication', async () => {
    const err = await rejectsWith(startServer({ ledger, host: '0.0.0.0', port: 0, auth: 'off', ...quiet }), 'configuration');
    expect(err.message).toContain('0.0.0.0');
    await rejectsWith(startServer({ ledger, port: 0, auth: 'sometimes' as 'off', ...quiet }), 'configuration');
    await rejectsWith(startServer({ ledger, port: 70_000, ...quiet }), 'configuration');
  });

  it('loopback addresses are recognised', () => {
    for (const h of ['127.0.0.1', 'localhost', '::1', '[::1]', '127.1.2.3']) expect(isLoopback(h), h).toBe(true);
    for (const h of ['0.0.0.0', '::', '10.0.0.1', 'example.com']) expect(isLoopback(h), h).toBe(false);
  });

  it('auth auto is off on loopback; auth required asks for a token there too', async () => {
    const open = await startServer({ ledger, port: 0, reapIntervalS: 0, ...quiet });
    const locked = await startServer({ ledger, port: 0, auth: 'required', reapIntervalS: 0, ...quiet });
    try {
      expect(open.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect((await fetch(`${open.url}/v1/runs`)).status).toBe(200);
      expect((await fetch(`${locked.url}/v1/runs`)).status).toBe(401);
    } finally {
      await open.close();
      await locked.close();
    }
  });

  it('runs the reaper: a run that stops heartbeating is timed out (lease_expired) and counted in /metrics', async () => {
    const server = await startServer({ ledger, port: 0, reapIntervalS: 0.2, ...quiet });
    try {
      const run = await ledger.startRun({ job: 'reaped', leaseS: 1 });
      let status = run.run.status as string;
      while (status !== 'timed_out') {
        await sleep(200);
        status = (await ledger.getRun(run.id)).status;
      }
      expect((await ledger.getRun(run.id)).error).toMatchObject({ type: 'lease_expired' });
      const metrics = await (await fetch(`${server.url}/metrics`)).text();
      expect(metrics).toMatch(/runledger_reaper_actions_total\{action="timed_out"\} [1-9]/);
      expect(metrics).toMatch(/runledger_runs_finished_total\{status="timed_out"\} [1-9]/);
    } finally {
      await server.close();
    }
  });

  it('close() lets an in-flight request finish', async () => {
    let arrived!: () => void;
    const atHook = new Promise<void>((r) => (arrived = r));
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const server = await startServer({
      ledger,
      port: 0,
      reapIntervalS: 0,
      ...quiet,
      // The rate-limit hook runs inside the request: a handy place to hold it mid-flight.
      rateLimit: async () => {
        arrived();
        await gate;
        return { allowed: true };
      },
    });
    const inFlight = fetch(`${server.url}/v1/runs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ job: 'in-flight' }),
    });
    await atHook;
    const closed = server.close();
    release();
    const res = await inFlight;
    expect(res.status).toBe(201);
    const run = await res.json();
    await closed;
    expect((await ledger.getRun(run.id)).job).toBe('in-flight');
    await expect(fetch(`${server.url}/healthz`)).rejects.toThrow();
  });

  it('writes structured (JSON) logs', async () => {
    const lines: string[] = [];
    const stream = new Writable({
      write(chunk, _enc, done) {
        lines.push(...String(chunk).split('\n').filter(Boolean));
        done();
      },
    });
    const server = await startServer({ ledger, port: 0, reapIntervalS: 0, webRoot: false, logger: { level: 'info', stream } });
    try {
      await fetch(`${server.url}/v1/runs/nope`);
    } finally {
      await server.close();
    }
    const records = lines.map((l) => JSON.parse(l));
    expect(records.find((r) => r.msg === 'runledger server listening')).toMatchObject({ url: server.url, auth: 'off' });
    expect(records.find((r) => r.msg === 'request completed' && r.res?.statusCode === 404)).toMatchObject({ reqId: expect.anything() });
  });

  it.skipIf(onPostgres)('records its URL in the embedded data directory’s lock (embedded store only)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'runledger-serve-'));
    const embedded = await openLedger({ dataDir: dir });
    const server = await startServer({ ledger: embedded, port: 0, reapIntervalS: 0, ...quiet });
    try {
      const lock = JSON.parse(await readFile(join(dir, 'runledger.lock'), 'utf8'));
      expect(lock).toMatchObject({ pid: process.pid, serverUrl: server.url });
    } finally {
      await server.close();
      await embedded.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('operations endpoints', () => {
  it('/healthz is 200; /readyz is 200 while the database answers and 503 when it does not', async () => {
    const store = await freshStore();
    const app = await buildServer({ ledger: store, auth: 'off' });
    try {
      const call = api(app);
      // The version is package.json's, the same one `runledger --version` prints.
      expect((await call('GET', '/healthz')).body).toEqual({ status: 'ok', version: PACKAGE_VERSION });
      expect((await call('GET', '/readyz')).status).toBe(200);
      await store.close();
      const res = await call('GET', '/readyz');
      expectProblem(res, 503, 'unavailable');
      expect(res.body.detail).not.toMatch(/pool|PGlite|ECONN/);
      expect((await call('GET', '/healthz')).status).toBe(200);
    } finally {
      await app.close();
    }
  });

  it('/metrics counts runs started and finished by status, events appended and request latency', async () => {
    const app = await buildServer({ ledger, auth: 'off' });
    try {
      const call = api(app);
      const run = (await call('POST', '/v1/runs', { job: 'm' })).body;
      await call('POST', `/v1/runs/${run.id}/events`, { events: [{ type: 'a' }, { type: 'b' }, { key: 'k', type: 'c' }] });
      await call('POST', `/v1/runs/${run.id}/events`, { events: [{ key: 'k', type: 'c' }] });
      await call('POST', `/v1/runs/${run.id}/fail`, { error: { message: 'x' } });
      const res = await call('GET', '/metrics');
      expect(res.status).toBe(200);
      expect(String(res.headers['content-type'])).toMatch(/^text\/plain/);
      expect(res.text).toContain('runledger_runs_started_total{status="running"} 1');
      expect(res.text).toContain('runledger_runs_finished_total{status="failed"} 1');
      expect(res.text).toContain('runledger_events_appended_total 3');
      expect(res.text).toMatch(/runledger_http_request_duration_seconds_count\{method="POST",route="\/v1\/runs",status_code="201"\} 1/);
    } finally {
      await app.close();
    }
  });

  it('/openapi.json documents every endpoint with request schemas from the validating zod schemas; /docs renders it', async () => {
    const app = await buildServer({ ledger, auth: 'off' });
    try {
      const call = api(app);
      const doc = (await call('GET', '/openapi.json')).body;
      expect(doc.openapi).toBe('3.1.0');
      const expected: [string, string][] = [
        ['post', '/v1/runs'],
        ['get', '/v1/runs'],
        ['get', '/v1/runs/{id}'],
        ['patch', '/v1/runs/{id}'],
        ['post', '/v1/runs/{id}/start'],
        ['post', '/v1/runs/{id}/heartbeat'],
        ['post', '/v1/runs/{id}/complete'],
        ['post', '/v1/runs/{id}/fail'],
        ['post', '/v1/runs/{id}/cancel'],
        ['post', '/v1/runs/{id}/retry'],
        ['post', '/v1/runs/{id}/events'],
        ['get', '/v1/runs/{id}/events'],
        ['get', '/v1/runs/{id}/events/stream'],
        ['post', '/v1/runs/{id}/checkpoints'],
        ['get', '/v1/runs/{id}/checkpoints'],
        ['get', '/v1/runs/{id}/checkpoints/{name}'],
        ['get', '/v1/subjects'],
        ['get', '/v1/subjects/{job}/{subject}'],
        ['post', '/v1/imports'],
        ['get', '/v1/runs/{id}/verify'],
        ['get', '/v1/stats'],
      ];
      for (const [method, path] of expected) {
        const op = doc.paths[path]?.[method];
        expect(op, `${method} ${path}`).toBeDefined();
        expect(
          op.parameters.some((p: { name: string; in: string }) => p.name === 'namespace' && p.in === 'query'),
          `${method} ${path} takes namespace`,
        ).toBe(true);
      }
      const create = doc.paths['/v1/runs'].post.requestBody.content['application/json'].schema;
      expect(create.required).toEqual(['job']);
      expect(create.properties.leaseS).toMatchObject({ type: 'integer', minimum: 1 });
      expect(create.additionalProperties).toBe(false);
      expect(JSON.stringify(doc)).not.toContain('#/$defs/');
      expect(doc.components.schemas.JsonValue).toBeDefined();
      expect(doc.components.schemas.ImportRecord.required).toContain('sourceId');
      const limit = doc.paths['/v1/runs'].get.parameters.find((p: { name: string }) => p.name === 'limit');
      expect(limit.schema).toMatchObject({ type: 'integer', minimum: 1, maximum: 500 });
      expect(Object.keys(doc.paths['/v1/runs'].post.responses).sort()).toEqual(['200', '201', '409']);
      const docs = await call('GET', '/docs');
      expect(docs.status).toBe(200);
      expect(docs.text).toContain('swagger-ui');
    } finally {
      await app.close();
    }
  });
});

describe('embedded dashboard', () => {
  let dir: string;
  let server: RunningServer;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'runledger-web-'));
    await writeFile(join(dir, 'index.html'), '<!doctype html><title>runledger</title><div id="root"></div>');
    await writeFile(join(dir, 'app.js'), 'console.log(1)');
    server = await startServer({ ledger, port: 0, reapIntervalS: 0, logger: false, webRoot: dir });
  });
  afterAll(async () => {
    await server?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('serves files at /, falls back to index.html for client routes, and keeps API 404s as problems', async () => {
    const index = await fetch(`${server.url}/`);
    expect(index.status).toBe(200);
    expect(await index.text()).toContain('<title>runledger</title>');
    const js = await fetch(`${server.url}/app.js`);
    expect(js.headers.get('content-type')).toMatch(/javascript/);
    const route = await fetch(`${server.url}/runs/abc`, { headers: { accept: 'text/html' } });
    expect(route.status).toBe(200);
    expect(await route.text()).toContain('<div id="root">');
    for (const path of ['/v1/nothing', '/missing.js', '/v1/runs/x/nothing']) {
      const res = await fetch(`${server.url}${path}`);
      expect(res.status, path).toBe(404);
      expect(res.headers.get('content-type'), path).toMatch(/^application\/problem\+json/);
    }
    expect((await fetch(`${server.url}/v1/runs`)).status).toBe(200);
  });
});
