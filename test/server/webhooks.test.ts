/**
 * Webhooks end to end: a real server delivering to real receivers on 127.0.0.1 that verify
 * every signature with the `standardwebhooks` package; retries with the same webhook-id,
 * 410, Retry-After, redirects, a used-up schedule, a hanging receiver, private targets,
 * scopes and metrics.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import type { RunledgerClient } from '../../src/index.js';
import { buildServer, createClient, createToken, type OpenedLedger, type RunningServer, startServer } from '../../src/index.js';
import { dropSchemas, freshStore } from '../helpers.js';
import { api, expectProblem } from './support.js';
import { type Answer, type Receiver, startReceiver } from './webhook-receiver.js';

let ledger: OpenedLedger;
let server: RunningServer;
let client: RunledgerClient;
const receivers: Receiver[] = [];
let n = 0;

const POLL = { timeout: 30_000, interval: 50 };

beforeAll(async () => {
  ledger = await freshStore();
  server = await startServer({
    ledger,
    port: 0,
    auth: 'off',
    reapIntervalS: 0,
    logger: false,
    webRoot: false,
    webhooks: { allowPrivateTargets: true, retryScheduleS: [0.2, 0.2, 0.2], pollMs: 50, timeoutMs: 1500, perWebhook: 4 },
  });
  client = createClient({ baseUrl: server.url });
});
afterAll(async () => {
  await server?.close();
  for (const r of receivers) await r.close();
  await ledger?.close();
  await dropSchemas();
});

/** A receiver and a webhook to it in a namespace of its own (so tests do not see each other's changes). */
async function hooked(types: ('run.finished' | 'subject.changed')[] = ['run.finished']) {
  const receiver = await startReceiver();
  receivers.push(receiver);
  const ns = client.inNamespace(`wh-${++n}-${Date.now().toString(36)}`);
  const hook = await ns.createWebhook({ url: receiver.url, types, description: 'test receiver' });
  receiver.secret = hook.secret;
  return { receiver, ns, hook };
}

async function finishRuns(ns: RunledgerClient, count: number, how: 'complete' | 'fail' = 'complete') {
  const ids: string[] = [];
  await Promise.all(
    Array.from({ length: count }, async (_, i) => {
      const run = await ns.startRun({ job: 'nightly', subject: `s${i}` });
      await run.start();
      if (how === 'complete') await run.complete({ output: { i } });
      else await run.fail({ error: { message: `boom ${i}` } });
      ids.push(run.id);
    }),
  );
  return ids;
}

describe('delivery', () => {
  it('POSTs each run.finished once, signed per Standard Webhooks (verified by the standardwebhooks package)', async () => {
    const { receiver, ns, hook } = await hooked();
    expect(hook).toMatchObject({ id: expect.stringMatching(/^wh_/), secret: expect.stringMatching(/^whsec_/), types: ['run.finished'] });
    const ids = await finishRuns(ns, 5);
    await expect.poll(() => receiver.uniqueIds().size, POLL).toBe(5);
    expect(receiver.received.every((r) => r.verified)).toBe(true);
    expect(receiver.received.every((r) => r.payload.type === 'run.finished')).toBe(true);
    expect(new Set(receiver.received.map((r) => r.payload.data.runId))).toEqual(new Set(ids));
    // webhook-id is the change id; the payload carries the run as the change log does.
    const { changes } = await ns.changes({ types: ['run.finished'] });
    for (const change of changes) {
      const got = receiver.received.find((r) => r.id === String(change.id))!;
      expect(got.payload).toEqual({
        type: 'run.finished',
        timestamp: change.at,
        data: {
          changeId: change.id,
          cursor: change.cursor,
          namespace: ns.namespace,
          job: 'nightly',
          subject: change.subject,
          runId: change.runId,
          ...(change.data as object),
        },
      });
    }
    const [delivery] = await ns.listWebhookDeliveries(hook.id);
    expect(delivery).toMatchObject({
      state: 'delivered',
      attempts: 1,
      type: 'run.finished',
      log: [{ attempt: 1, statusCode: 204, outcome: 'delivered', error: null }],
    });
  });

  it('retries a failed attempt with the same webhook-id; the log keeps every attempt', async () => {
    const { receiver, ns, hook } = await hooked();
    receiver.answer = (_r, attempt) => (attempt === 1 ? 500 : 200);
    await finishRuns(ns, 3, 'fail');
    await expect.poll(async () => (await ns.listWebhookDeliveries(hook.id, { state: 'delivered' })).length, POLL).toBe(3);
    expect(receiver.received).toHaveLength(6);
    expect(receiver.uniqueIds().size).toBe(3);
    expect(receiver.received.every((r) => r.verified)).toBe(true);
    for (const d of await ns.listWebhookDeliveries(hook.id)) {
      expect(d.log.map((a) => [a.attempt, a.statusCode, a.outcome])).toEqual([
        [2, 200, 'delivered'],
        [1, 500, 'retry'],
      ]);
    }
    expect((await ns.getWebhook(hook.id)).pending).toBe(0);
  });

  it('a used-up schedule leaves the delivery failed and kept; replay sends it again', async () => {
    const { receiver, ns, hook } = await hooked();
    receiver.answer = () => 500;
    await finishRuns(ns, 1);
    await expect.poll(async () => (await ns.getWebhook(hook.id)).failed, POLL).toBe(1);
    const [d] = await ns.listWebhookDeliveries(hook.id);
    expect(d.state).toBe('failed');
    expect(d.log.map((a) => a.outcome)).toEqual(['failed', 'retry', 'retry', 'retry']);
    expect(receiver.received).toHaveLength(4);
    receiver.answer = () => 204;
    expect(await ns.replayWebhook(hook.id, { after: '0' })).toEqual({ queued: 1 });
    await expect.poll(async () => (await ns.listWebhookDeliveries(hook.id))[0].state, POLL).toBe('delivered');
    expect((await ns.listWebhookDeliveries(hook.id))[0].log[0]).toMatchObject({ attempt: 5, statusCode: 204, outcome: 'delivered' });
  });

  it('410 Gone disables the webhook; replay enables it and delivers what it missed', async () => {
    const { receiver, ns, hook } = await hooked();
    receiver.answer = () => 410;
    const [first] = await finishRuns(ns, 1);
    await expect.poll(async () => (await ns.getWebhook(hook.id)).disabledAt, POLL).not.toBeNull();
    expect((await ns.getWebhook(hook.id)).disabledReason).toMatch(/410/);
    const [second] = await finishRuns(ns, 1);
    receiver.answer = () => 204;
    const { queued } = await ns.replayWebhook(hook.id, { after: '0' });
    expect(queued).toBeGreaterThanOrEqual(1);
    await expect
      .poll(
        () => new Set(receiver.received.filter((r) => r.verified && r.payload.type === 'run.finished').map((r) => r.payload.data.runId)),
        POLL,
      )
      .toEqual(new Set([first, second]));
    expect((await ns.getWebhook(hook.id)).disabledAt).toBeNull();
  });

  it('honours Retry-After, and does not follow redirects', async () => {
    const { receiver, ns, hook } = await hooked();
    receiver.answer = (_r, attempt): Answer =>
      attempt === 1
        ? { status: 503, headers: { 'retry-after': '2' } }
        : attempt === 2
          ? { status: 302, headers: { location: 'http://127.0.0.1:1/elsewhere' } }
          : 204;
    await finishRuns(ns, 1);
    await expect.poll(async () => (await ns.listWebhookDeliveries(hook.id))[0]?.state, POLL).toBe('delivered');
    const [d] = await ns.listWebhookDeliveries(hook.id);
    const [third, second, first] = d.log;
    expect([first.statusCode, second.statusCode, third.statusCode]).toEqual([503, 302, 204]);
    expect(second.error).toMatch(/redirects are not followed/);
    // The schedule says 0.2 s; the receiver asked for 2 s.
    expect(Date.parse(second.at) - Date.parse(first.at)).toBeGreaterThanOrEqual(1900);
  });

  it('a receiver that never answers costs its own slots only: another receiver gets everything meanwhile', async () => {
    const slow = await hooked();
    slow.receiver.answer = () => 'hang';
    const fast = await hooked();
    const [slowIds, fastIds] = await Promise.all([finishRuns(slow.ns, 10), finishRuns(fast.ns, 20)]);
    await expect.poll(() => fast.receiver.uniqueIds().size, POLL).toBe(20);
    expect(fastIds).toHaveLength(20);
    // The hanging one got at most its per-endpoint share at once, and its attempts end as "no answer".
    await expect
      .poll(async () => (await slow.ns.listWebhookDeliveries(slow.hook.id)).flatMap((d) => d.log).find((a) => a.error)?.error, POLL)
      .toMatch(/no answer within 1500 ms/);
    expect(slowIds).toHaveLength(10);
  });

  it('counts attempts by outcome in /metrics, with the oldest undelivered change age', async () => {
    const res = await fetch(`${server.url}/metrics`);
    const text = await res.text();
    expect(text).toMatch(/runledger_webhook_deliveries_total\{outcome="delivered"\} [1-9]/);
    expect(text).toMatch(/runledger_webhook_deliveries_total\{outcome="retry"\} [1-9]/);
    expect(text).toMatch(/runledger_webhook_oldest_undelivered_seconds \d/);
  });
});

describe('private targets', () => {
  let plain: RunningServer;
  const onCleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    await plain?.close();
    for (const fn of onCleanup.splice(0)) await fn();
  });

  it('are refused when a webhook is created, naming the url, and nothing is stored', async () => {
    const app = await buildServer({ ledger, auth: 'off' });
    const call = api(app);
    const ns = `priv-${Date.now().toString(36)}`;
    for (const url of [
      'http://127.0.0.1:9/x',
      'http://localhost:9/x',
      'http://[::1]:9/x',
      'http://169.254.169.254/latest',
      'http://10.1.2.3/',
      'http://[::ffff:127.0.0.1]/',
    ]) {
      const p = expectProblem(
        await call('POST', `/v1/webhooks?namespace=${ns}`, { url, types: ['run.finished'] }),
        400,
        'validation_failed',
      );
      expect(p.detail).toMatch(/--allow-private-webhooks/);
      expect(p.errors[0].field).toBe('url');
    }
    expect((await call('GET', `/v1/webhooks?namespace=${ns}`)).body).toEqual({ webhooks: [] });
    await app.close();
  });

  it('are refused at delivery too, whoever created the webhook', async () => {
    // A store of its own: the file's server (which allows private targets) must not deliver these.
    const own = await freshStore();
    onCleanup.push(() => own.close());
    plain = await startServer({
      ledger: own,
      port: 0,
      auth: 'off',
      reapIntervalS: 0,
      logger: false,
      webRoot: false,
      webhooks: { pollMs: 50 },
    });
    const receiver = await startReceiver();
    receivers.push(receiver);
    const ns = own.inNamespace(`priv2-${Date.now().toString(36)}`);
    const hook = await ns.createWebhook({ url: receiver.url, types: ['run.finished'] }); // the library does not resolve
    const run = await ns.startRun({ job: 'j' });
    await run.complete();
    await expect
      .poll(async () => (await ns.listWebhookDeliveries(hook.id))[0]?.log[0]?.error, POLL)
      .toMatch(/127\.0\.0\.1 is a private.*--allow-private-webhooks/);
    expect(receiver.received).toEqual([]);
  });
});

describe('bad input and scopes', () => {
  it('a bad url, an unknown or missing type, or an unknown field is a clear 400 and stores nothing', async () => {
    const app = await buildServer({ ledger, auth: 'off', allowPrivateWebhooks: true });
    const call = api(app);
    const ns = `bad-${Date.now().toString(36)}`;
    const cases: [unknown, string | undefined, RegExp][] = [
      [{ url: 'not a url', types: ['run.finished'] }, 'url', /absolute http or https URL/],
      [{ url: 'ftp://example.com/x', types: ['run.finished'] }, 'url', /http or https; got "ftp"/],
      [{ url: 'https://u:p@example.com/x', types: ['run.finished'] }, 'url', /credentials/],
      [{ url: 'https://example.com/x', types: ['run.done'] }, 'types.0', /types must be among run.finished/],
      [{ url: 'https://example.com/x', types: [] }, 'types', /at least one/],
      [{ url: 'https://example.com/x' }, 'types', /types must be a list/],
      [{ url: 'https://example.com/x', types: ['run.finished', 'run.finished'] }, 'types', /repeat/],
      [{ url: 'https://example.com/x', types: ['run.finished'], secret: 'mine' }, undefined, /unknown field\(s\) secret/],
    ];
    for (const [body, field, message] of cases) {
      const p = expectProblem(await call('POST', `/v1/webhooks?namespace=${ns}`, body), 400, 'validation_failed');
      if (field) expect(p.errors.map((e) => e.field)).toContain(field);
      expect(p.detail).toMatch(message);
    }
    expect((await call('GET', `/v1/webhooks?namespace=${ns}`)).body).toEqual({ webhooks: [] });
    expectProblem(await call('GET', `/v1/webhooks/nope?namespace=${ns}`), 400, 'validation_failed');
    expectProblem(await call('GET', `/v1/webhooks/wh_AAAAAAAAAAAAAAAA?namespace=${ns}`), 404, 'not_found');
    expectProblem(await call('GET', `/v1/webhooks/wh_AAAAAAAAAAAAAAAA/deliveries?namespace=${ns}`), 404, 'not_found');
    expectProblem(await call('POST', `/v1/webhooks/wh_AAAAAAAAAAAAAAAA/replay?namespace=${ns}`, { after: 'x' }), 400, 'validation_failed');
    await app.close();
  });

  it('only an admin token creates, removes or replays; read and write tokens get 403 and store nothing', async () => {
    const app = await buildServer({ ledger, auth: 'required', allowPrivateWebhooks: true });
    const ns = `auth-${Date.now().toString(36)}`;
    const token = async (scope: 'read' | 'write' | 'admin') => (await createToken(ledger.database, { namespace: ns, scope })).token;
    const [read, write, admin] = [
      api(app, { token: await token('read') }),
      api(app, { token: await token('write') }),
      api(app, { token: await token('admin') }),
    ];
    const body = { url: 'https://hooks.example.com/x', types: ['run.finished'] };
    for (const who of [read, write]) {
      const p = expectProblem(await who('POST', `/v1/webhooks?namespace=${ns}`, body), 403, 'forbidden');
      expect(p.detail).toMatch(/needs admin/);
    }
    expect((await read('GET', `/v1/webhooks?namespace=${ns}`)).body).toEqual({ webhooks: [] });
    const created = await admin('POST', `/v1/webhooks?namespace=${ns}`, body);
    expect(created.status).toBe(201);
    const listed = await read('GET', `/v1/webhooks?namespace=${ns}`);
    expect(listed.body.webhooks).toHaveLength(1);
    expect(listed.text).not.toContain(created.body.secret);
    expectProblem(await write('DELETE', `/v1/webhooks/${created.body.id}?namespace=${ns}`), 403, 'forbidden');
    expectProblem(await write('POST', `/v1/webhooks/${created.body.id}/replay?namespace=${ns}`, { after: '0' }), 403, 'forbidden');
    expect((await admin('DELETE', `/v1/webhooks/${created.body.id}?namespace=${ns}`)).status).toBe(204);
    expectProblem(await admin('DELETE', `/v1/webhooks/${created.body.id}?namespace=${ns}`), 404, 'not_found');
    await app.close();
  });
});
