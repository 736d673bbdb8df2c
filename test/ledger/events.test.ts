/**
 * Invariant 5: an acknowledged event is durable and in its place; seq is 1, 2, 3… with no
 * gaps per run, under real concurrency (PostgreSQL: 20 connections, 16+ appenders). A
 * repeated key returns the original seq and writes nothing; the same key with other
 * content is `key_conflict` and the whole batch stores nothing.
 */
import { describe, expect, it } from 'vitest';

import type { AppendResult } from '../../src/index.js';
import { BACKEND, onPostgres, rejectsWith, useFreshLedger } from '../helpers.js';
import { eventRows, fingerprint } from './support.js';

const ledger = useFreshLedger({ poolSize: onPostgres ? 20 : undefined });

describe(`gapless seq under concurrency (${BACKEND})`, () => {
  it('20 concurrent appenders, 600 events in single and batched appends: seq is exactly 1..N, each ack in its place', async () => {
    const run = await ledger.startRun({ job: 'events' });
    const appenders = 20;
    const perAppender = 30;
    const acked: { seq: number; body: { w: number; i: number } }[] = [];
    await Promise.all(
      Array.from({ length: appenders }, async (_, w) => {
        let i = 0;
        while (i < perAppender) {
          // Alternate single events and batches of 1–4 to mix both paths.
          const size = w % 2 === 0 ? 1 : Math.min(1 + (i % 4), perAppender - i);
          const bodies = Array.from({ length: size }, (_, k) => ({ w, i: i + k }));
          const results: AppendResult[] =
            size === 1 ? [await run.event('work', bodies[0])] : await run.events(bodies.map((body) => ({ type: 'work', body })));
          results.forEach((r, k) => {
            expect(r.duplicate).toBe(false);
            acked.push({ seq: r.seq, body: bodies[k] });
          });
          i += size;
        }
      }),
    );
    const total = appenders * perAppender;
    const rows = await eventRows(ledger, run.id);
    expect(rows.map((r) => r.seq)).toEqual(Array.from({ length: total + 1 }, (_, i) => i + 1));
    expect(new Set(acked.map((a) => a.seq)).size).toBe(total);
    // Every acknowledged seq holds exactly the event that was acknowledged for it.
    const bySeq = new Map(rows.map((r) => [r.seq, r.body]));
    for (const a of acked) expect(bySeq.get(a.seq)).toEqual(a.body);
    // Within one appender, its events are in the order it appended them.
    for (let w = 0; w < appenders; w++) {
      const mine = rows.filter((r) => (r.body as { w?: number }).w === w).map((r) => (r.body as { i: number }).i);
      expect(mine).toEqual(Array.from({ length: perAppender }, (_, i) => i));
    }
    expect((await run.get()).lastSeq).toBe(total + 1);
    expect(await run.verify()).toMatchObject({ ok: true, eventsChecked: total + 1 });
  });

  it('concurrent appends interleaved with checkpoints, tags, external ids and completion keep one gapless chain', async () => {
    const run = await ledger.startRun({ job: 'events-mixed' });
    await Promise.all([
      ...Array.from({ length: 16 }, (_, i) => run.event('e', { i })),
      ...Array.from({ length: 4 }, (_, i) => run.checkpoint({ name: `cp${i}`, metadata: { i } })),
      ...Array.from({ length: 4 }, (_, i) => run.setExternalIds({ [`k${i}`]: `v${i}` })),
      ...Array.from({ length: 4 }, (_, i) => run.update({ tags: { [`t${i}`]: 'x' } })),
    ]);
    await run.complete({ output: 'ok' });
    const rows = await eventRows(ledger, run.id);
    expect(rows.map((r) => r.seq)).toEqual(Array.from({ length: 1 + 16 + 4 + 4 + 1 }, (_, i) => i + 1));
    expect((await run.verify()).ok).toBe(true);
  });

  it('appends to many runs at once never mix their sequences', async () => {
    const runs = await Promise.all(Array.from({ length: 8 }, () => ledger.startRun({ job: 'events-many' })));
    await Promise.all(runs.flatMap((r, ri) => Array.from({ length: 10 }, (_, i) => r.event('e', { ri, i }))));
    for (const [ri, r] of runs.entries()) {
      const rows = await eventRows(ledger, r.id);
      expect(rows.map((e) => e.seq)).toEqual(Array.from({ length: 11 }, (_, i) => i + 1));
      expect(rows.slice(1).every((e) => (e.body as { ri: number }).ri === ri)).toBe(true);
    }
  });
});

describe('events and the end of a run', () => {
  it('appenders racing a completion: every acknowledged event precedes the terminal status event, which ends the log', async () => {
    const rounds = onPostgres ? 5 : 2;
    for (let round = 0; round < rounds; round++) {
      const run = await ledger.startRun({ job: 'events-vs-complete' });
      const appends = Array.from({ length: 16 }, (_, i) =>
        (i % 4 === 0
          ? run.events([
              { type: 'batch', body: { i } },
              { type: 'batch', body: { i, second: true } },
            ])
          : i % 4 === 1
            ? run.event('keyed', { i }, { key: `k${i}` }).then((r) => [r])
            : i % 4 === 2
              ? run.checkpoint({ name: `cp${i}`, metadata: { i } }).then(() => [])
              : run.event('single', { i }).then((r) => [r])
        ).then(
          (results) => ({ ok: true as const, seqs: results.map((r) => r.seq) }),
          (err: { code?: string }) => ({ ok: false as const, code: err.code }),
        ),
      );
      const [done, ...outcomes] = await Promise.all([run.complete({ output: round }), ...appends]);
      const rows = await eventRows(ledger, run.id);
      const last = rows.at(-1)!;
      expect(last).toMatchObject({ seq: done.lastSeq, type: 'run.status', body: { status: 'completed' } });
      expect(rows.map((r) => r.seq)).toEqual(Array.from({ length: rows.length }, (_, i) => i + 1));
      for (const o of outcomes) {
        if (o.ok) for (const seq of o.seqs) expect(seq).toBeLessThan(last.seq);
        else expect(o.code).toBe('run_finished');
      }
      expect((await run.verify()).ok).toBe(true);
    }
  });

  it('event times with microseconds or offsets are stored to the millisecond in UTC and verify', async () => {
    const run = await ledger.startRun({ job: 'events-times' });
    await run.event('a', {}, { at: '2026-01-02T03:04:05.678901Z' });
    await run.events([
      { type: 'b', at: '2026-01-02T04:04:05+01:00' },
      { type: 'c', at: '1999-12-31T23:59:59.9999Z' },
    ]);
    await run.event('d', {}, { at: '2026-01-02T03:04:05.6789+00:00', key: 'with-key' });
    const { events } = await run.listEvents({ afterSeq: 1 });
    expect(events.map((e) => e.at)).toEqual([
      '2026-01-02T03:04:05.678Z',
      '2026-01-02T03:04:05.000Z',
      '1999-12-31T23:59:59.999Z',
      '2026-01-02T03:04:05.678Z',
    ]);
    expect(await run.verify()).toMatchObject({ ok: true, problems: [] });
  });
});

describe('event keys', () => {
  it('a repeated key returns the original seq with duplicate=true and writes nothing', async () => {
    const run = await ledger.startRun({ job: 'keys' });
    const first = await run.event('progress', { done: 1 }, { key: 'step-1', level: 'info' });
    expect(first).toEqual({ seq: 2, key: 'step-1', duplicate: false });
    await run.event('other', {});
    const fp = await fingerprint(ledger);
    const again = await run.event('progress', { done: 1 }, { key: 'step-1', level: 'info' });
    expect(again).toEqual({ seq: 2, key: 'step-1', duplicate: true });
    // A repeat in a batch: the duplicate keeps its seq; nothing at all is written.
    expect(await run.events([{ key: 'step-1', type: 'progress', level: 'info', body: { done: 1 } }])).toEqual([
      { seq: 2, key: 'step-1', duplicate: true },
    ]);
    expect(await fingerprint(ledger)).toBe(fp);
    expect((await run.get()).lastSeq).toBe(3);
  });

  it('a key repeated after the run finished still returns its seq', async () => {
    const run = await ledger.startRun({ job: 'keys' });
    await run.event('progress', { n: 1 }, { key: 'k' });
    await run.complete();
    expect(await run.event('progress', { n: 1 }, { key: 'k' })).toEqual({ seq: 2, key: 'k', duplicate: true });
    await rejectsWith(run.event('progress', { n: 2 }, { key: 'k2' }), 'run_finished');
  });

  for (const [what, change] of [
    ['body', { body: { done: 2 } }],
    ['type', { type: 'other' }],
    ['level', { level: 'warn' as const }],
  ] as const) {
    it(`the same key with another ${what} is key_conflict and the whole batch stores nothing`, async () => {
      const run = await ledger.startRun({ job: 'keys' });
      await run.event('progress', { done: 1 }, { key: 'k1', level: 'info' });
      const fp = await fingerprint(ledger);
      const err = await rejectsWith(
        run.events([
          { type: 'fresh-before', body: { x: 1 } },
          { key: 'k-new', type: 'fresh-keyed', body: {} },
          { ...{ key: 'k1', type: 'progress', level: 'info' as const, body: { done: 1 } }, ...change },
          { type: 'fresh-after' },
        ]),
        'key_conflict',
      );
      expect(err.message).toContain('k1');
      expect(err.details[0]).toMatchObject({ field: 'events.2.key', seq: 2 });
      expect(await fingerprint(ledger)).toBe(fp);
      // The keys of the refused batch were not taken: k-new is still free.
      expect(await run.event('fresh-keyed', {}, { key: 'k-new' })).toMatchObject({ seq: 3, duplicate: false });
    });
  }

  it('duplicate keys within one batch: the same content is stored once, other content is key_conflict', async () => {
    const run = await ledger.startRun({ job: 'keys' });
    const results = await run.events([
      { key: 'a', type: 't', body: { v: 1 } },
      { type: 'unkeyed' },
      { key: 'a', type: 't', body: { v: 1 } },
    ]);
    expect(results).toEqual([
      { seq: 2, key: 'a', duplicate: false },
      { seq: 3, duplicate: false },
      { seq: 2, key: 'a', duplicate: true },
    ]);
    expect((await eventRows(ledger, run.id)).map((e) => e.seq)).toEqual([1, 2, 3]);

    const fp = await fingerprint(ledger);
    await rejectsWith(
      run.events([
        { key: 'b', type: 't', body: { v: 1 } },
        { key: 'b', type: 't', body: { v: 2 } },
      ]),
      'key_conflict',
    );
    expect(await fingerprint(ledger)).toBe(fp);
  });

  it('16 concurrent appends of one key: one stored, all get the same seq', async () => {
    const run = await ledger.startRun({ job: 'keys' });
    const results = await Promise.all(Array.from({ length: 16 }, () => run.event('once', { v: 1 }, { key: 'only-once' })));
    expect(results.filter((r) => !r.duplicate)).toHaveLength(1);
    expect(new Set(results.map((r) => r.seq))).toEqual(new Set([2]));
    expect(await eventRows(ledger, run.id)).toHaveLength(2);
  });

  it('an event stores key, level, at and body as given; body defaults to {}', async () => {
    const run = await ledger.startRun({ job: 'keys' });
    await run.events([
      { type: 'a', key: 'k', level: 'warn', at: '2026-01-02T03:04:05.678Z', body: { nested: [1, 'two', null] } },
      { type: 'b' },
    ]);
    const { events } = await run.listEvents({ afterSeq: 1 });
    expect(events[0]).toMatchObject({
      seq: 2,
      type: 'a',
      key: 'k',
      level: 'warn',
      at: '2026-01-02T03:04:05.678Z',
      body: { nested: [1, 'two', null] },
    });
    expect(events[1]).toMatchObject({ seq: 3, type: 'b', key: null, level: null, body: {} });
  });

  it('listEvents pages by afterSeq without gaps or repeats', async () => {
    const run = await ledger.startRun({ job: 'keys' });
    await run.events(Array.from({ length: 25 }, (_, i) => ({ type: 'e', body: { i } })));
    const seen: number[] = [];
    let after: number | null = 0;
    while (after !== null) {
      const page = await run.listEvents({ afterSeq: after, limit: 7 });
      seen.push(...page.events.map((e) => e.seq));
      after = page.nextAfterSeq;
    }
    expect(seen).toEqual(Array.from({ length: 26 }, (_, i) => i + 1));
  });

  it('events on a missing run are not_found and store nothing', async () => {
    const fp = await fingerprint(ledger);
    await rejectsWith(ledger.run('missing-run').event('x', {}), 'not_found');
    expect(await fingerprint(ledger)).toBe(fp);
  });
});
