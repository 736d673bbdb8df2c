/**
 * Expectations over HTTP: PUT/GET/DELETE /v1/expectations (PUT and DELETE need admin),
 * `GET /v1/subjects?overdue=` and `?dueBefore=`, the run_active problem, the children of a
 * parent on GET /v1/runs/{id}, and the gauges on /metrics. The ledger's clock is manual.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { buildServer, createToken, type OpenedLedger } from '../../src/index.js';
import { dropSchemas, freshStore, manualClock } from '../helpers.js';
import { type Answer, api, expectProblem } from './support.js';

const clock = manualClock('2026-05-01T00:00:00Z');
let ledger: OpenedLedger;
let app: Awaited<ReturnType<typeof buildServer>>;
let admin: ReturnType<typeof api>;
let writer: ReturnType<typeof api>;

beforeAll(async () => {
  ledger = await freshStore({ clock: clock.now });
  app = await buildServer({ ledger, auth: 'required' });
  admin = api(app, { token: (await createToken(ledger.database, { namespace: 'default', scope: 'admin' })).token });
  writer = api(app, { token: (await createToken(ledger.database, { namespace: 'default', scope: 'write' })).token });
});
afterAll(async () => {
  await app?.close();
  await ledger?.close();
  await dropSchemas();
});

const ok = (r: Answer, status = 200) => {
  expect(r.status, r.text).toBe(status);
  return r.body;
};

describe('expectations over HTTP', () => {
  it('PUT needs admin, reads back exactly, refuses bad input naming the field; DELETE removes', async () => {
    expectProblem(await writer('PUT', '/v1/expectations/check', { every: '12h', grace: '30m' }), 403, 'forbidden');
    const put = ok(await admin('PUT', '/v1/expectations/check', { every: '12h', grace: '30m' }));
    expect(put).toMatchObject({ job: 'check', every: '12h', cron: null, timezone: 'UTC', grace: '30m', perSubject: true });
    expect(ok(await writer('GET', '/v1/expectations'))).toEqual({ expectations: [put] });

    const bad = expectProblem(
      await admin('PUT', '/v1/expectations/x', { cron: '0 * * * *', timezone: 'Atlantis/Capital', grace: '5m' }),
      400,
      'validation_failed',
    );
    expect(bad.errors[0].field).toBe('timezone');
    expect(bad.detail).toContain('Atlantis/Capital');
    expect(
      expectProblem(await admin('PUT', '/v1/expectations/x', { every: '-1h', grace: '5m' }), 400, 'validation_failed').detail,
    ).toContain('every');
    expect(
      expectProblem(await admin('PUT', '/v1/expectations/x', { cron: 'soon', grace: '5m' }), 400, 'validation_failed').errors[0].field,
    ).toBe('cron');

    ok(await admin('PUT', '/v1/expectations/gone', { every: '1h', grace: '0s' }));
    expect((await admin('DELETE', '/v1/expectations/gone')).status).toBe(204);
    expectProblem(await admin('DELETE', '/v1/expectations/gone'), 404, 'not_found');
  });

  it('GET /v1/subjects?overdue=true and ?dueBefore= find the subjects due; /metrics counts them per job', async () => {
    for (const subject of ['a', 'b']) {
      const run = ok(await writer('POST', '/v1/runs', { job: 'check', subject }), 201);
      ok(await writer('POST', `/v1/runs/${run.id}/complete`, {}));
      clock.advance(3600); // b starts an hour after a
    }
    clock.set('2026-05-01T12:45:00Z'); // a was due at 12:00 (+30m grace); b at 13:00
    const overdue = ok(await writer('GET', '/v1/subjects?job=check&overdue=true'));
    expect(overdue.subjects.map((s: { subject: string }) => s.subject)).toEqual(['a']);
    expect(overdue.subjects[0]).toMatchObject({ overdue: true, nextDueAt: '2026-05-01T12:00:00.000Z', consecutiveSuccesses: 1 });
    const due = ok(await writer('GET', '/v1/subjects?job=check&dueBefore=2026-05-01T13:30:00Z'));
    expect(due.subjects.map((s: { subject: string }) => s.subject)).toEqual(['a', 'b']);
    expectProblem(await writer('GET', '/v1/subjects?overdue=maybe'), 400, 'validation_failed');
    expectProblem(await writer('GET', '/v1/subjects?dueBefore=tomorrow'), 400, 'validation_failed');

    const live = ok(await writer('POST', '/v1/runs', { job: 'busy', leaseS: 10 }), 201);
    clock.advance(11); // past one lease: suspect
    const metrics = (await admin('GET', '/metrics')).text;
    expect(metrics).toMatch(/runledger_overdue_subjects\{namespace="default",job="check"\} 1/);
    expect(metrics).toMatch(/runledger_live_runs\{status="running"\} 1/);
    expect(metrics).toMatch(/runledger_suspect_runs 1/);
    ok(await writer('POST', `/v1/runs/${live.id}/complete`, {}));
  });

  it('409 run_active names the live run; a parent reports its children by status', async () => {
    const first = ok(await writer('POST', '/v1/runs', { job: 'deploy', subject: 'prod', exclusive: true }), 201);
    const refused = await writer('POST', '/v1/runs', { job: 'deploy', subject: 'prod', exclusive: true });
    expectProblem(refused, 409, 'run_active');
    expect(refused.body.activeRunId).toBe(first.id);

    const parent = ok(await writer('POST', '/v1/runs', { job: 'weeks' }), 201);
    for (let i = 0; i < 5; i++) {
      const child = ok(await writer('POST', '/v1/runs', { job: 'week', parentId: parent.id }), 201);
      if (i < 3) ok(await writer('POST', `/v1/runs/${child.id}/complete`, {}));
    }
    expect(ok(await writer('GET', `/v1/runs/${parent.id}`)).children).toEqual({ total: 5, byStatus: { completed: 3, running: 2 } });
    expect(ok(await writer('GET', `/v1/runs/${first.id}`)).children).toBeUndefined();
  });
});
