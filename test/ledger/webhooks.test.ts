/**
 * Webhooks in the ledger: subscriptions (the same on every backend and over HTTP), and the
 * dispatcher's statements on their own: fan-out that cannot skip a change held back by the
 * outbox gap, each change queued once, claims fenced by their attempt number, replay.
 */
import { randomBytes } from 'node:crypto';

import pg from 'pg';
import { describe, expect, it } from 'vitest';

import type { OpenedLedger } from '../../src/index.js';
import { appendChange } from '../../src/ledger/sql/changes.js';
import { claimDeliveries, fanOutWebhooks, recordAttempt } from '../../src/ledger/webhooks.js';
import type { Queryable } from '../../src/store/database.js';
import { manualClock, onPostgres, PG_URL, rejectsWith, useFreshLedger, viaHttp } from '../helpers.js';

const root = useFreshLedger({ poolSize: onPostgres ? 5 : undefined });
const fresh = () => root.inNamespace(`wh-${randomBytes(4).toString('hex')}`) as OpenedLedger;
// A documentation address (TEST-NET-3): public, so the HTTP server accepts it; nothing answers there.
const URL = 'https://203.0.113.10/runledger';

describe('subscriptions', () => {
  it('create answers the secret once; list and get never show it; delete removes', async () => {
    const ledger = fresh();
    const hook = await ledger.createWebhook({ url: URL, types: ['run.finished', 'subject.changed'], job: 'nightly', description: 'ops' });
    expect(hook).toMatchObject({
      id: expect.stringMatching(/^wh_[A-Za-z0-9]{16}$/),
      namespace: ledger.namespace,
      url: URL,
      types: ['run.finished', 'subject.changed'],
      job: 'nightly',
      description: 'ops',
      disabledAt: null,
      pending: 0,
      failed: 0,
      secret: expect.stringMatching(/^whsec_[A-Za-z0-9+/]{43}=$/),
    });
    const { secret, ...shown } = hook;
    expect(await ledger.listWebhooks()).toEqual([shown]);
    expect(await ledger.getWebhook(hook.id)).toEqual(shown);
    expect(JSON.stringify(await ledger.listWebhooks())).not.toContain(secret.slice(6));
    expect(await ledger.inNamespace('elsewhere').listWebhooks()).not.toContainEqual(expect.objectContaining({ id: hook.id }));
    expect(await ledger.deleteWebhook(hook.id)).toBe(true);
    expect(await ledger.deleteWebhook(hook.id)).toBe(false);
    await rejectsWith(ledger.getWebhook(hook.id), 'not_found');
    await rejectsWith(ledger.listWebhookDeliveries(hook.id), 'not_found');
  });

  it('bad input names the field and stores nothing', async () => {
    const ledger = fresh();
    const bad: [unknown, RegExp][] = [
      [{ url: 'mailto:ops@example.com', types: ['run.finished'] }, /url must use http or https; got "mailto"/],
      [{ url: URL, types: ['run.started'] }, /types must be among run.finished/],
      [{ url: URL, types: 'run.finished' }, /types must be a list/],
      [{ url: URL, types: ['run.finished'], job: '' }, /job must be 1–200 characters/],
      [{ url: `https://example.com/${'x'.repeat(2000)}`, types: ['run.finished'] }, /url must be at most 2000 characters/],
    ];
    for (const [input, message] of bad) {
      const err = await rejectsWith(ledger.createWebhook(input as never), 'validation_failed');
      expect(err.message).toMatch(message);
    }
    expect(await ledger.listWebhooks()).toEqual([]);
    await rejectsWith(ledger.getWebhook('wh_nope'), 'validation_failed');
    await rejectsWith(ledger.replayWebhook('wh_AAAAAAAAAAAAAAAA', { after: 'now' }), 'validation_failed');
    await rejectsWith(ledger.replayWebhook('wh_AAAAAAAAAAAAAAAA', { after: '0' }), 'not_found');
  });
});

// The dispatcher's statements, driven directly (in process: over HTTP the test server's own dispatcher would compete).
describe.skipIf(viaHttp)('fan-out and claims', () => {
  it('a webhook gets the changes after it was created, each queued once, filtered by type and job', async () => {
    const ledger = fresh();
    const hook = await ledger.createWebhook({ url: URL, types: ['run.finished'], job: 'nightly' });
    const runs = [];
    for (const job of ['nightly', 'other', 'nightly']) {
      const run = await ledger.startRun({ job, subject: 'a' });
      await run.complete();
      runs.push(run.id);
    }
    const db = root.database;
    await expect
      .poll(async () => (await fanOutWebhooks({ db, now: () => new Date() }), (await ledger.getWebhook(hook.id)).pending), {
        timeout: 30_000,
      })
      .toBe(2);
    await fanOutWebhooks({ db, now: () => new Date() });
    const deliveries = await ledger.listWebhookDeliveries(hook.id);
    expect(deliveries).toHaveLength(2);
    expect(deliveries.every((d) => d.state === 'pending' && d.type === 'run.finished' && d.attempts === 0)).toBe(true);
  });

  it('a claim is fenced by its attempt: a late answer to a lease another server took over changes nothing', async () => {
    const ledger = fresh();
    const clock = manualClock(new Date().toISOString());
    const hook = await ledger.createWebhook({ url: URL, types: ['run.finished'] });
    await (await ledger.startRun({ job: 'j' })).complete();
    const db = root.database;
    await expect
      .poll(async () => (await fanOutWebhooks({ db, now: clock.now }), (await ledger.getWebhook(hook.id)).pending), { timeout: 30_000 })
      .toBe(1);
    const key = { namespace: ledger.namespace, id: hook.id };
    const lease = () => new Date(clock.now().getTime() + 15_000);
    const [first] = await claimDeliveries(db, key, clock.now(), lease(), 8);
    expect(first).toMatchObject({ attempt: 1, priorAttempts: 0, type: 'run.finished' });
    // Leased: nobody else gets it until the lease ends.
    expect(await claimDeliveries(db, key, clock.now(), lease(), 8)).toEqual([]);
    clock.advance(16);
    const [second] = await claimDeliveries(db, key, clock.now(), lease(), 8);
    expect(second.attempt).toBe(2);
    const answer = { at: clock.now(), durationMs: 5, statusCode: 500, error: null, outcome: 'retry' as const, nextAt: clock.now() };
    expect(await recordAttempt(db, first, answer)).toBe(false);
    expect(await recordAttempt(db, second, { ...answer, statusCode: 204, outcome: 'delivered', nextAt: undefined })).toBe(true);
    const [d] = await ledger.listWebhookDeliveries(hook.id);
    expect(d).toMatchObject({ state: 'delivered', attempts: 2, log: [{ attempt: 2, statusCode: 204, outcome: 'delivered' }] });
    // Replay makes it due again; its next attempt is numbered on, and counts as the first of a new round.
    expect(await ledger.replayWebhook(hook.id, { after: '0' })).toEqual({ queued: 1 });
    const [third] = await claimDeliveries(db, key, clock.now(), lease(), 8);
    expect(third).toMatchObject({ attempt: 3, priorAttempts: 0 });
  });

  // PGlite has one connection, so its transactions commit in id order; the gap needs two.
  it.skipIf(!onPostgres)('the outbox gap: a change whose transaction began first and commits last is queued, not skipped', async () => {
    const ledger = fresh();
    const hook = await ledger.createWebhook({ url: URL, types: ['run.finished'] });
    const db = root.database;
    const fanOut = () => fanOutWebhooks({ db, now: () => new Date() });
    const schema = (await db.query<{ s: string }>('select current_schema() as s')).rows[0].s;
    const early = new pg.Client({ connectionString: PG_URL });
    await early.connect();
    try {
      await early.query(`set search_path to "${schema}"`);
      await early.query('begin');
      await appendChange(early as unknown as Queryable, {
        namespace: ledger.namespace,
        type: 'run.finished',
        job: 'gap',
        data: { n: 'early' },
      });
      const late = await ledger.startRun({ job: 'gap' });
      await late.complete();
      // While the earlier transaction is open, the later change is not queued (passing it would skip the earlier one).
      await fanOut();
      expect((await ledger.getWebhook(hook.id)).pending).toBe(0);
      await early.query('commit');
      await expect
        .poll(async () => (await fanOut(), (await ledger.getWebhook(hook.id)).pending), { timeout: 60_000, interval: 100 })
        .toBe(2);
      await fanOut();
      const deliveries = await ledger.listWebhookDeliveries(hook.id);
      expect(deliveries).toHaveLength(2);
      const { rows } = await db.query<{ id: string; data: { n?: string } }>(
        `select id::text, data from changes where namespace = $1 order by xid, id`,
        [ledger.namespace],
      );
      expect(rows[0].data.n).toBe('early');
      expect(new Set(deliveries.map((d) => String(d.changeId)))).toEqual(new Set(rows.map((r) => r.id)));
    } finally {
      await early.end();
    }
  });
});
