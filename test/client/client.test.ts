/**
 * createClient against a real server: the same results and the same errors (class,
 * code, message) as the library in process, client-side ids, retries that are safe
 * because the calls are idempotent, and live tailing that survives a dropped connection.
 */
import http from 'node:http';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  createClient,
  createToken,
  HttpError,
  IdConflictError,
  InvalidTransitionError,
  KeyConflictError,
  type Ledger,
  LedgerError,
  type LedgerEvent,
  NotFoundError,
  type OpenedLedger,
  RunFinishedError,
  type RunledgerClient,
  type RunningServer,
  startServer,
  ValidationError,
  VersionMismatchError,
} from '../../src/index.js';
import { dropSchemas, freshStore } from '../helpers.js';
import { type FaultyProxy, faultyProxy } from './proxy.js';

let ledger: OpenedLedger;
let server: RunningServer;
let client: RunledgerClient;

beforeAll(async () => {
  ledger = await freshStore();
  server = await startServer({ ledger, port: 0, reapIntervalS: 0, logger: false, webRoot: false });
  client = createClient({ baseUrl: server.url });
});
afterAll(async () => {
  await server?.close();
  await ledger?.close();
  await dropSchemas();
});

async function errorOf(promise: Promise<unknown> | (() => unknown)): Promise<LedgerError> {
  try {
    await (typeof promise === 'function' ? promise() : promise);
  } catch (err) {
    return err as LedgerError;
  }
  throw new Error('expected a rejection');
}

describe('createClient', () => {
  it('runs a whole lifecycle and reads back what the library stored', async () => {
    const run = await client.startRun({ job: 'client', subject: 'acme/api', leaseS: 60, params: { n: 1 } });
    expect(run.created).toBe(true);
    expect(run.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-/); // UUIDv7, made by the client
    expect(await run.event('progress', { done: 1 }, { key: 'p1', level: 'info' })).toEqual({ seq: 2, key: 'p1', duplicate: false });
    expect(await run.events([{ type: 'a' }, { type: 'b', body: [1] }])).toEqual([
      { seq: 3, duplicate: false },
      { seq: 4, duplicate: false },
    ]);
    const cp = await run.checkpoint({ name: 'pre', metadata: { h: 'x' }, data: { big: true } });
    expect(cp.created).toBe(true);
    expect((await run.checkpoint({ name: 'pre', metadata: { h: 'x' }, data: { big: true } })).created).toBe(false);
    expect(await run.getCheckpoint('pre')).toEqual(await ledger.run(run.id).getCheckpoint('pre'));
    expect(await run.listCheckpoints()).toEqual(await ledger.run(run.id).listCheckpoints());
    expect((await run.heartbeat({ step: 2 })).progress).toEqual({ step: 2 });
    expect((await run.update({ tags: { a: 'b' }, notes: 'n' })).tags).toEqual({ a: 'b' });
    expect((await run.setExternalIds({ 'amc.executionId': 'e1' })).externalIds).toEqual({ 'amc.executionId': 'e1' });
    const done = await run.complete({ output: { ok: true }, statistics: { ms: 1 } });
    expect(done.status).toBe('completed');
    expect(await client.getRun(run.id)).toEqual(await ledger.getRun(run.id));
    expect(await run.listEvents({ afterSeq: 1, limit: 2 })).toEqual(await ledger.run(run.id).listEvents({ afterSeq: 1, limit: 2 }));
    expect((await run.verify()).ok).toBe(true);
    expect((await client.verify()).ok).toBe(true);
    expect(await client.listRuns({ job: 'client', status: ['completed'] })).toEqual(
      await ledger.listRuns({ job: 'client', status: ['completed'] }),
    );
    expect(await client.getSubject('client', 'acme/api')).toEqual(await ledger.getSubject('client', 'acme/api'));
    expect(await client.listSubjects({ job: 'client' })).toEqual(await ledger.listSubjects({ job: 'client' }));
    expect((await client.stats({ job: 'client' })).jobs).toEqual((await ledger.stats({ job: 'client' })).jobs);
    expect((await client.reap()).acquired).toBe(true);
  });

  it('a repeated create with the same id returns the run with created = false', async () => {
    const first = await client.startRun({ id: 'client-same', job: 'j' });
    const second = await client.startRun({ id: 'client-same', job: 'j' });
    expect([first.created, second.created]).toEqual([true, false]);
    expect(second.run).toEqual(first.run);
  });

  it('track() completes with the return value, or fails with the thrown error and rethrows it', async () => {
    const value = await client.track({ job: 'tracked' }, async (run) => {
      await run.event('working');
      return { answer: 42 };
    });
    expect(value).toEqual({ answer: 42 });
    const boom = new Error('boom');
    await expect(client.track({ job: 'tracked-fail' }, () => Promise.reject(boom))).rejects.toBe(boom);
    const [ok] = (await ledger.listRuns({ job: 'tracked' })).runs;
    const [failed] = (await ledger.listRuns({ job: 'tracked-fail' })).runs;
    expect(ok).toMatchObject({ status: 'completed', output: { answer: 42 } });
    expect(failed).toMatchObject({ status: 'failed', error: { type: 'Error', message: 'boom' } });
  });

  it('imports over HTTP with per-item results', async () => {
    const records = [{ sourceId: 's1', job: 'imported', status: 'completed', startedAt: '2023-01-01T00:00:00Z' }, { sourceId: 's2' }];
    const res = await client.importRuns('legacy-client', records);
    expect(res).toMatchObject({ inserted: 1, invalid: 1 });
    expect((await client.importRuns('legacy-client', records)).duplicates).toBe(1);
  });
});

describe('a server behind a path prefix', () => {
  it('keeps the prefix of baseUrl on every call, with the query', async () => {
    // A reverse proxy that serves runledger at /tools/runledger/ and strips the prefix.
    const seen: string[] = [];
    const target = new URL(server.url);
    const proxy = http.createServer((req, res) => {
      seen.push(`${req.method} ${req.url}`);
      if (!req.url?.startsWith('/tools/runledger/')) {
        res.writeHead(404).end();
        return;
      }
      const upstream = http.request(
        {
          host: target.hostname,
          port: target.port,
          method: req.method,
          path: req.url.slice('/tools/runledger'.length),
          headers: req.headers,
        },
        (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        },
      );
      req.pipe(upstream);
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    const { port } = proxy.address() as { port: number };
    const prefixed = createClient({ baseUrl: `http://127.0.0.1:${port}/tools/runledger/`, namespace: 'prefixed' });
    try {
      const run = await prefixed.startRun({ job: 'behind-proxy' });
      await run.event('step', { n: 1 });
      expect((await prefixed.listRuns({ job: 'behind-proxy' })).runs.map((r) => r.id)).toEqual([run.id]);
      expect(seen).toContain('POST /tools/runledger/v1/runs?namespace=prefixed');
      expect(seen).toContain('GET /tools/runledger/v1/runs?job=behind-proxy&namespace=prefixed');
    } finally {
      await prefixed.close();
      proxy.closeAllConnections();
      await new Promise((resolve) => proxy.close(resolve));
    }
  });
});

describe('errors come back as the library’s', () => {
  /** The same call in process and over HTTP: same class, code, message and details. */
  async function same(call: (l: Ledger) => Promise<unknown>, cls: new (...args: never[]) => LedgerError) {
    const local = await errorOf(call(ledger));
    const remote = await errorOf(call(client));
    expect(local).toBeInstanceOf(cls);
    expect(remote).toBeInstanceOf(cls);
    expect(remote).toBeInstanceOf(LedgerError);
    expect({ name: remote.name, code: remote.code, message: remote.message, details: remote.details }).toEqual({
      name: local.name,
      code: local.code,
      message: local.message,
      details: local.details,
    });
    return remote;
  }

  it('not_found, id_conflict, invalid_transition, run_finished, version_mismatch, key_conflict, validation_failed', async () => {
    await same((l) => l.getRun('nope'), NotFoundError);
    await ledger.startRun({ id: 'err-1', job: 'j', subject: 's' });
    const conflict = await same((l) => l.startRun({ id: 'err-1', job: 'k', subject: 's' }), IdConflictError);
    expect((conflict as IdConflictError).fields).toEqual(['job']);
    await ledger.startRun({ id: 'err-2', job: 'j', status: 'submitted' });
    await same((l) => l.run('err-2').retry(), InvalidTransitionError);
    await ledger.run('err-1').complete({ output: 1 });
    await same((l) => l.run('err-1').complete({ output: 2 }), RunFinishedError);
    await same((l) => l.run('err-1').event('late'), RunFinishedError);
    await same((l) => l.run('err-2').update({ notes: 'x', ifVersion: 99 }), VersionMismatchError);
    await ledger.startRun({ id: 'err-3', job: 'j' });
    await ledger.run('err-3').event('t', { a: 1 }, { key: 'k' });
    await same((l) => l.run('err-3').event('t', { a: 2 }, { key: 'k' }), KeyConflictError);
    await same((l) => l.startRun({ job: '' }), ValidationError);
    await same((l) => l.listRuns({ limit: 0 }), ValidationError);
    await same((l) => l.run('err-3').events([]), ValidationError);
  });

  it('a bad run id is refused at once, as in process', async () => {
    const local = await errorOf(() => ledger.run('bad id'));
    const remote = await errorOf(() => client.run('bad id'));
    expect(remote).toBeInstanceOf(ValidationError);
    expect(remote.message).toBe(local.message);
  });

  it('401/403 come back as LedgerErrors with codes unauthorized and forbidden', async () => {
    const locked = await startServer({ ledger, port: 0, auth: 'required', reapIntervalS: 0, logger: false, webRoot: false });
    try {
      const { token } = await createToken(ledger.database, { namespace: 'team-a', scope: 'read' });
      expect((await errorOf(createClient({ baseUrl: locked.url }).listRuns())).code).toBe('unauthorized');
      const reader = createClient({ baseUrl: locked.url, token, namespace: 'team-a' });
      expect((await reader.listRuns()).runs).toEqual([]);
      expect((await errorOf(reader.startRun({ job: 'j' }))).code).toBe('forbidden');
      expect((await errorOf(reader.inNamespace('team-b').listRuns())).code).toBe('forbidden');
    } finally {
      await locked.close();
    }
  });

  it('an unreachable server is an HttpError after the retries', async () => {
    const dead = createClient({ baseUrl: 'http://127.0.0.1:9', retries: 1 });
    const err = await errorOf(dead.getRun('x'));
    expect(err).toBeInstanceOf(HttpError);
    expect(err.message).toContain('cannot reach');
  });

  it('bad options are refused', () => {
    expect(() => createClient({ baseUrl: 'not a url' })).toThrow(ValidationError);
    expect(() => createClient({ baseUrl: 'ftp://x' })).toThrow(ValidationError);
    expect(() => createClient({ baseUrl: 'http://x', namespace: 'bad ns' })).toThrow(ValidationError);
  });
});

describe('retries through a faulty network', () => {
  let proxy: FaultyProxy;
  let viaProxy: RunledgerClient;
  beforeAll(async () => {
    proxy = await faultyProxy(server.url);
    viaProxy = createClient({ baseUrl: proxy.url });
  });
  afterAll(async () => {
    await proxy?.close();
  });

  it('a create whose response is lost is retried with the same id: one run exists', async () => {
    proxy.dropResponses(1);
    const started = await viaProxy.startRun({ job: 'lost-response' });
    const runs = (await ledger.listRuns({ job: 'lost-response' })).runs;
    expect(runs.map((r) => r.id)).toEqual([started.id]);
    expect(proxy.requests.filter((r) => r === 'POST /v1/runs?namespace=default')).toHaveLength(2);
  });

  it('complete and keyed events are retried safely; an unkeyed event batch is not resent', async () => {
    const run = await viaProxy.startRun({ job: 'retries' });
    proxy.dropResponses(1);
    expect(await run.event('keyed', { n: 1 }, { key: 'once' })).toEqual({ seq: 2, key: 'once', duplicate: true });
    proxy.dropResponses(1);
    await expect(run.event('unkeyed')).rejects.toBeInstanceOf(HttpError);
    proxy.dropResponses(1);
    expect((await run.complete({ output: 'done' })).status).toBe('completed');
    const events = (await ledger.run(run.id).listEvents()).events.map((e) => e.type);
    expect(events).toEqual(['run.status', 'keyed', 'unkeyed', 'run.status']);
  });
});

describe('tail', () => {
  it('follows a run live until its terminal event', async () => {
    const run = await ledger.startRun({ job: 'tail' });
    const seen: LedgerEvent[] = [];
    const tailing = client.tail(run.id, {
      onEvent: async (e) => {
        seen.push(e);
        if (e.seq === 1) await run.event('step', { n: 1 });
        if (e.seq === 2) await run.complete({});
      },
    });
    expect(await tailing).toEqual({ lastSeq: 3, finished: true });
    expect(seen.map((e) => [e.seq, e.type])).toEqual([
      [1, 'run.status'],
      [2, 'step'],
      [3, 'run.status'],
    ]);
  });

  it('resumes after a dropped connection without losing or repeating an event', async () => {
    const proxy = await faultyProxy(server.url);
    try {
      const tailer = createClient({ baseUrl: proxy.url });
      const run = await ledger.startRun({ job: 'tail-cut' });
      const seqs: number[] = [];
      const tailing = tailer.tail(run.id, {
        onEvent: async (e) => {
          seqs.push(e.seq);
          if (e.seq === 1) {
            proxy.cutAll();
            await run.events([{ type: 'a' }, { type: 'b' }]);
            await run.complete({});
          }
        },
      });
      expect(await tailing).toEqual({ lastSeq: 4, finished: true });
      expect(seqs).toEqual([1, 2, 3, 4]);
      expect(proxy.requests.filter((r) => r.includes('/events/stream')).length).toBeGreaterThanOrEqual(2);
    } finally {
      await proxy.close();
    }
  });

  it('starts after afterSeq; on a finished run it ends at once; stops when aborted; 404 for no run', async () => {
    const run = await ledger.startRun({ job: 'tail' });
    await run.events([{ type: 'a' }, { type: 'b' }]);
    await run.complete({});
    const seqs: number[] = [];
    expect(await client.tail(run.id, { afterSeq: 2, onEvent: (e) => void seqs.push(e.seq) })).toEqual({ lastSeq: 4, finished: true });
    expect(seqs).toEqual([3, 4]);
    expect(await client.tail(run.id, { afterSeq: 4, onEvent: () => {} })).toEqual({ lastSeq: 4, finished: true });

    const live = await ledger.startRun({ job: 'tail' });
    const ac = new AbortController();
    const stopped = client.tail(live.id, { signal: ac.signal, onEvent: () => ac.abort() });
    expect(await stopped).toEqual({ lastSeq: 1, finished: false });
    expect((await errorOf(client.tail('no-such-run', { onEvent: () => {} }))).code).toBe('not_found');
  });
});
