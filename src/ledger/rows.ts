/** Row ↔ model mapping: the database speaks snake_case and Date, the API camelCase and ISO strings. */
import type { Checkpoint, Json, JsonObject, LedgerEvent, Run, RunError, RunStatus, SubjectStatus } from '../core/types.js';

export const RUN_COLUMNS = `namespace, id, job, subject, trigger, actor, parent_id, status, attempt, external_ids,
  params, tags, notes, output, statistics, error, progress, created_at, started_at, finished_at, heartbeat_at,
  lease_s, deadline_at, suspect, version, last_seq, last_hash, source, source_id, exclusive`;

export interface RunRow {
  namespace: string;
  id: string;
  job: string;
  subject: string | null;
  trigger: string | null;
  actor: string | null;
  parent_id: string | null;
  status: RunStatus;
  attempt: number;
  external_ids: Record<string, string>;
  params: JsonObject;
  tags: Record<string, string>;
  notes: string | null;
  output: Json | null;
  statistics: JsonObject | null;
  error: RunError | null;
  progress: Json | null;
  created_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
  heartbeat_at: Date | null;
  lease_s: number | null;
  deadline_at: Date | null;
  suspect: boolean;
  version: number;
  last_seq: number;
  last_hash: string;
  source: string | null;
  source_id: string | null;
  exclusive: boolean;
}

export const iso = (d: Date | string | null): string | null => (d === null ? null : new Date(d).toISOString());

/** When the lease was last renewed: a run that never heartbeated counts from its start. */
export function renewedAt(row: Pick<RunRow, 'heartbeat_at' | 'started_at' | 'created_at'>): Date {
  return row.heartbeat_at ?? row.started_at ?? row.created_at;
}

export function toRun(row: RunRow, now = Date.now()): Run {
  const live = row.status === 'running' || row.status === 'retrying';
  // Suspect is derived on read too, so it is accurate even where no reaper runs.
  const overdue = live && row.lease_s !== null && now > renewedAt(row).getTime() + row.lease_s * 1000;
  return {
    namespace: row.namespace,
    id: row.id,
    job: row.job,
    subject: row.subject,
    trigger: row.trigger,
    actor: row.actor,
    parentId: row.parent_id,
    status: row.status,
    attempt: row.attempt,
    externalIds: row.external_ids,
    params: row.params,
    tags: row.tags,
    notes: row.notes,
    output: row.output,
    statistics: row.statistics,
    error: row.error,
    progress: row.progress,
    createdAt: iso(row.created_at)!,
    startedAt: iso(row.started_at),
    finishedAt: iso(row.finished_at),
    heartbeatAt: iso(row.heartbeat_at),
    leaseS: row.lease_s,
    deadlineAt: iso(row.deadline_at),
    suspect: live && (row.suspect || overdue),
    version: row.version,
    lastSeq: row.last_seq,
    source: row.source,
    sourceId: row.source_id,
    exclusive: row.exclusive,
  };
}

export interface EventRow {
  run_id: string;
  seq: number;
  key: string | null;
  type: string;
  level: string | null;
  at: Date;
  recorded_at: Date;
  body: Json;
  hash: string;
}

export const EVENT_COLUMNS = 'run_id, seq, key, type, level, at, recorded_at, body, hash';

export function toEvent(row: EventRow): LedgerEvent {
  return {
    runId: row.run_id,
    seq: row.seq,
    key: row.key,
    type: row.type,
    level: row.level as LedgerEvent['level'],
    at: iso(row.at)!,
    recordedAt: iso(row.recorded_at)!,
    body: row.body,
    hash: row.hash,
  };
}

export interface CheckpointRow {
  run_id: string;
  name: string;
  kind: string | null;
  ref: string | null;
  metadata: JsonObject;
  data?: Json | null;
  content_hash: string;
  seq: number;
  created_at: Date;
}

export function toCheckpoint(row: CheckpointRow): Checkpoint {
  const c: Checkpoint = {
    runId: row.run_id,
    name: row.name,
    kind: row.kind,
    ref: row.ref,
    metadata: row.metadata,
    contentHash: row.content_hash,
    seq: row.seq,
    createdAt: iso(row.created_at)!,
  };
  if (row.data !== undefined) c.data = row.data;
  return c;
}

export interface SubjectRow {
  namespace: string;
  job: string;
  subject: string;
  run_id: string;
  status: RunStatus;
  trigger: string | null;
  finished_at: Date;
  previous_status: RunStatus | null;
  status_changed_at: Date;
  last_success_at: Date | null;
  last_failure_at: Date | null;
  consecutive_successes: number;
  consecutive_failures: number;
  last_started_at: Date | null;
  next_due_at: Date | null;
  overdue_at: Date | null;
}

export const SUBJECT_COLUMNS = `namespace, job, subject, run_id, status, trigger, finished_at, previous_status, status_changed_at,
  last_success_at, last_failure_at, consecutive_successes, consecutive_failures, last_started_at, next_due_at, overdue_at`;

/** Overdue is derived on read (like suspect), so it is exact between monitor passes. */
export function toSubject(row: SubjectRow, now = Date.now()): SubjectStatus {
  return {
    namespace: row.namespace,
    job: row.job,
    subject: row.subject,
    runId: row.run_id,
    status: row.status,
    trigger: row.trigger,
    finishedAt: iso(row.finished_at)!,
    previousStatus: row.previous_status,
    statusChangedAt: iso(row.status_changed_at)!,
    lastSuccessAt: iso(row.last_success_at),
    lastFailureAt: iso(row.last_failure_at),
    consecutiveSuccesses: row.consecutive_successes,
    consecutiveFailures: row.consecutive_failures,
    lastStartedAt: iso(row.last_started_at),
    nextDueAt: iso(row.next_due_at),
    overdue: row.overdue_at !== null && row.overdue_at.getTime() <= now,
  };
}
