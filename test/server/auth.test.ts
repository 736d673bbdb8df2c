/**
 * Tokens and authorization: hashes only, scopes read < write < admin, a token bound to
 * its namespace (403 elsewhere, including streams, imports and stats), 401 without a
 * valid token, and revocation effective on the very next request.
 */
import { createHash } from 'node:crypto';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  authenticate,
  buildServer,
  createToken,
  listTokens,
  type OpenedLedger,
  revokeToken,
  type RunningServer,
  startServer,
} from '../../src/index.js';
import { dropSchemas, freshStore, rejectsWith } from '../helpers.js';
import { api, expectProblem } from './support.js';

let ledger: OpenedLedger;
let app: Awaited<ReturnType<typeof buildServer>>;
const tokens: Record<string, string> = {};

beforeAll(async () => {
  ledger = await freshStore();
  app = await buildServer({ ledger, auth: 'required' });
  for (const [name, namespace, scope] of [
    ['read', 'team-a', 'read'],
    ['write', 'team-a', 'write'],
    ['admin', 'team-a', 'admin'],
    ['other', 'team-b', 'admin'],
    ['dflt', 'default', 'write'],
  ] as const) {
    tokens[name] = (await createToken(ledger.database, { namespace, scope, name })).token;
  }
});
afterAll(async () => {
  await app?.close();
  await ledger?.close();
  await dropSchemas();
});

const as = (who: string) => api(app, { token: tokens[who] });

describe('tokens', () => {
  it('are rl_<id>_<secret>; only a sha256 hash is stored; listTokens shows no secret', async () => {
    const { id, token } = await createToken(ledger.database, { namespace: 'ns1', scope: 'read', name: 'ci' });
    expect(token).toMatch(/^rl_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
    const { rows } = await ledger.database.query<Record<string, unknown>>('select * from tokens where id = $1', [id]);
    expect(rows[0].token_hash).toBe(createHash('sha256').update(token).digest('hex'));
    expect(JSON.stringify(rows[0])).not.toContain(token.slice(-43));
    const listed = (await listTokens(ledger.database)).find((t) => t.id === id)!;
    expect(listed).toMatchObject({ id, namespace: 'ns1', scope: 'read', name: 'ci', revokedAt: null });
    expect(JSON.stringify(listed)).not.toContain(token.slice(-43));
  });

  it('authenticate: the right token → its identity; a wrong secret, a malformed or revoked token → null', async () => {
    const { id, token } = await createToken(ledger.database, { namespace: 'ns2', scope: 'write' });
    expect(await authenticate(ledger.database, token)).toEqual({ id, namespace: 'ns2', scope: 'write' });
    const wrongSecret = token.slice(0, -1) + (token.endsWith('A') ? 'B' : 'A');
    expect(await authenticate(ledger.database, wrongSecret)).toBeNull();
    expect(await authenticate(ledger.database, 'rl_nope')).toBeNull();
    expect(await authenticate(ledger.database, '')).toBeNull();
    const revoked = await revokeToken(ledger.database, id);
    expect(revoked.revokedAt).not.toBeNull();
    expect(await authenticate(ledger.database, token)).toBeNull();
    // Revoking again keeps the first revocation time.
    expect((await revokeToken(ledger.database, id)).revokedAt).toBe(revoked.revokedAt);
  });

  it('create validates scope and namespace; revoking an unknown id is not_found', async () => {
    await rejectsWith(createToken(ledger.database, { namespace: 'ns', scope: 'root' }), 'validation_failed');
    await rejectsWith(createToken(ledger.database, { namespace: 'bad ns', scope: 'read' }), 'validation_failed');
    await rejectsWith(revokeToken(ledger.database, 'feedfeedfeedfeed'), 'not_found');
  });
});

describe('authentication (auth required)', () => {
  it('no token, a malformed header or an unknown token → 401 unauthorized with WWW-Authenticate', async () => {
    const anon = api(app);
    const res = await anon('GET', '/v1/runs?namespace=team-a');
    expectProblem(res, 401, 'unauthorized');
    expect(res.headers['www-authenticate']).toMatch(/^Bearer/);
    expectProblem(await anon('GET', '/v1/runs', undefined, { authorization: 'Basic dXNlcjpwYXNz' }), 401, 'unauthorized');
    expectProblem(
      await anon('GET', '/v1/runs', undefined, { authorization: `Bearer rl_${'0'.repeat(16)}_${'A'.repeat(43)}` }),
      401,
      'unauthorized',
    );
  });

  it('authentication comes before the body is read: a bad body without a token is 401', async () => {
    expectProblem(await api(app)('POST', '/v1/runs', '{not json', { 'content-type': 'application/json' }), 401, 'unauthorized');
  });

  it('operations endpoints need no token', async () => {
    const anon = api(app);
    for (const url of ['/healthz', '/readyz', '/metrics', '/openapi.json', '/docs']) expect((await anon('GET', url)).status, url).toBe(200);
  });
});

describe('scopes: read < write < admin', () => {
  it('read can read but not write', async () => {
    expect((await as('read')('GET', '/v1/runs?namespace=team-a')).status).toBe(200);
    const p = expectProblem(await as('read')('POST', '/v1/runs?namespace=team-a', { job: 'j' }), 403, 'forbidden');
    expect(p.detail).toContain('scope read');
    expectProblem(await as('read')('POST', '/v1/imports?namespace=team-a', { source: 's', runs: [] }), 403, 'forbidden');
    expect((await ledger.inNamespace('team-a').listRuns()).runs).toEqual([]);
  });

  it('write can write and read but not reap; admin can reap', async () => {
    const created = await as('write')('POST', '/v1/runs?namespace=team-a', { job: 'j' });
    expect(created.status).toBe(201);
    expect((await as('write')('GET', `/v1/runs/${created.body.id}?namespace=team-a`)).status).toBe(200);
    expect((await as('write')('POST', `/v1/runs/${created.body.id}/events?namespace=team-a`, { events: [{ type: 't' }] })).status).toBe(
      200,
    );
    expectProblem(await as('write')('POST', '/v1/reap?namespace=team-a'), 403, 'forbidden');
    expect((await as('admin')('POST', '/v1/reap?namespace=team-a')).status).toBe(200);
    expect((await as('admin')('POST', '/v1/runs?namespace=team-a', { job: 'j' })).status).toBe(201);
  });
});

describe('namespace binding', () => {
  it('a token works only in its namespace: another one (or the default) is 403 on every kind of endpoint', async () => {
    const run = await ledger.inNamespace('team-b').startRun({ job: 'secret-b' });
    const a = as('admin');
    const attempts: [string, string, unknown?][] = [
      ['GET', '/v1/runs'],
      ['GET', '/v1/runs?namespace=team-b'],
      ['GET', `/v1/runs/${run.id}?namespace=team-b`],
      ['GET', `/v1/runs/${run.id}/events?namespace=team-b`],
      ['GET', `/v1/runs/${run.id}/events/stream?namespace=team-b`],
      ['POST', `/v1/runs/${run.id}/complete?namespace=team-b`, {}],
      ['POST', '/v1/imports?namespace=team-b', { source: 's', runs: [{ sourceId: '1', job: 'j' }] }],
      ['GET', '/v1/stats?namespace=team-b'],
      ['GET', '/v1/subjects?namespace=team-b'],
      ['GET', '/v1/verify?namespace=team-b'],
      ['GET', '/v1/runs?namespace=team-a&namespace=team-b'],
    ];
    for (const [method, url, body] of attempts) {
      const p = expectProblem(await a(method as 'GET', url, body), 403, 'forbidden');
      expect(p.detail, url).toContain('bound to namespace team-a');
    }
    expect((await ledger.inNamespace('team-b').getRun(run.id)).status).toBe('running');
    expect((await as('other')('GET', `/v1/runs/${run.id}?namespace=team-b`)).body.job).toBe('secret-b');
    // A token of the default namespace works without ?namespace.
    expect((await as('dflt')('POST', '/v1/runs', { job: 'j' })).status).toBe(201);
  });
});

describe('revocation', () => {
  it('takes effect on the next request', async () => {
    const { id, token } = await createToken(ledger.database, { namespace: 'team-c', scope: 'write' });
    const c = api(app, { token });
    expect((await c('GET', '/v1/runs?namespace=team-c')).status).toBe(200);
    await revokeToken(ledger.database, id);
    expectProblem(await c('GET', '/v1/runs?namespace=team-c'), 401, 'unauthorized');
    expectProblem(await c('POST', '/v1/runs?namespace=team-c', { job: 'j' }), 401, 'unauthorized');
  });
});

describe('auth off', () => {
  it('allows everything without a token', async () => {
    const open = await buildServer({ ledger, auth: 'off' });
    try {
      expect((await api(open)('POST', '/v1/runs?namespace=anything', { job: 'j' })).status).toBe(201);
      expect((await api(open)('POST', '/v1/reap')).status).toBe(200);
    } finally {
      await open.close();
    }
  });
});

describe('rate limit hook', () => {
  it('is asked with the token and namespace; a refusal is 429 rate_limited with Retry-After', async () => {
    const seen: { tokenId: string | null; namespace: string }[] = [];
    let allow = true;
    const limited = await buildServer({
      ledger,
      auth: 'required',
      rateLimit: (who) => {
        seen.push({ tokenId: who.tokenId, namespace: who.namespace });
        return allow ? { allowed: true } : { allowed: false, retryAfterS: 2 };
      },
    });
    try {
      const call = api(limited, { token: tokens.write });
      expect((await call('GET', '/v1/runs?namespace=team-a')).status).toBe(200);
      allow = false;
      const res = await call('GET', '/v1/runs?namespace=team-a');
      expectProblem(res, 429, 'rate_limited');
      expect(res.headers['retry-after']).toBe('2');
      expect(seen[0]).toEqual({ tokenId: tokens.write.slice(3, 19), namespace: 'team-a' });
    } finally {
      await limited.close();
    }
  });
});

describe('over a real socket', () => {
  let server: RunningServer;
  beforeAll(async () => {
    server = await startServer({ ledger, port: 0, auth: 'required', logger: false, reapIntervalS: 0, webRoot: false });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('the event stream needs a token of the run’s namespace', async () => {
    const run = await ledger.inNamespace('team-a').startRun({ job: 'j' });
    await ledger.inNamespace('team-a').run(run.id).complete({});
    const url = `${server.url}/v1/runs/${run.id}/events/stream?namespace=team-a`;
    expect((await fetch(url)).status).toBe(401);
    expect((await fetch(url, { headers: { authorization: `Bearer ${tokens.other}` } })).status).toBe(403);
    const ok = await fetch(url, { headers: { authorization: `Bearer ${tokens.read}` } });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const text = await ok.text();
    expect(text).toContain('"type":"run.status"');
  });
});
