/**
 * importRuns: the one code path behind `runledger import`, `POST /v1/imports` and the
 * library. One call is one short transaction (a chunk). Idempotent on
 * (namespace, source, sourceId); a cutover guard skips rows written during a
 * dual-write window; subject status obeys the freshness rule (DESIGN, seed 003).
 */
import { LedgerError, ValidationError } from '../core/errors.js';
import { chainHash } from '../core/hash.js';
import { newRunId } from '../core/ids.js';
import type { ImportItemResult, ImportOptions, ImportResult, Json } from '../core/types.js';
import { importOptionsSchema, importRecordSchema, LIMITS, parseInput, sourceSchema } from '../core/validation.js';
import { type LedgerContext,mapDbErrors } from './context.js';
import { upsertSubjectStatusFrom } from './sql/subjectStatus.js';

type Record = ReturnType<typeof importRecordSchema.parse>;

interface Prepared {
  index: number;
  record: Record;
  id: string;
  status: string;
  createdAt: string;
  startedAt: string;
  finishedAt: string;
}

const iso = (s: string) => new Date(s).toISOString();

export async function importRuns(
  ctx: LedgerContext,
  sourceRaw: string,
  records: unknown[],
  optsRaw: ImportOptions = {},
): Promise<ImportResult> {
  const source = parseInput(sourceSchema, sourceRaw, 'source');
  const opts = parseInput(importOptionsSchema, optsRaw);
  if (!Array.isArray(records))
    throw new ValidationError('runs must be an array of import records', [{ field: 'runs', message: 'not an array' }]);
  if (records.length > LIMITS.importBatch) {
    throw new ValidationError(`runs must hold at most ${LIMITS.importBatch} records per batch; got ${records.length}`, [
      { field: 'runs', message: 'too many' },
    ]);
  }
  const results: ImportItemResult[] = new Array(records.length);
  const prepared: Prepared[] = [];
  const seenSourceIds = new Set<string>();

  // Step 1: validate each record on its own; an invalid one never stops the others.
  records.forEach((raw, index) => {
    const sourceId = typeof (raw as { sourceId?: unknown })?.sourceId === 'string' ? (raw as { sourceId: string }).sourceId : null;
    try {
      const record = parseInput(importRecordSchema, raw);
      if (seenSourceIds.has(record.sourceId)) {
        results[index] = { index, sourceId, status: 'duplicate' };
        return;
      }
      seenSourceIds.add(record.sourceId);
      const createdAt = iso(record.createdAt ?? record.startedAt ?? record.finishedAt ?? ctx.now().toISOString());
      const startedAt = iso(record.startedAt ?? createdAt);
      const finishedAt = iso(record.finishedAt ?? startedAt);
      if (finishedAt < startedAt)
        throw new ValidationError(`finishedAt (${finishedAt}) is before startedAt (${startedAt})`, [
          { field: 'finishedAt', message: 'before startedAt' },
        ]);
      const status = record.status ?? (record.error ? 'failed' : 'completed');
      prepared.push({ index, record, id: record.id ?? newRunId(), status, createdAt, startedAt, finishedAt });
    } catch (err) {
      if (!(err instanceof LedgerError)) throw err;
      results[index] = { index, sourceId, status: 'invalid', error: { code: err.code, message: err.message } };
    }
  });

  const work = async (q: LedgerContext['db']) => {
    // Step 2: cutover — skip rows at or after the first live run of the same job and trigger.
    let todo = prepared;
    if (opts.cutover !== 'none' && todo.length) {
      let cutoverOf: (p: Prepared) => string | null;
      if (opts.cutover === undefined || opts.cutover === 'auto') {
        const pairs = [...new Map(todo.map((p) => [JSON.stringify([p.record.job, p.record.trigger ?? null]), p])).values()];
        const { rows } = await q.query<{ job: string; trigger: string | null; first: Date }>(
          `select r.job, r.trigger, min(r.started_at) as first
             from runs r join unnest($2::text[], $3::text[]) as k(job, trigger) on r.job = k.job and r.trigger is not distinct from k.trigger
            where r.namespace = $1 and r.source is null and r.started_at is not null
            group by r.job, r.trigger`,
          [ctx.namespace, pairs.map((p) => p.record.job), pairs.map((p) => p.record.trigger ?? null)],
        );
        const first = new Map(rows.map((r) => [JSON.stringify([r.job, r.trigger]), r.first.toISOString()]));
        cutoverOf = (p) => first.get(JSON.stringify([p.record.job, p.record.trigger ?? null])) ?? null;
      } else {
        const at = iso(opts.cutover);
        cutoverOf = () => at;
      }
      todo = todo.filter((p) => {
        const cut = cutoverOf(p);
        if (cut !== null && p.startedAt >= cut) {
          results[p.index] = { index: p.index, sourceId: p.record.sourceId, status: 'skipped_cutover' };
          return false;
        }
        return true;
      });
    }
    if (!todo.length) return;

    // Step 3: already imported (same source and sourceId), or an id taken by another run.
    const existing = await q.query<{ id: string; source: string | null; source_id: string | null }>(
      `select id, source, source_id from runs where namespace = $1 and ((source = $2 and source_id = any($3::text[])) or id = any($4::text[]))`,
      [ctx.namespace, source, todo.map((p) => p.record.sourceId), todo.map((p) => p.id)],
    );
    const importedIds = new Map(existing.rows.filter((r) => r.source === source).map((r) => [r.source_id!, r.id]));
    const takenIds = new Set(existing.rows.map((r) => r.id));
    todo = todo.filter((p) => {
      const prior = importedIds.get(p.record.sourceId);
      if (prior !== undefined) {
        results[p.index] = { index: p.index, sourceId: p.record.sourceId, status: 'duplicate', runId: prior };
        return false;
      }
      if (takenIds.has(p.id)) {
        results[p.index] = {
          index: p.index,
          sourceId: p.record.sourceId,
          status: 'invalid',
          error: { code: 'id_conflict', message: `run id ${p.id} is already used by another run` },
        };
        return false;
      }
      return true;
    });
    for (const p of todo) results[p.index] = { index: p.index, sourceId: p.record.sourceId, status: 'inserted', runId: p.id };
    if (opts.dryRun || !todo.length) return;

    // Step 4: insert runs and their chained events; a row another importer inserted meanwhile counts as a duplicate.
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
          at: iso(e.at ?? p.startedAt),
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
    const inserted = await q.query<{ id: string; source_id: string }>(
      `insert into runs (namespace, id, job, subject, trigger, actor, parent_id, status, external_ids, params, tags, notes, output, statistics, error,
                         created_at, started_at, finished_at, last_seq, last_hash, source, source_id)
       select $1, r->>'id', r->>'job', r->>'subject', r->>'trigger', r->>'actor', r->>'parent_id', r->>'status', r->'external_ids', r->'params', r->'tags',
              r->>'notes', nullif(r->'output', 'null'::jsonb), nullif(r->'statistics', 'null'::jsonb), nullif(r->'error', 'null'::jsonb),
              (r->>'created_at')::timestamptz, (r->>'started_at')::timestamptz, (r->>'finished_at')::timestamptz, (r->>'last_seq')::int, r->>'last_hash', $2, r->>'source_id'
         from jsonb_array_elements($3::jsonb) r
       on conflict do nothing
       returning id, source_id`,
      [ctx.namespace, source, JSON.stringify(runs.map(({ events: _events, ...run }) => run))],
    );
    const landed = new Set(inserted.rows.map((r) => r.id));
    for (const p of todo) {
      if (!landed.has(p.id)) results[p.index] = { index: p.index, sourceId: p.record.sourceId, status: 'duplicate' };
    }
    const events = runs.filter((r) => landed.has(r.id)).flatMap((r) => r.events.map((e) => ({ run_id: r.id, ...e })));
    if (events.length) {
      await q.query(
        `insert into events (namespace, run_id, seq, type, level, at, recorded_at, body, hash)
         select $1, e->>'run_id', (e->>'seq')::int, e->>'type', e->>'level', (e->>'at')::timestamptz, $2::timestamptz, e->'body', e->>'hash'
           from jsonb_array_elements($3::jsonb) e`,
        [ctx.namespace, ctx.now().toISOString(), JSON.stringify(events)],
      );
    }
    // Step 5: subject status from the freshest imported run per subject, under the freshness rule.
    if (opts.subjectStatus !== false && landed.size) {
      await q.query(
        `with fresh as (
           select distinct on (job, subject) namespace, job, subject, id, status, trigger, finished_at
             from runs where namespace = $1 and id = any($2::text[]) and subject is not null
            order by job, subject, finished_at desc, id desc
         ) ${upsertSubjectStatusFrom('fresh')}`,
        [ctx.namespace, [...landed]],
      );
    }
  };

  await mapDbErrors(() =>
    opts.dryRun ? work(ctx.db) : ctx.db.withTransaction((tx) => work({ ...ctx.db, query: tx.query.bind(tx), exec: tx.exec.bind(tx) })),
  );
  const count = (s: ImportItemResult['status']) => results.filter((r) => r.status === s).length;
  return {
    results,
    inserted: count('inserted'),
    duplicates: count('duplicate'),
    skippedCutover: count('skipped_cutover'),
    invalid: count('invalid'),
  };
}
