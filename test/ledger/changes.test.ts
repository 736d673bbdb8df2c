/**
 * The change log: which writes append a change (and only those), in the same statement as
 * the change; reading it after a cursor, with filters, once each and in a stable order.
 */
import { randomBytes } from 'node:crypto';

import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { Change, OpenedLedger } from '../../src/index.js';
import { appendChange } from '../../src/ledger/sql/changes.js';
import type { Queryable } from '../../src/store/database.js';
import { dropSchemas, freshLedger, onPostgres, PG_URL, rejectsWith } from '../helpers.js';
import { ageRun, fingerprint } from './support.js';

let root: OpenedLedger;

beforeAll(async () => {
  root = await freshLedger({ poolSize: onPostgres ? 10 : undefined });
});
afterAll(async () => {
  await root?.close();
  await dropSchemas();
});

/** Each test its own namespace, so each sees only its own feed. */
const fresh = () => root.inNamespace(`ns-${randomBytes(4).toString('hex')}`) as OpenedLedger;

/**
 * Waits until every transaction that began before now has ended. On PostgreSQL the feed
 * serves only changes below the snapshot's xmin, which is database-wide: while another test
 * file (in another worker) has a transaction open, a change committed here is held back, by
 * design. A read that expects what was just written waits for that first.
 */
async function settled(): Promise<void> {
  if (!onPostgres) return;
  const { rows } = await root.database.query<{ xid: string }>(`select pg_current_xact_id()::text as xid`);
  await expect
    .poll(
      async () =>
        (await root.database.query<{ ok: boolean }>(`select pg_snapshot_xmin(pg_current_snapshot()) > $1::xid8 as ok`, [rows[0].xid]))
          .rows[0].ok,
      { timeout: 30_000, interval: 20 },
    )
    .toBe(true);
}

/** ledger.changes() once the feed has caught up with what this test wrote. */
async function read(ledger: ReturnType<typeof fresh>, q: Parameters<OpenedLedger['changes']>[0] = {}) {
  await settled();
  return ledger.changes(q);
}

async function all(ledger: ReturnType<typeof fresh>, q: Parameters<OpenedLedger['changes']>[0] = {}): Promise<Change[]> {
  await settled();
  const out: Change[] = [];
  let after = q.after;
  for (;;) {
    const page = await ledger.changes({ ...q, after, limit: q.limit ?? 1000 });
    out.push(...page.changes);
    if (page.nextAfter === after) return out;
    after = page.nextAfter;
    if (!page.changes.length) return out;
  }
}

describe('what is logged', () => {
  it('a lifecycle (start, events, heartbeat, checkpoint, retry, complete) writes one run.finished with the run', async () => {
    const ledger = fresh();
    const run = await ledger.startRun({ job: 'build', trigger: 'push', actor: 'ann' });
    await run.event('progress', { done: 1 });
    await run.heartbeat();
    await run.checkpoint({ name: 'half', metadata: {} });
    await run.update({ tags: { a: 'b' } });
    await run.retry({ error: { message: 'flaky' } });
    await run.start();
    expect(await all(ledger)).toEqual([]);
    const done = await run.complete({ output: { ok: true }, statistics: { rows: 3 } });
    const changes = await all(ledger);
    expect(changes).toHaveLength(1);
    expect(changes[0]).toMatchObject({
      type: 'run.finished',
      namespace: ledger.namespace,
      runId: run.id,
      job: 'build',
      subject: null,
      at: done.finishedAt,
      data: {
        run: {
          id: run.id,
          job: 'build',
          subject: null,
          trigger: 'push',
          actor: 'ann',
          parentId: null,
          status: 'completed',
          attempt: 2,
          createdAt: done.createdAt,
          startedAt: done.startedAt,
          finishedAt: done.finishedAt,
          error: null,
          statistics: { rows: 3 },
        },
      },
    });
    expect(typeof changes[0].id).toBe('number');
    // A repeated completion with the same payload changes nothing, so logs nothing.
    await run.complete({ output: { ok: true }, statistics: { rows: 3 } });
    expect(await all(ledger)).toHaveLength(1);
  });

  it('fail and cancel each log run.finished with their status and error', async () => {
    const ledger = fresh();
    const a = await ledger.startRun({ job: 'j' });
    const b = await ledger.startRun({ job: 'j', status: 'submitted' });
    await a.fail({ error: { type: 'boom', message: 'it broke' } });
    await b.cancel({ reason: 'not needed' });
    const changes = await all(ledger);
    expect(changes.map((c) => [c.runId, c.type, (c.data as { run: { status: string } }).run.status])).toEqual([
      [a.id, 'run.finished', 'failed'],
      [b.id, 'run.finished', 'cancelled'],
    ]);
    expect((changes[0].data as { run: { error: unknown } }).run.error).toEqual({ type: 'boom', message: 'it broke' });
  });

  it('subject.changed when the current status takes a first or another value, not when it stays the same', async () => {
    const ledger = fresh();
    const finish = async (how: 'complete' | 'fail') => {
      const r = await ledger.startRun({ job: 'check', subject: 'acme/api' });
      if (how === 'complete') await r.complete();
      else await r.fail({ error: { message: 'red' } });
      return r.id;
    };
    const first = await finish('complete');
    await finish('complete');
    const third = await finish('fail');
    const subjects = (await all(ledger, { types: ['subject.changed'] })).map((c) => c.data);
    expect(subjects).toEqual([
      { job: 'check', subject: 'acme/api', previousStatus: null, status: 'completed', runId: first },
      { job: 'check', subject: 'acme/api', previousStatus: 'completed', status: 'failed', runId: third },
    ]);
    // Each completion wrote its run.finished; subject.changed follows it in the same statement.
    const types = (await all(ledger)).map((c) => c.type);
    expect(types).toEqual(['run.finished', 'subject.changed', 'run.finished', 'run.finished', 'subject.changed']);
  });

  it('a late completion that is not fresher than the current verdict changes no subject', async () => {
    const ledger = fresh();
    const older = await ledger.startRun({ job: 'check', subject: 's' });
    const newer = await ledger.startRun({ job: 'check', subject: 's' });
    await newer.complete();
    // Make the current verdict fresher than any completion to come: the late failure loses the freshness rule.
    await ledger.database.query(`update subject_status set finished_at = finished_at + interval '1 hour' where namespace = $1`, [
      ledger.namespace,
    ]);
    await older.fail({ error: { message: 'late' } });
    const subjects = (await all(ledger, { types: ['subject.changed'] })).map((c) => (c.data as { status: string }).status);
    expect(subjects).toEqual(['completed']);
  });

  it('the reaper logs run.suspect once per flagging and run.finished (timed_out) for a timeout', async () => {
    const ledger = fresh();
    const run = await ledger.startRun({ job: 'lease', subject: 'x', leaseS: 60 });
    await ageRun(ledger, run.id, 90);
    await ledger.reap();
    await ledger.reap();
    expect((await all(ledger)).map((c) => c.type)).toEqual(['run.suspect']);
    const suspect = (await all(ledger))[0];
    expect(suspect).toMatchObject({ runId: run.id, job: 'lease', subject: 'x', data: { run: { id: run.id, status: 'running' } } });
    // Renewed, then flagged again: a second run.suspect.
    await run.heartbeat();
    await ageRun(ledger, run.id, 90);
    await ledger.reap();
    await ageRun(ledger, run.id, 60);
    await ledger.reap();
    const types = (await all(ledger)).map((c) => c.type);
    expect(types).toEqual(['run.suspect', 'run.suspect', 'run.finished', 'subject.changed']);
    const finished = (await all(ledger, { types: ['run.finished'] }))[0];
    expect(finished.data).toMatchObject({ run: { status: 'timed_out', error: { type: 'lease_expired' } } });
  });

  it('a refused transition logs nothing; imports log nothing', async () => {
    const ledger = fresh();
    const run = await ledger.startRun({ job: 'j' });
    await run.complete();
    const before = await fingerprint(root);
    await rejectsWith(run.fail({ error: { message: 'x' } }), 'run_finished');
    await rejectsWith(run.retry(), 'run_finished');
    await rejectsWith(run.complete({ output: 2 }), 'run_finished');
    expect(await fingerprint(root)).toBe(before);
    await ledger.importRuns('legacy', [{ sourceId: '1', job: 'j', subject: 's', status: 'failed', finishedAt: '2020-01-01T00:00:00Z' }]);
    expect((await all(ledger)).map((c) => c.type)).toEqual(['run.finished']);
  });
});

describe('reading', () => {
  it('pages after a cursor: every change once, in a stable order, filters by type and job', async () => {
    const ledger = fresh();
    const ids: string[] = [];
    for (let i = 0; i < 7; i++) {
      const r = await ledger.startRun({ job: i % 2 ? 'odd' : 'even', subject: `s${i}` });
      await r.complete();
      ids.push(r.id);
    }
    const everything = await all(ledger);
    expect(everything).toHaveLength(14);
    let after: string | undefined;
    const paged: Change[] = [];
    for (;;) {
      const page = await read(ledger, { after, limit: 3 });
      expect(page.changes.length).toBeLessThanOrEqual(3);
      paged.push(...page.changes);
      if (!page.changes.length) break;
      after = page.nextAfter;
    }
    expect(paged).toEqual(everything);
    expect(new Set(paged.map((c) => c.id)).size).toBe(14);
    // Resuming from any change's cursor gives exactly what follows it.
    expect((await read(ledger, { after: everything[4].cursor })).changes).toEqual(everything.slice(5));

    const odd = await all(ledger, { job: 'odd', types: ['run.finished'] });
    expect(odd.map((c) => c.runId)).toEqual(ids.filter((_, i) => i % 2));
    // A filtered page moves past what it left out: reading on from nextAfter finds nothing old.
    const page = await read(ledger, { job: 'nobody' });
    expect(page.changes).toEqual([]);
    expect((await read(ledger, { after: page.nextAfter })).changes).toEqual([]);
  });

  it('after=now skips the past and sees what comes next', async () => {
    const ledger = fresh();
    await (await ledger.startRun({ job: 'j' })).complete();
    const { changes, nextAfter } = await ledger.changes({ after: 'now' });
    expect(changes).toEqual([]);
    const later = await ledger.startRun({ job: 'j' });
    await later.complete();
    expect((await read(ledger, { after: nextAfter })).changes.map((c) => c.runId)).toEqual([later.id]);
  });

  it('namespaces see only their own changes', async () => {
    const a = fresh();
    const b = fresh();
    await (await a.startRun({ job: 'j' })).complete();
    expect(await all(b)).toEqual([]);
    expect(await all(a)).toHaveLength(1);
  });

  it('bad input names the field, the value and what is allowed', async () => {
    const ledger = fresh();
    const e1 = await rejectsWith(ledger.changes({ after: 'yesterday' }), 'validation_failed');
    expect(e1.message).toContain('after must be a change cursor');
    expect(e1.message).toContain('"yesterday"');
    const e2 = await rejectsWith(ledger.changes({ types: ['run.exploded' as never] }), 'validation_failed');
    expect(e2.message).toMatch(/types.*run\.finished.*run\.exploded/s);
    const e3 = await rejectsWith(ledger.changes({ limit: 0 }), 'validation_failed');
    expect(e3.message).toContain('limit must be 1–1000');
    await rejectsWith(ledger.changes({ limit: 1001 }), 'validation_failed');
  });

  it('watch() hands over every change once, in order, and resumes from its cursor', async () => {
    const ledger = fresh();
    const seen: Change[] = [];
    const { nextAfter: start } = await ledger.changes({ after: 'now' }); // not 'now' in watch(): that races the first write
    const w = ledger.watch({ after: start, types: ['run.finished'], onChange: (c) => void seen.push(c) });
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const r = await ledger.startRun({ job: 'w', subject: 'x' });
      await r.complete();
      ids.push(r.id);
    }
    await expect.poll(() => seen.length, { timeout: 20_000 }).toBe(5);
    await w.stop();
    expect(seen.map((c) => c.runId)).toEqual(ids);
    const more = await ledger.startRun({ job: 'w' });
    await more.fail({ error: { message: 'x' } });
    const resumed: Change[] = [];
    const w2 = ledger.watch({ after: w.cursor!, onChange: (c) => void resumed.push(c) });
    await expect.poll(() => resumed.length, { timeout: 20_000 }).toBe(1);
    await w2.stop();
    expect(resumed[0].runId).toBe(more.id);
  });
});

describe('the outbox gap', () => {
  // PGlite has one connection, so its transactions commit in id order; the gap needs two.
  it.skipIf(!onPostgres)(
    'a change whose transaction began first and commits last is waited for, not skipped: both seen, once each, in (xid, id) order',
    async () => {
      const ledger = fresh();
      const { nextAfter: start } = await ledger.changes({ after: 'now' });
      const schema = (await root.database.query<{ s: string }>('select current_schema() as s')).rows[0].s;
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
        // A later change commits first.
        const late = await ledger.startRun({ job: 'gap' });
        await late.complete();
        // The gap is real: by id, the committed change is past the open one (an id cursor would skip it).
        const ids = await root.database.query<{ id: string }>(`select id::text from changes where namespace = $1`, [ledger.namespace]);
        expect(ids.rows).toHaveLength(1);
        const { rows: open } = await early.query<{ id: string }>(`select id::text from changes where namespace = $1`, [ledger.namespace]);
        expect(open.map((r) => BigInt(r.id)).sort()[0]).toBeLessThan(BigInt(ids.rows[0].id));

        // The reader waits: nothing is served while the earlier transaction is open.
        const held = await ledger.changes({ after: start });
        expect(held.changes).toEqual([]);
        // ...and says so: a committed change waits past nextAfter (a filter that leaves it out does not wait).
        expect(held.heldBack).toBe(true);
        expect((await ledger.changes({ after: start, job: 'other' })).heldBack).toBe(false);
        await early.query('commit');
        const seen: Change[] = [];
        let after = held.nextAfter;
        // Other sessions on the shared server may hold the feed back a little longer: read until both are in.
        await expect
          .poll(
            async () => {
              const page = await ledger.changes({ after });
              seen.push(...page.changes);
              after = page.nextAfter;
              return seen.length;
            },
            { timeout: 60_000, interval: 100 },
          )
          .toBeGreaterThanOrEqual(2);
        expect(seen.map((c) => (c.runId === late.id ? 'late' : (c.data as { n: string }).n))).toEqual(['early', 'late']);
        expect((await ledger.changes({ after })).changes).toEqual([]);
        // Read from the start, the order is the same (stable).
        expect((await ledger.changes({ after: start })).changes).toEqual(seen);
      } finally {
        await early.end();
      }
    },
  );
});
