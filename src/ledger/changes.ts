/**
 * Reading the change log: `changes()` (a page after a cursor) and `watch()` (follow it).
 *
 * The outbox gap: change ids are handed out at insert, so they are not in commit order.
 * A read serves only changes whose writing transaction id is below the xmin of its own
 * snapshot: every transaction below xmin has ended, so no change can still appear there,
 * and any transaction that has not yet written gets a larger id. Ordered by (xid, id),
 * the served prefix only grows at its end: a cursor (xid, id) never passes a change that
 * is still to commit; it waits for it. The cost: one long transaction anywhere in the
 * cluster holds the feed back until it ends (`feedLag()` measures it).
 */
import {
  type Change,
  type ChangePage,
  type ChangesQuery,
  changesQuerySchema,
  type ChangeType,
  type FeedPosition,
  formatCursor,
  heldBackRetryMs,
  parseCursor,
  START,
  type Watcher,
  type WatchOptions,
} from '../core/changes.js';
import { CursorExpiredError } from '../core/errors.js';
import type { Json } from '../core/types.js';
import { parseInput } from '../core/validation.js';
import { prepared } from '../store/database.js';
import type { LedgerContext } from './context.js';
import { iso } from './rows.js';

interface ChangeRow {
  frontier: string;
  expired: string | null;
  held: boolean;
  id: string | null;
  xid: string | null;
  type: ChangeType;
  at: Date;
  namespace: string;
  run_id: string | null;
  job: string;
  subject: string | null;
  data: Json;
}

// $1 namespace, $2/$3 cursor (xid, id), $4 types or null, $5 job or null, $6 limit, $7 explicit cursor.
// One row even when nothing is visible, so the frontier always comes back, and with it
// whether committed changes wait past it (the primary key makes that a short index probe).
const LIST_SQL = prepared(`
with s as (select pg_snapshot_xmin(pg_current_snapshot()) as xmin)
select s.xmin::text as frontier,
       -- $7: an explicit cursor (not the start); before the pruned prefix of the log, it is refused.
       (select h.xid::text || '-' || h.id::text from change_horizons h
         where h.namespace = $1 and $7::boolean and (h.xid, h.id) > ($2::xid8, $3::bigint)) as expired,
       exists (select 1 from changes h
                where h.namespace = $1 and h.xid >= s.xmin and (h.xid, h.id) > ($2::xid8, $3::bigint)
                  and ($4::text[] is null or h.type = any($4::text[])) and ($5::text is null or h.job = $5::text)) as held,
       c.id::text as id, c.xid::text as xid, c.type, c.at, c.namespace, c.run_id, c.job, c.subject, c.data
  from s left join lateral (
    select * from changes
     where namespace = $1 and (xid, id) > ($2::xid8, $3::bigint) and xid < s.xmin
       and ($4::text[] is null or type = any($4::text[])) and ($5::text is null or job = $5::text)
     order by xid, id limit $6
  ) c on true
 order by c.xid, c.id`);

export function toChange(row: Omit<ChangeRow, 'frontier' | 'held' | 'expired'> & { id: string; xid: string }): Change {
  return {
    id: Number(row.id),
    cursor: formatCursor({ xid: row.xid, id: row.id }),
    type: row.type,
    at: iso(row.at)!,
    namespace: row.namespace,
    runId: row.run_id,
    job: row.job,
    subject: row.subject,
    data: row.data,
  };
}

/** The changes after `query.after`, oldest first, and where to resume. */
export async function listChanges(ctx: LedgerContext, query: ChangesQuery = {}): Promise<ChangePage> {
  const q = parseInput(changesQuerySchema, query);
  const limit = q.limit ?? 100;
  const from = parseCursor(q.after);
  const { rows } = await ctx.db.query<ChangeRow>(LIST_SQL, [
    ctx.namespace,
    (from ?? START).xid,
    (from ?? START).id,
    q.types ?? null,
    q.job ?? null,
    // `now` starts at the frontier: read nothing, just learn where it is.
    from ? limit : 0,
    from !== null && !(from.xid === START.xid && from.id === START.id),
  ]);
  if (rows[0].expired) throw new CursorExpiredError('after', formatCursor(from!), rows[0].expired);
  const frontier: FeedPosition = { xid: rows[0].frontier, id: '0' };
  const changes = rows.filter((r) => r.id !== null).map((r) => toChange(r as ChangeRow & { id: string; xid: string }));
  // A short page saw everything below the frontier: resume there, past what the filters left out.
  let next: FeedPosition;
  if (changes.length === limit) next = { xid: rows.at(-1)!.xid!, id: rows.at(-1)!.id! };
  else next = from && later(from, frontier) ? from : frontier;
  return { changes, nextAfter: formatCursor(next), heldBack: rows[0].held };
}

const later = (a: FeedPosition, b: FeedPosition) => BigInt(a.xid) > BigInt(b.xid) || (a.xid === b.xid && BigInt(a.id) > BigInt(b.id));

/**
 * Follows the feed: pages through it, then sleeps until `wake` fires or `pollMs` passes.
 * In process every write that appends a change wakes it at once.
 */
export function watchChanges(
  read: (q: ChangesQuery) => Promise<ChangePage>,
  opts: WatchOptions,
  wait: (ms: number, signal: AbortSignal) => Promise<void>,
  pollMs = 1000,
): Watcher {
  const stopper = new AbortController();
  if (opts.signal) {
    if (opts.signal.aborted) stopper.abort();
    else opts.signal.addEventListener('abort', () => stopper.abort(), { once: true });
  }
  const onError = opts.onError ?? ((err: unknown) => console.error('runledger watch:', err));
  let cursor: string | null = opts.after ?? null;
  let heldReads = 0;
  const done = (async () => {
    while (!stopper.signal.aborted) {
      let page: ChangePage;
      try {
        page = await read({ after: cursor ?? undefined, types: opts.types, job: opts.job, limit: 1000 });
      } catch (err) {
        if (stopper.signal.aborted) break;
        onError(err);
        await wait(pollMs, stopper.signal);
        continue;
      }
      for (const change of page.changes) {
        if (stopper.signal.aborted) return;
        await opts.onChange(change);
        cursor = change.cursor;
      }
      if (stopper.signal.aborted) return;
      cursor = page.nextAfter;
      if (page.changes.length === 1000) continue;
      heldReads = page.heldBack ? heldReads + 1 : 0;
      await wait(page.heldBack ? Math.min(pollMs, heldBackRetryMs(heldReads)) : pollMs, stopper.signal);
    }
  })();
  done.catch(() => {});
  return {
    get cursor() {
      return cursor;
    },
    async stop() {
      stopper.abort();
      await done.catch(() => {});
    },
    done,
  };
}

/**
 * How far the feed is held back: seconds since the oldest transaction that still holds
 * an xid began (the feed serves nothing written after it started until it ends). 0 when none.
 */
export async function feedLag(ctx: LedgerContext): Promise<number> {
  const { rows } = await ctx.db.query<{ s: number | null }>(
    `select extract(epoch from clock_timestamp() - min(xact_start))::float8 as s
       from pg_stat_activity where backend_xid is not null and pid <> pg_backend_pid()`,
  );
  return Math.max(0, rows[0]?.s ?? 0);
}
