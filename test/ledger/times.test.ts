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
    expect(err.message).toMatch(/deadlineAt must be an ISO 8601 time between years 1000 and 9999/);
  });
});
