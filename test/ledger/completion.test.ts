/**
 * Invariant 3: completion writes status, output, statistics, notes, finishedAt, the
 * `run.status` event and the subject status in ONE transaction — all of it or none.
 * Invariant 9: a finish without notes keeps the existing notes.
 */
import { describe, expect, it } from 'vitest';

import { onPostgres, rejectsWith, useFreshLedger, viaHttp } from '../helpers.js';
import { eventRows, fingerprint, rejection } from './support.js';

const ledger = useFreshLedger({ poolSize: onPostgres ? 20 : undefined });

describe('one-transaction completion', () => {
  it('stores status, output, statistics, notes, finishedAt, the status event and the subject status together', async () => {
    const run = await ledger.startRun({ job: 'agent-md', subject: 'acme/api', trigger: 'schedule', notes: 'started' });
    const done = await run.complete({ output: { agentMd: '# API' }, statistics: { tokens: 1234 }, notes: 'all good' });

    const stored = await ledger.getRun(run.id);
    expect(stored).toEqual(done);
    expect(stored).toMatchObject({
      status: 'completed',
      output: { agentMd: '# API' },
      statistics: { tokens: 1234 },
      notes: 'all good',
      version: 2,
      lastSeq: 2,
    });
    expect(stored.finishedAt).not.toBeNull();
    const last = (await eventRows(ledger, run.id)).at(-1)!;
    expect(last).toMatchObject({ seq: 2, type: 'run.status', body: { status: 'completed' } });
    expect(last.at.toISOString()).toBe(stored.finishedAt);
    const subject = await ledger.getSubject('agent-md', 'acme/api');
    expect(subject).toMatchObject({ runId: run.id, status: 'completed', trigger: 'schedule', finishedAt: stored.finishedAt });
    expect(subject.recentRuns.map((r) => r.id)).toContain(run.id);
  });

  it('fail and cancel store their error, the status event and the subject status together', async () => {
    const failed = await ledger.startRun({ job: 'agent-md', subject: 'acme/fail' });
    const f = await failed.fail({ error: { type: 'Timeout', message: 'upstream', details: { code: 504 } }, statistics: { tries: 3 } });
    expect(f).toMatchObject({
      status: 'failed',
      error: { type: 'Timeout', message: 'upstream', details: { code: 504 } },
      statistics: { tries: 3 },
    });
    expect((await ledger.getSubject('agent-md', 'acme/fail')).runId).toBe(failed.id);
    expect((await eventRows(ledger, failed.id)).at(-1)!.body).toMatchObject({ status: 'failed', error: { type: 'Timeout' } });

    const cancelled = await ledger.startRun({ job: 'agent-md', subject: 'acme/cancel' });
    const c = await cancelled.cancel({ reason: 'operator' });
    expect(c).toMatchObject({ status: 'cancelled', error: { type: 'cancelled', message: 'operator' } });
    expect((await ledger.getSubject('agent-md', 'acme/cancel')).status).toBe('cancelled');
  });

  // Each payload is refused by PostgreSQL itself (jsonb and text cannot hold \u0000), so the
  // refusal happens inside the completion statement, after validation has accepted it.
  const unstorable = {
    output: [{ output: { text: 'nul \u0000 byte' } }, { error: { message: 'x', details: { text: 'nul \u0000' } } }],
    statistics: [
      { output: 'fine', statistics: { note: 'a\u0000b' } },
      { error: { message: 'x' }, statistics: { note: 'a\u0000b' } },
    ],
    notes: [
      { output: 'fine', statistics: { ok: 1 }, notes: 'notes with \u0000' },
      { error: { message: 'x' }, notes: 'notes with \u0000' },
    ],
  } as const;
  for (const [field, [payload, failPayload]] of Object.entries(unstorable)) {
    it(`an unstorable ${field} is validation_failed and changes nothing (status, events, subject, version)`, async () => {
      const subject = `atomic/${field}`;
      // A previous verdict for the subject, which the failed completion must not replace.
      const prior = await ledger.startRun({ job: 'agent-md', subject });
      await prior.complete({ output: 'prior' });
      const run = await ledger.startRun({ job: 'agent-md', subject, notes: 'before' });
      const before = await run.get();
      const subjectBefore = await ledger.getSubject('agent-md', subject);
      const fp = await fingerprint(ledger);

      await rejectsWith(run.complete(payload), 'validation_failed');
      await rejectsWith(run.fail(failPayload), 'validation_failed');

      expect(await fingerprint(ledger)).toBe(fp);
      expect(await run.get()).toEqual(before);
      expect((await run.listEvents()).events).toHaveLength(1);
      const { recentRuns: _a, ...s1 } = await ledger.getSubject('agent-md', subject);
      const { recentRuns: _b, ...s0 } = subjectBefore;
      expect(s1).toEqual(s0);
      // The run is still live and completes normally afterwards.
      expect((await run.complete({ output: 'later' })).status).toBe('completed');
    });
  }

  it('a failure part-way through the completion statement (in the subject status write) rolls back the run update and the event', async () => {
    const run = await ledger.startRun({ job: 'agent-md', subject: 'atomic/midway', notes: 'kept' });
    const before = await run.get();
    const fp = await fingerprint(ledger);
    // A test-only trigger makes the last part of the completion (subject status) fail
    // after the run row and the status event have been written in the same statement.
    await ledger.database.exec(`
      create function test_refuse_subject() returns trigger language plpgsql as $$
      begin raise exception 'subject status write refused by test'; end $$;
      create trigger test_refuse_subject before insert or update on subject_status
        for each row execute function test_refuse_subject();`);
    try {
      const err = await rejection(run.complete({ output: 'lost?', statistics: { n: 1 }, notes: 'new' }));
      expect(err).not.toBeNull();
      // Over HTTP (RUNLEDGER_TEST_VIA=http) a database fault is a plain 500 that does not leak the message.
      if (!viaHttp) expect(err?.message).toContain('subject status write refused by test');
    } finally {
      await ledger.database.exec(`drop trigger test_refuse_subject on subject_status; drop function test_refuse_subject();`);
    }
    expect(await fingerprint(ledger)).toBe(fp);
    expect(await run.get()).toEqual(before);
    const done = await run.complete({ output: 'stored', statistics: { n: 1 } });
    expect(done).toMatchObject({ status: 'completed', output: 'stored', notes: 'kept', version: before.version + 1 });
    expect((await ledger.getSubject('agent-md', 'atomic/midway')).runId).toBe(run.id);
  });

  it('a concurrent reader never sees part of a completion (one snapshot per read)', async () => {
    const n = onPostgres ? 40 : 10;
    const runs = await Promise.all(Array.from({ length: n }, (_, i) => ledger.startRun({ job: 'snap', subject: `snap/${i}` })));
    const ids = runs.map((r) => r.id);
    let done = false;
    const torn: unknown[] = [];
    let reads = 0;
    // One statement = one snapshot: the run row, its completed event and its subject status.
    const reader = async () => {
      while (!done) {
        const { rows } = await ledger.database.query<{ id: string; status: string; has_output: boolean; ev: boolean; subj: boolean }>(
          `select r.id, r.status, r.output is not null as has_output,
                  exists (select 1 from events e where e.namespace = r.namespace and e.run_id = r.id and e.body->>'status' = 'completed') as ev,
                  exists (select 1 from subject_status s where s.namespace = r.namespace and s.run_id = r.id) as subj
             from runs r where r.namespace = 'default' and r.id = any($1::text[])`,
          [ids],
        );
        reads++;
        for (const r of rows) {
          const completed = r.status === 'completed';
          if (completed !== r.has_output || completed !== r.ev || completed !== r.subj) torn.push(r);
        }
      }
    };
    const readers = Array.from({ length: onPostgres ? 4 : 1 }, reader);
    await Promise.all(runs.map((r, i) => r.complete({ output: { i } })));
    done = true;
    await Promise.all(readers);
    expect(torn).toEqual([]);
    expect(reads).toBeGreaterThan(0);
  });
});

describe('notes (promise 9)', () => {
  it('a finish without notes keeps the existing notes; a finish with notes replaces them', async () => {
    for (const finish of ['complete', 'fail', 'cancel'] as const) {
      const run = await ledger.startRun({ job: 'notes', notes: 'written at start' });
      await run.update({ notes: 'updated while running' });
      const done =
        finish === 'complete'
          ? await run.complete({ output: 1 })
          : finish === 'fail'
            ? await run.fail({ error: { message: 'x' } })
            : await run.cancel();
      expect(done.notes).toBe('updated while running');
      expect((await run.get()).notes).toBe('updated while running');
    }
    const replaced = await ledger.startRun({ job: 'notes', notes: 'old' });
    expect((await replaced.complete({ notes: 'new' })).notes).toBe('new');
    const noneYet = await ledger.startRun({ job: 'notes' });
    expect((await noneYet.complete()).notes).toBeNull();
  });

  it('a retry and a timeout keep the notes too', async () => {
    const run = await ledger.startRun({ job: 'notes', notes: 'keep me', deadlineAt: '2000-01-01T00:00:00Z' });
    await run.retry({ error: { message: 'again' } });
    expect((await run.get()).notes).toBe('keep me');
    await ledger.reap();
    expect(await run.get()).toMatchObject({ status: 'timed_out', notes: 'keep me' });
  });
});
