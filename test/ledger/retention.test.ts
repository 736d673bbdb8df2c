/**
 * Retention, tombstones, export and restore. The ledger's clock is a manual one, so days pass
 * in a statement. Each test works in its own namespace (rules are per namespace).
 *
 * - rules: replace, read back, the job's rule wins over the default whole; bad input names the
 *   field and the value and stores nothing;
 * - the pruner takes finished runs past keepDays oldest first and never a live run, a subject's
 *   current run or one of its newest keepLastPerSubject; a dry run writes nothing;
 * - a pruned run answers `pruned` (410) with its final chain head, its id cannot be created
 *   again, lists and subjects do not show it; raw SQL still cannot delete events;
 * - export → prune → restore gives back the same ids, seqs, hashes and checkpoints, verify
 *   clean; a tombstone is replaced only by the run whose chain ends in its hash.
 */
import { describe, expect, it } from 'vitest';

import type { ExportedRun, Ledger, OpenedLedger } from '../../src/index.js';
import { manualClock, rejectsWith, useFreshLedger } from '../helpers.js';
import { eventRows, rejection } from './support.js';

const clock = manualClock('2026-01-01T00:00:00Z');
const root = useFreshLedger({ clock: clock.now });
const DAY = 86_400;
let nsCount = 0;
/** A namespace of its own for one test, with the store's handle for SQL looks. */
const space = () => root.inNamespace(`ret${++nsCount}`) as OpenedLedger;

async function finishedRun(l: Ledger, job: string, subject: string | undefined, opts: { events?: number; checkpoint?: boolean } = {}) {
  const run = await l.startRun({ job, ...(subject ? { subject } : {}), params: { p: 1 }, tags: { t: 'x' } });
  if (opts.events) await run.events(Array.from({ length: opts.events }, (_, i) => ({ type: 'step', key: `k${i}`, body: { i } })));
  if (opts.checkpoint) await run.checkpoint({ name: 'cp', kind: 'k', metadata: { a: 1 }, data: { big: [1, 2, 3] } });
  clock.advance(1);
  await run.complete({ output: { ok: true }, statistics: { n: 1 } });
  clock.advance(1);
  return run.id;
}

async function exportAll(l: Ledger, query: Parameters<Ledger['exportRuns']>[0] = {}): Promise<ExportedRun[]> {
  const out: ExportedRun[] = [];
  let after: string | undefined;
  for (;;) {
    const page = await l.exportRuns({ ...query, limit: 3, ...(after ? { after } : {}) });
    out.push(...page.runs);
    if (!page.nextAfter) return out;
    after = page.nextAfter;
  }
}

async function pruneAll(l: Ledger) {
  const ids: string[] = [];
  for (;;) {
    const r = await l.prune({ limit: 2 });
    ids.push(...r.runs.map((x) => x.id));
    if (!r.more) return ids;
  }
}

const count = async (l: OpenedLedger, table: string) =>
  (await l.database.query<{ n: number }>(`select count(*)::int as n from ${table} where namespace = $1`, [l.namespace])).rows[0].n;

describe('retention rules', () => {
  it('replaces the rule set and reads it back; the job’s rule wins over the default', async () => {
    const l = space();
    expect((await l.getRetention()).rules).toEqual([]);
    const set = await l.setRetention([{ keepDays: 30 }, { job: 'audit', keepDays: 400, keepLastPerSubject: 5 }]);
    expect(set.rules.map(({ updatedAt: _, ...r }) => r)).toEqual([
      { keepDays: 30, keepLastPerSubject: 0 },
      { job: 'audit', keepDays: 400, keepLastPerSubject: 5 },
    ]);
    expect((await l.getRetention()).rules).toEqual(set.rules);
    await l.setRetention([{ job: 'audit', keepDays: 1 }]);
    expect((await l.getRetention()).rules.map((r) => [r.job, r.keepDays])).toEqual([['audit', 1]]);
  });

  it('refuses bad rules naming the field and the value, and stores nothing of them', async () => {
    const l = space();
    await l.setRetention([{ keepDays: 10 }]);
    const before = await l.getRetention();
    const cases: [unknown, string, string][] = [
      [[{ keepDays: -1 }], 'rules.0.keepDays', '-1'],
      [[{ keepDays: 1.5 }], 'rules.0.keepDays', '1.5'],
      [[{ keepDays: 36501 }], 'rules.0.keepDays', '36501'],
      [[{ job: 'a' }], 'rules.0.keepDays', 'required'],
      [[{ keepDays: 1, keepLastPerSubject: -2 }], 'rules.0.keepLastPerSubject', '-2'],
      [[{ keepDays: 1, keepDay: 2 }], 'rules.0', 'keepDay'],
      [[{ keepDays: 1 }, { keepDays: 2 }], 'rules.1.job', 'namespace default'],
      [
        [
          { job: 'a', keepDays: 1 },
          { job: 'a', keepDays: 2 },
        ],
        'rules.1.job',
        '"a"',
      ],
      [[{ job: '', keepDays: 1 }], 'rules.0.job', '1–200'],
      ['30d', 'rules', 'array'],
    ];
    for (const [rules, field, text] of cases) {
      const err = await rejectsWith(l.setRetention(rules as never), 'validation_failed');
      expect(JSON.stringify(err.details), JSON.stringify(rules)).toContain(field);
      expect(err.message, JSON.stringify(rules)).toContain(text);
    }
    expect(await l.getRetention()).toEqual(before);
  });
});

describe('the pruner', () => {
  it('prunes finished runs past keepDays, oldest first, never live, current or the newest keepLastPerSubject', async () => {
    const l = space();
    // Job "a" (default rule: 30 days): subject s1 has four finished runs, s2 one, and a run without subject.
    const a1 = await finishedRun(l, 'a', 's1');
    const a2 = await finishedRun(l, 'a', 's1');
    const a3 = await finishedRun(l, 'a', 's1');
    const a4 = await finishedRun(l, 'a', 's1'); // current of s1
    const b1 = await finishedRun(l, 'a', 's2'); // current of s2
    const n1 = await finishedRun(l, 'a', undefined);
    const live = await l.startRun({ job: 'a', subject: 's1' }); // live, newest of s1
    // Job "keep" has its own rule (400 days, whole: its keepLastPerSubject is 0).
    const k1 = await finishedRun(l, 'keep', 's1');
    // Job "last": keep the 2 newest per subject.
    const l1 = await finishedRun(l, 'last', 's1');
    const l2 = await finishedRun(l, 'last', 's1');
    const l3 = await finishedRun(l, 'last', 's1');
    const l4 = await finishedRun(l, 'last', 's1');
    await l.setRetention([{ keepDays: 30 }, { job: 'keep', keepDays: 400 }, { job: 'last', keepDays: 30, keepLastPerSubject: 2 }]);

    // Nothing is old enough yet.
    expect((await l.prune()).pruned).toBe(0);
    clock.advance(31 * DAY);
    const dry = await l.prune({ dryRun: true });
    const expected = [a1, a2, a3, n1, l1, l2];
    expect(dry.eligible).toBe(expected.length);
    expect(dry.runs.map((r) => r.id).sort()).toEqual([...expected].sort());

    // One at a time: oldest created first.
    const first = await l.prune({ limit: 1 });
    expect(first.runs.map((r) => r.id)).toEqual([a1]);
    expect(first.more).toBe(true);
    const rest = await pruneAll(l);
    expect(new Set([a1, ...rest])).toEqual(new Set(expected));
    for (const id of [a4, b1, live.id, k1, l3, l4]) expect((await l.getRun(id)).id).toBe(id);
    expect((await l.prune()).pruned).toBe(0);

    // The live run finishes: it becomes s1's current; a4 is then old and no longer current.
    await live.complete();
    clock.advance(31 * DAY);
    const again = await pruneAll(l);
    expect(again).toEqual([a4]);
    await l.getRun(live.id);
  });

  it('a dry run writes nothing', async () => {
    const l = space();
    await finishedRun(l, 'j', 's', { events: 3, checkpoint: true });
    await finishedRun(l, 'j', 's');
    await l.setRetention([{ keepDays: 1 }]);
    clock.advance(2 * DAY);
    const snapshot = async () =>
      Promise.all(['runs', 'events', 'checkpoints', 'tombstones', 'subject_status', 'changes'].map((t) => count(l, t)));
    const before = await snapshot();
    const dry = await l.prune({ dryRun: true });
    expect(dry.eligible).toBe(1);
    expect(dry.pruned).toBe(0);
    expect(await snapshot()).toEqual(before);
  });

  it('prunes only the given ids, and only those the rules allow', async () => {
    const l = space();
    const x = await finishedRun(l, 'j', 's');
    const y = await finishedRun(l, 'j', 's');
    const z = await finishedRun(l, 'j', 's'); // current
    await l.setRetention([{ keepDays: 1 }]);
    clock.advance(2 * DAY);
    const r = await l.prune({ ids: [y, z, 'no-such-run'] });
    expect(r.runs.map((x) => x.id)).toEqual([y]);
    // More ids than the default chunk (500): every one is considered.
    const finishedAt = new Date(clock.now().getTime() - 10 * DAY * 1000).toISOString();
    const many = Array.from({ length: 600 }, (_, i) => ({ sourceId: `m${i}`, id: `many-${i}`, job: 'many', finishedAt }));
    expect((await l.importRuns('bulk', many)).inserted).toBe(600);
    const pruned = await l.prune({ ids: many.map((m) => m.id) });
    expect(pruned.pruned).toBe(600);
    await l.getRun(x);
    await l.getRun(z);
  });

  it('refuses bad prune options naming the field', async () => {
    const l = space();
    for (const [opts, field] of [
      [{ limit: 0 }, 'limit'],
      [{ limit: 5001 }, 'limit'],
      [{ ids: ['bad id'] }, 'ids.0'],
      [{ dryrun: true }, 'dryrun'],
    ] as const) {
      const err = await rejectsWith(l.prune(opts as never), 'validation_failed');
      expect(err.message).toContain(field);
    }
  });
});

describe('tombstones', () => {
  it('a pruned run is 410 pruned with its chain head; its id cannot be used again; lists and subjects do not show it', async () => {
    const l = space();
    const old = await finishedRun(l, 'j', 's', { events: 2, checkpoint: true });
    const head = await l.getRun(old);
    const lastHash = (await eventRows(l, old, l.namespace)).at(-1)!.hash;
    await finishedRun(l, 'j', 's');
    await l.setRetention([{ keepDays: 7 }]);
    clock.advance(8 * DAY);
    expect((await pruneAll(l)).includes(old)).toBe(true);

    const err = (await rejectsWith(l.getRun(old), 'pruned')) as Error & { tombstone?: Record<string, unknown> };
    expect(err.tombstone).toMatchObject({ id: old, job: 'j', subject: 's', lastSeq: head.lastSeq, lastHash, finishedAt: head.finishedAt });
    expect(err.message).toContain(lastHash);
    await rejectsWith(l.run(old).get(), 'pruned');
    await rejectsWith(l.run(old).event('late'), 'pruned');
    await rejectsWith(l.run(old).update({ tags: { a: 'b' } }), 'pruned');
    // Idempotency never expires: the same create is refused, and nothing is stored.
    await rejectsWith(l.startRun({ id: old, job: 'j', subject: 's', params: { p: 1 } }), 'pruned');
    expect((await l.database.query(`select 1 from runs where namespace = $1 and id = $2`, [l.namespace, old])).rows).toEqual([]);
    expect((await l.listRuns({ job: 'j' })).runs.map((r) => r.id)).not.toContain(old);
    expect((await l.getSubject('j', 's')).recentRuns.map((r) => r.id)).not.toContain(old);
    expect(await count(l, 'events')).toBe((await l.listRuns()).runs.reduce((a, r) => a + r.lastSeq, 0));
  });

  it('only the pruner deletes events and checkpoints: raw SQL is refused, even with the setting', async () => {
    const l = space();
    const id = await finishedRun(l, 'j', 's', { checkpoint: true });
    const db = l.database;
    for (const sql of [
      `delete from events where namespace = '${l.namespace}'`,
      `delete from checkpoints where namespace = '${l.namespace}'`,
      `update events set body = '{}' where namespace = '${l.namespace}'`,
    ]) {
      expect(String(await rejection(db.query(sql)))).toContain('immutable');
      // A session-wide or guessed setting does not pass: it must be this transaction's own id.
      const err = await rejection(
        db.withTransaction(async (tx) => {
          await tx.query(`set local runledger.pruning = 'on'`);
          await tx.query(sql);
        }),
      );
      expect(String(err)).toContain('immutable');
    }
    // Even the pruner's own setting passes only for a run with a tombstone.
    const err = await rejection(
      db.withTransaction(async (tx) => {
        await tx.query(`select set_config('runledger.pruning', pg_current_xact_id()::text, true)`);
        await tx.query(`delete from events where namespace = $1 and run_id = $2`, [l.namespace, id]);
      }),
    );
    expect(String(err)).toContain('immutable');
    expect((await l.run(id).listEvents()).events.length).toBeGreaterThan(0);
  });
});

describe('export and restore', () => {
  it('export → prune → restore gives back the same runs, seqs, hashes and checkpoints; verify is clean', async () => {
    const l = space();
    const ids = [
      await finishedRun(l, 'j', 's', { events: 5, checkpoint: true }),
      await finishedRun(l, 'j', 's', { events: 1 }),
      await finishedRun(l, 'j', undefined, { checkpoint: true }),
      await finishedRun(l, 'j', 's2', { events: 2 }),
    ];
    await finishedRun(l, 'j', 's'); // s's current: stays
    await finishedRun(l, 'j', 's2'); // s2's current: stays
    const live = await l.startRun({ job: 'j', subject: 's' });
    await l.setRetention([{ keepDays: 1 }]);
    clock.advance(2 * DAY);

    const snapshotOf = async (id: string) => ({
      events: await eventRows(l, id, l.namespace),
      checkpoints: (
        await l.database.query(`select * from checkpoints where namespace = $1 and run_id = $2 order by name`, [l.namespace, id])
      ).rows,
      run: (await l.database.query(`select * from runs where namespace = $1 and id = $2`, [l.namespace, id])).rows[0],
    });
    const before = await Promise.all(ids.map(snapshotOf));
    const archive = await exportAll(l, { prunable: true });
    expect(archive.map((r) => r.run.id).sort()).toEqual([...ids].sort());
    const whole = await exportAll(l);
    expect(whole.length).toBe(7);
    expect(whole.find((r) => r.run.id === live.id)!.run.status).toBe('running');

    expect((await pruneAll(l)).sort()).toEqual([...ids].sort());
    for (const id of ids) await rejectsWith(l.getRun(id), 'pruned');
    // A line through JSON, as a file would carry it.
    const lines = archive.map((r) => JSON.parse(JSON.stringify(r)));
    const restored = await l.restoreRuns(lines);
    expect(restored).toMatchObject({ restored: ids.length, duplicates: 0, invalid: 0 });
    expect(await Promise.all(ids.map(snapshotOf))).toEqual(before);
    expect(await count(l, 'tombstones')).toBe(0);
    const verified = await l.verify();
    expect(verified.ok).toBe(true);
    // Again: duplicates, nothing written twice.
    expect(await l.restoreRuns(lines)).toMatchObject({ restored: 0, duplicates: ids.length });
    // The subjects' verdicts did not move back to the restored (older) runs.
    expect((await l.getSubject('j', 's')).runId).not.toBe(ids[0]);
  });

  it('the streamed export (one COPY in parts on PostgreSQL) is the paged export line for line, and what the API reads', async () => {
    const l = space();
    const stream = (l as { exportStream?: OpenedLedger['exportStream'] }).exportStream;
    if (typeof stream !== 'function') return; // over HTTP: the server pages
    const odd = 'q"uo\\te\\\\ \\n nl\n tab\t ctl\u0001 é 𝄞 \u2028';
    const ids = [await finishedRun(l, odd, odd, { events: 3, checkpoint: true })];
    const big = await l.startRun({ job: 'big', notes: odd, params: { [odd]: odd }, tags: { t: odd } });
    // A line of over 1 MB: it arrives in many chunks and is joined once whole.
    await big.events(
      Array.from({ length: 6 }, (_, i) => ({ type: odd, key: `${odd}${i}`, level: 'info', body: { s: 'x'.repeat(200_000), odd } })),
    );
    await big.fail({ error: { message: odd } });
    ids.push(big.id);
    for (let i = 0; i < 5; i++) ids.push(await finishedRun(l, 'j', `s${i}`, { events: i, checkpoint: i % 2 === 0 }));
    ids.push((await l.startRun({ job: 'live', subject: odd })).id);

    const paged = (await exportAll(l)).map((r) => JSON.stringify(r));
    for (const partEvents of [1, 7, 1_000_000]) {
      const count = { runs: 0, events: 0 };
      let text = '';
      for await (const chunk of stream.call(l, {}, count, { partEvents })) text += chunk.toString('utf8');
      const lines = text.split('\n');
      expect(lines.pop()).toBe('');
      expect(lines.map((x) => JSON.stringify(JSON.parse(x)))).toEqual(paged);
      expect(count.runs).toBe(ids.length);
      expect(count.events).toBe(lines.reduce((a, x) => a + (JSON.parse(x) as ExportedRun).events.length, 0));
    }
    // What the export says is what the API reads.
    for (const line of paged) {
      const r = JSON.parse(line) as ExportedRun;
      const run = await l.getRun(r.run.id);
      for (const k of ['job', 'subject', 'notes', 'params', 'tags', 'error', 'status', 'createdAt', 'finishedAt'] as const)
        expect(r.run[k]).toEqual(run[k]);
      const events = (await l.run(r.run.id).listEvents({ limit: 1000 })).events;
      expect(r.events.map((e) => [e.seq, e.type, e.key, e.level, e.at, e.body, e.hash])).toEqual(
        events.map((e) => [e.seq, e.type, e.key, e.level, e.at, e.body, e.hash]),
      );
    }
    // Filters apply as in pages.
    const count = { runs: 0, events: 0 };
    let text = '';
    for await (const chunk of stream.call(l, { job: 'j' }, count, { partEvents: 2 })) text += chunk.toString('utf8');
    expect(
      text
        .trimEnd()
        .split('\n')
        .map((x) => (JSON.parse(x) as ExportedRun).run.id),
    ).toEqual((await exportAll(l, { job: 'j' })).map((r) => r.run.id));
  });

  it('a tombstone is replaced only by the run whose chain ends in its hash', async () => {
    const l = space();
    const id = await finishedRun(l, 'j', 's', { events: 2 });
    await finishedRun(l, 'j', 's');
    const [exported] = (await exportAll(l)).filter((r) => r.run.id === id);
    await l.setRetention([{ keepDays: 1 }]);
    clock.advance(2 * DAY);
    await pruneAll(l);
    // Another run with the same id (a self-consistent chain that is not the pruned one).
    const other = JSON.parse(JSON.stringify(exported)) as ExportedRun;
    other.events = other.events.slice(0, 1);
    other.run.lastSeq = 1;
    other.run.lastHash = other.events[0].hash;
    const r = await l.restoreRuns([other]);
    expect(r.results[0]).toMatchObject({ status: 'invalid', error: { code: 'pruned' } });
    await rejectsWith(l.getRun(id), 'pruned');
    // An altered event is refused whatever the tombstone says.
    const altered = JSON.parse(JSON.stringify(exported)) as ExportedRun;
    altered.events[1].body = { i: 99 };
    const r2 = await l.restoreRuns([altered]);
    expect(r2.results[0]).toMatchObject({ status: 'invalid', error: { code: 'validation_failed' } });
    expect(r2.results[0].error!.message).toContain('events.1.hash');
    // The real one.
    expect((await l.restoreRuns([exported])).restored).toBe(1);
    expect((await l.verify(id)).ok).toBe(true);
  });

  it('refuses bad export queries and restore input naming the field, storing nothing', async () => {
    const l = space();
    for (const [q, field] of [
      [{ limit: 0 }, 'limit'],
      [{ before: '2026-02-30' }, 'before'],
      [{ after: 'nope' }, 'after'],
      [{ jobb: 'x' }, 'jobb'],
    ] as const) {
      const err = await rejectsWith(l.exportRuns(q as never), 'validation_failed');
      expect(err.message).toContain(field);
    }
    const r = await l.restoreRuns([{ run: { id: 'x' } }, 'junk']);
    expect(r.invalid).toBe(2);
    expect(r.results[0].error!.message).toContain('run.job');
    expect(await count(l, 'runs')).toBe(0);
  });
});
