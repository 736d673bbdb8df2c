/**
 * Invariant 2: the transition table. Every allowed transition succeeds (one version
 * bump, one `run.status` event); every refused one is `invalid_transition` (or
 * `run_finished` from a terminal status) and stores nothing. A terminal status is final;
 * repeating the same terminal call with the same payload is a no-op, with another
 * payload it is `run_finished`.
 */
import { describe, expect, it } from 'vitest';

import type { RunHandle, RunStatus } from '../../src/index.js';
import { onPostgres, rejectsWith, useFreshLedger } from '../helpers.js';
import { eventRows, fingerprint } from './support.js';

const ledger = useFreshLedger({ poolSize: onPostgres ? 20 : undefined });

type Op = 'start' | 'complete' | 'fail' | 'cancel' | 'retry';
const OPS: Op[] = ['start', 'complete', 'fail', 'cancel', 'retry'];
const TARGET: Record<Op, RunStatus> = { start: 'running', complete: 'completed', fail: 'failed', cancel: 'cancelled', retry: 'retrying' };

// The documented table (docs/design.md), written out independently of src/core/status.ts.
const ALLOWED: Record<RunStatus, RunStatus[]> = {
  submitted: ['running', 'failed', 'cancelled', 'timed_out'],
  running: ['retrying', 'completed', 'failed', 'cancelled', 'timed_out'],
  retrying: ['running', 'failed', 'cancelled', 'timed_out'],
  completed: [],
  failed: [],
  cancelled: [],
  timed_out: [],
};
const TERMINAL: RunStatus[] = ['completed', 'failed', 'cancelled', 'timed_out'];

const PAST = '2000-01-01T00:00:00.000Z';

function apply(run: RunHandle, op: Op, variant = 'a') {
  switch (op) {
    case 'start':
      return run.start();
    case 'complete':
      return run.complete({ output: { variant } });
    case 'fail':
      return run.fail({ error: { type: 'boom', message: `failed ${variant}` } });
    case 'cancel':
      return run.cancel({ reason: `cancel ${variant}` });
    case 'retry':
      return run.retry({ error: { message: `retry ${variant}` } });
  }
}

let serial = 0;
/** A run brought to `status` through the public API. */
async function runIn(status: RunStatus): Promise<RunHandle> {
  const id = `tr-${status}-${++serial}`;
  if (status === 'submitted') return ledger.startRun({ id, job: 'tt', status: 'submitted' });
  if (status === 'timed_out') {
    // The reaper is the only way to timed_out: a run past its deadline.
    const run = await ledger.startRun({ id, job: 'tt', deadlineAt: PAST });
    const reaped = await ledger.reap();
    expect(reaped.timedOut).toContainEqual({ namespace: 'default', id });
    return run;
  }
  const run = await ledger.startRun({ id, job: 'tt' });
  if (status === 'retrying') await run.retry({ error: { message: 'retry a' } });
  if (status === 'completed') await apply(run, 'complete');
  if (status === 'failed') await apply(run, 'fail');
  if (status === 'cancelled') await apply(run, 'cancel');
  expect((await run.get()).status).toBe(status);
  return run;
}

describe('the transition table', () => {
  const FROM: RunStatus[] = ['submitted', 'running', 'retrying', 'completed', 'failed', 'cancelled', 'timed_out'];
  for (const from of FROM) {
    for (const op of OPS) {
      const to = TARGET[op];
      const allowed = ALLOWED[from].includes(to);
      // A repeated non-terminal call (start on running, retry on retrying with the same error) is an idempotent no-op.
      const repeat = from === to;
      const label = allowed ? 'allowed' : repeat ? 'idempotent repeat' : TERMINAL.includes(from) ? 'run_finished' : 'invalid_transition';
      it(`${from} --${op}--> ${to}: ${label}`, async () => {
        const run = await runIn(from);
        const before = await run.get();
        const fp = await fingerprint(ledger);
        if (allowed) {
          const after = await apply(run, op);
          expect(after.status).toBe(to);
          expect(after.version).toBe(before.version + 1);
          expect(after.lastSeq).toBe(before.lastSeq + 1);
          const last = (await eventRows(ledger, run.id)).at(-1)!;
          expect(last).toMatchObject({ seq: after.lastSeq, type: 'run.status' });
          expect((last.body as { status: string }).status).toBe(to);
          if (TERMINAL.includes(to)) expect(after.finishedAt).not.toBeNull();
          else expect(after.finishedAt).toBeNull();
        } else if (repeat) {
          const after = await apply(run, op);
          expect(after).toEqual(before);
          expect(await fingerprint(ledger)).toBe(fp);
        } else {
          const code = TERMINAL.includes(from) ? 'run_finished' : 'invalid_transition';
          const err = await rejectsWith(apply(run, op), code);
          expect(err.message).toContain(from);
          if (code === 'invalid_transition') {
            expect(err.message).toContain(to);
            expect(err.details[0]).toMatchObject({ from, to, allowed: ALLOWED[from] });
          }
          expect(await fingerprint(ledger)).toBe(fp);
          expect((await run.get()).status).toBe(from);
        }
      });
    }
  }

  it('refuses a retry on retrying with a different error (not a repeat, not in the table)', async () => {
    const run = await runIn('retrying');
    const fp = await fingerprint(ledger);
    await rejectsWith(run.retry({ error: { message: 'another reason' } }), 'invalid_transition');
    expect(await fingerprint(ledger)).toBe(fp);
  });

  it('the reaper moves submitted, running and retrying runs to timed_out, and nothing else', async () => {
    const sub = await ledger.startRun({ id: 'tr-deadline-sub', job: 'tt', status: 'submitted', deadlineAt: PAST });
    const live = await ledger.startRun({ id: 'tr-deadline-run', job: 'tt', deadlineAt: PAST });
    const retrying = await ledger.startRun({ id: 'tr-deadline-retry', job: 'tt' });
    await retrying.retry({ error: { message: 'x' } });
    await ledger.database.query(`update runs set deadline_at = $2 where id = $1`, [retrying.id, PAST]);
    const done = await ledger.startRun({ id: 'tr-deadline-done', job: 'tt' });
    await done.complete({ output: 1 });
    await ledger.database.query(`update runs set deadline_at = $2 where id = $1`, [done.id, PAST]);

    const reaped = await ledger.reap();
    expect(reaped.timedOut.map((r) => r.id).sort()).toEqual([live.id, retrying.id, sub.id].sort());
    for (const r of [sub, live, retrying]) {
      const run = await r.get();
      expect(run.status).toBe('timed_out');
      expect(run.error?.type).toBe('deadline_exceeded');
    }
    expect((await done.get()).status).toBe('completed');
  });
});

describe('terminal statuses are final', () => {
  for (const op of ['complete', 'fail', 'cancel'] as const) {
    it(`${op} repeated with the same payload changes nothing; with another payload it is run_finished`, async () => {
      const run = await ledger.startRun({ job: 'tt' });
      const first = await apply(run, op, 'same');
      const fp = await fingerprint(ledger);
      const again = await apply(run, op, 'same');
      expect(again).toEqual(first);
      expect(again.version).toBe(first.version);
      expect(await fingerprint(ledger)).toBe(fp);

      const err = await rejectsWith(apply(run, op, 'different'), 'run_finished');
      expect(err.message).toContain(TARGET[op]);
      expect(await fingerprint(ledger)).toBe(fp);
    });
  }

  it('a repeated complete without notes is the same payload (notes are kept, not compared)', async () => {
    const run = await ledger.startRun({ job: 'tt' });
    const first = await run.complete({ output: 1, notes: 'kept' });
    expect(await run.complete({ output: 1 })).toEqual(first);
    await rejectsWith(run.complete({ output: 1, notes: 'other' }), 'run_finished');
  });

  it('a timed_out run refuses events, checkpoints and heartbeats with run_finished', async () => {
    const run = await runIn('timed_out');
    const fp = await fingerprint(ledger);
    await rejectsWith(run.event('late', {}), 'run_finished');
    await rejectsWith(run.checkpoint({ name: 'late', metadata: {} }), 'run_finished');
    await rejectsWith(run.heartbeat(), 'run_finished');
    expect(await fingerprint(ledger)).toBe(fp);
  });

  it('16 concurrent completions with different outputs: exactly one wins, the rest are run_finished', async () => {
    const run = await ledger.startRun({ job: 'tt' });
    const results = await Promise.allSettled(Array.from({ length: 16 }, (_, i) => run.complete({ output: { i } })));
    const won = results.filter((r) => r.status === 'fulfilled');
    expect(won).toHaveLength(1);
    for (const r of results) if (r.status === 'rejected') expect((r.reason as { code: string }).code).toBe('run_finished');
    const stored = await run.get();
    expect(stored.output).toEqual((won[0] as PromiseFulfilledResult<{ output: unknown }>).value.output);
    expect(stored.version).toBe(2);
    const statusEvents = (await eventRows(ledger, run.id)).filter((e) => e.type === 'run.status');
    expect(statusEvents.map((e) => (e.body as { status: string }).status)).toEqual(['running', 'completed']);
  });

  it('16 concurrent identical completions all succeed and store the completion once', async () => {
    const run = await ledger.startRun({ job: 'tt' });
    const results = await Promise.all(Array.from({ length: 16 }, () => run.complete({ output: 'same', statistics: { n: 1 } })));
    for (const r of results) expect(r).toMatchObject({ status: 'completed', output: 'same', version: 2 });
    expect((await eventRows(ledger, run.id)).length).toBe(2);
  });
});

describe('retry and start', () => {
  it('retry → start increments attempt and clears the retry error, each step logged', async () => {
    const run = await ledger.startRun({ job: 'tt' });
    expect(run.run.attempt).toBe(1);
    const retrying = await run.retry({ error: { type: 'rate_limited', message: 'try later' } });
    expect(retrying).toMatchObject({ status: 'retrying', attempt: 1, error: { type: 'rate_limited', message: 'try later' } });
    const second = await run.start();
    expect(second).toMatchObject({ status: 'running', attempt: 2, error: null });
    await run.retry();
    expect((await run.start()).attempt).toBe(3);
    // A repeated start on a running run does not count another attempt.
    expect((await run.start()).attempt).toBe(3);
    const done = await run.complete({ output: 'ok' });
    expect(done.attempt).toBe(3);
    const statuses = (await eventRows(ledger, run.id)).map((e) => (e.body as { status: string }).status);
    expect(statuses).toEqual(['running', 'retrying', 'running', 'retrying', 'running', 'completed']);
  });

  it('start on a submitted run sets startedAt and a later start keeps it', async () => {
    const run = await ledger.startRun({ job: 'tt', status: 'submitted' });
    expect(run.run.startedAt).toBeNull();
    const started = await run.start();
    expect(started.startedAt).not.toBeNull();
    await run.retry();
    expect((await run.start()).startedAt).toBe(started.startedAt);
  });

  it('transitions on a missing run are not_found', async () => {
    for (const op of OPS) await rejectsWith(apply(ledger.run('no-such-run'), op), 'not_found');
  });
});
