/**
 * verify streams a run's log: every query it makes returns at most one page of rows, so
 * its memory does not grow with the log. Checked with a small page over a log of several
 * pages, counting the rows each query returns; tampering is still found on any page and
 * across page boundaries.
 */
import { describe, expect, it } from 'vitest';

import type { LedgerContext } from '../../src/ledger/context.js';
import { verify } from '../../src/ledger/verify.js';
import type { Database, Sql } from '../../src/store/database.js';
import { useFreshLedger } from '../helpers.js';
import { withoutImmutability } from './support.js';

const ledger = useFreshLedger();

const PAGE = 7;

/** verify() on the ledger's own database, recording how many rows each query returned. */
async function verifyCounting(runId?: string, namespace = ledger.namespace) {
  const sizes: number[] = [];
  const inner = ledger.database;
  const db = new Proxy(inner, {
    get(target, prop) {
      if (prop === 'query')
        return async (sql: Sql, params?: unknown[]) => {
          const result = await target.query(sql, params);
          sizes.push(result.rows.length);
          return result;
        };
      const value = Reflect.get(target, prop, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  }) as Database;
  const ctx: LedgerContext = { db, namespace, now: () => new Date(), changes: ledger.notices };
  const result = await verify(ctx, runId, { pageSize: PAGE });
  return { result, sizes };
}

/** A finished run with `n` events of its own besides the status changes. */
async function longRun(id: string, n: number) {
  const run = await ledger.startRun({ id, job: 'verify-paged' });
  await run.events(Array.from({ length: n }, (_, i) => ({ type: 'log', body: { i } })));
  await run.checkpoint({ name: 'a', metadata: { x: 1 } });
  await run.complete();
  return run;
}

describe('verify reads the log in pages', () => {
  it('a log of many pages is read a page at a time, and every event is checked', async () => {
    const run = await longRun('paged-1', 5 * PAGE + 3);
    const { lastSeq } = await run.get();
    const { result, sizes } = await verifyCounting(run.id);
    expect(result).toMatchObject({ ok: true, runsChecked: 1, eventsChecked: lastSeq, problems: [] });
    expect(Math.max(...sizes)).toBeLessThanOrEqual(PAGE);
    expect(sizes.length).toBeGreaterThan(lastSeq / PAGE);
  });

  it('a tampered event on a later page, and a deleted event on a page boundary, are found', async () => {
    const run = await longRun('paged-2', 4 * PAGE);
    await withoutImmutability(ledger, 'events', async () => {
      await ledger.database.query(`update events set body = '{"forged":true}' where run_id = $1 and seq = $2`, [run.id, 3 * PAGE + 2]);
      await ledger.database.query(`delete from events where run_id = $1 and seq = $2`, [run.id, PAGE + 1]);
    });
    const { result, sizes } = await verifyCounting(run.id);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(PAGE);
    expect(result.problems.map((p) => [p.seq, p.problem])).toEqual([
      [PAGE + 2, 'seq_gap'],
      [PAGE + 2, 'hash_mismatch'],
      [3 * PAGE + 2, 'hash_mismatch'],
    ]);
  });

  it('the whole namespace in pages: runs with no events, long runs and short ones each get their own verdict', async () => {
    const ns = ledger.inNamespace('paged-all');
    await ns.startRun({ id: 'a-short', job: 'j' }).then((r) => r.complete());
    await ns.startRun({ id: 'b-long', job: 'j' }).then(async (r) => {
      await r.events(Array.from({ length: 3 * PAGE }, (_, i) => ({ type: 'log', body: { i } })));
    });
    await ns.startRun({ id: 'c-empty', job: 'j' });
    await ns.startRun({ id: 'd-short', job: 'j' }).then((r) => r.complete());
    // c-empty loses its only event: its head still says seq 1.
    await withoutImmutability(ledger, 'events', () =>
      ledger.database.query(`delete from events where namespace = 'paged-all' and run_id = 'c-empty'`),
    );
    const { result, sizes } = await verifyCounting(undefined, 'paged-all');
    expect(result.runsChecked).toBe(4);
    expect(result.problems.map((p) => [p.runId, p.problem])).toEqual([['c-empty', 'last_seq_mismatch']]);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(PAGE);
  });
});
