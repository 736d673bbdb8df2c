/**
 * A status transition in ONE statement (one round trip): update the run if its current
 * status allows it, append the `run.status` event to its hash chain, and for a terminal
 * status derive the subject status and append to the change log — all or nothing
 * (docs/design.md, promises 2 and 3).
 * When no row comes back, the caller reads the run to explain why (not found,
 * idempotent repeat, invalid transition).
 */
import { sqlChainHash } from '../../core/hash.js';
import type { RunStatus } from '../../core/types.js';
import { prepared } from '../../store/database.js';
import { RUN_COLUMNS } from '../rows.js';
import { insertChangesFrom, runChangeJson } from './changes.js';
import { renewedAt } from './fragments.js';
import { rollupCtesFrom } from './rollups.js';
import { touchJobScheduleFrom, touchScheduleFrom, upsertSubjectStatusFrom } from './subjectStatus.js';

export type TransitionKind = 'start' | 'complete' | 'fail' | 'cancel' | 'retry' | 'timeout';

export const TRANSITION_TARGET: Record<TransitionKind, RunStatus> = {
  start: 'running',
  complete: 'completed',
  fail: 'failed',
  cancel: 'cancelled',
  retry: 'retrying',
  timeout: 'timed_out',
};

/** What a transition statement takes (every kind the same; a kind ignores what it does not use). */
export interface TransitionArgs {
  namespace: string;
  runId: string;
  target: RunStatus;
  /** The statuses the run may be in for the transition to apply. */
  sources: RunStatus[];
  at: string;
  /** The `run.status` event: its canonical head and tail (hashed around the seq) and its body. */
  eventHead: string;
  eventTail: string;
  eventBody: string;
  output: string | null;
  statistics: string | null;
  notes: string | null;
  error: string | null;
  /** The reaper's guard: the lease renewal time it saw (null for everyone else). */
  renewedAt: Date | null;
}

/** The SQL's numbering of the arguments: PARAMS[n - 1] is `$n`. */
const PARAMS = [
  'namespace',
  'runId',
  'target',
  'sources',
  'at',
  'eventHead',
  'eventTail',
  'eventBody',
  'output',
  'statistics',
  'notes',
  'error',
  'renewedAt',
] as const satisfies readonly (keyof TransitionArgs)[];

/** The statement for `kind` with its parameters, in the order the SQL numbers them. */
export function transitionStatement(kind: TransitionKind, a: TransitionArgs): { text: string; values: unknown[] } {
  return { text: transitionSql(kind), values: PARAMS.map((name) => a[name]) };
}

const SET_BY_KIND: Record<TransitionKind, string> = {
  start: `started_at = coalesce(r.started_at, $5), heartbeat_at = $5, suspect = false,
          attempt = case when r.status = 'retrying' then r.attempt + 1 else r.attempt end,
          error = case when r.status = 'retrying' then null else r.error end`,
  complete: `output = p.output, statistics = p.statistics, notes = coalesce(p.notes, r.notes), finished_at = $5, suspect = false`,
  fail: `error = p.error, statistics = coalesce(p.statistics, r.statistics), notes = coalesce(p.notes, r.notes), finished_at = $5, suspect = false`,
  cancel: `error = p.error, notes = coalesce(p.notes, r.notes), finished_at = $5, suspect = false`,
  retry: `error = p.error`,
  timeout: `error = p.error, finished_at = $5, suspect = false`,
};

const cache = new Map<TransitionKind, string>();

function transitionSql(kind: TransitionKind): string {
  let sql = cache.get(kind);
  if (sql) return sql;
  const terminal = kind !== 'start' && kind !== 'retry';
  // A terminal status also appends to the change log, in this same statement: run.finished,
  // and subject.changed when the subject's current status took another value (or a first one).
  // The subject row also comes back when only its health changed (a late run): run_id tells.
  const changeLog = `, chg as (${insertChangesFrom(`(
    select namespace, 'run.finished' as type, $5::timestamptz as at, id as run_id, job, subject,
           jsonb_build_object('run', ${runChangeJson('upd')}) as data
      from upd
    union all
    select namespace, 'subject.changed', $5::timestamptz, run_id, job, subject,
           jsonb_build_object('job', job, 'subject', subject, 'previousStatus', previous_status, 'status', status, 'runId', run_id)
      from subject where run_id = $2 and previous_status is distinct from status
  ) c`)})`;
  // The finished run is counted in the rollups stats() reads, last (sql/rollups.ts: lock order).
  const rollup = `, ${rollupCtesFrom('upd')}`;
  // The reaper's update holds only if the run was not renewed since it looked (invariant 7).
  const guard = kind === 'timeout' ? `and ${renewedAt('r')} = p.renewed` : '';
  // Every kind takes the same parameters; the "p" row types the ones a kind does not use.
  sql = prepared(`
with p as (
  select $9::jsonb as output, $10::jsonb as statistics, $11::text as notes, $12::jsonb as error, $13::timestamptz as renewed
), upd as (
  update runs r set status = $3, ${SET_BY_KIND[kind]},
         version = r.version + 1,
         last_seq = r.last_seq + 1,
         last_hash = ${sqlChainHash('r.last_hash', '$6::text', 'r.last_seq + 1', '$7::text')}
    from p
   where r.namespace = $1 and r.id = $2 and r.status = any($4::text[]) ${guard}
  returning ${RUN_COLUMNS.replace(/(^|,)\s*(\w+)/g, '$1 r.$2')}
), ev as (
  insert into events (namespace, run_id, seq, type, at, recorded_at, body, hash)
  select namespace, id, last_seq, 'run.status', $5, $5, $8::jsonb, last_hash from upd
)${terminal ? `, subject as (${upsertSubjectStatusFrom('upd', 'namespace, job, subject, run_id, status, previous_status')})${changeLog}${rollup}` : ''}${
    kind === 'start'
      ? `, due as (${touchScheduleFrom('upd', '$5::timestamptz')}), job_due as (${touchJobScheduleFrom('upd', '$5::timestamptz')})`
      : ''
  }
select ${RUN_COLUMNS} from upd`);
  cache.set(kind, sql);
  return sql;
}
