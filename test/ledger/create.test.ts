/**
 * Invariant 4: create is idempotent on (namespace, id). The same identity (job, subject,
 * trigger, actor, parentId, params) returns the existing run; a different one is
 * `id_conflict` naming exactly the fields that differ. Never silently ignored.
 */
import { describe, expect, it } from 'vitest';

import type { StartRunInput } from '../../src/index.js';
import { onPostgres, rejectsWith, useFreshLedger } from '../helpers.js';
import { eventRows, fingerprint } from './support.js';

const ledger = useFreshLedger({ poolSize: onPostgres ? 20 : undefined });

const base = (id: string): StartRunInput => ({
  id,
  job: 'compliance-check',
  subject: 'Genesis',
  trigger: 'schedule',
  actor: 'cron',
  parentId: 'parent-1',
  params: { region: 'eu', depth: 2, flags: ['a', 'b'] },
});

describe('idempotent create', () => {
  it('the same identity returns the existing run (created=false) and writes nothing', async () => {
    const first = await ledger.startRun({ ...base('idem-1'), tags: { a: '1' }, notes: 'first', leaseS: 30 });
    expect(first.created).toBe(true);
    await first.event('progress', { n: 1 });
    const fp = await fingerprint(ledger);

    // Params in another key order are the same params; non-identity fields do not matter.
    const again = await ledger.startRun({
      ...base('idem-1'),
      params: { flags: ['a', 'b'], depth: 2, region: 'eu' },
      tags: { b: '2' },
      notes: 'second',
      leaseS: 99,
    });
    expect(again.created).toBe(false);
    expect(again.id).toBe('idem-1');
    expect(again.run).toEqual(await first.get());
    expect(again.run).toMatchObject({ tags: { a: '1' }, notes: 'first', leaseS: 30, lastSeq: 2 });
    expect(await fingerprint(ledger)).toBe(fp);
  });

  it('a repeated create of a finished run still returns it, unchanged (never expiring)', async () => {
    const first = await ledger.startRun(base('idem-done'));
    await first.complete({ output: 'done' });
    const again = await ledger.startRun(base('idem-done'));
    expect(again.created).toBe(false);
    expect(again.run).toMatchObject({ status: 'completed', output: 'done' });
  });

  const changes: [string, Partial<StartRunInput>, string[]][] = [
    ['job', { job: 'other-job' }, ['job']],
    ['subject', { subject: 'Exodus' }, ['subject']],
    ['subject (absent)', { subject: undefined }, ['subject']],
    ['trigger', { trigger: 'manual' }, ['trigger']],
    ['actor', { actor: 'alice' }, ['actor']],
    ['parentId', { parentId: 'parent-2' }, ['parentId']],
    ['params', { params: { region: 'us', depth: 2, flags: ['a', 'b'] } }, ['params']],
    ['params (array order)', { params: { region: 'eu', depth: 2, flags: ['b', 'a'] } }, ['params']],
    ['job, subject and params', { job: 'x', subject: 'y', params: {} }, ['job', 'subject', 'params']],
  ];
  for (const [label, change, fields] of changes) {
    it(`a different ${label} is id_conflict naming exactly ${fields.join(', ')}`, async () => {
      const id = `conflict-${label.replace(/\W+/g, '-')}`;
      await ledger.startRun(base(id));
      const fp = await fingerprint(ledger);
      const err = await rejectsWith(ledger.startRun({ ...base(id), ...change }), 'id_conflict');
      expect((err as unknown as { fields: string[] }).fields).toEqual(fields);
      expect(err.details.map((d) => (d as { field: string }).field)).toEqual(fields);
      expect(err.message).toContain(id);
      for (const f of fields) expect(err.message).toContain(f);
      for (const other of ['job', 'subject', 'trigger', 'actor', 'parentId', 'params'].filter((f) => !fields.includes(f)))
        expect(err.message).not.toMatch(new RegExp(`\\b${other}\\b`));
      expect(await fingerprint(ledger)).toBe(fp);
    });
  }

  it('16 concurrent creates of one id: exactly one is created, all return the same run, one start event', async () => {
    const results = await Promise.all(Array.from({ length: 16 }, () => ledger.startRun(base('race-1'))));
    expect(results.filter((r) => r.created)).toHaveLength(1);
    const stored = await ledger.getRun('race-1');
    for (const r of results) expect(r.run).toEqual(stored);
    expect(await eventRows(ledger, 'race-1')).toHaveLength(1);
  });

  it('16 concurrent creates of one id with two identities: one created, same identity existing, the other id_conflict', async () => {
    const results = await Promise.allSettled(
      Array.from({ length: 16 }, (_, i) => ledger.startRun({ ...base('race-2'), actor: i % 2 ? 'odd' : 'even' })),
    );
    const created = results.filter((r) => r.status === 'fulfilled' && r.value.created);
    expect(created).toHaveLength(1);
    const winner = (await ledger.getRun('race-2')).actor;
    results.forEach((r, i) => {
      const mine = i % 2 ? 'odd' : 'even';
      if (mine === winner) expect(r.status).toBe('fulfilled');
      else {
        expect(r.status).toBe('rejected');
        expect((r as PromiseRejectedResult).reason).toMatchObject({ code: 'id_conflict', fields: ['actor'] });
      }
    });
  });

  it('a created run is recorded whole: initial status event and external id events', async () => {
    const run = await ledger.startRun({ ...base('whole-1'), externalIds: { 'temporal.workflowId': 'wf-1' }, status: 'submitted' });
    expect(run.run).toMatchObject({ status: 'submitted', attempt: 1, version: 1, startedAt: null, lastSeq: 2 });
    const events = await eventRows(ledger, run.id);
    expect(events.map((e) => [e.seq, e.type, e.body])).toEqual([
      [1, 'run.status', { status: 'submitted' }],
      [2, 'run.external_id', { key: 'temporal.workflowId', value: 'wf-1' }],
    ]);
  });

  it('generates a time-ordered UUIDv7 id when none is given', async () => {
    const a = await ledger.startRun({ job: 'gen' });
    const b = await ledger.startRun({ job: 'gen' });
    const uuidV7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
    expect(a.id).toMatch(uuidV7);
    expect(b.id).toMatch(uuidV7);
    expect(a.id < b.id).toBe(true);
  });
});
