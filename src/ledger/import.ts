/**
 * importRuns: the one code path behind `runledger import`, `POST /v1/imports` and the
 * library. One call is one short transaction (a chunk). Idempotent on
 * (namespace, source, sourceId); a cutover guard skips rows written during a
 * dual-write window; subject status obeys the freshness rule (a late, older import never overwrites a fresher verdict).
 */
import { LedgerError, ValidationError } from '../core/errors.js';
import { chainHash } from '../core/hash.js';
import { newRunId } from '../core/ids.js';
import type { ImportItemResult, ImportOptions, ImportResult, Json } from '../core/types.js';
import { importOptionsSchema, importRecordSchema, LIMITS, parseInput, sourceSchema, textProblem } from '../core/validation.js';
import type { Queryable } from '../store/database.js';
import { checkNotFuture, type LedgerContext, mapDbErrors } from './context.js';
import {
  addRunsToRollups,
  type FinishedRunRow,
  type ImportedRunRow,
  insertImportedEvents,
  insertImportedRuns,
  runStatement,
  upsertSubjectStatusOfRuns,
} from './sql/importedRuns.js';
import { touchJobScheduleFrom } from './sql/subjectStatus.js';

type ImportRecordParsed = ReturnType<typeof importRecordSchema.parse>;

interface Prepared {
  index: number;
  record: ImportRecordParsed;
  id: string;
  status: string;
  createdAt: string;
  startedAt: string;
  finishedAt: string;
}

// A time without an offset ("2026-01-31 12:00:00", as legacy `timestamp` columns export)
// is UTC: JavaScript would read it in the machine's zone, so the same file would import
// differently on two machines.
const NAIVE_TIME = /^\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d(\.\d+)?)?$/;

/** ISO 8601 in UTC with milliseconds (the precision runs and event hashes carry). */
export const importTime = (s: string) => new Date(NAIVE_TIME.test(s) ? `${s.replace(' ', 'T')}Z` : s).toISOString();

/** The reason given when a record's id belongs to a run other than this source's sourceId. */
export const idConflictMessage = (id: string, sourceId: string, source: string) =>
  `id ${id} is already used by another run (not sourceId ${sourceId} of source ${source})`;

/** An imported run as subject status and the rollups read it. */
const finishedRow = (r: ImportedRunRow): FinishedRunRow => ({
  id: r.id,
  job: r.job,
  subject: r.subject,
  trigger: r.trigger,
  status: r.status,
  createdAt: r.created_at,
  startedAt: r.started_at,
  finishedAt: r.finished_at,
});

/** Finds text the database would refuse or alter, before it refuses the whole chunk. */
function findBadText(value: unknown, path: string): { path: string; problem: string } | null {
  if (typeof value === 'string') {
    const problem = textProblem(value);
    return problem ? { path, problem } : null;
  }
  if (value === null || typeof value !== 'object') return null;
  for (const [k, v] of Object.entries(value)) {
    const at = path ? `${path}.${k}` : k;
    const problem = textProblem(k);
    if (problem) return { path: at, problem: `(a key) ${problem}` };
    const found = findBadText(v, at);
    if (found) return found;
  }
  return null;
}

/** Validates one record and derives its run id, status and times; throws a ValidationError naming the field. */
function prepare(ctx: LedgerContext, raw: unknown, index: number): Prepared {
  const record = parseInput(importRecordSchema, raw);
  const bad = findBadText(record, '');
  if (bad) throw new ValidationError(`${bad.path} ${bad.problem}`, [{ field: bad.path, message: bad.problem }]);
  // A historical run without any time would be stamped "now": fresher than every live
  // verdict and past every cutover, which is exactly what an import must never do.
  if (record.createdAt === undefined && record.startedAt === undefined && record.finishedAt === undefined) {
    throw new ValidationError('a historical run needs at least one of startedAt, finishedAt or createdAt; got none', [
      { field: 'startedAt', message: 'missing (as are finishedAt and createdAt)' },
    ]);
  }
  for (const field of ['createdAt', 'startedAt', 'finishedAt'] as const) if (record[field]) checkNotFuture(ctx, field, record[field]);
  const createdAt = importTime(record.createdAt ?? record.startedAt ?? record.finishedAt!);
  const startedAt = importTime(record.startedAt ?? createdAt);
  const finishedAt = importTime(record.finishedAt ?? startedAt);
  if (finishedAt < startedAt) {
    const from = record.startedAt !== undefined ? 'startedAt' : 'createdAt';
    throw new ValidationError(`finishedAt (${finishedAt}) is before ${from} (${startedAt})`, [
      { field: 'finishedAt', message: `before ${from}` },
    ]);
  }
  const status = record.status ?? (record.error ? 'failed' : 'completed');
  return { index, record, id: record.id ?? newRunId(), status, createdAt, startedAt, finishedAt };
}

/**
 * Imports a batch (≤ 1000) of historical runs; see the README's import section.
 * Each record gets a result: inserted, duplicate (already imported from this source,
 * or repeated in the batch), skipped_cutover, or invalid (with the reason). An invalid
 * record never stops the others.
 * @example
 * const r = await ledger.importRuns('legacy-db', [
 *   { sourceId: '42', job: 'compliance-check', subject: 'https://agent.example', trigger: 'owner_test',
 *     status: 'completed', startedAt: '2025-01-01T10:00:00Z', finishedAt: '2025-01-01T10:00:05Z' },
 * ]);
 * // r.inserted === 1; the same call again gives r.duplicates === 1
 */
export async function importRuns(
  ctx: LedgerContext,
  sourceRaw: string,
  records: unknown[],
  optsRaw: ImportOptions = {},
): Promise<ImportResult> {
  const source = parseInput(sourceSchema, sourceRaw, 'source');
  const opts = parseInput(importOptionsSchema, optsRaw ?? {});
  if (!Array.isArray(records))
    throw new ValidationError('runs must be an array of import records', [{ field: 'runs', message: 'not an array' }]);
  if (records.length > LIMITS.importBatch) {
    throw new ValidationError(`runs must hold at most ${LIMITS.importBatch} records per batch; got ${records.length}`, [
      { field: 'runs', message: 'too many' },
    ]);
  }
  const results: ImportItemResult[] = new Array(records.length);
  const prepared: Prepared[] = [];
  const firstOf = new Map<string, Prepared>();
  const idOwner = new Map<string, Prepared>();

  // Step 1: validate each record on its own; an invalid one never stops the others.
  records.forEach((raw, index) => {
    const sid = (raw as { sourceId?: unknown } | null)?.sourceId;
    const sourceId = typeof sid === 'string' ? sid : null;
    try {
      const p = prepare(ctx, raw, index);
      const first = firstOf.get(p.record.sourceId);
      if (first) {
        results[index] = { index, sourceId, status: 'duplicate', runId: first.id };
        return;
      }
      const sameId = idOwner.get(p.id);
      if (sameId) {
        results[index] = {
          index,
          sourceId,
          status: 'invalid',
          error: { code: 'id_conflict', message: idConflictMessage(p.id, p.record.sourceId, source) },
        };
        return;
      }
      firstOf.set(p.record.sourceId, p);
      idOwner.set(p.id, p);
      prepared.push(p);
    } catch (err) {
      if (!(err instanceof LedgerError)) throw err;
      results[index] = { index, sourceId, status: 'invalid', error: { code: err.code, message: err.message } };
    }
  });

  const set = (p: Prepared, r: Omit<ImportItemResult, 'index' | 'sourceId'>) => {
    results[p.index] = { index: p.index, sourceId: p.record.sourceId, ...r };
  };

  /**
   * Steps 2–5 for `batch`, all on `q` (one transaction). No change notices: imported runs
   * are history, finished before anyone could tail them, and counting them in the live
   * "runs finished" metrics would turn a backfill into a spike.
   */
  const work = async (q: Queryable, batch: Prepared[]): Promise<void> => {
    // Step 2: cutover — skip rows at or after the first live run of the same job and trigger.
    let todo = batch;
    if (opts.cutover !== 'none' && todo.length) {
      let cutoverOf: (p: Prepared) => string | null;
      if (opts.cutover === undefined || opts.cutover === 'auto') {
        const key = (job: string, trigger: string | null) => JSON.stringify([job, trigger]);
        const pairs = [...new Map(todo.map((p) => [key(p.record.job, p.record.trigger ?? null), p.record])).values()];
        // One indexed lookup per (job, trigger) on runs_live_start_idx; `is null` and `=`
        // are separate subqueries so that both use the index.
        const { rows } = await q.query<{ job: string; trigger: string | null; first: Date | string | null }>(
          `select k.job, k.trigger,
                  case when k.trigger is null
                    then (select min(r.started_at) from runs r
                           where r.namespace = $1 and r.job = k.job and r.trigger is null and r.source is null)
                    else (select min(r.started_at) from runs r
                           where r.namespace = $1 and r.job = k.job and r.trigger = k.trigger and r.source is null)
                  end as first
             from unnest($2::text[], $3::text[]) as k(job, trigger)`,
          [ctx.namespace, pairs.map((p) => p.job), pairs.map((p) => p.trigger ?? null)],
        );
        const first = new Map(rows.filter((r) => r.first !== null).map((r) => [key(r.job, r.trigger), new Date(r.first!).toISOString()]));
        cutoverOf = (p) => first.get(key(p.record.job, p.record.trigger ?? null)) ?? null;
      } else {
        const at = importTime(opts.cutover);
        cutoverOf = () => at;
      }
      todo = todo.filter((p) => {
        const cut = cutoverOf(p);
        if (cut !== null && p.startedAt >= cut) {
          set(p, { status: 'skipped_cutover' });
          return false;
        }
        return true;
      });
    }
    if (!todo.length) return;

    // Step 3: already imported (same source and sourceId), or an id taken by another run.
    const existing = await q.query<{ id: string; source: string | null; source_id: string | null }>(
      `select id, source, source_id from runs
        where namespace = $1 and ((source = $2 and source_id = any($3::text[])) or id = any($4::text[]))`,
      [ctx.namespace, source, todo.map((p) => p.record.sourceId), todo.map((p) => p.id)],
    );
    const importedIds = new Map(existing.rows.filter((r) => r.source === source).map((r) => [r.source_id!, r.id]));
    const takenIds = new Set(existing.rows.map((r) => r.id));
    todo = todo.filter((p) => {
      const prior = importedIds.get(p.record.sourceId);
      if (prior !== undefined) {
        set(p, { status: 'duplicate', runId: prior });
        return false;
      }
      if (takenIds.has(p.id)) {
        set(p, {
          status: 'invalid',
          error: { code: 'id_conflict', message: idConflictMessage(p.id, p.record.sourceId, source) },
        });
        return false;
      }
      return true;
    });
    for (const p of todo) set(p, { status: 'inserted', runId: p.id });
    if (opts.dryRun || !todo.length) return;

    // Step 4: insert runs and their chained events. A row another importer inserted
    // meanwhile (same id or same sourceId) counts as a duplicate.
    const runs = todo.map((p) => {
      const r = p.record;
      const events: { type: string; level: string | null; at: string; body: Json }[] = [
        { type: 'run.status', level: null, at: p.startedAt, body: { status: 'running' } },
        ...Object.entries(r.externalIds ?? {}).map(([key, value]) => ({
          type: 'run.external_id',
          level: null,
          at: p.startedAt,
          body: { key, value },
        })),
        ...(r.events ?? []).map((e) => ({
          type: e.type,
          level: e.level ?? null,
          at: importTime(e.at ?? p.startedAt),
          body: (e.body ?? {}) as Json,
        })),
        {
          type: 'run.status',
          level: null,
          at: p.finishedAt,
          body: r.error ? { status: p.status, error: r.error as unknown as Json } : { status: p.status },
        },
      ];
      let hash = '';
      const chained = events.map((e, i) => {
        hash = chainHash(hash, { ...e, key: null, seq: i + 1 });
        return { ...e, seq: i + 1, hash };
      });
      return {
        id: p.id,
        job: r.job,
        subject: r.subject ?? null,
        trigger: r.trigger ?? null,
        actor: r.actor ?? null,
        parent_id: r.parentId ?? null,
        status: p.status,
        external_ids: r.externalIds ?? {},
        params: r.params ?? {},
        tags: r.tags ?? {},
        notes: r.notes ?? null,
        output: r.output ?? null,
        statistics: r.statistics ?? null,
        error: r.error ?? null,
        created_at: p.createdAt,
        started_at: p.startedAt,
        finished_at: p.finishedAt,
        last_seq: chained.length,
        last_hash: hash,
        source_id: r.sourceId,
        events: chained,
      };
    });
    const inserted = await runStatement<{ id: string }>(q, insertImportedRuns({ namespace: ctx.namespace, source, runs }));
    const landed = new Set(inserted.rows.map((r) => r.id));
    for (const p of todo) if (!landed.has(p.id)) set(p, { status: 'duplicate' });
    const written = landed.size === runs.length ? runs : runs.filter((r) => landed.has(r.id));
    const events = written.flatMap((r) => r.events.map((e) => ({ run_id: r.id, ...e })));
    if (events.length)
      await runStatement(q, insertImportedEvents({ namespace: ctx.namespace, recordedAt: ctx.now().toISOString(), events }));
    // Step 5: subject status under the freshness rule, and health (streaks, schedule) from
    // every imported run of each subject: the fragment merges a batch exactly as if its runs
    // had finished one by one, in whatever order.
    const withSubject = written.filter((r) => r.subject !== null);
    if (opts.subjectStatus !== false && withSubject.length)
      await runStatement(q, upsertSubjectStatusOfRuns({ namespace: ctx.namespace, runs: withSubject.map(finishedRow) }));
    // A job watched as a whole (an expectation with perSubject false) moves to its latest start.
    if (opts.subjectStatus !== false) {
      const latest = new Map<string, string>();
      for (const r of written) if (!(latest.get(r.job)! >= r.started_at)) latest.set(r.job, r.started_at);
      await q.query(
        `with started as (select $1::text as namespace, job, started_at from unnest($2::text[], $3::timestamptz[]) as f(job, started_at))
         ${touchJobScheduleFrom('started', 'u.started_at')}`,
        [ctx.namespace, [...latest.keys()], [...latest.values()]],
      );
    }
    // Last, as live completions do (sql/rollups.ts: lock order): the runs counted by stats().
    if (written.length) await runStatement(q, addRunsToRollups({ namespace: ctx.namespace, runs: written.map(finishedRow) }));
  };

  /**
   * Runs `batch` in one transaction (a dry run only reads, so needs none). When the
   * database refuses a value that validation let through, the transaction rolls back and
   * the batch is split in halves until the offending records are isolated and reported
   * invalid: the others are still imported.
   */
  const commit = async (batch: Prepared[]): Promise<void> => {
    try {
      await mapDbErrors(() => (opts.dryRun ? work(ctx.db, batch) : ctx.db.withTransaction((tx) => work(tx, batch))));
    } catch (err) {
      if (!(err instanceof ValidationError)) throw err;
      if (batch.length === 1) {
        set(batch[0], { status: 'invalid', error: { code: err.code, message: err.message } });
        return;
      }
      const half = Math.ceil(batch.length / 2);
      await commit(batch.slice(0, half));
      await commit(batch.slice(half));
    }
  };
  if (prepared.length) await commit(prepared);

  let inserted = 0;
  let duplicates = 0;
  let skippedCutover = 0;
  let invalid = 0;
  for (const r of results) {
    if (r.status === 'inserted') inserted++;
    else if (r.status === 'duplicate') duplicates++;
    else if (r.status === 'skipped_cutover') skippedCutover++;
    else invalid++;
  }
  return { results, inserted, duplicates, skippedCutover, invalid };
}
