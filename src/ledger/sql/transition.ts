/**
 * A status transition in ONE statement (one round trip): update the run if its current
 * status allows it, append the `run.status` event to its hash chain, and for a terminal
 * status derive the subject status and append to the change log — all or nothing
 * (docs/design.md, promises 2 and 3).
 * When no row comes back, the caller reads the run to explain why (not found,
 * idempotent repeat, invalid transition).
 */
import { sqlChainHash } from '../../core/hash.js';
import type { Json, RunStatus } from '../../core/types.js';
import { prepared, type PreparedSql } from '../../store/database.js';
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
export function transitionStatement(kind: TransitionKind, a: TransitionArgs): { text: PreparedSql; values: unknown[] } {
  return { text: transitionSql(kind), values: PARAMS.map((name) => a[name]) };
}

/** What each kind sets besides the status and the chain head; `at` is the transition's time (an SQL expression). */
const SET_BY_KIND: Record<TransitionKind, (at: string) => string> = {
  start: (at) => `started_at = coalesce(r.started_at, ${at}), heartbeat_at = ${at}, suspect = false,
          attempt = case when r.status = 'retrying' then r.attempt + 1 else r.attempt end,
          error = case when r.status = 'retrying' then null else r.error end`,
  complete: (at) =>
    `output = p.output, statistics = p.statistics, notes = coalesce(p.notes, r.notes), finished_at = ${at}, suspect = false`,
  fail: (at) =>
    `error = p.error, statistics = coalesce(p.statistics, r.statistics), notes = coalesce(p.notes, r.notes), finished_at = ${at}, suspect = false`,
  cancel: (at) => `error = p.error, notes = coalesce(p.notes, r.notes), finished_at = ${at}, suspect = false`,
  retry: () => `error = p.error`,
  timeout: (at) => `error = p.error, finished_at = ${at}, suspect = false`,
};

const cache = new Map<TransitionKind, PreparedSql>();

function transitionSql(kind: TransitionKind): PreparedSql {
  let sql = cache.get(kind);
  if (sql) return sql;
  const terminal = kind !== 'start' && kind !== 'retry';
  // A terminal status also appends to the change log, in this same statement: run.finished,
  // and subject.changed when the subject's current status took another value (or a first one).
  // The subject row also comes back when only its health changed (a late run): run_id tells.
  const changeLog = `, chg as (${insertChangesFrom(`(
    select namespace, 'run.finished' as type, $5::timestamptz as at, id as run_id, job, subject,
           json_build_object('run', ${runChangeJson('upd')}) as data
      from upd
    union all
    select namespace, 'subject.changed', $5::timestamptz, run_id, job, subject,
           json_build_object('job', job, 'subject', subject, 'previousStatus', previous_status, 'status', status, 'runId', run_id)
      from subject where run_id = $2 and previous_status is distinct from status
  ) c`)})`;
  // The finished run is counted in the rollups stats() reads, last (sql/rollups.ts: lock order).
  const rollup = `, ${rollupCtesFrom('upd')}`;
  // The reaper's update holds only if the run was not renewed since it looked (invariant 7).
  const guard = kind === 'timeout' ? `and ${renewedAt('r')} = p.renewed` : '';
  // Every kind takes the same parameters; the "p" row types the ones a kind does not use.
  sql = prepared(`
with p as (
  select $9::json as output, $10::json as statistics, $11::text as notes, $12::json as error, $13::timestamptz as renewed
), upd as (
  update runs r set status = $3, ${SET_BY_KIND[kind]('$5')},
         version = r.version + 1,
         last_seq = r.last_seq + 1,
         last_hash = ${sqlChainHash('r.last_hash', '$6::text', 'r.last_seq + 1', '$7::text')}
    from p
   where r.namespace = $1 and r.id = $2 and r.status = any($4::text[]) ${guard}
  returning ${RUN_COLUMNS.replace(/(^|,)\s*(\w+)/g, '$1 r.$2')}
), ev as (
  insert into events (namespace, run_id, seq, type, at, recorded_at, body, hash)
  select namespace, id, last_seq, 'run.status', $5, $5, $8::json, last_hash from upd
)${terminal ? `, subject as (${upsertSubjectStatusFrom('upd', 'namespace, job, subject, run_id, status, previous_status')})${changeLog}${rollup}` : ''}${
    kind === 'start'
      ? `, due as (${touchScheduleFrom('upd', '$5::timestamptz')}), job_due as (${touchJobScheduleFrom('upd', '$5::timestamptz')})`
      : ''
  }
select ${RUN_COLUMNS} from upd`);
  cache.set(kind, sql);
  return sql;
}

/** The kinds whose transitions a batch of coalesced writes makes in one statement (coalesce.ts). */
export const COMBINABLE_KINDS = ['complete', 'fail', 'cancel'] as const;
export type CombinableKind = (typeof COMBINABLE_KINDS)[number];

/**
 * One transition's part in a combined statement (the row of `$3`). Output, statistics and
 * error are JSON texts, as in the single statement: a JSON null stays a JSON null, an
 * absent value is SQL null.
 */
export interface TransitionRow {
  namespace: string;
  id: string;
  at: string;
  head: string;
  tail: string;
  body: Json;
  output: string | null;
  statistics: string | null;
  notes: string | null;
  error: string | null;
}

const manyCache = new Map<CombinableKind, PreparedSql>();

/**
 * Many terminal transitions of one kind in ONE statement: the same CTEs as transitionSql,
 * over a set of runs ($1 target status, $2 its source statuses, $3 a JSON array of
 * TransitionRow). At most one run per subject is taken (`pick`): two runs of one subject
 * would meet in one subject_status update and one subject.changed; the others return no
 * row, and the coalescer makes them alone after the batch. Change rows stay per run in order
 * (run.finished, then its subject.changed).
 */
export function transitionManySql(kind: CombinableKind): PreparedSql {
  let sql = manyCache.get(kind);
  if (sql) return sql;
  const runColumns = RUN_COLUMNS.replace(/(^|,)\s*(\w+)/g, '$1 r.$2');
  const changeLog = `, chg as (${insertChangesFrom(`(
    select namespace, type, at, run_id, job, subject, data from (
      select namespace, 'run.finished' as type, p_at as at, id as run_id, job, subject,
             json_build_object('run', ${runChangeJson('upd')}) as data, 1 as ord
        from upd
      union all
      select s.namespace, 'subject.changed', u.p_at, s.run_id, s.job, s.subject,
             json_build_object('job', s.job, 'subject', s.subject, 'previousStatus', s.previous_status, 'status', s.status, 'runId', s.run_id), 2
        from subject s join upd u on u.namespace = s.namespace and u.id = s.run_id
       where s.previous_status is distinct from s.status
    ) x order by run_id, ord
  ) c`)})`;
  sql = prepared(`
with p as (
  select namespace, id, at, head, tail, body, output::json as output, statistics::json as statistics, notes, error::json as error
    from json_to_recordset($3::json)
      as p(namespace text, id text, at timestamptz, head text, tail text, body json, output text, statistics text, notes text, error text)
), pick as (
  select distinct on (r.namespace, r.job, coalesce(r.subject, r.id)) p.*
    from p join runs r on r.namespace = p.namespace and r.id = p.id
   order by r.namespace, r.job, coalesce(r.subject, r.id), p.id
), upd as (
  update runs r set status = $1, ${SET_BY_KIND[kind]('p.at')},
         version = r.version + 1,
         last_seq = r.last_seq + 1,
         last_hash = ${sqlChainHash('r.last_hash', 'p.head', 'r.last_seq + 1', 'p.tail')}
    from pick p
   where r.namespace = p.namespace and r.id = p.id and r.status = any($2::text[])
  returning ${runColumns}, p.at as p_at, p.body as p_body
), ev as (
  insert into events (namespace, run_id, seq, type, at, recorded_at, body, hash)
  select namespace, id, last_seq, 'run.status', p_at, p_at, p_body, last_hash from upd
), subject as (${upsertSubjectStatusFrom('upd', 'namespace, job, subject, run_id, status, previous_status')})${changeLog}, ${rollupCtesFrom('upd')}
select ${RUN_COLUMNS} from upd`);
  manyCache.set(kind, sql);
  return sql;
}
