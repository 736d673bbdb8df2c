/** Reads: one run, run lists with keyset paging, events, checkpoints, subjects. */
import { NotFoundError, ValidationError } from '../core/errors.js';
import type {
  EventPage,
  ListEventsOptions,
  ListRunsFilter,
  ListSubjectsFilter,
  Run,
  RunPage,
  RunStatus,
  SubjectDetail,
  SubjectPage,
} from '../core/types.js';
import { TOTAL_CAP } from '../core/types.js';
import { listEventsSchema, listRunsSchema, listSubjectsSchema, parseInput, runIdSchema } from '../core/validation.js';
import { type LedgerContext, mapDbErrors } from './context.js';
import { missingRun } from './retention.js';
import {
  EVENT_COLUMNS,
  type EventRow,
  RUN_COLUMNS,
  type RunRow,
  SUBJECT_COLUMNS,
  type SubjectRow,
  toEvent,
  toRun,
  toSubject,
} from './rows.js';

export function parseRunId(id: unknown): string {
  return parseInput(runIdSchema, id, 'id');
}

export async function getRunRow(ctx: LedgerContext, id: string): Promise<RunRow> {
  const { rows } = await ctx.db.query<RunRow>(`select ${RUN_COLUMNS} from runs where namespace = $1 and id = $2`, [ctx.namespace, id]);
  if (!rows[0]) throw await missingRun(ctx, id);
  return rows[0];
}

const getRunSql = `select ${RUN_COLUMNS},
  (select coalesce(jsonb_object_agg(status, n), '{}'::jsonb)
     from (select c.status, count(*)::int as n from runs c where c.namespace = r.namespace and c.parent_id = r.id group by c.status) k) as children
  from runs r where namespace = $1 and id = $2`;

/** One run, with its children by status when it has any (runs_parent_idx: one index range per parent). */
export async function getRun(ctx: LedgerContext, id: string): Promise<Run> {
  const { rows } = await ctx.db.query<RunRow & { children: Partial<Record<RunStatus, number>> }>(getRunSql, [ctx.namespace, id]);
  if (!rows[0]) throw await missingRun(ctx, id);
  const byStatus = rows[0].children;
  const total = Object.values(byStatus).reduce((a, n) => a + (n ?? 0), 0);
  const run = toRun(rows[0], ctx.now().getTime());
  return total ? { ...run, children: { total, byStatus } } : run;
}

export function encodeCursor(parts: unknown[]): string {
  return Buffer.from(JSON.stringify(parts)).toString('base64url');
}

export function decodeCursor(cursor: string, arity: number, what: string, valid: (parts: string[]) => boolean = () => true): string[] {
  try {
    const parts = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (Array.isArray(parts) && parts.length === arity && parts.every((p) => typeof p === 'string') && valid(parts)) return parts;
  } catch {
    // fall through
  }
  throw new ValidationError(`cursor must be a nextCursor returned by ${what}; got ${JSON.stringify(cursor.slice(0, 40))}`, [
    { field: 'cursor', message: 'not a cursor' },
  ]);
}

function splitKeyValue(text: string): [string, string] {
  const i = text.indexOf(':');
  return [text.slice(0, i), text.slice(i + 1)];
}

/** Newest first by (created_at, id); every filter is a bound parameter. */
export async function listRuns(ctx: LedgerContext, raw: ListRunsFilter = {}): Promise<RunPage> {
  const f = parseInput(listRunsSchema, raw);
  const params: unknown[] = [ctx.namespace];
  const where = ['namespace = $1'];
  const add = (clause: (p: string) => string, value: unknown) => {
    params.push(value);
    where.push(clause(`$${params.length}`));
  };
  if (f.job !== undefined) add((p) => `job = ${p}`, f.job);
  if (f.subject !== undefined) add((p) => `subject = ${p}`, f.subject);
  if (f.status !== undefined) {
    // One status as `=`: PostgreSQL 15 scans an index in order only for `=`, not for `= any(array)`,
    // so `any` would read every run of that status and sort them to return one page.
    const statuses = Array.isArray(f.status) ? f.status : [f.status];
    if (statuses.length === 1) add((p) => `status = ${p}`, statuses[0]);
    else add((p) => `status = any(${p}::text[])`, statuses);
  }
  if (f.trigger !== undefined) add((p) => `trigger = ${p}`, f.trigger);
  if (f.actor !== undefined) add((p) => `actor = ${p}`, f.actor);
  if (f.parentId !== undefined) add((p) => `parent_id = ${p}`, f.parentId);
  if (f.externalId !== undefined) {
    const [k, v] = splitKeyValue(f.externalId);
    add((p) => `external_ids::jsonb @> ${p}::jsonb`, JSON.stringify({ [k]: v }));
  }
  if (f.missingExternalId !== undefined) add((p) => `not jsonb_exists(external_ids::jsonb, ${p})`, f.missingExternalId);
  if (f.tag !== undefined) {
    const [k, v] = splitKeyValue(f.tag);
    add((p) => `tags::jsonb @> ${p}::jsonb`, JSON.stringify({ [k]: v }));
  }
  if (f.createdAfter !== undefined) add((p) => `created_at > ${p}::timestamptz`, f.createdAfter);
  if (f.createdBefore !== undefined) add((p) => `created_at < ${p}::timestamptz`, f.createdBefore);
  if (f.q !== undefined) {
    // A prefix LIKE (wildcards escaped): exact in every collation; in a C-collated database the
    // planner turns it into range scans of the primary key and the job/subject indexes.
    const pattern = `${f.q.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
    add((p) => `(id like ${p} or job like ${p} or subject like ${p})`, pattern);
  }
  // Counted before the cursor applies, and bounded: a count never reads more than TOTAL_CAP + 1 rows.
  const total =
    f.withTotal === true
      ? await mapDbErrors(() =>
          ctx.db.query<{ n: number }>(
            `select count(*)::int as n from (select 1 from runs where ${where.join(' and ')} limit ${TOTAL_CAP + 1}) t`,
            params,
          ),
        ).then(({ rows }) => rows[0]!.n)
      : undefined;
  if (f.cursor !== undefined) {
    // The time must be the ISO string we wrote: PostgreSQL would also take 'yesterday' or 'infinity'.
    const [createdAt, id] = decodeCursor(f.cursor, 2, 'listRuns', ([t]) => /^\d{4}-\d\d-\d\dT/.test(t) && !Number.isNaN(Date.parse(t)));
    params.push(createdAt, id);
    where.push(`(created_at, id) < ($${params.length - 1}::timestamptz, $${params.length})`);
  }
  const limit = f.limit ?? 50;
  params.push(limit + 1);
  // The page's keys first, then its rows: with the filtered columns in the index
  // (migration 0010), a page whose filters match few runs is found in the index alone,
  // without reading every candidate row from the table.
  const { rows } = await mapDbErrors(() =>
    ctx.db.query<RunRow>(
      `select ${RUN_COLUMNS} from runs where (namespace, id) in (
         select namespace, id from runs where ${where.join(' and ')} order by created_at desc, id desc limit $${params.length}
       ) order by created_at desc, id desc`,
      params,
    ),
  );
  const now = ctx.now().getTime();
  const page = rows.slice(0, limit);
  const last = page.at(-1);
  return {
    runs: page.map((r) => toRun(r, now)),
    nextCursor: rows.length > limit && last ? encodeCursor([last.created_at.toISOString(), last.id]) : null,
    ...(total !== undefined ? { total: Math.min(total, TOTAL_CAP), totalCapped: total > TOTAL_CAP } : {}),
  };
}

export async function listEvents(ctx: LedgerContext, id: string, raw: ListEventsOptions = {}): Promise<EventPage> {
  const o = parseInput(listEventsSchema, raw);
  const limit = o.limit ?? 100;
  await getRunRow(ctx, id);
  const { rows } = await ctx.db.query<EventRow>(
    `select ${EVENT_COLUMNS} from events where namespace = $1 and run_id = $2 and seq > $3 order by seq limit $4`,
    [ctx.namespace, id, o.afterSeq ?? 0, limit],
  );
  return { events: rows.map(toEvent), nextAfterSeq: rows.length === limit ? rows[rows.length - 1].seq : null };
}

export async function listSubjects(ctx: LedgerContext, raw: ListSubjectsFilter = {}): Promise<SubjectPage> {
  const f = parseInput(listSubjectsSchema, raw);
  const params: unknown[] = [ctx.namespace];
  const where = ['namespace = $1'];
  if (f.job !== undefined) {
    params.push(f.job);
    where.push(`job = $${params.length}`);
  }
  if (f.status !== undefined) {
    params.push(Array.isArray(f.status) ? f.status : [f.status]);
    where.push(`status = any($${params.length}::text[])`);
  }
  const now = ctx.now();
  if (f.overdue !== undefined) {
    params.push(now.toISOString());
    where.push(f.overdue ? `overdue_at <= $${params.length}` : `(overdue_at is null or overdue_at > $${params.length})`);
  }
  if (f.dueBefore !== undefined) {
    params.push(f.dueBefore);
    where.push(`next_due_at < $${params.length}::timestamptz`);
  }
  if (f.cursor !== undefined) {
    const [job, subject] = decodeCursor(f.cursor, 2, 'listSubjects');
    params.push(job, subject);
    where.push(`(job, subject) > ($${params.length - 1}, $${params.length})`);
  }
  const limit = f.limit ?? 50;
  params.push(limit + 1);
  const { rows } = await ctx.db.query<SubjectRow>(
    `select ${SUBJECT_COLUMNS} from subject_status where ${where.join(' and ')} order by job, subject limit $${params.length}`,
    params,
  );
  const page = rows.slice(0, limit);
  const last = page.at(-1);
  return {
    subjects: page.map((r) => toSubject(r, now.getTime())),
    nextCursor: rows.length > limit && last ? encodeCursor([last.job, last.subject]) : null,
  };
}

export async function getSubject(ctx: LedgerContext, job: string, subject: string, recent = 20): Promise<SubjectDetail> {
  const { rows } = await ctx.db.query<SubjectRow>(
    `select ${SUBJECT_COLUMNS} from subject_status where namespace = $1 and job = $2 and subject = $3`,
    [ctx.namespace, job, subject],
  );
  if (!rows[0]) throw new NotFoundError(`subject ${subject} of job ${job} has no status yet in namespace ${ctx.namespace}`);
  const runs = await ctx.db.query<RunRow>(
    `select ${RUN_COLUMNS} from runs where namespace = $1 and subject = $2 and job = $3 order by created_at desc, id desc limit $4`,
    [ctx.namespace, subject, job, recent],
  );
  const now = ctx.now().getTime();
  return { ...toSubject(rows[0], now), recentRuns: runs.rows.map((r) => toRun(r, now)) };
}
