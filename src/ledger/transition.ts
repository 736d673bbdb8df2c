/** Status transitions: start, complete, fail, cancel, retry and the reaper's timeout. */
import { LedgerError, RunFinishedError } from '../core/errors.js';
import { canonicalJson, eventCanonicalParts } from '../core/hash.js';
import { assertTransition, isTerminal, sourcesOf } from '../core/status.js';
import type { Json, JsonObject, RunError } from '../core/types.js';
import type { Queryable, QueryResult } from '../store/database.js';
import { coalescedWrite } from './coalesce.js';
import { type LedgerContext, mapDbErrors } from './context.js';
import { getRunRow } from './queries.js';
import type { RunRow } from './rows.js';
import {
  COMBINABLE_KINDS,
  type CombinableKind,
  TRANSITION_TARGET,
  type TransitionKind,
  transitionManySql,
  type TransitionRow,
  transitionStatement,
} from './sql/transition.js';

export interface TransitionPayload {
  output?: Json;
  statistics?: JsonObject;
  notes?: string;
  error?: RunError;
  reason?: string;
}

/** Re-reads of a run whose status changed between the update and the read-back; then `unavailable` (503: retry). */
const MAX_TRANSITION_ATTEMPTS = 5;

const same = (a: unknown, b: unknown) => canonicalJson(a ?? null) === canonicalJson(b ?? null);

/** Whether a repeated terminal call carries the payload already stored (then it is a no-op). */
function samePayload(kind: TransitionKind, row: RunRow, p: TransitionPayload): boolean {
  const notesSame = p.notes === undefined || p.notes === row.notes;
  switch (kind) {
    case 'complete':
      return same(p.output, row.output) && same(p.statistics, row.statistics) && notesSame;
    case 'fail':
      return same(p.error, row.error) && (p.statistics === undefined || same(p.statistics, row.statistics)) && notesSame;
    case 'cancel':
    case 'retry':
    case 'timeout':
      return same(p.error, row.error) && notesSame;
    case 'start':
      return true;
  }
}

/**
 * Moves run `id` to the status `kind` implies, in one statement. `renewedAt` (reaper
 * only) makes the update conditional on the lease not having been renewed since.
 * Returns null when the guard failed (the run was renewed or changed meanwhile).
 */
export async function transition(
  ctx: LedgerContext,
  id: string,
  kind: TransitionKind,
  payload: TransitionPayload,
  renewedAt?: Date,
  attempt = 1,
): Promise<RunRow | null> {
  const target = TRANSITION_TARGET[kind];
  const at = ctx.now().toISOString();
  const body: Record<string, Json> = { status: target };
  if (payload.error) body.error = payload.error as unknown as Json;
  if (payload.reason !== undefined) body.reason = payload.reason;
  const { head, tail } = eventCanonicalParts({ at, body, key: null, level: null, type: 'run.status' });
  const json = (v: unknown) => (v === undefined ? null : JSON.stringify(v));

  return mapDbErrors(async () => {
    const statement = transitionStatement(kind, {
      namespace: ctx.namespace,
      runId: id,
      target,
      sources: sourcesOf(target),
      at,
      eventHead: head,
      eventTail: tail,
      eventBody: JSON.stringify(body),
      output: json(payload.output),
      statistics: json(payload.statistics),
      notes: payload.notes ?? null,
      error: json(payload.error),
      renewedAt: renewedAt ?? null,
    });
    const combinable = !renewedAt && (COMBINABLE_KINDS as readonly string[]).includes(kind);
    const row: TransitionRow = {
      namespace: ctx.namespace,
      id,
      at,
      head,
      tail,
      body,
      output: json(payload.output),
      statistics: json(payload.statistics),
      notes: payload.notes ?? null,
      error: json(payload.error),
    };
    const { rows } = await coalescedWrite(
      ctx,
      id,
      false,
      (q) => q.query<RunRow>(statement.text, statement.values),
      combinable ? combinedTransitions(kind as CombinableKind) : undefined,
      row,
    );
    if (rows[0]) {
      const feed = isTerminal(target) || undefined;
      ctx.changes.emit('change', { namespace: ctx.namespace, runId: id, lastSeq: rows[0].last_seq, status: target, feed });
      return rows[0];
    }
    if (renewedAt) return null;
    // Nothing changed: explain why from the run as it is now.
    const current = await getRunRow(ctx, id);
    if (current.status === target && (kind === 'start' || samePayload(kind, current, payload))) return current;
    if (current.status === target && isTerminal(target)) {
      throw new RunFinishedError(id, current.status, `a repeated ${kind} must carry the same payload as the first`);
    }
    assertTransition(id, current.status, target);
    // The status allowed it after all: it changed between our two statements; try again, a
    // bounded number of times (only a run cycling running ⇄ retrying could keep this going).
    if (attempt >= MAX_TRANSITION_ATTEMPTS) {
      throw new LedgerError('unavailable', `run ${id} kept changing status while ${kind} was applied (${attempt} attempts); try again`);
    }
    return transition(ctx, id, kind, payload, renewedAt, attempt + 1);
  });
}

const combiners = new Map<
  CombinableKind,
  { kind: string; combine: (q: Queryable, rows: TransitionRow[]) => Promise<(QueryResult<RunRow> | undefined)[]> }
>();

/**
 * Terminal transitions of one kind in a batch (coalesce.ts), in one statement
 * (sql/transition.ts transitionManySql). A transition it did not make (the run is not in a
 * source status, or another run of its subject is in the same statement) gets `undefined`,
 * and the coalescer makes it alone after the batch, as if it had come alone.
 */
function combinedTransitions(kind: CombinableKind) {
  let combiner = combiners.get(kind);
  if (!combiner) {
    const target = TRANSITION_TARGET[kind];
    combiner = {
      kind: `transition:${kind}`,
      async combine(q, rows) {
        const { rows: done } = await q.query<RunRow>(transitionManySql(kind), [target, sourcesOf(target), JSON.stringify(rows)]);
        const byRun = new Map(done.map((r) => [`${r.namespace}\u0000${r.id}`, r]));
        return rows.map((r) => {
          const updated = byRun.get(`${r.namespace}\u0000${r.id}`);
          return updated ? { rows: [updated], rowCount: 1 } : undefined;
        });
      },
    };
    combiners.set(kind, combiner);
  }
  return combiner;
}
