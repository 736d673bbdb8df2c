/**
 * What is accepted reads back exactly, key order included (migration 0009): JSON objects in
 * params, tags, external ids, output, statistics, error, progress, event bodies and checkpoint
 * metadata and data come back from every read path with their keys in the order they were
 * sent, nested objects and objects inside arrays too: whether written alone or in a batch
 * (group commit), imported, merged by update, or exported and restored. jsonb would sort them
 * (shorter keys first), which every value here is built to make visible.
 */
import { describe, expect, it } from 'vitest';

import { BACKEND, onPostgres, useFreshLedger } from '../helpers.js';
import { gate } from './support.js';

const ledger = useFreshLedger({ poolSize: onPostgres ? 20 : undefined });

/** An object whose key order is neither sorted nor jsonb's (length, then bytes), nested in objects and arrays. */
const shaped = (tag: string) => ({
  zeta: tag,
  alpha: { omega: [{ yy: 1, b: [{ q: true, aa: null }] }, 'x', 2.5], beta: null, a: {} },
  mid: [],
  a: 'short',
});
const stringMap = (tag: string) => ({ zone: `${tag}-z`, app: `${tag}-a`, b: `${tag}-b` });

/** The exact text of a value: equal texts mean equal values with keys in the same order. */
const text = (v: unknown) => JSON.stringify(v);

describe(`JSON reads back in the key order sent (${BACKEND})`, () => {
  it('every field of a run, its events and checkpoints, through every read path', async () => {
    const run = await ledger.startRun({
      job: 'order',
      subject: 'order-1',
      params: shaped('params'),
      tags: stringMap('tag'),
      externalIds: stringMap('ext'),
    });
    await run.heartbeat(shaped('progress'));
    await run.event('single', shaped('single'));
    await run.event('keyed', shaped('keyed'), { key: 'k1' });
    await run.events([
      { type: 'batched', body: shaped('batched-1') },
      { type: 'batched', body: shaped('batched-2'), key: 'k2' },
    ]);
    await run.checkpoint({ name: 'cp', metadata: shaped('metadata'), data: shaped('data') });
    // A tag already there keeps its place with its new value; new tags and ids follow in the order sent.
    await run.update({ tags: { newer: 'n', app: 'changed', alpha: 'x' }, externalIds: { zz: '1', aa: '2' } });
    await run.complete({ output: shaped('output'), statistics: shaped('statistics') });

    const failed = await ledger.startRun({ job: 'order', subject: 'order-2' });
    await failed.fail({ error: { type: 'boom', message: 'failed', details: shaped('details') }, statistics: shaped('fail-stats') });

    const tags = { zone: 'tag-z', app: 'changed', b: 'tag-b', newer: 'n', alpha: 'x' };
    const externalIds = { ...stringMap('ext'), zz: '1', aa: '2' };
    const expectRun = (r: Awaited<ReturnType<typeof ledger.getRun>>) => {
      expect(text(r.params)).toBe(text(shaped('params')));
      expect(text(r.tags)).toBe(text(tags));
      expect(text(r.externalIds)).toBe(text(externalIds));
      expect(text(r.progress)).toBe(text(shaped('progress')));
      expect(text(r.output)).toBe(text(shaped('output')));
      expect(text(r.statistics)).toBe(text(shaped('statistics')));
    };
    expectRun(await ledger.getRun(run.id));
    expectRun(await run.get());
    expectRun((await ledger.listRuns({ job: 'order', subject: 'order-1' })).runs[0]);
    // The tag and external id filters still find it (they query the jsonb of the value).
    expect((await ledger.listRuns({ tag: 'app:changed' })).runs.map((r) => r.id)).toEqual([run.id]);
    expect((await ledger.listRuns({ externalId: 'aa:2' })).runs.map((r) => r.id)).toEqual([run.id]);
    expect((await ledger.listRuns({ job: 'order', missingExternalId: 'zz' })).runs.map((r) => r.id)).toEqual([failed.id]);

    const failedRun = await ledger.getRun(failed.id);
    expect(text(failedRun.error)).toBe(text({ type: 'boom', message: 'failed', details: shaped('details') }));
    expect(text(failedRun.statistics)).toBe(text(shaped('fail-stats')));

    const events = (await run.listEvents()).events;
    const bodyOf = (type: string, i = 0) => events.filter((e) => e.type === type)[i].body;
    expect(text(bodyOf('single'))).toBe(text(shaped('single')));
    expect(text(bodyOf('keyed'))).toBe(text(shaped('keyed')));
    expect(text(bodyOf('batched', 0))).toBe(text(shaped('batched-1')));
    expect(text(bodyOf('batched', 1))).toBe(text(shaped('batched-2')));
    // A keyed repeat is the same event, whatever the order of the keys it is sent with.
    const repeat = await run.event('keyed', { a: 'short', mid: [], alpha: shaped('keyed').alpha, zeta: 'keyed' }, { key: 'k1' });
    expect(repeat.duplicate).toBe(true);

    const cp = await run.getCheckpoint('cp');
    expect(text(cp.metadata)).toBe(text(shaped('metadata')));
    expect(text(cp.data)).toBe(text(shaped('data')));
    expect(text((await run.listCheckpoints())[0].metadata)).toBe(text(shaped('metadata')));

    // The change log reports the run with its statistics and error as sent.
    const finished = (await ledger.changes({ types: ['run.finished'] })).changes;
    const change = (id: string) =>
      finished.find((c) => (c.data as { run: { id: string } }).run.id === id)!.data as {
        run: { statistics: unknown; error: unknown };
      };
    expect(text(change(run.id).run.statistics)).toBe(text(shaped('statistics')));
    expect(text(change(failed.id).run.error)).toBe(text(failedRun.error));

    // The hash chain is over canonical JSON: unaffected by the order kept.
    expect(await ledger.verify()).toMatchObject({ ok: true });

    // Exported, then restored elsewhere: the same text, field by field.
    const exported = (await ledger.exportRuns()).runs.find((r) => r.run.id === run.id)!;
    expect(text(exported.run.params)).toBe(text(shaped('params')));
    expect(text(exported.run.tags)).toBe(text(tags));
    expect(text(exported.events.find((e) => e.type === 'single')!.body)).toBe(text(shaped('single')));
    expect(text(exported.checkpoints[0].data)).toBe(text(shaped('data')));
    const elsewhere = ledger.inNamespace('order-restored');
    expect((await elsewhere.restoreRuns([exported])).results[0]).toMatchObject({ status: 'restored' });
    expect(text((await elsewhere.exportRuns()).runs[0])).toBe(text(exported));
    expectRun(await elsewhere.getRun(run.id));
    expect(await elsewhere.verify(run.id)).toMatchObject({ ok: true });
  });

  it('writes made in one batch (group commit) keep their order too', async () => {
    const holder = await ledger.startRun({ job: 'order-batch' });
    const runs = await Promise.all([0, 1, 2].map((i) => ledger.startRun({ job: 'order-batch', subject: `b${i}` })));
    const g = await gate(ledger, holder.id);
    const pending = holder.event('hold');
    const writes = Promise.all([
      ledger.startRun({ job: 'order-batch', subject: 'new-a', params: shaped('start-a'), tags: stringMap('a') }),
      ledger.startRun({ job: 'order-batch', subject: 'new-b', params: shaped('start-b'), externalIds: stringMap('b') }),
      runs[0].events([{ type: 'e', body: shaped('events-0') }]),
      runs[1].events([{ type: 'e', body: shaped('events-1') }]),
      runs[0].complete({ output: shaped('out-0'), statistics: shaped('stats-0') }),
      runs[1].complete({ output: shaped('out-1') }),
      runs[2].fail({ error: { message: 'x', details: shaped('err-2') } }),
    ]);
    await g.open();
    await pending;
    const [a, b] = await writes;
    expect(text((await a.get()).params)).toBe(text(shaped('start-a')));
    expect(text((await a.get()).tags)).toBe(text(stringMap('a')));
    expect(text((await b.get()).externalIds)).toBe(text(stringMap('b')));
    for (const i of [0, 1]) {
      const events = (await runs[i].listEvents()).events;
      expect(text(events.find((e) => e.type === 'e')!.body)).toBe(text(shaped(`events-${i}`)));
      expect(text((await runs[i].get()).output)).toBe(text(shaped(`out-${i}`)));
    }
    expect(text((await runs[0].get()).statistics)).toBe(text(shaped('stats-0')));
    expect(text((await runs[2].get()).error)).toBe(text({ message: 'x', details: shaped('err-2') }));
    expect(await ledger.verify()).toMatchObject({ ok: true });
  });

  it('imported runs keep their order', async () => {
    const result = await ledger.importRuns('order-src', [
      {
        sourceId: 'i1',
        job: 'order-import',
        status: 'completed',
        startedAt: '2026-01-01T00:00:00.000Z',
        finishedAt: '2026-01-01T00:01:00.000Z',
        params: shaped('i-params'),
        tags: stringMap('i'),
        externalIds: stringMap('ie'),
        output: shaped('i-output'),
        statistics: shaped('i-stats'),
        events: [{ type: 'log', at: '2026-01-01T00:00:30.000Z', body: shaped('i-event') }],
      },
    ]);
    expect(result.results[0]).toMatchObject({ status: 'inserted' });
    const id = result.results[0].runId!;
    const r = await ledger.getRun(id);
    expect(text(r.params)).toBe(text(shaped('i-params')));
    expect(text(r.tags)).toBe(text(stringMap('i')));
    expect(text(r.externalIds)).toBe(text(stringMap('ie')));
    expect(text(r.output)).toBe(text(shaped('i-output')));
    expect(text(r.statistics)).toBe(text(shaped('i-stats')));
    const log = (await ledger.run(id).listEvents()).events.find((e) => e.type === 'log')!;
    expect(text(log.body)).toBe(text(shaped('i-event')));
    expect(await ledger.verify(id)).toMatchObject({ ok: true });
  });
});
