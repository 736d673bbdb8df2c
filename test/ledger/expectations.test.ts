/**
 * Expectations and the monitor. The ledger's clock is a manual one (openLedger's `clock`),
 * so hours pass in a statement: starts, finishes, schedules and monitor passes all read it.
 *
 * - refusals name the field: bad cron, zero or negative intervals, unknown time zones;
 * - nextDueAt is the first slot after the last start (a live run counts from its start),
 *   overdue is that slot plus grace, and `?overdue=` / `?dueBefore=` find them;
 * - the monitor flips a subject once, dated with the slot; one missed change per further
 *   slot; `expectation.met` when a run starts again; slots missed while no monitor ran come
 *   as one change carrying their count; two monitors at once act once;
 * - cron slots are computed in the time zone: across both DST changes, one slot a day.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { nextSlot } from '../../src/core/schedule.js';
import type { ExpectationChange, OpenedLedger } from '../../src/index.js';
import { dropSchemas, freshLedger, freshSchema, freshStore, manualClock, onPostgres, rejectsWith, viaHttp } from '../helpers.js';

const clock = manualClock('2026-03-01T00:00:00Z');
let ledger: OpenedLedger;

beforeAll(async () => {
  ledger = await freshLedger({ clock: clock.now });
});
afterAll(async () => {
  await ledger?.close();
  await dropSchemas();
});

/** The in-process monitor (over HTTP the server runs it; here the tests decide when). */
const monitor = (l: OpenedLedger = ledger) =>
  (l as unknown as { monitorExpectations(): Promise<{ changes: ExpectationChange[] }> }).monitorExpectations();
/** The changes of one pass that concern `job` (the tests share one ledger). */
const changesOf = async (job: string) => (await monitor()).changes.filter((c) => c.job === job);
const summary = (c: ExpectationChange) => ({ type: c.type, subject: c.subject, ...c.data });

async function runOnce(job: string, subject: string, seconds = 60) {
  const run = await ledger.startRun({ job, subject });
  clock.advance(seconds);
  await run.complete();
  return run;
}

describe.skipIf(viaHttp)('expectations', () => {
  it('refuses bad schedules, naming the field and the value', async () => {
    const cases: [Record<string, unknown>, string, string][] = [
      [{ cron: '61 * * * *', grace: '5m' }, 'cron', '61 * * * *'],
      [{ cron: 'every day', grace: '5m' }, 'cron', 'every day'],
      [{ every: '0s', grace: '5m' }, 'every', '0s'],
      [{ every: '-5m', grace: '5m' }, 'every', '-5m'],
      [{ every: '12 hours', grace: '5m' }, 'every', '12 hours'],
      [{ every: '1h', grace: '-1m' }, 'grace', '-1m'],
      [{ cron: '0 * * * *', timezone: 'Mars/Olympus_Mons', grace: '5m' }, 'timezone', 'Mars/Olympus_Mons'],
      [{ every: '1h', cron: '0 * * * *', grace: '5m' }, 'cron', ''],
      [{ grace: '5m' }, 'every', ''],
      [{ every: '1h' }, 'grace', ''],
    ];
    for (const [input, field, value] of cases) {
      const err = await rejectsWith(ledger.setExpectation('bad', input as never), 'validation_failed');
      expect(err.message, JSON.stringify(input)).toContain(field);
      if (value) expect(err.message).toContain(value);
    }
    expect(await ledger.listExpectations()).toEqual([]);
  });

  it('reads back what was accepted; nextDueAt is the slot after the last start; overdue after grace', async () => {
    clock.set('2026-03-01T00:00:00Z');
    await runOnce('check', 'agent-a'); // started 00:00
    await runOnce('check', 'agent-b'); // started 00:01
    const e = await ledger.setExpectation('check', { every: '12h', grace: '30m' });
    expect(e).toMatchObject({ job: 'check', every: '12h', cron: null, timezone: 'UTC', grace: '30m', perSubject: true });
    expect(await ledger.listExpectations()).toEqual([e]);

    let a = await ledger.getSubject('check', 'agent-a');
    expect(a).toMatchObject({ lastStartedAt: '2026-03-01T00:00:00.000Z', nextDueAt: '2026-03-01T12:00:00.000Z', overdue: false });
    // A run that has started but not finished counts from its start.
    clock.set('2026-03-01T11:00:00Z');
    const long = await ledger.startRun({ job: 'check', subject: 'agent-a' });
    a = await ledger.getSubject('check', 'agent-a');
    expect(a).toMatchObject({ lastStartedAt: '2026-03-01T11:00:00.000Z', nextDueAt: '2026-03-01T23:00:00.000Z' });

    clock.set('2026-03-01T12:31:00Z'); // b was due at 12:01, grace ends 12:31
    const overdue = await ledger.listSubjects({ job: 'check', overdue: true });
    expect(overdue.subjects.map((s) => s.subject)).toEqual(['agent-b']);
    expect((await ledger.listSubjects({ job: 'check', overdue: false })).subjects.map((s) => s.subject)).toEqual(['agent-a']);
    // dueBefore finds what is due by then (overdue ones included), as "agents due for a check".
    expect((await ledger.listSubjects({ job: 'check', dueBefore: '2026-03-01T22:00:00Z' })).subjects.map((s) => s.subject)).toEqual([
      'agent-b',
    ]);
    expect((await ledger.listSubjects({ job: 'check', dueBefore: '2026-03-02T00:00:00Z' })).subjects).toHaveLength(2);
    await long.complete();
  });

  it('the monitor: one missed change per slot, dated with the slot; met when a run starts again', async () => {
    clock.set('2026-03-02T00:00:00Z');
    await runOnce('hourly', 'h1', 5); // started 00:00 → due 01:00, overdue from 01:10
    await ledger.setExpectation('hourly', { every: '1h', grace: '10m' });
    clock.set('2026-03-02T01:09:59Z');
    expect(await changesOf('hourly')).toEqual([]);
    clock.set('2026-03-02T01:12:00Z');
    expect((await changesOf('hourly')).map(summary)).toEqual([
      {
        type: 'expectation.missed',
        subject: 'h1',
        job: 'hourly',
        dueAt: '2026-03-02T01:00:00.000Z',
        lastRunAt: '2026-03-02T00:00:00.000Z',
      },
    ]);
    expect(await changesOf('hourly')).toEqual([]); // never twice
    clock.set('2026-03-02T02:10:00Z'); // the 02:00 slot plus grace
    expect((await changesOf('hourly')).map((c) => c.data.dueAt)).toEqual(['2026-03-02T02:00:00.000Z']);
    expect((await ledger.getSubject('hourly', 'h1')).overdue).toBe(true);

    clock.set('2026-03-02T02:20:00Z');
    const run = await ledger.startRun({ job: 'hourly', subject: 'h1' });
    expect((await ledger.getSubject('hourly', 'h1')).overdue).toBe(false);
    expect((await changesOf('hourly')).map(summary)).toEqual([
      { type: 'expectation.met', subject: 'h1', job: 'hourly', dueAt: '2026-03-02T01:00:00.000Z', lastRunAt: '2026-03-02T02:20:00.000Z' },
    ]);
    expect(await changesOf('hourly')).toEqual([]);
    await run.complete();

    // The same changes are in the namespace's change log, in order, once each (what `watch`,
    // the change stream and webhooks read). Other test files' open transactions may hold the
    // feed back a moment on PostgreSQL, so read until they are all in.
    const feed: string[] = [];
    let after: string | undefined;
    await expect
      .poll(
        async () => {
          const page = await ledger.changes({ after, job: 'hourly', types: ['expectation.missed', 'expectation.met'] });
          feed.push(...page.changes.map((c) => `${c.type} ${c.subject} ${(c.data as { dueAt: string }).dueAt}`));
          after = page.nextAfter;
          return feed.length;
        },
        { timeout: 20_000 },
      )
      .toBe(3);
    expect(feed).toEqual([
      'expectation.missed h1 2026-03-02T01:00:00.000Z',
      'expectation.missed h1 2026-03-02T02:00:00.000Z',
      'expectation.met h1 2026-03-02T01:00:00.000Z',
    ]);
  });

  it('restart-safe: slots missed while no monitor ran come as one change with their count, nothing is repeated', async () => {
    clock.set('2026-03-03T00:00:00Z');
    await runOnce('fivemin', 'f1', 1);
    await ledger.setExpectation('fivemin', { every: '5m', grace: '1m' });
    // Every server down from 00:00 to 01:03: slots 00:05 … 01:00 (12 of them) passed unwatched.
    clock.set('2026-03-03T01:03:00Z');
    const changes = (await changesOf('fivemin')).map(summary);
    expect(changes).toEqual([
      {
        type: 'expectation.missed',
        subject: 'f1',
        job: 'fivemin',
        dueAt: '2026-03-03T00:05:00.000Z',
        lastRunAt: '2026-03-03T00:00:00.000Z',
      },
      {
        type: 'expectation.missed',
        subject: 'f1',
        job: 'fivemin',
        dueAt: '2026-03-03T01:00:00.000Z',
        lastRunAt: '2026-03-03T00:00:00.000Z',
        missedSlots: 11,
        firstDueAt: '2026-03-03T00:10:00.000Z',
      },
    ]);
    expect(await changesOf('fivemin')).toEqual([]);
    clock.set('2026-03-03T01:06:00Z');
    expect((await changesOf('fivemin')).map((c) => [c.data.dueAt, c.data.missedSlots])).toEqual([['2026-03-03T01:05:00.000Z', undefined]]);
  });

  it.runIf(onPostgres)('two monitors on one database flip a subject once (PostgreSQL)', async () => {
    const schema = freshSchema();
    const c = manualClock('2026-03-04T00:00:00Z');
    const [one, two] = [await freshStore({ schema, clock: c.now }), await freshStore({ schema, clock: c.now })];
    try {
      for (let i = 0; i < 20; i++) await (await one.startRun({ job: 'twin', subject: `s${i}` })).complete();
      await one.setExpectation('twin', { every: '1h', grace: '0s' });
      c.set('2026-03-04T01:00:01Z');
      const passes = await Promise.all([monitor(one), monitor(two), monitor(one), monitor(two)]);
      const all = passes.flatMap((p) => p.changes);
      expect(all).toHaveLength(20);
      expect(new Set(all.map((x) => x.subject)).size).toBe(20);
      expect((await Promise.all([monitor(one), monitor(two)])).flatMap((p) => p.changes)).toEqual([]);
    } finally {
      await one.close();
      await two.close();
    }
  });

  it('a job watched as a whole (perSubject false)', async () => {
    clock.set('2026-03-05T00:00:00Z');
    await ledger.setExpectation('nightly', { cron: '0 2 * * *', grace: '1h', perSubject: false });
    await runOnce('nightly', 'db1', 60); // 00:00 → due 02:00
    let [e] = (await ledger.listExpectations()).filter((x) => x.job === 'nightly');
    expect(e).toMatchObject({
      perSubject: false,
      lastStartedAt: '2026-03-05T00:00:00.000Z',
      nextDueAt: '2026-03-05T02:00:00.000Z',
      overdue: false,
    });
    // The subject rows are not scheduled: the job is.
    expect((await ledger.getSubject('nightly', 'db1')).nextDueAt).toBeNull();
    clock.set('2026-03-05T03:00:00Z');
    expect((await changesOf('nightly')).map(summary)).toEqual([
      {
        type: 'expectation.missed',
        subject: null,
        job: 'nightly',
        dueAt: '2026-03-05T02:00:00.000Z',
        lastRunAt: '2026-03-05T00:00:00.000Z',
      },
    ]);
    [e] = (await ledger.listExpectations()).filter((x) => x.job === 'nightly');
    expect(e.overdue).toBe(true);
    clock.set('2026-03-05T03:30:00Z');
    await ledger.startRun({ job: 'nightly' }); // any run of the job counts
    expect((await changesOf('nightly')).map((c) => c.type)).toEqual(['expectation.met']);
    [e] = (await ledger.listExpectations()).filter((x) => x.job === 'nightly');
    expect(e).toMatchObject({ nextDueAt: '2026-03-06T02:00:00.000Z', overdue: false });
  });

  it('cron slots in a time zone: one a day across both DST changes, none skipped or doubled', () => {
    const berlin = { everyS: null, cron: '30 2 * * *', timezone: 'Europe/Berlin' };
    const days = (from: string, n: number) => {
      const out: string[] = [];
      let t = new Date(from);
      for (let i = 0; i < n; i++) out.push((t = nextSlot(berlin, t)!).toISOString());
      return out;
    };
    // Spring: 02:30 does not exist on 29 March; the slot is the first time after the gap.
    expect(days('2026-03-27T12:00:00Z', 3)).toEqual(['2026-03-28T01:30:00.000Z', '2026-03-29T01:00:00.000Z', '2026-03-30T00:30:00.000Z']);
    // Autumn: 02:30 happens twice on 25 October; one slot.
    const autumn = days('2026-10-24T12:00:00Z', 3);
    expect(autumn.map((d) => d.slice(0, 10))).toEqual(['2026-10-25', '2026-10-26', '2026-10-27']);
    expect(['2026-10-25T00:30:00.000Z', '2026-10-25T01:30:00.000Z']).toContain(autumn[0]);
    expect(autumn.slice(1)).toEqual(['2026-10-26T01:30:00.000Z', '2026-10-27T01:30:00.000Z']);
  });

  it('a cron schedule in a time zone sets nextDueAt in the statement, and the monitor fills in starts older than its slots', async () => {
    clock.set('2026-03-28T00:00:00Z');
    await ledger.setExpectation('berlin', { cron: '30 2 * * *', timezone: 'Europe/Berlin', grace: '15m' });
    await runOnce('berlin', 'b1', 10); // 00:00Z → the slot after is 02:30 Berlin = 01:30Z
    expect((await ledger.getSubject('berlin', 'b1')).nextDueAt).toBe('2026-03-28T01:30:00.000Z');
    clock.set('2026-03-29T00:00:00Z');
    await runOnce('berlin', 'b1', 10); // the DST night: 03:00 CEST = 01:00Z
    expect((await ledger.getSubject('berlin', 'b1')).nextDueAt).toBe('2026-03-29T01:00:00.000Z');
    // An imported run from long ago (before the slots the write path can look up).
    await ledger.importRuns('old', [
      { sourceId: '1', job: 'berlin', subject: 'b-old', status: 'completed', startedAt: '2025-12-01T00:00:00Z' },
    ]);
    expect((await ledger.getSubject('berlin', 'b-old')).nextDueAt).toBeNull();
    await changesOf('berlin');
    expect((await ledger.getSubject('berlin', 'b-old')).nextDueAt).toBe('2025-12-01T01:30:00.000Z');
  });

  it('replacing an expectation recomputes every subject; deleting it leaves them unscheduled', async () => {
    clock.set('2026-04-01T00:00:00Z');
    await runOnce('swap', 's1');
    await ledger.setExpectation('swap', { every: '1h', grace: '0s' });
    expect((await ledger.getSubject('swap', 's1')).nextDueAt).toBe('2026-04-01T01:00:00.000Z');
    await ledger.setExpectation('swap', { every: '2h', grace: '0s' });
    expect((await ledger.getSubject('swap', 's1')).nextDueAt).toBe('2026-04-01T02:00:00.000Z');
    expect(await ledger.deleteExpectation('swap')).toBe(true);
    expect(await ledger.deleteExpectation('swap')).toBe(false);
    expect(await ledger.getSubject('swap', 's1')).toMatchObject({ nextDueAt: null, overdue: false });
  });
});
