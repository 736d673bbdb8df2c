/** Event append with idempotency keys and the hash chain — docs/design.md, promise 5. */
import { KeyConflictError, NotFoundError, RunFinishedError } from '../core/errors.js';
import { canonicalJson, eventCanonicalParts } from '../core/hash.js';
import { isTerminal } from '../core/status.js';
import type { AppendResult, EventInput, Json, RunStatus } from '../core/types.js';
import { eventBatchSchema, parseInput } from '../core/validation.js';
import { type ChainHead, chainRows, lockRun, type NewEvent } from './chain.js';
import { coalescedWrite } from './coalesce.js';
import { checkNotFuture, type LedgerContext, mapDbErrors } from './context.js';
import { appendOneEventSql } from './sql/appendEvent.js';
import { batchAppendEventsAndAdvanceSql } from './sql/appendEvents.js';

interface KeyedEvent {
  seq: number;
  type: string;
  level: string | null;
  body: Json;
}

const sameContent = (a: KeyedEvent, b: { type: string; level: string | null; body: Json }) =>
  a.type === b.type && a.level === b.level && canonicalJson(a.body) === canonicalJson(b.body);

/**
 * Appends a batch in one transaction. The run row lock orders concurrent appenders,
 * so seq is gapless and follows commit order. A repeated key returns its original seq
 * and writes nothing; a key reused with other content rejects the whole batch.
 */
export async function appendEvents(ctx: LedgerContext, id: string, raw: EventInput[]): Promise<AppendResult[]> {
  const input = parseInput(eventBatchSchema, raw, 'events');
  input.forEach((e, i) => e.at && checkNotFuture(ctx, input.length === 1 ? 'at' : `events.${i}.at`, e.at));
  const now = ctx.now().toISOString();
  if (input.length === 1 && input[0].key === undefined) {
    const result = await appendOne(ctx, id, input[0], now);
    if (result) return [result];
    // Not appended: the run is missing or finished; the path below says which.
  }
  const result = await mapDbErrors(() =>
    coalescedWrite(ctx, id, true, async (tx) => {
      const head = await lockRun<ChainHead & { status: RunStatus }>(tx, ctx.namespace, id);
      if (!head) throw NotFoundError.run(id, ctx.namespace);

      const keys = [...new Set(input.flatMap((e) => (e.key === undefined ? [] : [e.key])))];
      const byKey = new Map<string, KeyedEvent>();
      if (keys.length) {
        const { rows } = await tx.query<KeyedEvent & { key: string }>(
          `select key, seq, type, level, body from events where namespace = $1 and run_id = $2 and key = any($3::text[])`,
          [ctx.namespace, id, keys],
        );
        for (const r of rows) byKey.set(r.key, r);
      }

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

      if (fresh.length) {
        // Inserts the rows and advances the head (which renews the lease, invariant 7) in one statement.
        const rows = chainRows(head, fresh);
        await tx.query(batchAppendEventsAndAdvanceSql, [ctx.namespace, id, now, JSON.stringify(rows), head.last_seq, head.last_hash]);
      }
      return { results, lastSeq: head.last_seq, appended: fresh.length };
    }),
  );
  if (result.appended) ctx.changes.emit('change', { namespace: ctx.namespace, runId: id, lastSeq: result.lastSeq });
  return result.results;
}

/**
 * The common case — one event without a key — in one statement (sql/appendEvent.ts)
 * instead of a transaction of four. Null when the run is missing or finished.
 */
async function appendOne(ctx: LedgerContext, id: string, e: EventInput, now: string): Promise<AppendResult | null> {
  const at = e.at ? new Date(e.at).toISOString() : now;
  const body = (e.body ?? {}) as Json;
  const level = e.level ?? null;
  const { head, tail } = eventCanonicalParts({ at, body, key: null, level, type: e.type });
  const { rows } = await mapDbErrors(() =>
    coalescedWrite(ctx, id, false, (q) =>
      q.query<{ last_seq: number }>(appendOneEventSql, [ctx.namespace, id, head, tail, now, e.type, level, at, JSON.stringify(body)]),
    ),
  );
  if (!rows[0]) return null;
  const seq = rows[0].last_seq;
  ctx.changes.emit('change', { namespace: ctx.namespace, runId: id, lastSeq: seq });
  return { seq, duplicate: false };
}
