/** Event append with idempotency keys and the hash chain — docs/design.md, promise 5. */
import { KeyConflictError, NotFoundError, RunFinishedError } from '../core/errors.js';
import { canonicalJson, eventCanonicalParts } from '../core/hash.js';
import { isTerminal } from '../core/status.js';
import type { AppendResult, EventInput, Json, RunStatus } from '../core/types.js';
import { eventBatchSchema, parseInput } from '../core/validation.js';
import type { Queryable } from '../store/database.js';
import { type ChainHead, chainRows, lockRun, type NewEvent } from './chain.js';
import { coalescedWrite } from './coalesce.js';
import { checkNotFuture, type LedgerContext, mapDbErrors } from './context.js';
import { missingRun } from './retention.js';
import { appendOneEventSql } from './sql/appendEvent.js';
import {
  batchAppendEventsAndAdvanceSql,
  type EventRowInput,
  insertEventsAndAdvanceManySql,
  lockHeadsSql,
  reusedKeysSql,
} from './sql/appendEvents.js';

interface KeyedEvent {
  seq: number;
  type: string;
  level: string | null;
  body: Json;
}

const sameContent = (a: KeyedEvent, b: { type: string; level: string | null; body: Json }) =>
  a.type === b.type && a.level === b.level && canonicalJson(a.body) === canonicalJson(b.body);

type ParsedEvent = ReturnType<typeof parseEvents>[number];
const parseEvents = (raw: EventInput[]) => parseInput(eventBatchSchema, raw, 'events');

/** One append as the coalescer carries it (coalesce.ts): which run, which events, when. */
interface AppendWrite {
  namespace: string;
  id: string;
  input: ParsedEvent[];
  now: string;
}

/** From this many events, an append on PostgreSQL runs in its own transaction rather than in a group commit. */
export const OWN_TRANSACTION_FROM = 32;

/** What an append did: each event's answer, the run's last seq after it, how many rows it wrote. */
interface Appended {
  results: AppendResult[];
  lastSeq: number;
  appended: number;
}

/**
 * Appends a batch in one transaction. The run row lock orders concurrent appenders,
 * so seq is gapless and follows commit order. A repeated key returns its original seq
 * and writes nothing; a key reused with other content rejects the whole batch.
 */
export async function appendEvents(ctx: LedgerContext, id: string, raw: EventInput[]): Promise<AppendResult[]> {
  const input = parseEvents(raw);
  input.forEach((e, i) => e.at && checkNotFuture(ctx, input.length === 1 ? 'at' : `events.${i}.at`, e.at));
  const now = ctx.now().toISOString();
  const write: AppendWrite = { namespace: ctx.namespace, id, input, now };
  if (input.length === 1 && input[0].key === undefined) {
    const result = await appendOne(ctx, write);
    if (result) return result.results;
    // Not appended: the run is missing or finished; the path below says which.
  }
  // A large batch on PostgreSQL gains little from sharing a commit and would hold up the
  // small writes queued behind it on the coalescer's one connection: it takes its own.
  const writer = ctx.db.kind === 'postgres' && input.length >= OWN_TRANSACTION_FROM ? { ...ctx, writes: undefined } : ctx;
  const result = await mapDbErrors(() =>
    coalescedWrite(
      writer,
      id,
      true,
      async (tx) => {
        const head = await lockRun<ChainHead & { status: RunStatus }>(tx, ctx.namespace, id);
        const keys = [...new Set(input.flatMap((e) => (e.key === undefined ? [] : [e.key])))];
        const byKey = new Map<string, KeyedEvent>();
        if (head && keys.length) {
          const { rows } = await tx.query<KeyedEvent & { key: string }>(
            `select key, seq, type, level, body from events where namespace = $1 and run_id = $2 and key = any($3::text[])`,
            [ctx.namespace, id, keys],
          );
          for (const r of rows) byKey.set(r.key, r);
        }
        const { appended, rows } = planAppend(write, head, byKey);
        if (rows.length) {
          // Inserts the rows and advances the head (which renews the lease, invariant 7) in one statement.
          await tx.query(batchAppendEventsAndAdvanceSql, [ctx.namespace, id, now, JSON.stringify(rows), head!.last_seq, head!.last_hash]);
        }
        return appended;
      },
      combinedAppends,
      write,
    ),
  ).catch(async (err: unknown) => {
    // A run that is not there may have been pruned: then the answer is its tombstone (410 pruned).
    if (err instanceof NotFoundError) throw await missingRun(ctx, id);
    throw err;
  });
  if (result.appended) ctx.changes.emit('change', { namespace: ctx.namespace, runId: id, lastSeq: result.lastSeq });
  return result.results;
}

/**
 * What appending `write` to the locked `head` means: each event's answer and the rows to
 * insert (seq and chain computed here; `head` is advanced in memory). Throws what the
 * append is refused with: the run is missing or finished, or a key was used for other content.
 */
function planAppend(
  write: AppendWrite,
  head: (ChainHead & { status: RunStatus }) | null,
  byKey: Map<string, KeyedEvent>,
): { appended: Appended; rows: EventRowInput[] } {
  const { id, input, now } = write;
  if (!head) throw NotFoundError.run(id, write.namespace);
  const results: AppendResult[] = [];
  const fresh: NewEvent[] = [];
  input.forEach((e, i) => {
    const content = { type: e.type, level: e.level ?? null, body: (e.body ?? {}) as Json };
    const prior = e.key === undefined ? undefined : byKey.get(e.key);
    if (prior) {
      if (!sameContent(prior, content)) {
        throw new KeyConflictError(`event key ${JSON.stringify(e.key)} of run ${id} was used for other content (seq ${prior.seq})`, [
          {
            field: `events.${i}.key`,
            message: `already used by seq ${prior.seq} with a different type, level or body`,
            seq: prior.seq,
          },
        ]);
      }
      results.push({ seq: prior.seq, key: e.key, duplicate: true });
      return;
    }
    if (isTerminal(head.status)) throw new RunFinishedError(id, head.status, 'no events can be appended');
    const seq = head.last_seq + fresh.length + 1;
    fresh.push({ key: e.key ?? null, ...content, at: e.at ? new Date(e.at).toISOString() : now });
    if (e.key !== undefined) byKey.set(e.key, { seq, ...content });
    results.push({ seq, ...(e.key !== undefined ? { key: e.key } : {}), duplicate: false });
  });
  const rows = chainRows(head, fresh);
  return { appended: { results, lastSeq: head.last_seq, appended: fresh.length }, rows };
}

/**
 * The appends of a batch (coalesce.ts) in three statements whatever their number: lock every
 * run's head (in key order), read the keys they reuse, then insert every event and advance
 * every head in one. An append that would be refused is left out (`undefined`): the coalescer
 * runs it alone after the batch, which gives its own error.
 */
const combinedAppends = {
  kind: 'events',
  async combine(q: Queryable, writes: AppendWrite[]): Promise<(Appended | undefined)[]> {
    const { rows: heads } = await q.query<ChainHead & { status: RunStatus }>(lockHeadsSql, [
      writes.map((w) => w.namespace),
      writes.map((w) => w.id),
    ]);
    const headOf = new Map(heads.map((h) => [`${h.namespace}\u0000${h.id}`, h]));
    const keyed = writes.flatMap((w) => w.input.flatMap((e) => (e.key === undefined ? [] : [{ w, key: e.key }])));
    const keysOf = new Map<AppendWrite, Map<string, KeyedEvent>>(writes.map((w) => [w, new Map()]));
    if (keyed.length) {
      const { rows } = await q.query<KeyedEvent & { namespace: string; run_id: string; key: string }>(reusedKeysSql, [
        keyed.map((k) => k.w.namespace),
        keyed.map((k) => k.w.id),
        keyed.map((k) => k.key),
      ]);
      const byRun = new Map(writes.map((w) => [`${w.namespace}\u0000${w.id}`, keysOf.get(w)!]));
      for (const r of rows) byRun.get(`${r.namespace}\u0000${r.run_id}`)?.set(r.key, r);
    }
    const events: (EventRowInput & { namespace: string; run_id: string; recorded_at: string })[] = [];
    const advanced: { namespace: string; id: string; last_seq: number; last_hash: string; recorded_at: string }[] = [];
    const answers = writes.map((w) => {
      const head = headOf.get(`${w.namespace}\u0000${w.id}`) ?? null;
      let plan;
      try {
        plan = planAppend(w, head, keysOf.get(w)!);
      } catch {
        return undefined;
      }
      if (plan.rows.length) {
        for (const r of plan.rows) events.push({ ...r, namespace: w.namespace, run_id: w.id, recorded_at: w.now });
        advanced.push({ namespace: w.namespace, id: w.id, last_seq: head!.last_seq, last_hash: head!.last_hash, recorded_at: w.now });
      }
      return plan.appended;
    });
    if (events.length) await q.query(insertEventsAndAdvanceManySql, [JSON.stringify(events), JSON.stringify(advanced)]);
    return answers;
  },
} as const;

/**
 * The common case — one event without a key — in one statement (sql/appendEvent.ts)
 * instead of a transaction of four. Null when the run is missing or finished.
 */
async function appendOne(ctx: LedgerContext, write: AppendWrite): Promise<Appended | null> {
  const { id, now } = write;
  const e = write.input[0];
  const at = e.at ? new Date(e.at).toISOString() : now;
  const body = (e.body ?? {}) as Json;
  const level = e.level ?? null;
  const { head, tail } = eventCanonicalParts({ at, body, key: null, level, type: e.type });
  const result = await mapDbErrors(() =>
    coalescedWrite(
      ctx,
      id,
      false,
      async (q): Promise<Appended | null> => {
        const { rows } = await q.query<{ last_seq: number }>(appendOneEventSql, [
          ctx.namespace,
          id,
          head,
          tail,
          now,
          e.type,
          level,
          at,
          JSON.stringify(body),
        ]);
        return rows[0] ? { results: [{ seq: rows[0].last_seq, duplicate: false }], lastSeq: rows[0].last_seq, appended: 1 } : null;
      },
      combinedAppends,
      write,
    ),
  );
  if (result) ctx.changes.emit('change', { namespace: ctx.namespace, runId: id, lastSeq: result.lastSeq });
  return result;
}
