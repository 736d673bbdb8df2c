/**
 * track(opts, fn): starts a run with a lease, heartbeats while fn runs, completes with
 * its return value or fails with the thrown error (type, message, stack) and rethrows.
 * A run is never left running by user code.
 */
import { describe, expect, it } from 'vitest';

import type { StartedRun } from '../../src/index.js';
import { sleep, useFreshLedger } from '../helpers.js';
import { ageRun } from './support.js';

const ledger = useFreshLedger();

class QuotaExceeded extends Error {
  override name = 'QuotaExceeded';
}

describe('track()', () => {
  it('completes the run with the return value and returns it', async () => {
    let seen: StartedRun | undefined;
    const value = await ledger.track({ job: 'track', subject: 'acme/api', leaseS: 30 }, async (run) => {
      seen = run;
      expect((await run.get()).status).toBe('running');
      await run.event('progress', { done: 1 });
      return { agentMd: '# hello', files: 3 };
    });
    expect(value).toEqual({ agentMd: '# hello', files: 3 });
    const run = await ledger.getRun(seen!.id);
    expect(run).toMatchObject({ status: 'completed', output: { agentMd: '# hello', files: 3 }, leaseS: 30, lastSeq: 3 });
    expect((await ledger.getSubject('track', 'acme/api')).runId).toBe(run.id);
  });

  it('a synchronous fn and an undefined result work too (output null)', async () => {
    let id = '';
    const value = await ledger.track({ job: 'track' }, (run) => {
      id = run.id;
    });
    expect(value).toBeUndefined();
    expect(await ledger.getRun(id)).toMatchObject({ status: 'completed', output: null, leaseS: 60 });
  });

  it('a throwing fn fails the run with error type, message and stack, and the same error is rethrown', async () => {
    let id = '';
    const thrown = new QuotaExceeded('monthly quota used up');
    const caught = await ledger
      .track({ job: 'track', subject: 'acme/fail' }, async function doWork(run) {
        id = run.id;
        await run.event('progress', { step: 1 });
        throw thrown;
      })
      .catch((e: unknown) => e);
    expect(caught).toBe(thrown);
    const run = await ledger.getRun(id);
    expect(run.status).toBe('failed');
    expect(run.error).toMatchObject({ type: 'QuotaExceeded', message: 'monthly quota used up' });
    expect(run.error!.stack).toContain('monthly quota used up');
    expect(run.error!.stack).toContain('track.test.ts');
    expect((await ledger.getSubject('track', 'acme/fail')).status).toBe('failed');
  });

  it('a thrown non-Error is recorded too', async () => {
    let id = '';
    await expect(
      ledger.track({ job: 'track' }, (run) => {
        id = run.id;
        throw 'plain string';
      }),
    ).rejects.toBe('plain string');
    expect((await ledger.getRun(id)).error).toMatchObject({ type: 'thrown', message: 'plain string' });
  });

  it('a result that cannot be stored fails the run instead of leaving it running', async () => {
    let id = '';
    await expect(
      ledger.track({ job: 'track' }, (run) => {
        id = run.id;
        return { big: 10n };
      }),
    ).rejects.toThrow();
    expect((await ledger.getRun(id)).status).toBe('failed');

    await expect(
      ledger.track({ job: 'track' }, (run) => {
        id = run.id;
        return 'nul \u0000 byte';
      }),
    ).rejects.toMatchObject({ code: 'validation_failed' });
    expect((await ledger.getRun(id)).status).toBe('failed');
  });

  it('heartbeats while fn runs: the lease is renewed, so the reaper leaves a long fn alone', async () => {
    let id = '';
    await ledger.track({ job: 'track', leaseS: 2, heartbeatEveryS: 0.1 }, async (run) => {
      id = run.id;
      // Pretend the run has been silent for 3 leases; only a heartbeat from track() can save it.
      await ageRun(ledger, run.id, 6);
      const stale = (await run.get()).heartbeatAt;
      for (;;) {
        const now = await run.get();
        if (now.heartbeatAt !== stale) break;
        await sleep(20);
      }
      const reaped = await ledger.reap();
      expect(reaped.timedOut.map((r) => r.id)).not.toContain(run.id);
      const during = await run.get();
      expect(during.status).toBe('running');
      expect(during.suspect).toBe(false);
      return 'survived';
    });
    expect(await ledger.getRun(id)).toMatchObject({ status: 'completed', output: 'survived' });
  });

  it('stops heartbeating once fn is done', async () => {
    let id = '';
    await ledger.track({ job: 'track', leaseS: 2, heartbeatEveryS: 0.05 }, (run) => {
      id = run.id;
    });
    const after = await ledger.getRun(id);
    await sleep(200);
    expect(await ledger.getRun(id)).toEqual(after);
  });
});
