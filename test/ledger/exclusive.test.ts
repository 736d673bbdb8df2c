/**
 * Exclusive runs: at most one live exclusive run per (namespace, job, subject), enforced
 * by a partial unique index. Another exclusive start is `run_active` naming the live run;
 * the slot frees when that run finishes or the reaper times it out. Non-exclusive runs,
 * other subjects and other namespaces are not held up.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { type OpenedLedger, RunActiveError } from '../../src/index.js';
import { dropSchemas, freshLedger, rejectsWith } from '../helpers.js';
import { ageRun } from './support.js';

let ledger: OpenedLedger;

beforeAll(async () => {
  ledger = await freshLedger();
});
afterAll(async () => {
  await ledger?.close();
  await dropSchemas();
});

describe('exclusive runs', () => {
  it('a second exclusive start is run_active naming the live run; finishing frees the slot', async () => {
    const first = await ledger.startRun({ job: 'sync', subject: 'acme', exclusive: true });
    expect(first.run.exclusive).toBe(true);
    const err = await rejectsWith(ledger.startRun({ job: 'sync', subject: 'acme', exclusive: true }), 'run_active');
    expect(err).toBeInstanceOf(RunActiveError);
    expect((err as unknown as RunActiveError).activeRunId).toBe(first.id);
    expect(err.message).toContain(first.id);
    // Not exclusive, another subject, another namespace: not held up.
    await ledger.startRun({ job: 'sync', subject: 'acme' });
    await ledger.startRun({ job: 'sync', subject: 'other', exclusive: true });
    await ledger.inNamespace('elsewhere').startRun({ job: 'sync', subject: 'acme', exclusive: true });
    // A submitted exclusive run holds the slot too.
    await first.complete();
    const queued = await ledger.startRun({ job: 'sync', subject: 'acme', exclusive: true, status: 'submitted' });
    expect((await rejectsWith(ledger.startRun({ job: 'sync', subject: 'acme', exclusive: true }), 'run_active')).message).toContain(
      queued.id,
    );
    await queued.cancel();
    const next = await ledger.startRun({ job: 'sync', subject: 'acme', exclusive: true });
    expect(next.created).toBe(true);
  });

  it('repeating the create of the live run itself is idempotent, not run_active', async () => {
    const run = await ledger.startRun({ id: 'excl-same', job: 'sync-id', subject: 's', exclusive: true });
    const again = await ledger.startRun({ id: 'excl-same', job: 'sync-id', subject: 's', exclusive: true });
    expect(again.created).toBe(false);
    expect(again.id).toBe(run.id);
  });

  it('the reaper timing a run out frees the slot', async () => {
    const run = await ledger.startRun({ job: 'sync-lease', subject: 's', exclusive: true, leaseS: 10 });
    await rejectsWith(ledger.startRun({ job: 'sync-lease', subject: 's', exclusive: true }), 'run_active');
    await ageRun(ledger, run.id, 25);
    expect((await ledger.reap()).timedOut).toContainEqual({ namespace: 'default', id: run.id });
    expect((await ledger.startRun({ job: 'sync-lease', subject: 's', exclusive: true })).created).toBe(true);
  });

  it('a run without a subject is exclusive per job', async () => {
    await ledger.startRun({ job: 'sync-job', exclusive: true });
    await rejectsWith(ledger.startRun({ job: 'sync-job', exclusive: true }), 'run_active');
  });

  it('exclusive must be a boolean', async () => {
    const err = await rejectsWith(ledger.startRun({ job: 'x', exclusive: 'yes' as never }), 'validation_failed');
    expect(err.message).toContain('exclusive');
  });
});
