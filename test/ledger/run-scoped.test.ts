/**
 * Promise 1: a write names exactly one run. Two runs of the same job and
 * subject running at once each end with their own output; neither is touched by the
 * other's writes. The same id in two namespaces is two runs.
 */
import { describe, expect, it } from 'vitest';

import type { OpenedLedger, Run } from '../../src/index.js';
import { useFreshLedger } from '../helpers.js';
import { eventRows } from './support.js';

const ledger = useFreshLedger({ poolSize: 8 });

/** Everything a run owns, to compare before/after another run's writes. */
async function state(id: string, l = ledger) {
  const run = await l.getRun(id);
  const events = await eventRows(l as OpenedLedger, id, l.namespace);
  const checkpoints = await l.run(id).listCheckpoints();
  return { run, events, checkpoints };
}

describe('run-scoped writes', () => {
  it('two concurrent runs of the same job+subject each complete with their own output', async () => {
    const job = 'agent-md';
    const subject = 'acme/api';
    const [a, b] = await Promise.all([ledger.startRun({ job, subject }), ledger.startRun({ job, subject })]);
    expect(a.id).not.toBe(b.id);

    // Interleave every kind of write on both runs at once.
    await Promise.all([
      a.event('progress', { run: 'A', step: 1 }),
      b.event('progress', { run: 'B', step: 1 }),
      a.checkpoint({ name: 'pre_decision', metadata: { run: 'A' } }),
      b.checkpoint({ name: 'pre_decision', metadata: { run: 'B' } }),
      a.update({ tags: { owner: 'A' } }),
      b.update({ tags: { owner: 'B' } }),
      a.setExternalIds({ 'temporal.workflowId': 'wf-A' }),
      b.setExternalIds({ 'temporal.workflowId': 'wf-B' }),
    ]);
    const [doneA, doneB] = await Promise.all([
      a.complete({ output: { agentMd: 'payload A' }, statistics: { tokens: 1 }, notes: 'A notes' }),
      b.complete({ output: { agentMd: 'payload B' }, statistics: { tokens: 2 }, notes: 'B notes' }),
    ]);

    expect(doneA.output).toEqual({ agentMd: 'payload A' });
    expect(doneB.output).toEqual({ agentMd: 'payload B' });
    const [ra, rb] = [await ledger.getRun(a.id), await ledger.getRun(b.id)];
    expect([ra.output, ra.statistics, ra.notes, ra.tags, ra.externalIds]).toEqual([
      { agentMd: 'payload A' },
      { tokens: 1 },
      'A notes',
      { owner: 'A' },
      { 'temporal.workflowId': 'wf-A' },
    ]);
    expect([rb.output, rb.statistics, rb.notes, rb.tags, rb.externalIds]).toEqual([
      { agentMd: 'payload B' },
      { tokens: 2 },
      'B notes',
      { owner: 'B' },
      { 'temporal.workflowId': 'wf-B' },
    ]);
    expect((await a.getCheckpoint('pre_decision')).metadata).toEqual({ run: 'A' });
    expect((await b.getCheckpoint('pre_decision')).metadata).toEqual({ run: 'B' });
    // Each log holds only its own run's writes.
    for (const [id, me, other] of [
      [a.id, 'A', 'B'],
      [b.id, 'B', 'A'],
    ] as const) {
      const bodies = JSON.stringify((await eventRows(ledger, id)).map((e) => e.body));
      expect(bodies).toContain(`"${me}"`);
      expect(bodies).not.toContain(`"${other}"`);
      expect(bodies).not.toContain(`wf-${other}`);
    }
    expect((await ledger.verify()).ok).toBe(true);
  });

  it("a run's writes leave a sibling of the same job+subject byte-for-byte untouched", async () => {
    const job = 'agent-md';
    const subject = 'acme/web';
    const a = await ledger.startRun({ job, subject, notes: 'a', tags: { t: 'a' } });
    const b = await ledger.startRun({ job, subject, notes: 'b', tags: { t: 'b' } });
    await b.event('hello', { from: 'b' });
    const before = await state(b.id);

    await a.event('progress', { n: 1 });
    await a.events([{ type: 'x', key: 'k1' }, { type: 'y' }]);
    await a.heartbeat({ done: 1 });
    await a.checkpoint({ name: 'c', metadata: {} });
    await a.update({ tags: { t: 'changed' }, notes: 'changed' });
    await a.setExternalIds({ 'amc.executionId': 'e1' });
    await a.retry({ error: { message: 'transient' } });
    await a.start();
    await a.complete({ output: 'A done', statistics: { n: 1 }, notes: 'A final' });

    expect(await state(b.id)).toEqual(before);

    // And the other way round: B's completion leaves A's finished record alone.
    const afterA = await state(a.id);
    await b.complete({ output: 'B done' });
    expect(await state(a.id)).toEqual(afterA);
  });

  it('the same run id in two namespaces is two runs; a write in one never reaches the other', async () => {
    const one = ledger.inNamespace('team-one');
    const two = ledger.inNamespace('team-two');
    const id = 'shared-id-1';
    await one.startRun({ id, job: 'j', subject: 's', notes: 'one' });
    await two.startRun({ id, job: 'other-job', subject: 's', notes: 'two' });
    const before = await two.getRun(id);

    await one.run(id).event('e', { ns: 'one' });
    await one.run(id).update({ tags: { a: '1' } });
    await one.run(id).complete({ output: 'one' });

    const after: Run = await two.getRun(id);
    expect(after).toEqual(before);
    expect(after.status).toBe('running');
    expect(after.job).toBe('other-job');
    expect((await two.run(id).listEvents()).events.map((e) => e.type)).toEqual(['run.status']);
    expect((await one.getRun(id)).status).toBe('completed');
    // Subject status is per namespace too.
    expect((await one.getSubject('j', 's')).runId).toBe(id);
    await expect(two.getSubject('j', 's')).rejects.toMatchObject({ code: 'not_found' });
  });
});
