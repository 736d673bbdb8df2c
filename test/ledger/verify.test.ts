/**
 * Invariant 8 and the hash chain: each run's log is a chain
 * hash = sha256(previousHash + canonical JSON of the event), recomputed here
 * independently; `verify` reports any tampering done behind the ledger's back
 * (body, hash, deleted events, checkpoints). The database itself refuses to change
 * events and checkpoints.
 */
import { describe, expect, it } from 'vitest';

import type { StartedRun } from '../../src/index.js';
import { useFreshLedger } from '../helpers.js';
import { eventRows, expectedCheckpointHash, expectedEventHash, rejection, withoutImmutability } from './support.js';

const ledger = useFreshLedger();

/** A run with every kind of log entry: status changes, events (keyed, levelled), a checkpoint, external ids. */
async function busyRun(id: string): Promise<StartedRun> {
  const run = await ledger.startRun({ id, job: 'verify', subject: id, externalIds: { 'temporal.workflowId': `wf-${id}` } });
  await run.event('progress', { done: 1, of: 3 });
  await run.events([
    { type: 'log', key: 'line-1', level: 'warn', at: '2026-01-01T00:00:00.001Z', body: { text: 'héllo "quoted" \n €' } },
    { type: 'log', body: { n: 1e21, small: 1e-7, neg: -0, arr: [{ b: 1, a: 2 }] } },
  ]);
  await run.checkpoint({
    name: 'pre_decision',
    kind: 'state',
    ref: 's3://bucket/key',
    metadata: { diffHash: 'abc' },
    data: { big: [1, 2, 3] },
  });
  await run.setExternalIds({ 'amc.executionId': 'exec-1' });
  await run.retry({ error: { message: 'again' } });
  await run.start();
  await run.complete({ output: { ok: true } });
  return run;
}

describe('the hash chain', () => {
  it('every stored hash equals sha256(previous hash + RFC 8785 JSON of the event), computed independently', async () => {
    const run = await busyRun('chain-1');
    const rows = await eventRows(ledger, run.id);
    expect(rows.length).toBeGreaterThan(8);
    let prev = '';
    for (const r of rows) {
      const expected = expectedEventHash(prev, {
        seq: r.seq,
        type: r.type,
        at: r.at.toISOString(),
        body: r.body,
        key: r.key,
        level: r.level,
      });
      expect(r.hash, `seq ${r.seq}`).toBe(expected);
      prev = r.hash;
    }
    // The run head points at the end of the chain.
    const { rows: head } = await ledger.database.query<{ last_seq: number; last_hash: string }>(
      `select last_seq, last_hash from runs where id = $1`,
      [run.id],
    );
    expect(head[0]).toEqual({ last_seq: rows.length, last_hash: prev });
  });

  it('imported runs carry a valid chain too (computed by the import path)', async () => {
    const result = await ledger.importRuns(
      'verify-src',
      [
        {
          sourceId: 'imp-1',
          id: 'imported-1',
          job: 'verify',
          subject: 'imp',
          startedAt: '2025-05-05T10:00:00.123456Z',
          finishedAt: '2025-05-05T12:05:00+02:00',
          externalIds: { 'legacy.id': '42' },
          events: [
            { type: 'legacy', level: 'info', at: '2025-05-05T10:01:00Z', body: { n: 1 } },
            { type: 'legacy', body: { unicode: 'ü €' } },
          ],
          error: { type: 'Legacy', message: 'old failure' },
        },
      ],
      { cutover: 'none' },
    );
    expect(result.inserted).toBe(1);
    const rows = await eventRows(ledger, 'imported-1');
    expect(rows.map((r) => r.type)).toEqual(['run.status', 'run.external_id', 'legacy', 'legacy', 'run.status']);
    let prev = '';
    for (const r of rows) {
      expect(r.hash).toBe(
        expectedEventHash(prev, { seq: r.seq, type: r.type, at: r.at.toISOString(), body: r.body, key: r.key, level: r.level }),
      );
      prev = r.hash;
    }
    expect(await ledger.verify('imported-1')).toMatchObject({ ok: true, problems: [] });
  });

  it('verify is ok on normal runs, one run or the whole namespace', async () => {
    await busyRun('chain-2');
    const one = await ledger.verify('chain-2');
    expect(one).toMatchObject({ ok: true, runsChecked: 1, problems: [] });
    expect(one.eventsChecked).toBe((await eventRows(ledger, 'chain-2')).length);
    const all = await ledger.verify();
    expect(all.ok).toBe(true);
    expect(all.runsChecked).toBeGreaterThanOrEqual(2);
  });
});

describe('tampering is detected', () => {
  it('an UPDATE or DELETE on events is refused by the database', async () => {
    const run = await busyRun('immut-1');
    const before = await eventRows(ledger, run.id);
    const upd = await rejection(
      ledger.database.query(`update events set body = '{"forged":true}' where run_id = $1 and seq = 2`, [run.id]),
    );
    expect(upd?.message).toMatch(/immutable/);
    const del = await rejection(ledger.database.query(`delete from events where run_id = $1 and seq = 2`, [run.id]));
    expect(del?.message).toMatch(/immutable/);
    expect(await eventRows(ledger, run.id)).toEqual(before);
  });

  it('an UPDATE or DELETE on checkpoints is refused by the database', async () => {
    const run = await busyRun('immut-2');
    const upd = await rejection(ledger.database.query(`update checkpoints set metadata = '{"mutated":true}' where run_id = $1`, [run.id]));
    expect(upd?.message).toMatch(/immutable/);
    const del = await rejection(ledger.database.query(`delete from checkpoints where run_id = $1`, [run.id]));
    expect(del?.message).toMatch(/immutable/);
    expect((await run.getCheckpoint('pre_decision')).metadata).toEqual({ diffHash: 'abc' });
  });

  it('a tampered event body is hash_mismatch at that seq', async () => {
    const run = await busyRun('tamper-body');
    await withoutImmutability(ledger, 'events', () =>
      ledger.database.query(`update events set body = '{"done":3,"of":3}' where run_id = $1 and seq = 3`, [run.id]),
    );
    const result = await ledger.verify(run.id);
    expect(result.ok).toBe(false);
    expect(result.problems).toEqual([expect.objectContaining({ runId: run.id, seq: 3, problem: 'hash_mismatch' })]);
    // Whole-namespace verify finds it too, and only it.
    const all = await ledger.verify();
    expect(all.problems.map((p) => [p.runId, p.seq, p.problem])).toContainEqual([run.id, 3, 'hash_mismatch']);
    expect(all.problems.every((p) => p.runId === run.id)).toBe(true);
  });

  it('a tampered type, level, key or time is hash_mismatch', async () => {
    for (const [i, set] of ["type = 'forged'", "level = 'fatal'", "key = 'forged-key'", "at = at + interval '1 ms'"].entries()) {
      const run = await busyRun(`tamper-field-${i}`);
      await withoutImmutability(ledger, 'events', () =>
        ledger.database.query(`update events set ${set} where run_id = $1 and seq = 4`, [run.id]),
      );
      const result = await ledger.verify(run.id);
      expect(result.problems, set).toEqual([expect.objectContaining({ seq: 4, problem: 'hash_mismatch' })]);
    }
  });

  it('a replaced hash breaks the chain at that seq and the next', async () => {
    const run = await busyRun('tamper-hash');
    await withoutImmutability(ledger, 'events', () =>
      ledger.database.query(`update events set hash = repeat('0', 64) where run_id = $1 and seq = 2`, [run.id]),
    );
    const result = await ledger.verify(run.id);
    expect(result.problems.map((p) => [p.seq, p.problem])).toEqual([
      [2, 'hash_mismatch'],
      [3, 'hash_mismatch'],
    ]);
  });

  it('a re-chained forgery (body and every later hash rewritten) is still caught at the run head', async () => {
    const run = await busyRun('tamper-rechain');
    const rows = await eventRows(ledger, run.id);
    await withoutImmutability(ledger, 'events', async () => {
      let prev = rows[1].hash;
      for (const r of rows.slice(2)) {
        const body = r.seq === 3 ? { forged: true } : r.body;
        const hash = expectedEventHash(prev, { seq: r.seq, type: r.type, at: r.at.toISOString(), body, key: r.key, level: r.level });
        await ledger.database.query(`update events set body = $3::jsonb, hash = $4 where run_id = $1 and seq = $2`, [
          run.id,
          r.seq,
          JSON.stringify(body),
          hash,
        ]);
        prev = hash;
      }
    });
    const result = await ledger.verify(run.id);
    expect(result.ok).toBe(false);
    expect(result.problems.map((p) => p.problem)).toEqual(['last_seq_mismatch']);
  });

  it('a deleted event in the middle is seq_gap; a deleted last event is last_seq_mismatch', async () => {
    const mid = await busyRun('tamper-delete-mid');
    await withoutImmutability(ledger, 'events', () => ledger.database.query(`delete from events where run_id = $1 and seq = 4`, [mid.id]));
    const r1 = await ledger.verify(mid.id);
    expect(r1.ok).toBe(false);
    expect(r1.problems).toContainEqual(expect.objectContaining({ seq: 5, problem: 'seq_gap' }));

    const last = await busyRun('tamper-delete-last');
    const n = (await last.get()).lastSeq;
    await withoutImmutability(ledger, 'events', () =>
      ledger.database.query(`delete from events where run_id = $1 and seq = $2`, [last.id, n]),
    );
    const r2 = await ledger.verify(last.id);
    expect(r2.ok).toBe(false);
    expect(r2.problems.map((p) => p.problem)).toEqual(['last_seq_mismatch']);
  });

  it('a tampered checkpoint is checkpoint_hash_mismatch naming it', async () => {
    const run = await busyRun('tamper-checkpoint');
    const cp = await run.getCheckpoint('pre_decision');
    expect(cp.contentHash).toBe(
      expectedCheckpointHash({
        name: 'pre_decision',
        kind: 'state',
        ref: 's3://bucket/key',
        metadata: { diffHash: 'abc' },
        data: { big: [1, 2, 3] },
      }),
    );
    for (const set of [`metadata = '{"diffHash":"xyz"}'`, `data = '{"big":[1,2]}'`, `kind = 'other'`, `ref = null`]) {
      await withoutImmutability(ledger, 'checkpoints', () =>
        ledger.database.query(`update checkpoints set ${set} where run_id = $1 and name = 'pre_decision'`, [run.id]),
      );
      const result = await ledger.verify(run.id);
      expect(result.problems, set).toEqual([
        expect.objectContaining({ runId: run.id, checkpoint: 'pre_decision', problem: 'checkpoint_hash_mismatch' }),
      ]);
      // Put it back for the next variant.
      await withoutImmutability(ledger, 'checkpoints', () =>
        ledger.database.query(
          `update checkpoints set metadata = '{"diffHash":"abc"}', data = '{"big":[1,2,3]}', kind = 'state', ref = 's3://bucket/key'
            where run_id = $1 and name = 'pre_decision'`,
          [run.id],
        ),
      );
      expect((await ledger.verify(run.id)).ok).toBe(true);
    }
  });

  it('verify of a missing run is not_found', async () => {
    await expect(ledger.verify('no-such-run')).rejects.toMatchObject({ code: 'not_found' });
  });
});
