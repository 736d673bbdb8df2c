/**
 * Authentication and isolation, endpoint by endpoint (the list is checked against the
 * OpenAPI document, so a new endpoint is covered or this file fails):
 * - tokens are stored only as sha256 hashes: no table holds a secret, the logs neither;
 * - a token with the right id and a wrong secret is refused (constant-time comparison
 *   of the hashes: tokens.ts uses crypto.timingSafeEqual after a lookup by the public id);
 * - a read token cannot write, a write token cannot administer — and nothing changes;
 * - a token of namespace A cannot reach B on any endpoint: ?namespace=B is 403, and
 *   B's runs, events, checkpoints, subjects, stats and imports are invisible and
 *   untouched from A, including through the SSE stream;
 * - revocation takes effect on the next request, ends open streams, and (PostgreSQL)
 *   works across processes: `runledger tokens revoke` while a server runs.
 */
import { createHash } from 'node:crypto';

import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { buildServer, createToken, type OpenedLedger, revokeToken, type RunningServer, startServer } from '../../src/index.js';
import { cliStore, runCli } from '../cli/cli.js';
import { BACKEND, dropSchemas, freshStore, sleep } from '../helpers.js';
import { api, expectProblem } from '../server/support.js';
import { documentedEndpoints, type Endpoint, ENDPOINTS, fillPath, listed } from './endpoints.js';
import { freePort, startServe } from './support.js';

let ledger: OpenedLedger;
let app: FastifyInstance;
const t: Record<string, { id: string; token: string }> = {};
/** Each namespace's webhook, by namespace tag (a, b). */
const hooks: Record<string, string> = {};
let n = 0;

beforeAll(async () => {
  ledger = await freshStore();
  app = await buildServer({ ledger, auth: 'required', rateLimit: false, stream: { maxMs: 50, recheckMs: 20 } });
  for (const [name, namespace, scope] of [
    ['readA', 'team-a', 'read'],
    ['writeA', 'team-a', 'write'],
    ['adminA', 'team-a', 'admin'],
    ['adminB', 'team-b', 'admin'],
  ] as const)
    t[name] = await createToken(ledger.database, { namespace, scope, name });
  // The same run id in both namespaces, plus runs only B has; events, checkpoints, subjects, imports in each.
  for (const ns of ['team-a', 'team-b']) {
    const l = ledger.inNamespace(ns);
    const tag = ns.slice(-1);
    const shared = await l.startRun({ id: 'shared-id', job: `job-${tag}`, subject: `subj-${tag}` });
    await shared.event('secret', { of: ns });
    await shared.checkpoint({ name: 'cp', metadata: { of: ns }, data: { of: ns } });
    await shared.complete({ output: { of: ns } });
    const live = await l.startRun({ id: `live-${tag}`, job: `job-${tag}`, subject: `live-${tag}` });
    await live.event('secret', { of: ns });
    await live.checkpoint({ name: 'cp', metadata: { of: ns } });
    if (ns === 'team-b') await l.setExpectation('job-b', { every: '1h', grace: '5m' });
    hooks[tag] = (await l.createWebhook({ url: `https://203.0.113.10/${tag}`, types: ['run.finished'] })).id;
    await l.importRuns('legacy', [
      { sourceId: 'one', job: `job-${tag}`, subject: `imp-${tag}`, status: 'completed', finishedAt: '2025-01-01T00:00:00Z' },
    ]);
  }
});
afterAll(async () => {
  await app?.close();
  await ledger?.close();
  await dropSchemas();
});

/** Everything namespace B holds, as one comparable value. */
async function snapshot(ns: string) {
  const db = ledger.database;
  const q = async (sql: string) => (await db.query(sql, [ns])).rows;
  return JSON.stringify({
    runs: await q(`select * from runs where namespace = $1 order by id`),
    events: await q(`select * from events where namespace = $1 order by run_id, seq`),
    checkpoints: await q(`select * from checkpoints where namespace = $1 order by run_id, name`),
    subjects: await q(`select * from subject_status where namespace = $1 order by job, subject`),
    expectations: await q(`select * from expectations where namespace = $1 order by job`),
    changes: await q(`select * from changes where namespace = $1 order by id`),
    webhooks: await q(`select * from webhooks where namespace = $1 order by id`),
  });
}

/** A request for `e` addressed at namespace `ns`, on run/job/subject of namespace tag `tag`. */
function requestFor(e: Endpoint, ns: string | null, tag: string) {
  const path = fillPath(e.path, {
    id: e.path.startsWith('/v1/webhooks/') ? hooks[tag] : e.method === 'GET' ? 'shared-id' : `live-${tag}`,
    name: 'cp',
    job: `job-${tag}`,
    subject: `subj-${tag}`,
  });
  const url = ns === null ? path : `${path}?namespace=${ns}`;
  return { url, body: e.body?.(++n) };
}

describe(`tokens and scopes (${BACKEND})`, () => {
  it('the endpoint list is every documented /v1 endpoint', async () => {
    expect(listed()).toEqual(await documentedEndpoints(app));
  });

  it('tokens are stored only as sha256 hashes: no table and no log line holds a secret', async () => {
    const made = await createToken(ledger.database, { namespace: 'team-a', scope: 'read', name: 'hash-check' });
    const secret = made.token.slice(-43);
    // Use it, so anything that might record it (last_used_at bookkeeping, logs) has had the chance.
    const lines: string[] = [];
    const logged = await buildServer({
      ledger,
      auth: 'required',
      logger: { level: 'trace', stream: { write: (l: string) => lines.push(l) } },
    });
    try {
      expect((await api(logged, { token: made.token })('GET', '/v1/runs?namespace=team-a')).status).toBe(200);
      expect((await api(logged, { token: `${made.token.slice(0, -1)}x` })('GET', '/v1/runs?namespace=team-a')).status).toBe(401);
    } finally {
      await logged.close();
    }
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.filter((l) => l.includes(secret))).toEqual([]);
    const { rows } = await ledger.database.query<Record<string, unknown>>('select * from tokens where id = $1', [made.id]);
    expect(Object.keys(rows[0]).sort()).toEqual([
      'created_at',
      'id',
      'last_used_at',
      'name',
      'namespace',
      'revoked_at',
      'scope',
      'token_hash',
    ]);
    expect(rows[0].token_hash).toBe(createHash('sha256').update(made.token).digest('hex'));
    const { rows: tables } = await ledger.database.query<{ table_name: string }>(
      `select table_name from information_schema.tables where table_schema = current_schema() and table_type = 'BASE TABLE'`,
    );
    expect(tables.length).toBeGreaterThanOrEqual(5);
    for (const { table_name } of tables) {
      const { rows: all } = await ledger.database.query(`select * from "${table_name}"`);
      expect(JSON.stringify(all).includes(secret), table_name).toBe(false);
    }
  });

  it('a token with the right id and a wrong secret (one character off, anywhere) is 401', async () => {
    const good = t.adminA.token;
    const flip = (s: string, i: number) => s.slice(0, i) + (s[i] === 'A' ? 'B' : 'A') + s.slice(i + 1);
    for (const i of [good.length - 43, good.length - 20, good.length - 1]) {
      const res = await api(app, { token: flip(good, i) })('GET', '/v1/runs?namespace=team-a');
      expectProblem(res, 401, 'unauthorized');
    }
    for (const bad of [`${good}x`, good.slice(0, -1), good.toUpperCase(), `rl_${'0'.repeat(16)}_${'A'.repeat(43)}`])
      expectProblem(await api(app, { token: bad })('GET', '/v1/runs?namespace=team-a'), 401, 'unauthorized');
  });

  it('a read token cannot write and a write token cannot administer, on every endpoint; nothing changes', async () => {
    const before = await snapshot('team-a');
    let refused = 0;
    for (const e of ENDPOINTS) {
      const { url, body } = requestFor(e, 'team-a', 'a');
      const asRead = await api(app, { token: t.readA.token })(e.method, url, body);
      if (e.scope === 'read') expect(asRead.status, `${e.method} ${e.path}`).toBeLessThan(400);
      else {
        expectProblem(asRead, 403, 'forbidden');
        refused++;
      }
      if (e.scope === 'admin') expectProblem(await api(app, { token: t.writeA.token })(e.method, url, body), 403, 'forbidden');
    }
    expect(refused).toBe(ENDPOINTS.filter((e) => e.scope !== 'read').length);
    expect(await snapshot('team-a')).toBe(before);
  });
});

describe(`namespace isolation (${BACKEND})`, () => {
  it('a token of team-a asking for team-b (or the default namespace) is 403 on every endpoint; team-b is untouched', async () => {
    const before = await snapshot('team-b');
    for (const e of ENDPOINTS) {
      for (const ns of ['team-b', null, 'default']) {
        const { url, body } = requestFor(e, ns, 'b');
        const res = await api(app, { token: t.adminA.token })(e.method, url, body);
        expectProblem(res, 403, 'forbidden');
      }
    }
    expect(await snapshot('team-b')).toBe(before);
  });

  it('inside its own namespace, team-a sees none of team-b: same run ids, lists, subjects, stats, verify, imports', async () => {
    const before = await snapshot('team-b');
    const asA = api(app, { token: t.adminA.token });
    const a = (url: string) => `${url}${url.includes('?') ? '&' : '?'}namespace=team-a`;
    // B's own runs, subjects and checkpoints do not exist from A.
    for (const url of [
      '/v1/runs/live-b',
      '/v1/runs/live-b/events',
      '/v1/runs/live-b/checkpoints',
      '/v1/runs/live-b/checkpoints/cp',
      '/v1/runs/live-b/verify',
      '/v1/runs/live-b/events/stream',
      '/v1/subjects/job-b/subj-b',
    ])
      expectProblem(await asA('GET', a(url)), 404, 'not_found');
    for (const [method, url, body] of [
      ['PATCH', '/v1/runs/live-b', { notes: 'x' }],
      ['POST', '/v1/runs/live-b/events', { events: [{ type: 'x' }] }],
      ['POST', '/v1/runs/live-b/checkpoints', { name: 'n', metadata: {} }],
      ['POST', '/v1/runs/live-b/heartbeat', {}],
      ['POST', '/v1/runs/live-b/complete', {}],
      ['POST', '/v1/runs/live-b/fail', { error: { message: 'x' } }],
      ['POST', '/v1/runs/live-b/cancel', {}],
      ['POST', '/v1/runs/live-b/retry', {}],
      ['POST', '/v1/runs/live-b/start', {}],
    ] as const)
      expectProblem(await asA(method, a(url), body), 404, 'not_found');
    // The shared id is A's run only: its events, checkpoint and output are A's.
    const run = (await asA('GET', a('/v1/runs/shared-id'))).body;
    expect([run.namespace, run.job, run.output]).toEqual(['team-a', 'job-a', { of: 'team-a' }]);
    const events = (await asA('GET', a('/v1/runs/shared-id/events'))).body.events as { body: unknown }[];
    expect(JSON.stringify(events)).not.toContain('team-b');
    expect((await asA('GET', a('/v1/runs/shared-id/checkpoints/cp'))).body.data).toEqual({ of: 'team-a' });
    const listedRuns = (await asA('GET', a('/v1/runs?limit=500'))).body.runs as { namespace: string; job: string }[];
    expect(listedRuns.length).toBeGreaterThan(0);
    expect(listedRuns.filter((r) => r.namespace !== 'team-a' || r.job.endsWith('-b'))).toEqual([]);
    expect((await asA('GET', a('/v1/runs?job=job-b'))).body.runs).toEqual([]);
    const subjects = (await asA('GET', a('/v1/subjects?limit=500'))).body.subjects as { namespace: string; job: string }[];
    expect(subjects.filter((s) => s.namespace !== 'team-a' || s.job === 'job-b')).toEqual([]);
    const stats = (await asA('GET', a('/v1/stats'))).body;
    expect(stats.jobs.map((j: { job: string }) => j.job)).toContain('job-a');
    expect(stats.jobs.map((j: { job: string }) => j.job)).not.toContain('job-b');
    const verify = (await asA('GET', a('/v1/verify'))).body;
    const { rows } = await ledger.database.query<{ n: number }>(`select count(*)::int as n from runs where namespace = 'team-a'`);
    expect(verify.runsChecked).toBe(rows[0].n);
    // B's expectation and B's change log are not A's.
    expect((await asA('GET', a('/v1/expectations'))).body.expectations).toEqual([]);
    // Read until A's own completion of shared-id is in (another session's open transaction may
    // hold the feed back a moment), so the check below has a feed to look through.
    type Seen = { namespace: string; job?: string; runId: string | null; type: string };
    let changes: Seen[] = [];
    await expect
      .poll(
        async () => {
          changes = (await asA('GET', a('/v1/changes?limit=1000'))).body.changes as Seen[];
          return changes.some((c) => c.type === 'run.finished' && c.runId === 'shared-id');
        },
        { timeout: 20_000 },
      )
      .toBe(true);
    expect(changes.filter((c) => c.namespace !== 'team-a' || c.job === 'job-b')).toEqual([]);
    expectProblem(await asA('DELETE', a('/v1/expectations/job-b')), 404, 'not_found');
    // Importing B's (source, sourceId) into A creates A's own run; B's stays as it was.
    const imported = await asA('POST', a('/v1/imports'), {
      source: 'legacy',
      runs: [{ sourceId: 'one', job: 'job-a', subject: 'imp-a', status: 'completed', finishedAt: '2025-01-01T00:00:00Z' }],
    });
    expect(imported.body).toMatchObject({ inserted: 0, duplicates: 1 });
    expect(
      (
        await asA('POST', a('/v1/imports'), {
          source: 'legacy-b-name',
          runs: [{ sourceId: 'one', job: 'job-b', status: 'completed', finishedAt: '2025-01-01T00:00:00Z' }],
        })
      ).body.inserted,
    ).toBe(1);
    expect(await snapshot('team-b')).toBe(before);
  });
});

describe(`over a real socket (${BACKEND})`, () => {
  let server: RunningServer;
  beforeAll(async () => {
    server = await startServer({
      ledger,
      port: 0,
      auth: 'required',
      logger: false,
      reapIntervalS: 0,
      webRoot: false,
      stream: { recheckMs: 200 },
    });
  });
  afterAll(async () => {
    await server?.close();
  });

  const stream = (path: string, token: string) => fetch(`${server.url}${path}`, { headers: { authorization: `Bearer ${token}` } });

  it('SSE: team-a cannot open team-b’s stream (403 asking for team-b, 404 inside team-a); its own carries only its events', async () => {
    const other = await stream('/v1/runs/live-b/events/stream?namespace=team-b', t.adminA.token);
    expect(other.status).toBe(403);
    expect(other.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect((await stream('/v1/runs/live-b/events/stream?namespace=team-a', t.adminA.token)).status).toBe(404);
    const own = await stream('/v1/runs/shared-id/events/stream?namespace=team-a', t.readA.token);
    expect(own.status).toBe(200);
    const text = await own.text(); // the run is finished: the stream ends after its status event
    expect(text).toContain('"of":"team-a"');
    expect(text).not.toContain('team-b');
  });

  it('revocation: the next request is 401, and the open streams of the revoked token (run events, change feed) are ended', async () => {
    const doomed = await createToken(ledger.database, { namespace: 'team-a', scope: 'write', name: 'doomed' });
    const run = await ledger.inNamespace('team-a').startRun({ job: 'revoke-me' });
    const res = await stream(`/v1/runs/${run.id}/events/stream?namespace=team-a`, doomed.token);
    expect(res.status).toBe(200);
    const feed = await stream(`/v1/changes/stream?namespace=team-a`, doomed.token);
    expect(feed.status).toBe(200);
    const endOf = (r: Response) => {
      const reader = r.body!.getReader();
      return (async () => {
        for (;;) if ((await reader.read()).done) return true;
      })();
    };
    const ended = endOf(res);
    const feedEnded = endOf(feed);
    expect((await fetch(`${server.url}/v1/runs?namespace=team-a`, { headers: { authorization: `Bearer ${doomed.token}` } })).status).toBe(
      200,
    );
    await revokeToken(ledger.database, doomed.id);
    const next = await fetch(`${server.url}/v1/runs?namespace=team-a`, { headers: { authorization: `Bearer ${doomed.token}` } });
    expect(next.status).toBe(401);
    // The run is still live: only the revocation can end this stream.
    expect(await Promise.race([ended, sleep(20_000).then(() => false)])).toBe(true);
    // The change feed never ends by itself (this server gives it no lifetime): the revocation ended it.
    expect(await Promise.race([feedEnded, sleep(20_000).then(() => false)])).toBe(true);
    expect((await ledger.inNamespace('team-a').getRun(run.id)).status).toBe('running');
    expect((await stream(`/v1/runs/${run.id}/events/stream?namespace=team-a`, doomed.token)).status).toBe(401);
  });
});

describe.skipIf(BACKEND !== 'postgres')('across processes (PostgreSQL: the CLI and the server share the database)', () => {
  it('`runledger tokens revoke` in another process: the running server refuses the token on the next request; no secret in its logs', async () => {
    const store = cliStore();
    const server = await startServe(store.args, await freePort(), ['--auth', 'required', '--log-level', 'trace']);
    try {
      const created = await runCli([...store.args, '--namespace', 'ops', 'tokens', 'create', '--scope', 'write', '--json']);
      expect(created.code).toBe(0);
      const { id, token } = JSON.parse(created.stdout) as { id: string; token: string };
      const get = () => fetch(`${server.url}/v1/runs?namespace=ops`, { headers: { authorization: `Bearer ${token}` } });
      expect((await get()).status).toBe(200);
      const revoked = await runCli([...store.args, 'tokens', 'revoke', id]);
      expect(revoked.code).toBe(0);
      expect((await get()).status).toBe(401);
      expect(server.output()).not.toContain(token.slice(-43));
    } finally {
      await server.stop();
    }
  });
});
