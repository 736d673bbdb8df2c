/** Times given without an offset are UTC — never the server's or the database session's local zone. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { OpenedLedger } from '../../src/index.js';
import { dropSchemas, freshLedger, rejectsWith } from '../helpers.js';

let ledger: OpenedLedger;
const ZONE = 'Pacific/Auckland';
beforeAll(async () => {
  // Give the database session a zone far from UTC, so an offset-less time passed through unchanged
  // would be read in it. PGlite has one session; on PostgreSQL a pool of one connection that is
  // never renewed is that session.
  ledger = await freshLedger({ poolSize: 1, connectionLifetimeS: 0 });
  await ledger.database.query(`set timezone = '${ZONE}'`);
});

/** The zone is still in effect for the ledger's queries (so no test below can pass by accident). */
async function expectSessionZone() {
  const { rows } = await ledger.database.query<{ tz: string }>(`select current_setting('TimeZone') as tz`);
  expect(rows[0].tz).toBe(ZONE);
}
afterAll(async () => {
  await ledger.close();
  await dropSchemas();
});

describe('times', () => {
  it('reads a deadline without an offset as UTC and stores it normalised', async () => {
    const run = await ledger.startRun({ job: 'times', deadlineAt: '2030-01-02T03:04:05' });
    expect(run.run.deadlineAt).toBe('2030-01-02T03:04:05.000Z');
    await expectSessionZone();
  });

  it('filters createdAfter/createdBefore given without an offset as UTC', async () => {
    const run = await ledger.startRun({ job: 'times-filter' });
    const created = new Date(run.run.createdAt);
    const before = new Date(created.getTime() - 1000).toISOString().replace('Z', '');
    const after = new Date(created.getTime() + 1000).toISOString().replace('Z', '');
    const page = await ledger.listRuns({ job: 'times-filter', createdAfter: before, createdBefore: after });
    expect(page.runs.map((r) => r.id)).toEqual([run.id]);
    await expectSessionZone();
  });

  it('refuses times outside years 1000–9999, naming the field', async () => {
    const err = await rejectsWith(ledger.startRun({ job: 'times', deadlineAt: '0900-01-01T00:00:00Z' }), 'validation_failed');
    expect(err.message).toMatch(/deadlineAt must be in the years 1000–9999; got "0900-01-01T00:00:00Z"/);
  });

  it('refuses impossible dates and times instead of moving them', async () => {
    const run = await ledger.startRun({ job: 'times-exact' });
    for (const [at, why] of [
      ['2026-02-30T00:00:00Z', 'is not a date: 2026-02 has no day 30'],
      ['2026-04-31T00:00:00Z', 'is not a date: 2026-04 has no day 31'],
      ['2025-02-29T00:00:00Z', 'is not a date: 2025-02 has no day 29'],
      ['2026-13-01T00:00:00Z', 'has no month 13'],
      ['2026-01-01T24:00:00Z', 'is not a time of day: 24:00:00'],
      ['2026-01-01T10:00:60Z', 'is not a time of day: 10:00:60'],
      ['2026-01-01T10:00:00+25:00', 'has no offset +25:00'],
      ['yesterday', 'must be an ISO 8601 time such as 2026-01-31T12:00:00Z'],
    ]) {
      const err = await rejectsWith(run.event('t', {}, { at }), 'validation_failed');
      expect(err.message, at).toContain(`at ${why}`);
      const deadline = await rejectsWith(ledger.startRun({ job: 'times-exact', deadlineAt: at }), 'validation_failed');
      expect(deadline.message, at).toContain(`deadlineAt ${why}`);
    }
    const mine = async () => (await run.listEvents()).events.filter((e) => e.type === 't');
    expect(await mine()).toEqual([]);
    // What is possible is kept to the millisecond: a leap day, trailing zeros, an hour-only offset.
    await run.event('t', {}, { at: '2024-02-29T23:59:59.999000+00' });
    expect((await mine()).map((e) => e.at)).toEqual(['2024-02-29T23:59:59.999Z']);
  });
});
