/**
 * Retention over real HTTP requests: PUT /v1/retention and POST /v1/prune need admin; bad
 * rules are 400 naming the field and store nothing; a pruned run is 410 `pruned`
 * problem+json carrying its tombstone; GET /v1/export streams NDJSON (header, runs, end
 * line); and the server's own pruner prunes what the rules allow.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createToken, type OpenedLedger, type RunningServer, startServer } from '../../src/index.js';
import { dropSchemas, freshStore, manualClock, sleep } from '../helpers.js';

const clock = manualClock('2026-05-01T00:00:00Z');
let ledger: OpenedLedger;
let server: RunningServer;
let adminToken: string;
let writeToken: string;

beforeAll(async () => {
  ledger = await freshStore({ clock: clock.now });
  // The pruner runs every second; the tests set rules only in the namespaces they prune.
  server = await startServer({ ledger, port: 0, auth: 'required', reapIntervalS: 1, logger: false, webRoot: false, webhooks: false });
  adminToken = (await createToken(ledger.database, { namespace: 'default', scope: 'admin' })).token;
  writeToken = (await createToken(ledger.database, { namespace: 'default', scope: 'write' })).token;
});
afterAll(async () => {
  await server?.close();
  await ledger?.close();
  await dropSchemas();
});

async function call(method: string, path: string, token: string, body?: unknown) {
  const res = await fetch(server.url + path, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  let json: any; // eslint-disable-line @typescript-eslint/no-explicit-any
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, type: res.headers.get('content-type') ?? '', text, json };
}

async function oldRun(l: OpenedLedger | ReturnType<OpenedLedger['inNamespace']>, job: string, subject: string) {
  const run = await l.startRun({ job, subject });
  await run.event('step', { n: 1 });
  clock.advance(1);
  await run.complete();
  return (await run.get()).id;
}

describe('retention over HTTP', () => {
  it('PUT needs admin; bad rules are 400 naming the field and the value, and change nothing', async () => {
    const w = await call('PUT', '/v1/retention', writeToken, { rules: [{ keepDays: 3650 }] });
    expect(w.status).toBe(403);
    expect((await call('POST', '/v1/prune', writeToken, { dryRun: true })).status).toBe(403);
    const put = await call('PUT', '/v1/retention', adminToken, { rules: [{ keepDays: 3650 }] });
    expect(put.status, put.text).toBe(200);
    for (const [body, field, value] of [
      [{ rules: [{ keepDays: 'ten' }] }, 'rules.0.keepDays', '"ten"'],
      [{ rules: [{ keepDays: 5, keepLastPerSubject: 1e9 }] }, 'rules.0.keepLastPerSubject', '1000000000'],
      [{ rules: [{ keepDays: 5 }, { keepDays: 6 }] }, 'rules.1.job', 'default'],
      [{ rule: [] }, 'rule', 'unknown'],
    ] as const) {
      const r = await call('PUT', '/v1/retention', adminToken, body);
      expect(r.status, r.text).toBe(400);
      expect(r.type).toMatch(/^application\/problem\+json/);
      expect(r.json.code).toBe('validation_failed');
      expect(JSON.stringify(r.json.errors)).toContain(field);
      expect(r.json.detail).toContain(value);
    }
    const get = await call('GET', '/v1/retention', writeToken);
    expect(get.json.rules).toMatchObject([{ keepDays: 3650, keepLastPerSubject: 0 }]);
  });

  it('a pruned run is 410 pruned with its tombstone; a create with its id is 410 too; export streams NDJSON', async () => {
    const ns = 'gone';
    const admin = (await createToken(ledger.database, { namespace: ns, scope: 'admin' })).token;
    const l = ledger.inNamespace(ns);
    const run = await l.startRun({ job: 'j', subject: 's' });
    await run.events([{ type: 'a' }, { type: 'b' }]);
    await run.complete();
    const head = await run.get();
    await l.startRun({ job: 'j', subject: 's' }).then((r) => r.complete());

    const exported = await call('GET', `/v1/export?namespace=${ns}&limit=10`, admin);
    expect(exported.status).toBe(200);
    expect(exported.type).toMatch(/^application\/x-ndjson/);
    const lines = exported.text
      .trim()
      .split('\n')
      .map((x) => JSON.parse(x));
    expect(lines[0]).toMatchObject({ format: 'runledger-export', version: 1, namespace: ns });
    expect(lines.at(-1)).toMatchObject({ end: true, runs: 2, nextAfter: null });
    expect(lines.slice(1, -1).map((x) => x.run.id)).toContain(head.id);
    const bad = await call('GET', `/v1/export?namespace=${ns}&after=zzz`, admin);
    expect(bad.status).toBe(400);
    expect(bad.json.errors[0].field).toBe('after');

    await call('PUT', `/v1/retention?namespace=${ns}`, admin, { rules: [{ keepDays: 1 }] });
    clock.advance(2 * 86_400);
    const pruned = await call('POST', `/v1/prune?namespace=${ns}`, admin, {});
    expect(pruned.status, pruned.text).toBe(200);
    expect(pruned.json.runs.map((r: { id: string }) => r.id)).toEqual([head.id]);

    const gone = await call('GET', `/v1/runs/${head.id}?namespace=${ns}`, admin);
    expect(gone.status).toBe(410);
    expect(gone.type).toMatch(/^application\/problem\+json/);
    expect(gone.json).toMatchObject({
      code: 'pruned',
      status: 410,
      tombstone: { id: head.id, job: 'j', subject: 's', lastSeq: head.lastSeq, finishedAt: head.finishedAt },
    });
    expect(gone.json.tombstone.lastHash).toMatch(/^[0-9a-f]{64}$/);
    const again = await call('POST', `/v1/runs?namespace=${ns}`, admin, { id: head.id, job: 'j', subject: 's' });
    expect(again.status).toBe(410);
    expect(again.json.code).toBe('pruned');
    const list = await call('GET', `/v1/runs?namespace=${ns}`, admin);
    expect(list.json.runs.map((r: { id: string }) => r.id)).not.toContain(head.id);

    // Restore of the exported line replaces the tombstone. First a rule that keeps it: the
    // server's pruner (every second) would otherwise prune the restored run again before the read.
    await call('PUT', `/v1/retention?namespace=${ns}`, admin, { rules: [{ keepDays: 3650 }] });
    const line = lines.slice(1, -1).find((x) => x.run.id === head.id);
    const restored = await call('POST', `/v1/restore?namespace=${ns}`, admin, { runs: [line] });
    expect(restored.json).toMatchObject({ restored: 1, invalid: 0 });
    expect((await call('GET', `/v1/runs/${head.id}?namespace=${ns}`, admin)).status).toBe(200);
  });

  it('the server prunes by itself what the rules allow', async () => {
    const ns = 'auto';
    const l = ledger.inNamespace(ns);
    const ids = [await oldRun(l, 'j', 's'), await oldRun(l, 'j', 's'), await oldRun(l, 'j', 's')];
    await l.setRetention([{ keepDays: 3 }]);
    clock.advance(4 * 86_400);
    for (let i = 0; i < 200; i++) {
      const left = (await l.listRuns({ job: 'j' })).runs.map((r) => r.id);
      if (left.length === 1) break;
      await sleep(50);
    }
    expect((await l.listRuns({ job: 'j' })).runs.map((r) => r.id)).toEqual([ids[2]]);
  });
});
