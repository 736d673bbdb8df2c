/**
 * The statements that write whole runs from outside: an import (../import.ts) and a restore of
 * an export (../retention.ts). Each function is one statement with its parameters, taking rows
 * by name; every column travels as a typed array through unnest, so there is no per-chunk JSON
 * document for PostgreSQL to parse. The two writers share the subject status and rollup
 * statements; their run and event inserts differ on purpose: an import derives a fresh row
 * (and counts a concurrent importer's row as a duplicate), a restore puts back every column
 * as it was exported.
 */
import type { ExportedRun, Json } from '../../core/types.js';
import type { Queryable } from '../../store/database.js';
import { rollupCtesFrom } from './rollups.js';
import { upsertSubjectStatusFrom } from './subjectStatus.js';

export interface Statement {
  text: string;
  values: unknown[];
}

/** Sends `s` on `q`. */
export const runStatement = <R = Record<string, unknown>>(q: Queryable, s: Statement) => q.query<R>(s.text, s.values);

const jsonOrNull = (v: unknown) => (v === null ? null : JSON.stringify(v));

/** An imported run as the import derives it: its row and its chained events. */
export interface ImportedRunRow {
  id: string;
  job: string;
  subject: string | null;
  trigger: string | null;
  actor: string | null;
  parent_id: string | null;
  status: string;
  external_ids: unknown;
  params: unknown;
  tags: unknown;
  notes: string | null;
  output: unknown;
  statistics: unknown;
  error: unknown;
  created_at: string;
  started_at: string;
  finished_at: string;
  last_seq: number;
  last_hash: string;
  source_id: string;
}

/** Inserts imported runs; a row another importer inserted meanwhile (same id or sourceId) is left out of `returning id`. */
export function insertImportedRuns(a: { namespace: string; source: string; runs: ImportedRunRow[] }): Statement {
  const { runs } = a;
  const col = <K extends keyof ImportedRunRow>(k: K) => runs.map((r) => r[k]);
  const jsonCol = (k: 'external_ids' | 'params' | 'tags' | 'output' | 'statistics' | 'error') => runs.map((r) => jsonOrNull(r[k]));
  return {
    text: `insert into runs (namespace, id, job, subject, trigger, actor, parent_id, status, external_ids, params, tags, notes, output, statistics, error,
                         created_at, started_at, finished_at, last_seq, last_hash, source, source_id)
       select $1, r.id, r.job, r.subject, r.trigger, r.actor, r.parent_id, r.status, r.external_ids, r.params, r.tags, r.notes,
              r.output, r.statistics, r.error, r.created_at, r.started_at, r.finished_at, r.last_seq, r.last_hash, $2, r.source_id
         from unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::json[], $11::json[], $12::json[],
                     $13::text[], $14::json[], $15::json[], $16::json[], $17::timestamptz[], $18::timestamptz[], $19::timestamptz[],
                     $20::int[], $21::text[], $22::text[])
           as r(id, job, subject, trigger, actor, parent_id, status, external_ids, params, tags, notes, output, statistics, error,
                created_at, started_at, finished_at, last_seq, last_hash, source_id)
        -- A pruned run is not imported again (its id is never reused).
        where not exists (select 1 from tombstones t where t.namespace = $1 and t.id = r.id)
       on conflict do nothing
       returning id`,
    values: [
      a.namespace,
      a.source,
      col('id'),
      col('job'),
      col('subject'),
      col('trigger'),
      col('actor'),
      col('parent_id'),
      col('status'),
      jsonCol('external_ids'),
      jsonCol('params'),
      jsonCol('tags'),
      col('notes'),
      jsonCol('output'),
      jsonCol('statistics'),
      jsonCol('error'),
      col('created_at'),
      col('started_at'),
      col('finished_at'),
      col('last_seq'),
      col('last_hash'),
      col('source_id'),
    ],
  };
}

export interface ImportedEventRow {
  run_id: string;
  seq: number;
  type: string;
  level: string | null;
  at: string;
  body: Json;
  hash: string;
}

/** Inserts imported runs' events, all recorded at `recordedAt` (the import's time). */
export function insertImportedEvents(a: { namespace: string; recordedAt: string; events: ImportedEventRow[] }): Statement {
  const { events } = a;
  return {
    text: `insert into events (namespace, run_id, seq, type, level, at, recorded_at, body, hash)
         select $1, e.run_id, e.seq, e.type, e.level, e.at, $2::timestamptz, e.body, e.hash
           from unnest($3::text[], $4::int[], $5::text[], $6::text[], $7::timestamptz[], $8::json[], $9::text[])
             as e(run_id, seq, type, level, at, body, hash)`,
    values: [
      a.namespace,
      a.recordedAt,
      events.map((e) => e.run_id),
      events.map((e) => e.seq),
      events.map((e) => e.type),
      events.map((e) => e.level),
      events.map((e) => e.at),
      events.map((e) => JSON.stringify(e.body)),
      events.map((e) => e.hash),
    ],
  };
}

/** Puts exported run rows back, every column as it was (same id, version and chain head). */
export function insertRestoredRuns(a: { namespace: string; runs: ExportedRun['run'][] }): Statement {
  const { runs } = a;
  const col = <K extends keyof (typeof runs)[number]>(k: K) => runs.map((r) => r[k]);
  const jsonCol = (k: 'externalIds' | 'params' | 'tags' | 'output' | 'statistics' | 'error' | 'progress') =>
    runs.map((r) => jsonOrNull(r[k]));
  return {
    text: `insert into runs (namespace, id, job, subject, trigger, actor, parent_id, status, attempt, external_ids, params, tags, notes, output,
                         statistics, error, progress, created_at, started_at, finished_at, heartbeat_at, lease_s, deadline_at, suspect,
                         version, last_seq, last_hash, source, source_id, exclusive)
       select $1, r.* from unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::int[], $10::json[],
                                  $11::json[], $12::json[], $13::text[], $14::json[], $15::json[], $16::json[], $17::json[],
                                  $18::timestamptz[], $19::timestamptz[], $20::timestamptz[], $21::timestamptz[], $22::int[],
                                  $23::timestamptz[], $24::boolean[], $25::int[], $26::int[], $27::text[], $28::text[], $29::text[], $30::boolean[]) as r`,
    values: [
      a.namespace,
      col('id'),
      col('job'),
      col('subject'),
      col('trigger'),
      col('actor'),
      col('parentId'),
      col('status'),
      col('attempt'),
      jsonCol('externalIds'),
      jsonCol('params'),
      jsonCol('tags'),
      col('notes'),
      jsonCol('output'),
      jsonCol('statistics'),
      jsonCol('error'),
      jsonCol('progress'),
      col('createdAt'),
      col('startedAt'),
      col('finishedAt'),
      col('heartbeatAt'),
      col('leaseS'),
      col('deadlineAt'),
      col('suspect'),
      col('version'),
      col('lastSeq'),
      col('lastHash'),
      col('source'),
      col('sourceId'),
      col('exclusive'),
    ],
  };
}

export type RestoredEventRow = ExportedRun['events'][number] & { runId: string };

/** Puts exported events back with their key, seq, recording time and hash. */
export function insertRestoredEvents(a: { namespace: string; events: RestoredEventRow[] }): Statement {
  const part = a.events;
  return {
    text: `insert into events (namespace, run_id, seq, key, type, level, at, recorded_at, body, hash)
         select $1, e.* from unnest($2::text[], $3::int[], $4::text[], $5::text[], $6::text[], $7::timestamptz[], $8::timestamptz[],
                                    $9::json[], $10::text[]) as e`,
    values: [
      a.namespace,
      part.map((e) => e.runId),
      part.map((e) => e.seq),
      part.map((e) => e.key),
      part.map((e) => e.type),
      part.map((e) => e.level),
      part.map((e) => e.at),
      part.map((e) => e.recordedAt),
      part.map((e) => JSON.stringify(e.body)),
      part.map((e) => e.hash),
    ],
  };
}

export type RestoredCheckpointRow = ExportedRun['checkpoints'][number] & { runId: string };

/** Puts exported checkpoints back with their content hash and seq. */
export function insertRestoredCheckpoints(a: { namespace: string; checkpoints: RestoredCheckpointRow[] }): Statement {
  const cps = a.checkpoints;
  return {
    text: `insert into checkpoints (namespace, run_id, name, kind, ref, metadata, data, content_hash, seq, created_at)
         select $1, c.* from unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::json[], $7::json[], $8::text[], $9::int[],
                                    $10::timestamptz[]) as c`,
    values: [
      a.namespace,
      cps.map((c) => c.runId),
      cps.map((c) => c.name),
      cps.map((c) => c.kind),
      cps.map((c) => c.ref),
      cps.map((c) => JSON.stringify(c.metadata)),
      cps.map((c) => (c.data === null ? null : JSON.stringify(c.data))),
      cps.map((c) => c.contentHash),
      cps.map((c) => c.seq),
      cps.map((c) => c.createdAt),
    ],
  };
}

/** A finished run as subject status and the rollups read it. */
export interface FinishedRunRow {
  id: string;
  job: string;
  subject: string | null;
  trigger: string | null;
  status: string;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
}

/**
 * Subject status under the freshness rule, and health (streaks, schedule), from finished runs
 * written from outside: the fragment merges a batch exactly as if its runs had finished one
 * by one, in whatever order.
 */
export function upsertSubjectStatusOfRuns(a: {
  namespace: string;
  runs: Pick<FinishedRunRow, 'job' | 'subject' | 'id' | 'status' | 'trigger' | 'startedAt' | 'finishedAt'>[];
}): Statement {
  const { runs } = a;
  return {
    text: `with imported as (
           select $1::text as namespace, job, subject, id, status, trigger, started_at, finished_at
             from unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::timestamptz[], $8::timestamptz[])
               as f(job, subject, id, status, trigger, started_at, finished_at)
         ) ${upsertSubjectStatusFrom('imported')}`,
    values: [
      a.namespace,
      runs.map((r) => r.job),
      runs.map((r) => r.subject),
      runs.map((r) => r.id),
      runs.map((r) => r.status),
      runs.map((r) => r.trigger),
      runs.map((r) => r.startedAt),
      runs.map((r) => r.finishedAt),
    ],
  };
}

/** Counts finished runs written from outside in the rollups that stats() reads (last in a transaction: sql/rollups.ts, lock order). */
export function addRunsToRollups(a: {
  namespace: string;
  runs: Pick<FinishedRunRow, 'job' | 'status' | 'createdAt' | 'startedAt' | 'finishedAt'>[];
}): Statement {
  const { runs } = a;
  return {
    text: `with imported as (
         select $1::text as namespace, job, status, created_at, started_at, finished_at
           from unnest($2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[], $6::timestamptz[])
             as f(job, status, created_at, started_at, finished_at)
       ), ${rollupCtesFrom('imported')}
       select 1`,
    values: [
      a.namespace,
      runs.map((r) => r.job),
      runs.map((r) => r.status),
      runs.map((r) => r.createdAt),
      runs.map((r) => r.startedAt),
      runs.map((r) => r.finishedAt),
    ],
  };
}
