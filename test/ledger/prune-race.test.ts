/**
 * The pruner racing writers, on PostgreSQL with real concurrency (a pool of 20, many rounds):
 *
 * - a create with the id of a run being pruned at that moment, and creates of ids already
 *   pruned (batched by group commit with fresh ones): a tombstoned id is never created again;
 * - a restore of a run's export while that run is being pruned: the run ends either restored
 *   (no tombstone) or pruned (a tombstone), never both, and never half there;
 * - a subject's new current run arriving while the pruner chooses among its older runs: the
 *   current run and the newest keepLastPerSubject are never pruned.
 *
 * After every round: no id is both a run and a tombstone, every run holds exactly its events
 * 1…last_seq, a tombstone leaves no event or checkpoint behind.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { ExportedRun, OpenedLedger } from '../../src/index.js';
import { dropSchemas, freshStore, manualClock, onPostgres } from '../helpers.js';

const ROUNDS = 30;
const DAY = 86_400;
const clock = manualClock('2026-01-01T00:00:00Z');
let l: OpenedLedger;

beforeAll(async () => {
  if (onPostgres) l = await freshStore({ poolSize: 20, clock: clock.now });
});
afterAll(async () => {
  await l?.close();
  await dropSchemas();
});

const settle = <T>(p: Promise<T>) =>
  p.then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error: error as { code?: string } }),
  );

/** The invariants that hold whatever raced. */
async function checkWhole(ledger: OpenedLedger) {
  const q = async (sql: string) => (await ledger.database.query<Record<string, unknown>>(sql, [ledger.namespace])).rows;
  expect(await q(`select r.id from runs r join tombstones t on t.namespace = r.namespace and t.id = r.id where r.namespace = $1`)).toEqual(
    [],
  );
  expect(
    await q(`select r.id, r.last_seq, count(e.seq)::int as n, coalesce(max(e.seq), 0) as top from runs r
               left join events e on e.namespace = r.namespace and e.run_id = r.id
              where r.namespace = $1 group by r.id, r.last_seq having count(e.seq) <> r.last_seq or coalesce(max(e.seq), 0) <> r.last_seq`),
  ).toEqual([]);
  expect(
    await q(`select t.id from tombstones t where t.namespace = $1 and (
               exists (select 1 from events e where e.namespace = t.namespace and e.run_id = t.id) or
               exists (select 1 from checkpoints c where c.namespace = t.namespace and c.run_id = t.id))`),
  ).toEqual([]);
}

async function oldFinished(ledger: OpenedLedger, id: string, subject?: string) {
  const run = await ledger.startRun({ id, job: 'race', ...(subject ? { subject } : {}), params: { p: 1 } });
  await run.event('step', { id });
  await run.checkpoint({ name: 'cp', metadata: { id } });
  await run.complete({ output: { ok: true } });
  return run.id;
}

describe.skipIf(!onPostgres)('the pruner racing writers (PostgreSQL)', () => {
  it('a run created with an id being pruned, or already pruned, is never created again', async () => {
    const ns = l.inNamespace('race-create') as OpenedLedger;
    await ns.setRetention([{ keepDays: 1 }]);
    const pruned: string[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const ids = await Promise.all(Array.from({ length: 8 }, (_, i) => oldFinished(ns, `c-${round}-${i}`)));
      clock.advance(2 * DAY);
      const creates = [...ids, ...pruned.slice(-8)].map((id) => settle(ns.startRun({ id, job: 'race', params: { p: 1 } })));
      // Fresh ids in the same moment, so that group commit batches the creates above with them.
      const fresh = Array.from({ length: 8 }, (_, i) => ns.startRun({ id: `f-${round}-${i}`, job: 'fresh' }));
      const [prunedNow, answers] = await Promise.all([ns.prune({ ids }), Promise.all(creates), Promise.all(fresh)]);
      for (const a of answers) {
        // The run as it was (not created again), or `pruned`.
        if (a.ok) expect(a.value.created).toBe(false);
        else expect(a.error.code).toBe('pruned');
      }
      pruned.push(...prunedNow.runs.map((r) => r.id));
      await checkWhole(ns);
      for (const f of await Promise.all(fresh)) await f.complete();
    }
    expect(pruned.length).toBeGreaterThan(0);
  });

  it('a restore of a run being pruned ends restored or pruned, never both', async () => {
    const ns = l.inNamespace('race-restore') as OpenedLedger;
    await ns.setRetention([{ keepDays: 1 }]);
    const outcomes = new Set<string>();
    for (let round = 0; round < ROUNDS; round++) {
      const ids = await Promise.all(Array.from({ length: 6 }, (_, i) => oldFinished(ns, `r-${round}-${i}`)));
      clock.advance(2 * DAY);
      const lines = (await ns.exportRuns({ prunable: true, limit: 100 })).runs.filter((r) => ids.includes(r.run.id));
      expect(lines.length).toBe(ids.length);
      // Twice each: one restore may run before the prune, the other after it.
      const [, first, second] = await Promise.all([
        ns.prune({ ids }),
        settle(ns.restoreRuns(lines as ExportedRun[])),
        settle(ns.restoreRuns(lines as ExportedRun[])),
      ]);
      for (const r of [first, second]) {
        if (!r.ok) throw r.error;
        for (const item of r.value.results) outcomes.add(item.status);
        expect(r.value.invalid).toBe(0);
      }
      await checkWhole(ns);
      // Whatever happened, the run is there whole or is a tombstone with the same chain head:
      // restoring once more, alone, brings every one back (over its tombstone) or finds it there.
      for (const line of lines) {
        const run = await settle(ns.getRun(line.run.id));
        if (run.ok) expect(run.value.id).toBe(line.run.id);
        else expect(run.error.code).toBe('pruned');
      }
      const again = await ns.restoreRuns(lines as ExportedRun[]);
      expect(again.invalid).toBe(0);
      for (const line of lines) expect((await ns.getRun(line.run.id)).lastSeq).toBe(line.run.lastSeq);
      await checkWhole(ns);
      // Pruned again, so that the next round's export holds only its own runs.
      expect((await ns.prune({ ids })).pruned).toBe(ids.length);
    }
    expect(outcomes.has('duplicate') || outcomes.has('restored')).toBe(true);
  });

  it('a subject’s new current run arriving while its older runs are pruned: the current and newest keepLastPerSubject stay', async () => {
    const ns = l.inNamespace('race-subject') as OpenedLedger;
    await ns.setRetention([{ keepDays: 1, keepLastPerSubject: 2 }]);
    for (let round = 0; round < ROUNDS; round++) {
      const subjects = Array.from({ length: 4 }, (_, i) => `s-${round}-${i}`);
      for (const s of subjects) for (let k = 0; k < 3; k++) await oldFinished(ns, `${s}-old-${k}`, s);
      clock.advance(2 * DAY);
      const lifecycles = subjects.map(async (s) => {
        const run = await ns.startRun({ job: 'race', subject: s, params: { p: 1 } });
        await run.complete({ output: { ok: true } });
      });
      await Promise.all([ns.prune(), ns.prune(), ...lifecycles]);
      await checkWhole(ns);
      const { rows: current } = await ns.database.query<{ subject: string; present: boolean }>(
        `select s.subject, exists (select 1 from runs r where r.namespace = s.namespace and r.id = s.run_id) as present
           from subject_status s where s.namespace = $1 and s.job = 'race'`,
        [ns.namespace],
      );
      expect(current.filter((c) => !c.present)).toEqual([]);
      // Every pruned run of a subject has at least 2 newer runs of that subject still stored.
      const { rows: bad } = await ns.database.query(
        `select t.id from tombstones t where t.namespace = $1 and t.subject is not null and (
           select count(*) from runs r where r.namespace = t.namespace and r.job = t.job and r.subject = t.subject
              and (r.created_at, r.id) > (t.created_at, t.id)) < 2`,
        [ns.namespace],
      );
      expect(bad).toEqual([]);
    }
  });
});
