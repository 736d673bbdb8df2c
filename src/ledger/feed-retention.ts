/**
 * Pruning of the change log and of finished webhook deliveries (docs/retention.md, "The change
 * log and deliveries"). Both grow with every write; nothing else ever deletes them.
 *
 * Changes go only as a prefix of the feed's (xid, id) order: every change up to a position H,
 * where each is older than `changesKeepDays`, below the reading transaction's xmin (so no
 * change can still commit below H), read past by every enabled webhook's fan-out, and without
 * a pending delivery. H is kept per namespace (change_horizons): a read or a replay from a
 * cursor before H is refused `cursor_expired` rather than silently skipping the gap.
 * Deliveries go once delivered or failed more than `deliveriesKeepDays` ago, with their attempts.
 */
import { type FeedPosition, formatCursor, START } from '../core/changes.js';
import { CursorExpiredError, ValidationError } from '../core/errors.js';
import type { Queryable } from '../store/database.js';
import type { LedgerContext } from './context.js';

/** Defaults: changes and finished deliveries are kept 30 days. */
export const DEFAULT_CHANGES_KEEP_DAYS = 30;
export const DEFAULT_DELIVERIES_KEEP_DAYS = 30;
const CHUNK = 5000;
const FEED_PRUNE_LOCK = `hashtext(current_schema() || '.runledger.prune-feed')`;

export interface FeedPruneOptions {
  /** Changes older than this many days may go (0–36500; default 30). */
  changesKeepDays?: number;
  /** Delivered or failed deliveries finished more than this many days ago go (0–36500; default 30). */
  deliveriesKeepDays?: number;
  /** Rows per chunk (one transaction each), 1–50 000; default 5000. */
  limit?: number;
}

export interface FeedPruneResult {
  changes: number;
  deliveries: number;
  /** The namespace's horizon after this chunk: the last change pruned, as a cursor (null: none ever). */
  horizon: string | null;
  more: boolean;
}

function days(name: string, v: number | undefined, fallback: number): number {
  if (v === undefined) return fallback;
  if (!Number.isInteger(v) || v < 0 || v > 36500)
    throw new ValidationError(`${name} must be a whole number of days from 0 to 36500; got ${JSON.stringify(v)}`, [
      { field: name, message: 'not 0–36500' },
    ]);
  return v;
}

/** One chunk of feed pruning in the context's namespace; call until `more` is false. */
export async function pruneFeed(ctx: LedgerContext, opts: FeedPruneOptions = {}): Promise<FeedPruneResult> {
  const changesDays = days('changesKeepDays', opts.changesKeepDays, DEFAULT_CHANGES_KEEP_DAYS);
  const deliveriesDays = days('deliveriesKeepDays', opts.deliveriesKeepDays, DEFAULT_DELIVERIES_KEEP_DAYS);
  const limit = opts.limit ?? CHUNK;
  if (!Number.isInteger(limit) || limit < 1 || limit > 50_000)
    throw new ValidationError(`limit must be a whole number from 1 to 50000; got ${JSON.stringify(limit)}`, [
      { field: 'limit', message: 'not 1–50000' },
    ]);
  const now = ctx.now();
  const cutoff = (d: number) => new Date(now.getTime() - d * 86_400_000).toISOString();
  return ctx.db.withTransaction(async (tx) => {
    const lock = await tx.query<{ ok: boolean }>(`select pg_try_advisory_xact_lock(${FEED_PRUNE_LOCK}) as ok`);
    if (!lock.rows[0].ok) return { changes: 0, deliveries: 0, horizon: await horizonOf(tx, ctx.namespace), more: true };
    // The longest prefix of the first `limit` changes in which every one may go.
    const { rows } = await tx.query<{ xid: string; id: string }>(
      `with s as (select pg_snapshot_xmin(pg_current_snapshot()) as xmin),
            w as (select after_xid, after_id from webhooks where namespace = $1 and disabled_at is null
                   order by after_xid, after_id limit 1),
            p as (select change_xid, change_id from webhook_deliveries where namespace = $1 and state = 'pending'
                   order by change_xid, change_id limit 1),
            c as (select c.xid, c.id,
                         c.at < $2::timestamptz and c.xid < s.xmin
                         and (w.after_xid is null or (c.xid, c.id) <= (w.after_xid, w.after_id))
                         and (p.change_xid is null or (c.xid, c.id) < (p.change_xid, p.change_id)) as ok
                    from changes c cross join s left join w on true left join p on true
                   where c.namespace = $1 order by c.xid, c.id limit $3),
            k as (select xid, id, bool_and(ok) over (order by xid, id) as all_ok from c)
       select xid::text, id::text from k where all_ok order by xid desc, id desc limit 1`,
      [ctx.namespace, cutoff(changesDays), limit],
    );
    let changes = 0;
    if (rows[0]) {
      const del = await tx.query(`delete from changes where namespace = $1 and (xid, id) <= ($2::xid8, $3::bigint)`, [
        ctx.namespace,
        rows[0].xid,
        rows[0].id,
      ]);
      changes = del.rowCount;
      await tx.query(
        `insert into change_horizons (namespace, xid, id, pruned_at) values ($1, $2::xid8, $3::bigint, $4)
         on conflict (namespace) do update set xid = excluded.xid, id = excluded.id, pruned_at = excluded.pruned_at
          where (excluded.xid, excluded.id) > (change_horizons.xid, change_horizons.id)`,
        [ctx.namespace, rows[0].xid, rows[0].id, now.toISOString()],
      );
    }
    const { rows: dels } = await tx.query<{ n: number }>(
      `with d as (
         delete from webhook_deliveries where ctid in (
           select ctid from webhook_deliveries
            where namespace = $1 and state in ('delivered', 'failed') and finished_at < $2::timestamptz limit $3)
         returning webhook_id, change_id),
       a as (delete from webhook_attempts a using d where a.namespace = $1 and a.webhook_id = d.webhook_id and a.change_id = d.change_id)
       select count(*)::int as n from d`,
      [ctx.namespace, cutoff(deliveriesDays), limit],
    );
    const deliveries = dels[0].n;
    return { changes, deliveries, horizon: await horizonOf(tx, ctx.namespace), more: changes === limit || deliveries === limit };
  });
}

async function horizonOf(q: Queryable, namespace: string): Promise<string | null> {
  const { rows } = await q.query<{ xid: string; id: string }>(`select xid::text, id::text from change_horizons where namespace = $1`, [
    namespace,
  ]);
  return rows[0] ? formatCursor(rows[0]) : null;
}

/** Throws cursor_expired when `from`, an explicit cursor (not 0, the start), is before the namespace's horizon. */
export async function checkCursor(q: Queryable, namespace: string, from: FeedPosition, field: string): Promise<void> {
  if (from.xid === START.xid && from.id === START.id) return;
  const { rows } = await q.query<{ xid: string; id: string }>(
    `select xid::text, id::text from change_horizons where namespace = $1 and (xid, id) > ($2::xid8, $3::bigint)`,
    [namespace, from.xid, from.id],
  );
  if (rows[0]) throw new CursorExpiredError(field, formatCursor(from), formatCursor(rows[0]));
}
