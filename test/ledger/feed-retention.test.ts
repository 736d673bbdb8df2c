/**
 * Pruning the change log and finished webhook deliveries (both backends, the library in
 * process; the clock is a manual one, so days pass in a statement):
 *
 * - changes older than changesKeepDays go as a prefix of the feed; newer ones stay;
 * - a cursor before what was pruned is refused `cursor_expired` naming the cursor and the
 *   position to resume from, in changes() and in a webhook replay; from that position, and
 *   from 0 (the start), the kept changes read back exactly;
 * - an enabled webhook that has not read past a change keeps it (and everything after it);
 * - delivered and failed deliveries finished before deliveriesKeepDays go with their attempts;
 *   pending ones and recent ones stay; bad settings name the field and change nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { OpenedLedger } from '../../src/index.js';
import { dropSchemas, freshStore, manualClock, rejectsWith } from '../helpers.js';

const DAY = 86_400;
const clock = manualClock('2026-01-01T00:00:00Z');
let root: OpenedLedger;
let nsCount = 0;
const space = () => root.inNamespace(`feed${++nsCount}`) as OpenedLedger;

beforeAll(async () => {
  root = await freshStore({ clock: clock.now });
});
afterAll(async () => {
  await root?.close();
  await dropSchemas();
});

async function lifecycles(l: OpenedLedger, n: number, job = 'j') {
  for (let i = 0; i < n; i++) {
    const run = await l.startRun({ job, subject: `s${i % 2}` });
    await run.complete({ output: { i } });
  }
}

/**
 * Waits until the feed's frontier (the cluster's xmin) is past every change of this namespace
 * written so far: other transactions on the cluster (other tests) hold it back for a moment, and
 * both readers and the feed pruner see only what is below it.
 */
async function settled(l: OpenedLedger) {
  const { rows } = await l.database.query<{ xid: string | null }>(`select max(xid)::text as xid from changes where namespace = $1`, [
    l.namespace,
  ]);
  if (!rows[0].xid) return;
  for (let i = 0; ; i++) {
    const frontier = (await l.changes({ after: 'now' })).nextAfter.split('-')[0];
    if (BigInt(frontier) > BigInt(rows[0].xid)) return;
    if (i > 1200) throw new Error(`the feed's frontier stayed at ${frontier} for a minute: a transaction on the cluster holds it back`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function allChanges(l: OpenedLedger, after?: string) {
  await settled(l);
  const out: { cursor: string; type: string; runId: string | null }[] = [];
  for (let cursor = after; ;) {
    const page = await l.changes({ after: cursor ?? '0', limit: 7 });
    out.push(...page.changes.map((c) => ({ cursor: c.cursor, type: c.type, runId: c.runId })));
    if (page.changes.length < 7) return out;
    cursor = page.nextAfter;
  }
}

const rows = async (l: OpenedLedger, table: string) =>
  (await l.database.query<{ n: number }>(`select count(*)::int as n from ${table} where namespace = $1`, [l.namespace])).rows[0].n;

describe('change log and delivery pruning', () => {
  it('prunes old changes as a prefix; an older cursor is cursor_expired naming where to resume', async () => {
    const l = space();
    await lifecycles(l, 3);
    const old = await allChanges(l);
    expect(old.length).toBeGreaterThan(3);
    clock.advance(40 * DAY);
    await lifecycles(l, 2);
    const before = await allChanges(l);
    const recent = before.slice(old.length);

    await settled(l);
    const r = await l.pruneFeed({ changesKeepDays: 30, limit: 2 });
    expect(r.changes).toBe(2);
    expect(r.more).toBe(true);
    for (let p = r; p.more;) p = await l.pruneFeed({ changesKeepDays: 30, limit: 2 });
    const last = await l.pruneFeed({ changesKeepDays: 30 });
    expect(last.changes).toBe(0);
    expect(last.horizon).toBe(old.at(-1)!.cursor);
    expect(await rows(l, 'changes')).toBe(recent.length);

    // From the start: what is kept, exactly. From the horizon: the same.
    expect(await allChanges(l)).toEqual(recent);
    expect(await allChanges(l, last.horizon!)).toEqual(recent);
    // A cursor inside the pruned prefix: refused, naming the cursor and the horizon.
    const err = await rejectsWith(l.changes({ after: old[0].cursor }), 'cursor_expired');
    expect(err.message).toContain(old[0].cursor);
    expect(err.message).toContain(last.horizon!);
    expect(err.details).toEqual([{ field: 'after', message: 'pruned', cursor: old[0].cursor, oldest: last.horizon }]);
    // Nothing newer than 30 days went: a second pass prunes nothing.
    expect((await l.pruneFeed({ changesKeepDays: 30 })).changes).toBe(0);
    // Another namespace's feed is untouched by this one's horizon.
    const other = space();
    await lifecycles(other, 1);
    expect((await allChanges(other)).length).toBeGreaterThan(0);
  });

  it('an enabled webhook that has not read past a change keeps it; a replay from before the horizon is refused', async () => {
    const l = space();
    await lifecycles(l, 2);
    // The webhook starts at the frontier: past these changes once nothing older is still open.
    await settled(l);
    const hook = await l.createWebhook({ url: 'http://127.0.0.1:9/hook', types: ['run.finished'] });
    await lifecycles(l, 2);
    const all = await allChanges(l);
    clock.advance(40 * DAY);
    await settled(l);
    await l.pruneFeed({ changesKeepDays: 30 });
    // The two lifecycles after the webhook was created are not read by its fan-out yet: kept.
    const kept = await allChanges(l);
    expect(kept.length).toBeGreaterThan(0);
    expect(kept).toEqual(all.slice(all.length - kept.length));
    expect(kept.length).toBeLessThan(all.length);
    const horizon = (await l.pruneFeed({ changesKeepDays: 30 })).horizon!;
    await rejectsWith(l.replayWebhook(hook.id, { after: all[0].cursor }), 'cursor_expired');
    // Once the webhook is gone (or has read on), the rest may go.
    await l.deleteWebhook(hook.id);
    await settled(l);
    await l.pruneFeed({ changesKeepDays: 30 });
    expect(await rows(l, 'changes')).toBe(0);
    expect((await l.pruneFeed({ changesKeepDays: 30 })).horizon).not.toBe(horizon);
  });

  it('prunes delivered and failed deliveries past deliveriesKeepDays with their attempts; pending and recent stay', async () => {
    const l = space();
    const hook = await l.createWebhook({ url: 'http://127.0.0.1:9/hook', types: ['run.finished'] });
    const at = (daysAgo: number) => new Date(clock.now().getTime() - daysAgo * DAY * 1000).toISOString();
    // Deliveries as the dispatcher leaves them (state, finished_at, one attempt each).
    const rowsOf: [number, string, number | null][] = [
      [1, 'delivered', 40],
      [2, 'failed', 35],
      [3, 'delivered', 5],
      [4, 'pending', null],
    ];
    for (const [id, state, ago] of rowsOf) {
      await l.database.query(
        `insert into webhook_deliveries (namespace, webhook_id, change_xid, change_id, state, attempts, next_at, created_at, finished_at)
         values ($1, $2, '1'::xid8, $3, $4, 1, $5, $5, $6)`,
        [l.namespace, hook.id, id, state, at(ago ?? 50), ago === null ? null : at(ago)],
      );
      await l.database.query(
        `insert into webhook_attempts (namespace, webhook_id, change_id, attempt, at, duration_ms, status_code, outcome)
         values ($1, $2, $3, 1, $4, 5, 500, 'retry')`,
        [l.namespace, hook.id, id, at(ago ?? 50)],
      );
    }
    const r = await l.pruneFeed({ deliveriesKeepDays: 30 });
    expect(r.deliveries).toBe(2);
    const left = await l.database.query<{ change_id: number }>(
      `select change_id from webhook_deliveries where namespace = $1 order by change_id`,
      [l.namespace],
    );
    expect(left.rows.map((x) => Number(x.change_id))).toEqual([3, 4]);
    const attempts = await l.database.query<{ change_id: number }>(
      `select change_id from webhook_attempts where namespace = $1 order by change_id`,
      [l.namespace],
    );
    expect(attempts.rows.map((x) => Number(x.change_id))).toEqual([3, 4]);
  });

  it('bad settings name the field and the value, and prune nothing', async () => {
    const l = space();
    await lifecycles(l, 1);
    clock.advance(40 * DAY);
    const n = await rows(l, 'changes');
    for (const [opts, field] of [
      [{ changesKeepDays: -1 }, 'changesKeepDays'],
      [{ deliveriesKeepDays: 1.5 }, 'deliveriesKeepDays'],
      [{ limit: 0 }, 'limit'],
    ] as const) {
      const err = await rejectsWith(l.pruneFeed(opts), 'validation_failed');
      expect(err.message).toContain(field);
      expect(err.message).toContain(String(Object.values(opts)[0]));
    }
    expect(await rows(l, 'changes')).toBe(n);
  });
});
