/**
 * Invariant 7, leases: renewed by any heartbeat, event or checkpoint (counting from
 * startedAt when there was none). Past 1 × lease a run is suspect (reversible); past
 * 2 × lease or its deadline the reaper times it out (`lease_expired` /
 * `deadline_exceeded`). The timeout is conditional on no renewal since the reaper
 * looked, and only one reaper acts at a time (advisory lock).
 *
 * Most tests move a run's lease clock into the past with SQL (support.ageRun) rather
 * than sleeping, so they do not depend on how fast the machine is; one test uses the
 * real clock with a 1 s lease.
 */
import { describe, expect, it } from 'vitest';

import { BACKEND, onPostgres, rejectsWith, sleep, useFreshLedger } from '../helpers.js';
import { ageRun, eventRows } from './support.js';

const ledger = useFreshLedger({ poolSize: onPostgres ? 20 : undefined });

const stored = async (id: string) =>
  (await ledger.database.query<{ suspect: boolean; status: string }>(`select suspect, status from runs where id = $1`, [id])).rows[0];

describe('suspect and timed out', () => {
  it('past 1 × lease a run is suspect (a run that never heartbeated counts from startedAt); a heartbeat clears it', async () => {
    const run = await ledger.startRun({ job: 'lease', leaseS: 60 });
    expect(run.run.heartbeatAt).toBeNull();
    expect((await ledger.reap()).suspected).not.toContainEqual({ namespace: 'default', id: run.id });

    await ageRun(ledger, run.id, 90);
    // Derived on read even before any reaper ran.
    expect((await run.get()).suspect).toBe(true);
    const reaped = await ledger.reap();
    expect(reaped.suspected).toContainEqual({ namespace: 'default', id: run.id });
    expect(reaped.timedOut).not.toContainEqual({ namespace: 'default', id: run.id });
    expect(await stored(run.id)).toEqual({ suspect: true, status: 'running' });

    const renewed = await run.heartbeat({ step: 2 });
    expect(renewed).toMatchObject({ suspect: false, status: 'running', progress: { step: 2 } });
    expect(await stored(run.id)).toEqual({ suspect: false, status: 'running' });
    // Heartbeats renew the lease but are not changes to the record.
    expect(renewed.version).toBe(run.run.version);
  });

  it('past 2 × lease the reaper times the run out with error.type lease_expired, logged and a subject verdict', async () => {
    const run = await ledger.startRun({ job: 'lease', subject: 'expired', leaseS: 60 });
    await run.heartbeat();
    await ageRun(ledger, run.id, 121);
    const reaped = await ledger.reap();
    expect(reaped.acquired).toBe(true);
    expect(reaped.timedOut).toContainEqual({ namespace: 'default', id: run.id });
    const after = await run.get();
    expect(after).toMatchObject({ status: 'timed_out', suspect: false, error: { type: 'lease_expired' } });
    expect(after.error!.message).toMatch(/lease 60s/);
    expect(after.finishedAt).not.toBeNull();
    expect((await eventRows(ledger, run.id)).at(-1)).toMatchObject({
      type: 'run.status',
      body: { status: 'timed_out', error: { type: 'lease_expired' } },
    });
    expect(await ledger.getSubject('lease', 'expired')).toMatchObject({ runId: run.id, status: 'timed_out' });
    // The reaper does not touch it again.
    expect((await ledger.reap()).timedOut).not.toContainEqual({ namespace: 'default', id: run.id });
    await rejectsWith(run.heartbeat(), 'run_finished');
  });

  it('with the real clock: a 1 s lease left alone is timed out after 2 s', async () => {
    const run = await ledger.startRun({ job: 'lease-real', leaseS: 1 });
    await sleep(2100);
    expect((await ledger.reap()).timedOut).toContainEqual({ namespace: 'default', id: run.id });
    expect((await run.get()).error?.type).toBe('lease_expired');
  });

  it('a retrying run is held to its lease too', async () => {
    const run = await ledger.startRun({ job: 'lease', leaseS: 30 });
    await run.retry({ error: { message: 'backing off' } });
    await ageRun(ledger, run.id, 61);
    await ledger.reap();
    expect(await run.get()).toMatchObject({ status: 'timed_out', error: { type: 'lease_expired' } });
  });

  it('past deadlineAt the reaper times it out with deadline_exceeded, lease or not', async () => {
    const soon = new Date(Date.now() + 300).toISOString();
    const withLease = await ledger.startRun({ job: 'deadline', leaseS: 3600, deadlineAt: soon });
    const submitted = await ledger.startRun({ job: 'deadline', status: 'submitted', deadlineAt: soon });
    expect((await ledger.reap()).timedOut.map((r) => r.id)).not.toContain(withLease.id);
    await sleep(400);
    const reaped = await ledger.reap();
    expect(reaped.timedOut.map((r) => r.id)).toEqual(expect.arrayContaining([withLease.id, submitted.id]));
    for (const r of [withLease, submitted]) {
      const run = await r.get();
      expect(run).toMatchObject({ status: 'timed_out', error: { type: 'deadline_exceeded' } });
      expect(run.error!.message).toContain(soon);
    }
  });

  it('a submitted run is not held to its lease before it starts', async () => {
    const run = await ledger.startRun({ job: 'lease', status: 'submitted', leaseS: 10 });
    await ageRun(ledger, run.id, 100);
    const reaped = await ledger.reap();
    expect(reaped.timedOut.map((r) => r.id)).not.toContain(run.id);
    expect(reaped.suspected.map((r) => r.id)).not.toContain(run.id);
    expect((await run.get()).status).toBe('submitted');
  });

  it('runs without a lease or deadline are never reaped', async () => {
    const run = await ledger.startRun({ job: 'lease' });
    await ageRun(ledger, run.id, 10 * 365 * 24 * 3600);
    const reaped = await ledger.reap();
    expect(reaped.timedOut.map((r) => r.id)).not.toContain(run.id);
    expect((await run.get()).status).toBe('running');
  });

  for (const renew of ['heartbeat', 'event', 'keyed event', 'event batch', 'checkpoint'] as const) {
    it(`${/^[aeiou]/.test(renew) ? 'an' : 'a'} ${renew} renews the lease: a run past 2 × lease that then renews is not timed out`, async () => {
      const run = await ledger.startRun({ job: 'renew', leaseS: 60 });
      await ageRun(ledger, run.id, 150);
      expect((await run.get()).suspect).toBe(true);
      if (renew === 'heartbeat') await run.heartbeat();
      if (renew === 'event') await run.event('progress', { n: 1 });
      if (renew === 'keyed event') await run.event('progress', { n: 1 }, { key: 'k' });
      if (renew === 'event batch') await run.events([{ type: 'a' }, { type: 'b' }]);
      if (renew === 'checkpoint') await run.checkpoint({ name: 'c', metadata: {} });
      expect((await run.get()).suspect).toBe(false);
      const reaped = await ledger.reap();
      expect(reaped.timedOut.map((r) => r.id)).not.toContain(run.id);
      expect(reaped.suspected.map((r) => r.id)).not.toContain(run.id);
      expect((await run.get()).status).toBe('running');
    });
  }

  it('the reaper acts on every namespace of the store', async () => {
    const other = ledger.inNamespace('elsewhere');
    const run = await other.startRun({ job: 'lease', leaseS: 5 });
    await ageRun(ledger, run.id, 11, 'elsewhere');
    expect((await ledger.reap()).timedOut).toContainEqual({ namespace: 'elsewhere', id: run.id });
    expect((await other.getRun(run.id)).status).toBe('timed_out');
  });

  it('a heartbeat on a submitted run is refused; on a missing run not_found', async () => {
    const run = await ledger.startRun({ job: 'lease', status: 'submitted' });
    await rejectsWith(run.heartbeat(), 'invalid_transition');
    await rejectsWith(ledger.run('missing').heartbeat(), 'not_found');
  });
});

describe(`the reaper never times out a renewed run (${BACKEND})`, () => {
  it('heartbeats racing the reaper: a run whose heartbeat succeeded is never timed out by that reaper', async () => {
    const rounds = onPostgres ? 12 : 4;
    const perRound = onPostgres ? 40 : 15;
    let raced = 0;
    for (let round = 0; round < rounds; round++) {
      const runs = await Promise.all(Array.from({ length: perRound }, () => ledger.startRun({ job: 'race', leaseS: 1 })));
      // Past 2 × lease and already flagged suspect by an earlier pass, as in production.
      await ledger.database.query(
        `update runs set started_at = started_at - interval '3 s', created_at = created_at - interval '3 s', suspect = true
          where id = any($1::text[])`,
        [runs.map((r) => r.id)],
      );
      const heartbeats = runs.map(async (r, i) => {
        // Spread the heartbeats over the time the reaper is working through the batch.
        if (i % 3) await sleep(i % 7);
        return r.heartbeat().then(
          () => true,
          (err: { code?: string }) => {
            expect(err.code).toBe('run_finished');
            return false;
          },
        );
      });
      const [reaped, ...ok] = await Promise.all([ledger.reap(), ...heartbeats]);
      const timedOut = new Set(reaped.timedOut.map((r) => r.id));
      for (const [i, r] of runs.entries()) {
        const status = (await r.get()).status;
        // Exactly one of the two won: a heartbeat that succeeded means the run is still running.
        expect({ id: r.id, heartbeat: ok[i], status }).toEqual({ id: r.id, heartbeat: ok[i], status: ok[i] ? 'running' : 'timed_out' });
        expect(timedOut.has(r.id)).toBe(!ok[i]);
      }
      raced += ok.filter(Boolean).length;
      // Clean up this round's survivors so later rounds' reaps see only their own runs.
      await Promise.all(runs.map((r, i) => (ok[i] ? r.cancel() : null)));
    }
    // The race went both ways at least once overall.
    expect(raced).toBeGreaterThan(0);
  });

  it('concurrent reapers time each due run out exactly once', async () => {
    const runs = await Promise.all(Array.from({ length: 30 }, () => ledger.startRun({ job: 'multi-reap', leaseS: 1 })));
    await ledger.database.query(`update runs set started_at = started_at - interval '5 s' where id = any($1::text[])`, [
      runs.map((r) => r.id),
    ]);
    const results = await Promise.all(Array.from({ length: 8 }, () => ledger.reap()));
    const all = results.flatMap((r) => r.timedOut.map((t) => t.id)).filter((id) => runs.some((r) => r.id === id));
    expect(all.sort()).toEqual(runs.map((r) => r.id).sort());
    expect(results.some((r) => r.acquired)).toBe(true);
    for (const r of results) if (!r.acquired) expect(r).toEqual({ acquired: false, suspected: [], timedOut: [] });
    for (const r of runs) expect((await eventRows(ledger, r.id)).filter((e) => e.type === 'run.status')).toHaveLength(2);
  });

  it.skipIf(!onPostgres)(
    'two reapers at once on PostgreSQL: while one holds the advisory lock, the other does nothing (PostgreSQL: needs two connections)',
    async () => {
      const run = await ledger.startRun({ job: 'lock-reap', leaseS: 1 });
      await ledger.database.query(`update runs set started_at = started_at - interval '5 s', suspect = true where id = $1`, [run.id]);
      // Hold the run's row so that reaper A blocks on it mid-way, holding the advisory lock.
      let release!: () => void;
      const held = new Promise<void>((r) => (release = r));
      let locked!: (pid: number) => void;
      const rowLocked = new Promise<number>((r) => (locked = r));
      const blocker = ledger.database.withTransaction(async (tx) => {
        await tx.query(`select 1 from runs where id = $1 for update`, [run.id]);
        locked((await tx.query<{ pid: number }>(`select pg_backend_pid() as pid`)).rows[0].pid);
        await held;
      });
      const blockerPid = await rowLocked;
      const a = ledger.reap();
      // Wait until A is blocked by our row lock: it is past the advisory lock and holds it. Then start B.
      for (;;) {
        const { rows } = await ledger.database.query<{ n: number }>(
          `select count(*)::int as n from pg_stat_activity where $1::int = any(pg_blocking_pids(pid))`,
          [blockerPid],
        );
        if (rows[0].n > 0) break;
        await sleep(5);
      }
      // B must return at once without acting. Had it passed the lock too, it would block on the held row
      // like A does: detect that (two sessions blocked) instead of hanging.
      let bDone = false;
      const bPromise = ledger.reap().finally(() => (bDone = true));
      let bBlocked = false;
      while (!bDone) {
        // Sessions waiting, directly or behind A, on the row we hold.
        const { rows } = await ledger.database.query<{ n: number }>(
          `with recursive w(pid) as (
           select pid from pg_stat_activity where $1::int = any(pg_blocking_pids(pid))
           union select a.pid from pg_stat_activity a join w on w.pid = any(pg_blocking_pids(a.pid))
         ) select count(*)::int as n from w`,
          [blockerPid],
        );
        if (rows[0].n > 1) {
          bBlocked = true;
          break;
        }
        await sleep(5);
      }
      release();
      const b = await bPromise;
      expect(bBlocked).toBe(false);
      expect(b).toEqual({ acquired: false, suspected: [], timedOut: [] });
      await blocker;
      const resultA = await a;
      expect(resultA.acquired).toBe(true);
      expect(resultA.timedOut).toContainEqual({ namespace: 'default', id: run.id });
      // With the lock free again, the next reaper acquires it.
      expect((await ledger.reap()).acquired).toBe(true);
    },
  );
});
