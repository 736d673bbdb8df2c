/**
 * Group commit (src/ledger/coalesce.ts): concurrent writes share transactions,
 * and each is still answered exactly as if it had been made alone.
 *
 * To make a batch deterministic, a "gate" holds the first write: a transaction that locks
 * one run's row (on PGlite, any open transaction holds the one connection). An event on
 * that run is then in flight, so every write made meanwhile queues, and all of them go in
 * the next transaction once the gate opens. Rows written by one transaction share its xmin,
 * which shows that they were batched (checked in process; over HTTP the requests reach the
 * server at their own pace, so only the answers are checked).
 */
import { describe, expect, it } from 'vitest';

import type { OpenedLedger } from '../../src/index.js';
import { OWN_TRANSACTION_FROM } from '../../src/ledger/events.js';
import { BACKEND, onPostgres, rejectsWith, viaHttp } from '../helpers.js';
import { useFreshLedger } from '../helpers.js';
import { eventRows, gate } from './support.js';

const ledger = useFreshLedger({ poolSize: onPostgres ? 20 : undefined });

/** How many transactions wrote the events of these runs after `afterSeq` (their distinct xmin). */
async function writerTransactions(l: OpenedLedger, runIds: string[], afterSeq: number): Promise<number> {
  const { rows } = await l.database.query<{ n: number }>(
    `select count(distinct xmin::text)::int as n from events where namespace = $1 and run_id = any($2::text[]) and seq > $3`,
    [l.namespace, runIds, afterSeq],
  );
  return rows[0].n;
}

type Outcome = { ok: unknown } | { code: string };
const outcome = (p: Promise<unknown>): Promise<Outcome> =>
  p.then(
    (ok) => ({ ok }),
    (err: { code?: string; message?: string }) => ({ code: err.code ?? `untyped: ${err.message}` }),
  );

describe(`group commit: each write answered as if alone (${BACKEND})`, () => {
  it('one batch of valid and invalid writes: finished runs, missing runs, key conflicts and duplicates, id conflicts, run_active, bad text', async () => {
    const held = await ledger.startRun({ job: 'gate' });
    const valid = await Promise.all(Array.from({ length: 6 }, (_, i) => ledger.startRun({ job: 'batch', subject: `s${i}` })));
    const finished = await ledger.startRun({ job: 'batch', subject: 'done' });
    await finished.complete({ output: { n: 1 } });
    const keyed = await ledger.startRun({ job: 'batch', subject: 'keyed' });
    await keyed.event('step', { n: 1 }, { key: 'k1' });
    const existing = await ledger.startRun({ id: 'coalesce-existing', job: 'batch', subject: 'x', params: { a: 1 } });
    const active = await ledger.startRun({ job: 'exclusive-job', subject: 'one', exclusive: true });

    const g = await gate(ledger, held.id);
    const first = outcome(held.event('first'));
    const calls = {
      // Valid: three batched events, one single event, a complete and a fresh start.
      events: valid.slice(0, 3).map((r, i) => outcome(r.events([1, 2, 3].map((n) => ({ type: 'progress', body: { i, n } }))))),
      single: outcome(valid[3].event('one', { alone: false })),
      complete: outcome(valid[4].complete({ output: { ok: true } })),
      fail: outcome(valid[5].fail({ error: { type: 'boom', message: 'failed in a batch' } })),
      start: outcome(ledger.startRun({ id: 'coalesce-new', job: 'batch', subject: 'new' })),
      // Invalid, each in its own way.
      onFinished: outcome(finished.event('late')),
      batchOnFinished: outcome(finished.events([{ type: 'late' }, { type: 'later' }])),
      completeAgainOther: outcome(finished.complete({ output: { n: 2 } })),
      completeAgainSame: outcome(finished.complete({ output: { n: 1 } })),
      missing: outcome(ledger.run('no-such-run').event('x')),
      keyConflict: outcome(keyed.event('step', { n: 2 }, { key: 'k1' })),
      sameIdOtherIdentity: outcome(ledger.startRun({ id: 'coalesce-existing', job: 'batch', subject: 'x', params: { a: 2 } })),
      sameIdSameIdentity: outcome(ledger.startRun({ id: 'coalesce-existing', job: 'batch', subject: 'x', params: { a: 1 } })),
      exclusiveTaken: outcome(ledger.startRun({ job: 'exclusive-job', subject: 'one', exclusive: true })),
      nulInText: outcome(valid[0].event('bad\u0000type')),
    };
    // Duplicates and conflicting ids within the batch itself: the same key twice, the same new id twice.
    const dupKeyA = outcome(keyed.event('step', { n: 1 }, { key: 'k1' }));
    const twinA = outcome(ledger.startRun({ id: 'coalesce-twin', job: 'batch', subject: 'twin', params: { v: 'a' } }));
    const twinB = outcome(ledger.startRun({ id: 'coalesce-twin', job: 'batch', subject: 'twin', params: { v: 'b' } }));
    await g.open();

    expect(await first).toMatchObject({ ok: { seq: 2, duplicate: false } });
    for (const [i, p] of calls.events.entries())
      expect(await p, `events of run ${i}`).toEqual({
        ok: [2, 3, 4].map((seq) => ({ seq, duplicate: false })),
      });
    expect(await calls.single).toEqual({ ok: { seq: 2, duplicate: false } });
    expect(await calls.complete).toMatchObject({ ok: { status: 'completed', output: { ok: true }, lastSeq: 2 } });
    expect(await calls.fail).toMatchObject({ ok: { status: 'failed', error: { type: 'boom' } } });
    expect(await calls.start).toMatchObject({ ok: { created: true, run: { id: 'coalesce-new', status: 'running' } } });
    expect(await calls.onFinished).toEqual({ code: 'run_finished' });
    expect(await calls.batchOnFinished).toEqual({ code: 'run_finished' });
    expect(await calls.completeAgainOther).toEqual({ code: 'run_finished' });
    expect(await calls.completeAgainSame).toMatchObject({ ok: { status: 'completed', output: { n: 1 } } });
    expect(await calls.missing).toEqual({ code: 'not_found' });
    expect(await calls.keyConflict).toEqual({ code: 'key_conflict' });
    expect(await calls.sameIdOtherIdentity).toEqual({ code: 'id_conflict' });
    expect(await calls.sameIdSameIdentity).toMatchObject({ ok: { created: false, run: { id: existing.id } } });
    expect(await calls.exclusiveTaken).toEqual({ code: 'run_active' });
    expect(await calls.nulInText).toEqual({ code: 'validation_failed' });
    expect(await dupKeyA).toEqual({ ok: { seq: 2, key: 'k1', duplicate: true } });
    // One of the twins is created; the other meets it as any later create would.
    const twins = [await twinA, await twinB];
    expect(twins.filter((t) => 'ok' in t && (t.ok as { created: boolean }).created)).toHaveLength(1);
    expect(twins.filter((t) => 'code' in t && t.code === 'id_conflict')).toHaveLength(1);

    // Nothing of the failed writes was stored; everything acknowledged is, in its place.
    expect((await finished.get()).lastSeq).toBe(2);
    expect((await keyed.get()).lastSeq).toBe(2);
    expect((await ledger.run(active.id).get()).status).toBe('running');
    expect((await eventRows(ledger, valid[0].id)).map((e) => e.type)).toEqual(['run.status', 'progress', 'progress', 'progress']);
    for (const r of [...valid, finished, keyed, held]) expect(await r.verify(), r.id).toMatchObject({ ok: true });
    expect(await ledger.verify('coalesce-new')).toMatchObject({ ok: true });
    // The subject status and the change row came with the completion, in its transaction.
    expect(await ledger.getSubject('batch', 's4')).toMatchObject({ status: 'completed', runId: valid[4].id });
    // (The change rows themselves: the feed serves them once no older transaction in the cluster is open.)
    const { rows: finishedChanges } = await ledger.database.query<{ run_id: string }>(
      `select run_id from changes where namespace = $1 and type = 'run.finished' and run_id = any($2::text[])`,
      [ledger.namespace, [valid[4].id, valid[5].id, finished.id]],
    );
    expect(finishedChanges.map((c) => c.run_id).sort()).toEqual([valid[4].id, valid[5].id, finished.id].sort());
    if (!viaHttp) {
      // The valid events were written by fewer transactions than writes (batched); the
      // invalid writes each rolled a batch back once, so allow for those retries.
      expect(
        await writerTransactions(
          ledger,
          valid.slice(0, 4).map((r) => r.id),
          1,
        ),
      ).toBeLessThan(4);
    }
  });

  it('16 concurrent writers: every acknowledgement is committed when it arrives, and each run keeps commit order', async () => {
    const shared = await ledger.startRun({ job: 'shared-run' });
    const workers = 16;
    const perWorker = 12;
    const acked: { seq: number; w: number; i: number }[] = [];
    await Promise.all(
      Array.from({ length: workers }, async (_, w) => {
        for (let i = 0; i < perWorker; i++) {
          // A lifecycle of its own, and an event on the run everyone shares.
          const run = await ledger.startRun({ job: 'lifecycles', subject: `w${w % 4}` });
          const [shared1] = await shared.events([{ type: 'tick', body: { w, i } }]);
          // Acknowledged means committed: another connection sees it at once.
          const { rows } = await ledger.database.query<{ body: unknown }>(
            `select body from events where namespace = $1 and run_id = $2 and seq = $3`,
            [ledger.namespace, shared.id, shared1.seq],
          );
          expect(rows[0]?.body).toEqual({ w, i });
          acked.push({ seq: shared1.seq, w, i });
          const results = await run.events([{ type: 'a' }, { type: 'b' }]);
          expect(results.map((r) => r.seq)).toEqual([2, 3]);
          await run.complete({ output: { w, i } });
          expect(await run.verify()).toMatchObject({ ok: true, eventsChecked: 4 });
        }
      }),
    );
    const rows = await eventRows(ledger, shared.id);
    expect(rows.map((r) => r.seq)).toEqual(Array.from({ length: workers * perWorker + 1 }, (_, i) => i + 1));
    const bySeq = new Map(rows.map((r) => [r.seq, r.body]));
    for (const a of acked) expect(bySeq.get(a.seq)).toEqual({ w: a.w, i: a.i });
    // Each worker's events on the shared run are in the order it made them (commit order).
    for (let w = 0; w < workers; w++) {
      const mine = acked.filter((a) => a.w === w).sort((a, b) => a.seq - b.seq);
      expect(mine.map((a) => a.i)).toEqual(Array.from({ length: perWorker }, (_, i) => i));
    }
    expect(await shared.verify()).toMatchObject({ ok: true });
    const page = await ledger.listRuns({ job: 'lifecycles', limit: 500 });
    expect(page.runs.filter((r) => r.status === 'completed')).toHaveLength(workers * perWorker);
  });

  it('completions of several runs of one subject in one batch: one verdict, the freshest, and every change row', async () => {
    const runs = await Promise.all(Array.from({ length: 6 }, () => ledger.startRun({ job: 'same-subject', subject: 'one' })));
    const other = await ledger.startRun({ job: 'gate' });
    const g = await gate(ledger, other.id);
    const blocked = other.event('first');
    const finished = runs.map((r, i) => (i % 2 ? r.fail({ error: { type: 'x', message: 'odd' } }) : r.complete({ output: { i } })));
    await g.open();
    await blocked;
    const done = await Promise.all(finished);
    const freshest = [...done]
      .sort((a, b) => (a.finishedAt! === b.finishedAt! ? (a.id < b.id ? -1 : 1) : a.finishedAt! < b.finishedAt! ? -1 : 1))
      .at(-1)!;
    const subject = await ledger.getSubject('same-subject', 'one');
    expect(subject).toMatchObject({ runId: freshest.id, status: freshest.status });
    expect(subject.lastSuccessAt).not.toBeNull();
    expect(subject.lastFailureAt).not.toBeNull();
    // The change rows themselves (the feed serves them once no older transaction is open).
    const { rows: changes } = await ledger.database.query<{ type: string; run_id: string }>(
      `select type, run_id from changes where namespace = $1 and job = 'same-subject' order by id`,
      [ledger.namespace],
    );
    expect(
      changes
        .filter((c) => c.type === 'run.finished')
        .map((c) => c.run_id)
        .sort(),
    ).toEqual(runs.map((r) => r.id).sort());
    for (const r of runs) expect(await r.verify()).toMatchObject({ ok: true });
  });

  it('a write rejected alone is rejected the same in a batch: rejectsWith sees the same error code either way', async () => {
    const run = await ledger.startRun({ job: 'alone-vs-batch' });
    await run.complete();
    const alone = await rejectsWith(run.event('x'), 'run_finished');
    const other = await ledger.startRun({ job: 'gate' });
    const g = await gate(ledger, other.id);
    const blocked = other.event('first');
    const inBatch = rejectsWith(run.event('x'), 'run_finished');
    const neighbour = ledger.startRun({ job: 'alone-vs-batch' });
    await g.open();
    await blocked;
    expect((await inBatch).message).toBe(alone.message);
    expect((await neighbour).created).toBe(true);
  });

  // On PGlite every write shares the one connection anyway; over HTTP the gate is not the server's.
  it.skipIf(!onPostgres || viaHttp)(
    'on PostgreSQL a large event batch takes its own transaction: it does not wait behind a held batch',
    async () => {
      const held = await ledger.startRun({ job: 'gate' });
      const big = await ledger.startRun({ job: 'big' });
      const before = (await big.get()).lastSeq;
      const n = 40;
      expect(n).toBeGreaterThanOrEqual(OWN_TRANSACTION_FROM);
      const g = await gate(ledger, held.id);
      const queued = outcome(held.event('queued behind the gate'));
      try {
        const bigAppend = big.events(Array.from({ length: n }, (_, i) => ({ type: 'row', body: { i } })));
        // While the gate holds the coalescer's transaction, only a write outside it can finish.
        const first = await Promise.race([
          bigAppend.then(() => 'big batch'),
          new Promise((r) => setTimeout(() => r('gate still closed'), 30_000)),
        ]);
        expect(first).toBe('big batch');
        expect((await big.get()).lastSeq).toBe(before + n);
      } finally {
        await g.open();
      }
      expect(await queued).toMatchObject({ ok: { duplicate: false } });
    },
  );
});
