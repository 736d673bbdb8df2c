/** startRun: idempotent create on (namespace, id) — docs/design.md, promise 4. */
import { IdConflictError, RunActiveError } from '../core/errors.js';
import { canonicalJson, chainHash } from '../core/hash.js';
import { newRunId } from '../core/ids.js';
import type { Json, StartRunInput } from '../core/types.js';
import { parseInput, startRunSchema } from '../core/validation.js';
import { prepared, type Queryable, type QueryResult } from '../store/database.js';
import { coalescedWrite } from './coalesce.js';
import { type LedgerContext, mapDbErrors } from './context.js';
import { getRunRow } from './queries.js';
import { missingRun } from './retention.js';
import { RUN_COLUMNS, type RunRow } from './rows.js';
import { LIVE_SQL } from './sql/fragments.js';
import { touchJobScheduleFrom, touchScheduleFrom } from './sql/subjectStatus.js';

const insertRunSql = prepared(`
with ins as (
  insert into runs (namespace, id, job, subject, trigger, actor, parent_id, status, external_ids, params, tags, notes,
                    created_at, started_at, lease_s, deadline_at, last_seq, last_hash, exclusive)
  select $1, $2, $3, $4, $5, $6, $7, $8, $9::json, $10::json, $11::json, $12, $13::timestamptz, $14::timestamptz, $15::int,
         $16::timestamptz, $17::int, $18, $20::boolean
   -- A pruned run's id is never reused (idempotency never expires): no insert, and the
   -- look-up below answers \`pruned\` with the tombstone.
   where not exists (select 1 from tombstones t where t.namespace = $1 and t.id = $2)
  on conflict (namespace, id) do nothing
  returning ${RUN_COLUMNS}
), ev as (
  insert into events (namespace, run_id, seq, type, at, recorded_at, body, hash)
  select ins.namespace, ins.id, e.seq, e.type, ins.created_at, ins.created_at, e.body, e.hash
    from ins, json_to_recordset($19::json) as e(seq int, type text, body json, hash text)
), started as (select namespace, job, subject, started_at from ins where started_at is not null
), due as (${touchScheduleFrom('started', 'u.started_at')}
), job_due as (${touchJobScheduleFrom('started', 'u.started_at')}
)
select ${RUN_COLUMNS} from ins`);

/**
 * The inserts of many startRuns in a batch (coalesce.ts) in ONE statement: $1 is a JSON array
 * of runs with the columns of insertRunSql's parameters and their first events. Ids that
 * exist insert nothing and return no row, as above; schedules move once per subject and job,
 * to the latest start. An exclusive start refused by runs_exclusive_idx fails the statement:
 * the coalescer then makes the batch write by write, which gives that start its own answer.
 */
const insertRunsSql = prepared(`
with v as (
  select * from json_to_recordset($1::json)
    as v(namespace text, id text, job text, subject text, trigger text, actor text, parent_id text, status text,
         external_ids json, params json, tags json, notes text, created_at timestamptz, started_at timestamptz,
         lease_s int, deadline_at timestamptz, last_seq int, last_hash text, exclusive boolean, events json)
), ins as (
  insert into runs (namespace, id, job, subject, trigger, actor, parent_id, status, external_ids, params, tags, notes,
                    created_at, started_at, lease_s, deadline_at, last_seq, last_hash, exclusive)
  select namespace, id, job, subject, trigger, actor, parent_id, status, external_ids, params, tags, notes,
         created_at, started_at, lease_s, deadline_at, last_seq, last_hash, exclusive
    from v
   -- As in insertRunSql: a pruned run's id is never reused (the look-up answers \`pruned\`).
   where not exists (select 1 from tombstones t where t.namespace = v.namespace and t.id = v.id)
   order by namespace, id
  on conflict (namespace, id) do nothing
  returning ${RUN_COLUMNS}
), ev as (
  insert into events (namespace, run_id, seq, type, at, recorded_at, body, hash)
  select ins.namespace, ins.id, e.seq, e.type, ins.created_at, ins.created_at, e.body, e.hash
    from ins join v on v.namespace = ins.namespace and v.id = ins.id, json_to_recordset(v.events) as e(seq int, type text, body json, hash text)
), started as (
  select namespace, job, subject, max(started_at) as started_at from ins where started_at is not null group by 1, 2, 3
), started_jobs as (
  select namespace, job, max(started_at) as started_at from started group by 1, 2
), due as (${touchScheduleFrom('started', 'u.started_at')}
), job_due as (${touchJobScheduleFrom('started_jobs', 'u.started_at')}
)
select ${RUN_COLUMNS} from ins`);

/** The columns of one run in insertRunsSql, from insertRunSql's parameters (in their order). */
const RUN_FIELDS = [
  'namespace',
  'id',
  'job',
  'subject',
  'trigger',
  'actor',
  'parent_id',
  'status',
  'external_ids',
  'params',
  'tags',
  'notes',
  'created_at',
  'started_at',
  'lease_s',
  'deadline_at',
  'last_seq',
  'last_hash',
  'events',
  'exclusive',
] as const;
const JSON_FIELDS = new Set(['external_ids', 'params', 'tags', 'events']);

const combinedInserts = {
  kind: 'startRun',
  async combine(q: Queryable, writes: unknown[][]) {
    const runs = writes.map((params) =>
      Object.fromEntries(RUN_FIELDS.map((f, i) => [f, JSON_FIELDS.has(f) ? JSON.parse(params[i] as string) : params[i]])),
    );
    const { rows } = await q.query<RunRow>(insertRunsSql, [JSON.stringify(runs)]);
    const byId = new Map(rows.map((r) => [`${r.namespace}\u0000${r.id}`, r]));
    return writes.map((params): QueryResult<RunRow> => {
      const row = byId.get(`${params[0] as string}\u0000${params[1] as string}`);
      return row ? { rows: [row], rowCount: 1 } : { rows: [], rowCount: 0 };
    });
  },
};

const activeRunSql = prepared(`
select id from runs
 where namespace = $1 and job = $2 and coalesce(subject, '') = coalesce($3, '') and exclusive and status in ${LIVE_SQL}`);

/**
 * The insert; when the exclusive index refuses it, the live run it names. That run may
 * finish between the refusal and the look-up: then the slot is free, so try again.
 */
async function insertOrActive(ctx: LedgerContext, job: string, subject: string | null, params: unknown[]) {
  for (;;) {
    try {
      return await coalescedWrite(ctx, params[1] as string, false, (q) => q.query<RunRow>(insertRunSql, params), combinedInserts, params);
    } catch (err) {
      const e = err as { code?: string; constraint?: string; message?: string };
      // The run was pruned while this insert waited for it (migration 0011): its tombstone.
      if (e.code === 'RL002') throw await missingRun(ctx, params[1] as string);
      if (e.code !== '23505' || !(e.constraint === 'runs_exclusive_idx' || e.message?.includes('runs_exclusive_idx'))) throw err;
      const { rows } = await ctx.db.query<{ id: string }>(activeRunSql, [ctx.namespace, job, subject]);
      if (rows[0]) throw new RunActiveError(job, subject, rows[0].id);
    }
  }
}

/** The fields that make up a run's identity: a repeated create must match them all. */
const IDENTITY = ['job', 'subject', 'trigger', 'actor', 'parentId', 'params'] as const;

export async function createRun(ctx: LedgerContext, raw: StartRunInput): Promise<{ row: RunRow; created: boolean }> {
  const input = parseInput(startRunSchema, raw);
  const id = input.id ?? newRunId();
  const status = input.status ?? 'running';
  const at = ctx.now().toISOString();

  // The first events are known in full here (seq 1…n), so the app computes their chain.
  const initial: { type: string; body: Json }[] = [{ type: 'run.status', body: { status } }];
  for (const [key, value] of Object.entries(input.externalIds ?? {})) initial.push({ type: 'run.external_id', body: { key, value } });
  let hash = '';
  const events = initial.map((e, i) => {
    hash = chainHash(hash, { at, body: e.body, key: null, level: null, seq: i + 1, type: e.type });
    return { seq: i + 1, type: e.type, body: e.body, hash };
  });

  return mapDbErrors(async () => {
    const { rows } = await insertOrActive(ctx, input.job, input.subject ?? null, [
      ctx.namespace,
      id,
      input.job,
      input.subject ?? null,
      input.trigger ?? null,
      input.actor ?? null,
      input.parentId ?? null,
      status,
      JSON.stringify(input.externalIds ?? {}),
      JSON.stringify(input.params ?? {}),
      JSON.stringify(input.tags ?? {}),
      input.notes ?? null,
      at,
      status === 'running' ? at : null,
      input.leaseS ?? null,
      input.deadlineAt ?? null,
      events.length,
      hash,
      JSON.stringify(events),
      input.exclusive ?? false,
    ]);
    if (rows[0]) {
      ctx.changes.emit('change', { namespace: ctx.namespace, runId: id, lastSeq: events.length, status });
      return { row: rows[0], created: true };
    }
    // The id exists: the same identity is the same run; anything else is a conflict.
    const existing = await getRunRow(ctx, id);
    const wanted = {
      job: input.job,
      subject: input.subject ?? null,
      trigger: input.trigger ?? null,
      actor: input.actor ?? null,
      parentId: input.parentId ?? null,
      params: input.params ?? {},
    };
    const stored = {
      job: existing.job,
      subject: existing.subject,
      trigger: existing.trigger,
      actor: existing.actor,
      parentId: existing.parent_id,
      params: existing.params,
    };
    const differing = IDENTITY.filter((f) => canonicalJson(wanted[f]) !== canonicalJson(stored[f]));
    if (differing.length) throw new IdConflictError(id, differing);
    return { row: existing, created: false };
  });
}
