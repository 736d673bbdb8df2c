/**
 * Retention (README "Retention, export and tombstones"): rules per namespace and job, the
 * pruner, tombstones, export and the exact restore of an export.
 *
 * The pruner deletes finished runs past their rule's keepDays with their events and
 * checkpoints — never a live run, never a subject's current run, never one of a subject's
 * newest keepLastPerSubject runs — and leaves a tombstone with the final chain head. One call
 * is one chunk, one short transaction under an advisory lock, so any number of servers and
 * CLIs prune one chunk at a time. Events and checkpoints stay immutable to everything else:
 * the trigger lets a delete through only in a transaction that has set `runledger.pruning` to
 * its own transaction id, and only for a run that already has a tombstone (migration 0005).
 */
import { LedgerError, NotFoundError, PrunedError, ValidationError } from '../core/errors.js';
import { chainHash, checkpointHash } from '../core/hash.js';
import { TERMINAL_STATUSES } from '../core/status.js';
import type {
  ExportedRun,
  ExportPage,
  ExportQuery,
  PruneOptions,
  PruneResult,
  RestoreItemResult,
  RestoreResult,
  RetentionRule,
  RetentionRules,
  RunStatus,
  Tombstone,
} from '../core/types.js';
import { exportedRunSchema, exportQuerySchema, parseInput, pruneOptionsSchema, retentionRulesSchema } from '../core/validation.js';
import type { Queryable } from '../store/database.js';
import { type LedgerContext, mapDbErrors } from './context.js';
import { iso } from './rows.js';
import {
  addRunsToRollups,
  insertRestoredCheckpoints,
  insertRestoredEvents,
  insertRestoredRuns,
  runStatement,
  upsertSubjectStatusOfRuns,
} from './sql/importedRuns.js';

const TERMINAL_SQL = `(${TERMINAL_STATUSES.map((s) => `'${s}'`).join(', ')})`;
/** The advisory lock every prune chunk holds (per schema, like the reaper's). */
const PRUNE_LOCK = `hashtext(current_schema() || '.runledger.prune')`;
export const DEFAULT_PRUNE_CHUNK = 500;
/** Events per export page at most (a page holds at least one run, whatever its length). */
const EXPORT_PAGE_EVENTS = 20_000;

interface TombstoneRow {
  namespace: string;
  id: string;
  job: string;
  subject: string | null;
  status: RunStatus;
  created_at: Date;
  finished_at: Date;
  last_seq: number;
  last_hash: string;
  pruned_at: Date;
}

const toTombstone = (t: TombstoneRow): Tombstone => ({
  namespace: t.namespace,
  id: t.id,
  job: t.job,
  subject: t.subject,
  status: t.status,
  createdAt: iso(t.created_at)!,
  finishedAt: iso(t.finished_at)!,
  lastSeq: t.last_seq,
  lastHash: t.last_hash,
  prunedAt: iso(t.pruned_at)!,
});

export async function getTombstone(q: Queryable, namespace: string, id: string): Promise<Tombstone | null> {
  const { rows } = await q.query<TombstoneRow>(`select * from tombstones where namespace = $1 and id = $2`, [namespace, id]);
  return rows[0] ? toTombstone(rows[0]) : null;
}

export const prunedError = (t: Tombstone) =>
  new PrunedError(
    `run ${t.id} was pruned at ${t.prunedAt} under the retention rules of namespace ${t.namespace}; its chain ended at seq ${t.lastSeq} with hash ${t.lastHash || '(empty)'}`,
    { ...t },
  );

/** The error for a run id that has no run row: `pruned` (410) with its tombstone, or `not_found`. */
export async function missingRun(ctx: LedgerContext, id: string, q: Queryable = ctx.db): Promise<LedgerError> {
  const t = await getTombstone(q, ctx.namespace, id);
  return t ? prunedError(t) : NotFoundError.run(id, ctx.namespace);
}

// ---------------------------------------------------------------------------------------------
// Rules

interface RuleRow {
  job: string;
  keep_days: number;
  keep_last_per_subject: number;
  updated_at: Date;
}

const toRules = (rows: RuleRow[]): RetentionRules => ({
  rules: rows.map((r) => ({
    ...(r.job === '' ? {} : { job: r.job }),
    keepDays: r.keep_days,
    keepLastPerSubject: r.keep_last_per_subject,
    updatedAt: iso(r.updated_at)!,
  })),
});

async function readRules(q: Queryable, namespace: string): Promise<RuleRow[]> {
  const { rows } = await q.query<RuleRow>(
    `select job, keep_days, keep_last_per_subject, updated_at from retention_rules where namespace = $1 order by job`,
    [namespace],
  );
  return rows;
}

/**
 * Replaces the namespace's rules with `rules` (an empty list removes them all: nothing is
 * pruned). A rule without `job` is the default; a job's own rule wins over it, whole.
 * @example
 * await ledger.setRetention([{ keepDays: 90 }, { job: 'compliance-check', keepDays: 400, keepLastPerSubject: 10 }]);
 */
export async function setRetention(ctx: LedgerContext, raw: RetentionRule[]): Promise<RetentionRules> {
  const rules = parseInput(retentionRulesSchema, raw, 'rules');
  const at = ctx.now().toISOString();
  return mapDbErrors(() =>
    ctx.db.withTransaction(async (tx) => {
      await tx.query(`delete from retention_rules where namespace = $1`, [ctx.namespace]);
      if (rules.length)
        await tx.query(
          `insert into retention_rules (namespace, job, keep_days, keep_last_per_subject, updated_at)
           select $1, r.job, r.keep_days, r.keep_last, $5 from unnest($2::text[], $3::int[], $4::int[]) as r(job, keep_days, keep_last)`,
          [ctx.namespace, rules.map((r) => r.job ?? ''), rules.map((r) => r.keepDays), rules.map((r) => r.keepLastPerSubject ?? 0), at],
        );
      return toRules(await readRules(tx, ctx.namespace));
    }),
  );
}

export async function getRetention(ctx: LedgerContext): Promise<RetentionRules> {
  return toRules(await readRules(ctx.db, ctx.namespace));
}

// ---------------------------------------------------------------------------------------------
// Which runs may go

interface CandidateRow {
  id: string;
  job: string;
  subject: string | null;
  created_at: Date;
  finished_at: Date;
  last_seq: number;
}

/**
 * The runs the rules allow pruning at `now`, oldest created first, after a (created_at, id)
 * cursor, optionally only among `ids`. Per rule one walk of runs_job_idx from the job's oldest
 * run (a run finished before the cut-off was created before it); the default rule walks every
 * job without a rule of its own, found by a skip scan of the same index (one probe per job).
 * What the walk passes over each time is bounded: live runs, runs created before the cut-off
 * but finished after it, and per subject its current run and newest keepLastPerSubject.
 * With `lock`, the rows are locked (FOR UPDATE, skipping rows another transaction holds).
 */
function candidatesSql(withLimit: boolean): string {
  return `
with recursive rules as (
  select job, keep_days, keep_last from unnest($3::text[], $4::int[], $5::int[]) as r(job, keep_days, keep_last)
), all_jobs(job) as (
  select (select min(job) from runs where namespace = $1)
  union all
  select (select min(r.job) from runs r where r.namespace = $1 and r.job > a.job) from all_jobs a where a.job is not null
), plan as (
  select job, keep_days, keep_last from rules
  union all
  select a.job, $6::int, $7::int from all_jobs a
   where $6::int is not null and a.job is not null and not exists (select 1 from rules x where x.job = a.job)
)
select c.id, c.job, c.subject, c.created_at, c.finished_at, c.last_seq
  from plan p
  cross join lateral (
    select r.id, r.job, r.subject, r.created_at, r.finished_at, r.last_seq
      from runs r
     where r.namespace = $1 and r.job = p.job
       and r.created_at < $2::timestamptz - make_interval(days => p.keep_days)
       and r.finished_at < $2::timestamptz - make_interval(days => p.keep_days)
       and r.status in ${TERMINAL_SQL}
       and ($8::timestamptz is null or (r.created_at, r.id) > ($8::timestamptz, $9::text))
       and ($10::text[] is null or r.id = any($10::text[]))
       and (r.subject is null or not exists (
             select 1 from subject_status s
              where s.namespace = r.namespace and s.job = r.job and s.subject = r.subject and s.run_id = r.id))
       and (r.subject is null or p.keep_last = 0 or (
             select count(*) from (
               select 1 from runs n
                where n.namespace = r.namespace and n.subject = r.subject and n.job = r.job
                  and (n.created_at, n.id) > (r.created_at, r.id)
                limit p.keep_last) k) >= p.keep_last)
     order by r.created_at, r.id
     ${withLimit ? 'limit $11' : ''}
  ) c
 order by c.created_at, c.id
 ${withLimit ? 'limit $11' : ''}`;
}

function candidateParams(namespace: string, now: Date, rules: RuleRow[], after: [string, string] | null, ids: string[] | null) {
  const own = rules.filter((r) => r.job !== '');
  const def = rules.find((r) => r.job === '');
  return [
    namespace,
    now.toISOString(),
    own.map((r) => r.job),
    own.map((r) => r.keep_days),
    own.map((r) => r.keep_last_per_subject),
    def?.keep_days ?? null,
    def?.keep_last_per_subject ?? 0,
    after?.[0] ?? null,
    after?.[1] ?? null,
    ids,
  ];
}

/**
 * The candidate query's estimate is large (a lateral walk per job, a skip scan whose row count
 * the planner cannot know), which on PostgreSQL crosses jit_above_cost: compiling it took 1.6 s
 * of a 1.8 s chunk (measured). The plan is index walks that JIT cannot speed up, so it is off.
 */
const NO_JIT = `set local jit = off`;

async function readOnly<T>(ctx: LedgerContext, fn: (tx: Queryable) => Promise<T>): Promise<T> {
  return ctx.db.withTransaction(async (tx) => {
    await tx.query(NO_JIT);
    return fn(tx);
  });
}

const candidateOut = (c: CandidateRow) => ({
  id: c.id,
  job: c.job,
  subject: c.subject,
  finishedAt: iso(c.finished_at)!,
  lastSeq: c.last_seq,
});

/**
 * One chunk of pruning in the context's namespace: up to `limit` runs (default 500) the rules
 * allow, deleted with their events and checkpoints in one transaction, each leaving a
 * tombstone. Call it until `more` is false. `dryRun` deletes nothing and also counts every
 * run the rules allow now (`eligible`). `ids` prunes only those runs, each only if the rules
 * still allow it (prune --archive exports a chunk, syncs it, then prunes exactly that chunk).
 * @example
 * for (let r = await ledger.prune(); r.more; r = await ledger.prune()) console.log(r.pruned);
 */
export async function prune(ctx: LedgerContext, raw: PruneOptions = {}, opts: { tryLock?: boolean } = {}): Promise<PruneResult> {
  const o = parseInput(pruneOptionsSchema, raw ?? {});
  // With ids, every one of them is considered (up to 5000), whatever the default chunk.
  const limit = o.limit ?? Math.max(DEFAULT_PRUNE_CHUNK, o.ids?.length ?? 0);
  const now = ctx.now();
  const rules = await readRules(ctx.db, ctx.namespace);
  const empty: PruneResult = { runs: [], pruned: 0, events: 0, checkpoints: 0, more: false, ...(o.dryRun ? { eligible: 0 } : {}) };
  if (!rules.length || (o.ids && !o.ids.length)) return empty;
  const ids = o.ids ?? null;

  if (o.dryRun) {
    const params = candidateParams(ctx.namespace, now, rules, null, ids);
    const { rows, eligible } = await readOnly(ctx, async (tx) => ({
      rows: (await tx.query<CandidateRow>(candidatesSql(true), [...params, limit])).rows,
      eligible: (await tx.query<{ n: number }>(`select count(*)::int as n from (${candidatesSql(false)}) c`, params)).rows[0].n,
    }));
    const events = rows.reduce((a, r) => a + r.last_seq, 0);
    return { runs: rows.map(candidateOut), pruned: 0, events, checkpoints: 0, eligible, more: eligible > rows.length };
  }

  return ctx.db.withTransaction(async (tx) => {
    const lock = await tx.query<{ ok: boolean }>(
      opts.tryLock
        ? `select pg_try_advisory_xact_lock(${PRUNE_LOCK}) as ok`
        : `select pg_advisory_xact_lock(${PRUNE_LOCK}) is not null as ok`,
    );
    if (!lock.rows[0].ok) return { ...empty, more: true };
    // The only way past the immutability trigger: this transaction's own id (migration 0005).
    await tx.query(`select set_config('runledger.pruning', pg_current_xact_id()::text, true)`);
    await tx.query(NO_JIT);
    const { rows } = await tx.query<CandidateRow>(candidatesSql(true), [...candidateParams(ctx.namespace, now, rules, null, ids), limit]);
    if (!rows.length) return empty;
    const chosen = rows.map((r) => r.id);
    // The run rows go first, re-checked under their row locks (a run cannot become live again;
    // the status test is the second line), and their tombstones are made from what was deleted.
    const gone = await tx.query<{ id: string }>(
      `with d as (
         delete from runs where namespace = $1 and id = any($2::text[]) and status in ${TERMINAL_SQL}
         returning namespace, id, job, subject, status, created_at, finished_at, last_seq, last_hash
       )
       insert into tombstones (namespace, id, job, subject, status, created_at, finished_at, last_seq, last_hash, pruned_at)
       select namespace, id, job, subject, status, created_at, finished_at, last_seq, last_hash, $3 from d
       returning id`,
      [ctx.namespace, chosen, now.toISOString()],
    );
    const ids2 = gone.rows.map((r) => r.id);
    const ev = await tx.query(`delete from events where namespace = $1 and run_id = any($2::text[])`, [ctx.namespace, ids2]);
    const cp = await tx.query(`delete from checkpoints where namespace = $1 and run_id = any($2::text[])`, [ctx.namespace, ids2]);
    const kept = new Set(ids2);
    return {
      runs: rows.filter((r) => kept.has(r.id)).map(candidateOut),
      pruned: ids2.length,
      events: ev.rowCount ?? 0,
      checkpoints: cp.rowCount ?? 0,
      more: ids === null && rows.length === limit,
    };
  });
}

/** Namespaces that have retention rules (the server's pruner visits each). */
export async function retentionNamespaces(ctx: LedgerContext): Promise<string[]> {
  const { rows } = await ctx.db.query<{ namespace: string }>(`select distinct namespace from retention_rules order by namespace`);
  return rows.map((r) => r.namespace);
}

// ---------------------------------------------------------------------------------------------
// Export

const encodeCursor = (parts: unknown[]) => Buffer.from(JSON.stringify(parts)).toString('base64url');

/** An export page's `after`: the `nextAfter` a previous page returned, refused naming the field otherwise. */
function decodeAfter(after: string, arity: number): string[] {
  try {
    const parts = JSON.parse(Buffer.from(after, 'base64url').toString('utf8'));
    if (Array.isArray(parts) && parts.length === arity && parts.every((p) => typeof p === 'string')) return parts;
  } catch {
    // fall through
  }
  throw new ValidationError(
    `after must be the nextAfter of a previous export page with the same prunable setting; got ${JSON.stringify(after.slice(0, 40))}`,
    [{ field: 'after', message: 'not a nextAfter' }],
  );
}

/** An ISO 8601 UTC time with milliseconds, as the API writes times. */
const ts = (col: string) => `to_char(${col} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;

/**
 * The JSON text of one value, by kind (null as null). Strings go through to_json (JSON's
 * escaping); json/jsonb columns are embedded as stored text; times are quoted to_char.
 */
const J = {
  str: (col: string) => `coalesce(to_json(${col}::text)::text, 'null')`,
  num: (col: string) => `coalesce(${col}::text, 'null')`,
  json: (col: string) => `coalesce(${col}::text, 'null')`,
  bool: (col: string) => `coalesce(case when ${col} then 'true' else 'false' end, 'null')`,
  time: (col: string) => `coalesce('"' || ${ts(col)} || '"', 'null')`,
};

/** `{"k":v,…}` by concatenation, from [key, SQL of the value's JSON text] pairs. */
const object = (fields: [string, string][]) =>
  `'{' || ${fields.map(([k, v], i) => `'${i ? ',' : ''}"${k}":' || ${v}`).join(' || ')} || '}'`;

/**
 * One export line (an ExportedRun) of the run row `r`, built by the database: the run row,
 * every event up to the row's chain head, every checkpoint. Built by text concatenation rather
 * than json_build_object, which looks up every argument's type and output function on every
 * call: 1.6× faster at 400 000 runs (BENCHMARKS.md). Keys are in the order of the API's
 * objects; Node only passes the text through.
 */
const exportLineSql = `(${object([
  [
    'run',
    object([
      ['id', J.str('r.id')],
      ['job', J.str('r.job')],
      ['subject', J.str('r.subject')],
      ['trigger', J.str('r.trigger')],
      ['actor', J.str('r.actor')],
      ['parentId', J.str('r.parent_id')],
      ['status', J.str('r.status')],
      ['attempt', J.num('r.attempt')],
      ['externalIds', J.json('r.external_ids')],
      ['params', J.json('r.params')],
      ['tags', J.json('r.tags')],
      ['notes', J.str('r.notes')],
      ['output', J.json('r.output')],
      ['statistics', J.json('r.statistics')],
      ['error', J.json('r.error')],
      ['progress', J.json('r.progress')],
      ['createdAt', J.time('r.created_at')],
      ['startedAt', J.time('r.started_at')],
      ['finishedAt', J.time('r.finished_at')],
      ['heartbeatAt', J.time('r.heartbeat_at')],
      ['leaseS', J.num('r.lease_s')],
      ['deadlineAt', J.time('r.deadline_at')],
      ['suspect', J.bool('r.suspect')],
      ['version', J.num('r.version')],
      ['lastSeq', J.num('r.last_seq')],
      ['lastHash', J.str('r.last_hash')],
      ['source', J.str('r.source')],
      ['sourceId', J.str('r.source_id')],
      ['exclusive', J.bool('r.exclusive')],
    ]),
  ],
  [
    'events',
    `coalesce((select '[' || string_agg(${object([
      ['seq', J.num('e.seq')],
      ['key', J.str('e.key')],
      ['type', J.str('e.type')],
      ['level', J.str('e.level')],
      ['at', J.time('e.at')],
      ['recordedAt', J.time('e.recorded_at')],
      ['body', J.json('e.body')],
      ['hash', J.str('e.hash')],
    ])}, ',' order by e.seq) || ']'
      from events e where e.namespace = r.namespace and e.run_id = r.id and e.seq <= r.last_seq), '[]')`,
  ],
  [
    'checkpoints',
    `coalesce((select '[' || string_agg(${object([
      ['name', J.str('c.name')],
      ['kind', J.str('c.kind')],
      ['ref', J.str('c.ref')],
      ['metadata', J.json('c.metadata')],
      ['data', J.json('c.data')],
      ['contentHash', J.str('c.content_hash')],
      ['seq', J.num('c.seq')],
      ['createdAt', J.time('c.created_at')],
    ])}, ',' order by c.seq, c.name) || ']'
      from checkpoints c where c.namespace = r.namespace and c.run_id = r.id and c.seq <= r.last_seq), '[]')`,
  ],
])})`;

const exportLinesSql = `
select ${exportLineSql} as line
  from unnest($2::text[]) with ordinality as h(id, n)
  join runs r on r.namespace = $1 and r.id = h.id
 order by h.n`;

interface Head {
  id: string;
  created_at: Date;
  last_seq: number;
}

/** How many of `heads` fit the page's event budget (at least one). */
function fitting(heads: Head[]): number {
  let total = 0;
  let n = 0;
  while (n < heads.length && (n === 0 || total + heads[n].last_seq <= EXPORT_PAGE_EVENTS)) total += heads[n++].last_seq;
  return n;
}

export interface ExportLines {
  /** One JSON text per run (an ExportedRun), without the newline. */
  lines: string[];
  /** The runs of the lines, in order, and their events in all. */
  ids: string[];
  events: number;
  nextAfter: string | null;
}

/**
 * A page of whole runs for export: by id (keyset), or with `prunable` the runs the rules
 * allow pruning now, oldest created first. A page holds `limit` runs (default 100) but stops
 * early past 20 000 events, so memory is bounded by the page, whatever the ledger's size.
 * Events and checkpoints are those up to the run row's chain head as read.
 */
export async function exportRuns(ctx: LedgerContext, raw: ExportQuery = {}): Promise<ExportPage> {
  const page = await exportLines(ctx, raw);
  return { runs: page.lines.map((l) => JSON.parse(l) as ExportedRun), nextAfter: page.nextAfter };
}

/** exportRuns as JSON text, one line per run: what the server streams and the CLI writes. */
export async function exportLines(ctx: LedgerContext, raw: ExportQuery = {}): Promise<ExportLines> {
  const q = parseInput(exportQuerySchema, raw ?? {});
  const limit = q.limit ?? 100;
  const linesOf = async (heads: Head[]) => ({
    lines: heads.length
      ? (await ctx.db.query<{ line: string }>(exportLinesSql, [ctx.namespace, heads.map((h) => h.id)])).rows.map((r) => r.line)
      : [],
    ids: heads.map((h) => h.id),
    events: heads.reduce((a, h) => a + h.last_seq, 0),
  });
  if (q.prunable) {
    const after = q.after ? (decodeAfter(q.after, 2) as [string, string]) : null;
    const rules = await readRules(ctx.db, ctx.namespace);
    if (!rules.length) return { lines: [], ids: [], events: 0, nextAfter: null };
    const rows = await readOnly(
      ctx,
      async (tx) =>
        (await tx.query<CandidateRow>(candidatesSql(true), [...candidateParams(ctx.namespace, ctx.now(), rules, after, null), limit])).rows,
    );
    const heads = rows.filter(
      (r) => (q.job === undefined || r.job === q.job) && (q.before === undefined || iso(r.finished_at)! < q.before),
    );
    const n = fitting(heads);
    const page = await linesOf(heads.slice(0, n));
    // Cut short by the event budget: resume after the last run exported; else after the last candidate read.
    const last = n < heads.length ? heads[n - 1] : rows.length === limit ? rows[rows.length - 1] : null;
    return { ...page, nextAfter: last ? encodeCursor([iso(last.created_at), last.id]) : null };
  }
  const after = q.after ? decodeAfter(q.after, 1)[0] : null;
  const { rows } = await ctx.db.query<Head>(
    `select id, created_at, last_seq from runs
      where namespace = $1 and ($2::text is null or id > $2)
        and ($3::text is null or job = $3)
        and ($4::timestamptz is null or (finished_at < $4 and status in ${TERMINAL_SQL}))
      order by id limit $5`,
    [ctx.namespace, after, q.job ?? null, q.before ?? null, limit],
  );
  const n = fitting(rows);
  const page = await linesOf(rows.slice(0, n));
  const more = rows.length === limit || n < rows.length;
  return { ...page, nextAfter: more && n ? encodeCursor([rows[n - 1].id]) : null };
}

/** A quoted SQL literal (COPY takes no parameters; standard_conforming_strings is on by default since 9.1). */
const literal = (s: string) => (s.includes('\\') ? ` E'${s.replace(/\\/g, '\\\\').replace(/'/g, "''")}'` : `'${s.replace(/'/g, "''")}'`);

/** Events per part of a streamed export, and connections building parts at once. */
const EXPORT_PART_EVENTS = 10_000;
const EXPORT_CONNECTIONS = 2;

/** The 11-byte signature, flags and header extension length of COPY's binary format. */
const COPY_HEADER = 19;

/**
 * The rows of a binary COPY of (line text, last_seq int4) as NDJSON: one buffer per chunk
 * read, holding whole lines each ended by a newline. Binary format, because text COPY
 * escapes backslashes: each field arrives as its bytes, length first, with nothing to undo.
 */
async function* ndjsonFromCopy(chunks: AsyncIterable<Buffer>, count: { runs: number; events: number }): AsyncGenerator<Buffer> {
  const NL = Buffer.from('\n');
  let buf: Buffer = Buffer.alloc(0);
  let pos = 0;
  let header = false;
  // A line longer than what is buffered: the chunks are kept until it is whole, then joined once.
  const waiting: Buffer[] = [];
  let waitingBytes = 0;
  let need = 0;
  const out: Buffer[] = [];
  let outBytes = 0;
  for await (const chunk of chunks) {
    if (need) {
      waiting.push(chunk);
      waitingBytes += chunk.length;
      if (waitingBytes < need) continue;
      buf = Buffer.concat(waiting, waitingBytes);
      waiting.length = 0;
      need = 0;
    } else buf = pos < buf.length ? Buffer.concat([buf.subarray(pos), chunk]) : chunk;
    pos = 0;
    for (;;) {
      // Each part of the export is a COPY of its own: header, tuples, trailer.
      if (!header) {
        if (buf.length - pos < COPY_HEADER) break;
        pos += COPY_HEADER + buf.readInt32BE(pos + 15);
        header = true;
        continue;
      }
      if (buf.length - pos < 2) break;
      const fields = buf.readInt16BE(pos);
      if (fields === -1) {
        pos += 2;
        header = false;
        continue;
      }
      if (buf.length - pos < 6) break;
      const len = buf.readInt32BE(pos + 2);
      const end = pos + 6 + len + 8;
      if (buf.length < end) {
        if (end - pos > 1 << 20) {
          // A long line (over 1 MB): its chunks are kept and joined once it is whole.
          waiting.push(buf.subarray(pos));
          waitingBytes = buf.length - pos;
          need = end - pos;
          buf = Buffer.alloc(0);
          pos = 0;
        }
        break;
      }
      out.push(buf.subarray(pos + 6, pos + 6 + len), NL);
      outBytes += len + 1;
      count.runs++;
      count.events += buf.readInt32BE(pos + 6 + len + 4);
      pos = end;
    }
    // Written in pieces of 1 MB or more: fewer, larger allocations and writes.
    if (outBytes >= 1 << 20) {
      yield Buffer.concat(out, outBytes);
      out.length = 0;
      outBytes = 0;
    }
  }
  if (outBytes) yield Buffer.concat(out, outBytes);
}

/**
 * The whole export of `query` (not `prunable`, which pages: prune --archive needs each chunk's
 * ids) as NDJSON lines, streamed by one COPY on PostgreSQL: one snapshot, no pages, and Node
 * only cuts the lines out of the stream. Elsewhere (PGlite), the pages of exportLines.
 * `count` is filled in as lines go by.
 */
export async function* exportStream(
  ctx: LedgerContext,
  raw: ExportQuery = {},
  count: { runs: number; events: number } = { runs: 0, events: 0 },
  opts: { partEvents?: number } = {},
): AsyncGenerator<Buffer> {
  const partEvents = Math.max(1, Math.floor(opts.partEvents ?? EXPORT_PART_EVENTS));
  const q = parseInput(exportQuerySchema, raw ?? {});
  if (q.prunable || q.after !== undefined || q.limit !== undefined || !ctx.db.copyOut) {
    for (let page: ExportLines | null = await exportLines(ctx, { ...q, limit: q.limit ?? 1000 }); page;) {
      // The next page is read while this one is written (two pages in memory at most).
      const next: Promise<ExportLines> | null = page.nextAfter ? exportLines(ctx, { ...q, limit: 1000, after: page.nextAfter }) : null;
      next?.catch(() => {});
      if (page.lines.length) {
        count.runs += page.lines.length;
        count.events += page.events;
        yield Buffer.from(page.lines.join('\n') + '\n');
      }
      page = next ? await next : null;
    }
    return;
  }
  const where = [
    `r.namespace = ${literal(ctx.namespace)}`,
    ...(q.job !== undefined ? [`r.job = ${literal(q.job)}`] : []),
    ...(q.before !== undefined ? [`r.finished_at < ${literal(q.before)}::timestamptz and r.status in ${TERMINAL_SQL}`] : []),
  ];
  const filter = where.join(' and ');
  // In parts of about EXPORT_PART_EVENTS events, cut at run ids (read in the export's snapshot),
  // so that two backends build lines at once: building the JSON is most of an export's time.
  const plan = async (tx: Queryable) => {
    const { rows } = await tx.query<{ id: string }>(
      `select id from (select id, s, lag(s) over (order by id) as p
                         from (select r.id, sum(r.last_seq + 1) over (order by r.id) as s from runs r where ${filter}) a) b
        where s / ${partEvents} <> coalesce(p, 0) / ${partEvents} order by id`,
    );
    const cuts = rows.map((r) => r.id);
    return [...cuts, null].map((hi, i) => {
      const lo = i ? cuts[i - 1] : null;
      const range = [...(lo !== null ? [`r.id >= ${literal(lo)}`] : []), ...(hi !== null ? [`r.id < ${literal(hi)}`] : [])];
      return `select ${exportLineSql}, r.last_seq from runs r where ${[filter, ...range].join(' and ')} order by r.id`;
    });
  };
  // JIT off: the estimate of a big export crosses jit_above_cost, and compiling the per-row
  // expressions took longer than the export itself (measured: 11.7 s against 4.8 s at 50 000 runs).
  yield* ndjsonFromCopy(ctx.db.copyOut(plan, { setup: [NO_JIT], connections: EXPORT_CONNECTIONS }), count);
}

// ---------------------------------------------------------------------------------------------
// Restore

/** The first line of an export file: how `runledger import` recognises one. */
export const EXPORT_FORMAT = 'runledger-export';

/** Checks an exported run's chain and checkpoint hashes; the problem, or null when it is whole. */
function chainProblem(r: ExportedRun): string | null {
  let prev = '';
  for (let i = 0; i < r.events.length; i++) {
    const e = r.events[i];
    if (e.seq !== i + 1) return `events.${i}.seq is ${e.seq}, expected ${i + 1} (an export holds every event of a run, in order)`;
    const hash = chainHash(prev, { seq: e.seq, type: e.type, at: e.at, body: e.body, key: e.key, level: e.level });
    if (hash !== e.hash) return `events.${i}.hash does not match the event (seq ${e.seq}): the export was altered or is not whole`;
    prev = hash;
  }
  if (r.events.length !== r.run.lastSeq || prev !== r.run.lastHash)
    return `run.lastSeq/lastHash (${r.run.lastSeq}, ${r.run.lastHash || '(empty)'}) are not the end of its events (${r.events.length}, ${prev || '(empty)'})`;
  const names = new Set<string>();
  for (let i = 0; i < r.checkpoints.length; i++) {
    const c = r.checkpoints[i];
    if (names.has(c.name)) return `checkpoints.${i}.name ${JSON.stringify(c.name)} is repeated`;
    names.add(c.name);
    if (checkpointHash({ name: c.name, kind: c.kind, ref: c.ref, metadata: c.metadata, data: c.data }) !== c.contentHash)
      return `checkpoints.${i}.contentHash does not match checkpoint ${JSON.stringify(c.name)}`;
  }
  return null;
}

type Restorable = { index: number; r: ExportedRun };
type Restoring = Restorable & { overTombstone: boolean };

/** Step 1: each record parsed and its hashes checked on its own; an invalid one never stops the others. */
function checkExports(records: unknown[], results: RestoreItemResult[]): Restorable[] {
  const ok: Restorable[] = [];
  const seen = new Set<string>();
  records.forEach((raw, index) => {
    const rawId = (raw as { run?: { id?: unknown } } | null)?.run?.id;
    const id = typeof rawId === 'string' ? rawId : null;
    try {
      const r = parseInput(exportedRunSchema, raw) as ExportedRun;
      const problem = chainProblem(r);
      if (problem) throw new ValidationError(`run ${r.run.id}: ${problem}`, [{ field: 'events', message: problem }]);
      if (seen.has(r.run.id)) {
        results[index] = { index, id, status: 'duplicate' };
        return;
      }
      seen.add(r.run.id);
      ok.push({ index, r });
    } catch (err) {
      if (!(err instanceof LedgerError)) throw err;
      results[index] = { index, id, status: 'invalid', error: { code: err.code, message: err.message } };
    }
  });
  return ok;
}

/** Step 2: against what is stored (locked): a stored run is a duplicate or a conflict, a tombstone must be this run's. */
async function restorable(ctx: LedgerContext, tx: Queryable, batch: Restorable[], results: RestoreItemResult[]): Promise<Restoring[]> {
  const ids = batch.map((b) => b.r.run.id);
  const { rows: existing } = await tx.query<{ id: string; last_seq: number; last_hash: string }>(
    `select id, last_seq, last_hash from runs where namespace = $1 and id = any($2::text[]) for update`,
    [ctx.namespace, ids],
  );
  const { rows: stones } = await tx.query<{ id: string; last_seq: number; last_hash: string }>(
    `select id, last_seq, last_hash from tombstones where namespace = $1 and id = any($2::text[]) for update`,
    [ctx.namespace, ids],
  );
  const have = new Map(existing.map((e) => [e.id, e]));
  const stone = new Map(stones.map((e) => [e.id, e]));
  const todo: Restoring[] = [];
  for (const b of batch) {
    const { run } = b.r;
    const h = have.get(run.id);
    const t = stone.get(run.id);
    if (h) {
      if (h.last_seq === run.lastSeq && h.last_hash === run.lastHash)
        results[b.index] = { index: b.index, id: run.id, status: 'duplicate' };
      else
        results[b.index] = {
          index: b.index,
          id: run.id,
          status: 'invalid',
          error: {
            code: 'id_conflict',
            message: `run ${run.id} is stored with another chain head (seq ${h.last_seq}, ${h.last_hash}) than this export's (seq ${run.lastSeq}, ${run.lastHash})`,
          },
        };
    } else if (t && (t.last_seq !== run.lastSeq || t.last_hash !== run.lastHash)) {
      results[b.index] = {
        index: b.index,
        id: run.id,
        status: 'invalid',
        error: {
          code: 'pruned',
          message: `run ${run.id} was pruned with its chain ending at seq ${t.last_seq}, hash ${t.last_hash || '(empty)'}; this export's chain ends at seq ${run.lastSeq}, hash ${run.lastHash || '(empty)'}, so it is not that run`,
        },
      };
    } else todo.push({ ...b, overTombstone: t !== undefined });
  }
  return todo;
}

/** Step 3: the tombstones they replace go, then the runs, their events and checkpoints as exported. */
async function writeRestored(ctx: LedgerContext, tx: Queryable, todo: Restoring[]): Promise<void> {
  // The tombstones go first: a run inserted over one is refused (migration 0011).
  const replaced = todo.filter((t) => t.overTombstone).map((t) => t.r.run.id);
  if (replaced.length) await tx.query(`delete from tombstones where namespace = $1 and id = any($2::text[])`, [ctx.namespace, replaced]);
  await runStatement(tx, insertRestoredRuns({ namespace: ctx.namespace, runs: todo.map((t) => t.r.run) }));
  const events = todo.flatMap((t) => t.r.events.map((e) => ({ runId: t.r.run.id, ...e })));
  for (let i = 0; i < events.length; i += 5000)
    await runStatement(tx, insertRestoredEvents({ namespace: ctx.namespace, events: events.slice(i, i + 5000) }));
  const cps = todo.flatMap((t) => t.r.checkpoints.map((c) => ({ runId: t.r.run.id, ...c })));
  if (cps.length) await runStatement(tx, insertRestoredCheckpoints({ namespace: ctx.namespace, checkpoints: cps }));
}

/** Step 4: subject status of the finished runs, and stats for those not replacing a tombstone (a pruned run was never uncounted). */
async function deriveRestored(ctx: LedgerContext, tx: Queryable, todo: Restoring[]): Promise<void> {
  const finished = todo.filter((t) => t.r.run.finishedAt !== null && TERMINAL_STATUSES.includes(t.r.run.status as never));
  const withSubject = finished.filter((t) => t.r.run.subject !== null).map((t) => t.r.run);
  if (withSubject.length)
    await runStatement(
      tx,
      upsertSubjectStatusOfRuns({
        namespace: ctx.namespace,
        runs: withSubject.map((r) => ({ ...r, startedAt: r.startedAt ?? r.createdAt })),
      }),
    );
  const counted = finished.filter((t) => !t.overTombstone).map((t) => t.r.run);
  if (counted.length) await runStatement(tx, addRunsToRollups({ namespace: ctx.namespace, runs: counted }));
}

/**
 * Restores exported runs exactly: the run row as it was (same id, version, chain head), every
 * event with its seq and hash, every checkpoint. Each run's chain and checkpoint hashes are
 * recomputed first, so what is stored verifies clean. A run whose id is already stored with
 * the same chain head is a duplicate (a re-run restores nothing twice); with another head,
 * or with no head of its own, `id_conflict`. A tombstone is replaced only by the run whose
 * chain ends in its lastSeq and lastHash; any other is refused `pruned`. Subject status
 * follows the freshness rule; stats count a restored run unless it replaces a tombstone
 * (a pruned run was never uncounted). Up to 1000 runs per call, one transaction.
 */
export async function restoreRuns(ctx: LedgerContext, records: unknown[]): Promise<RestoreResult> {
  if (!Array.isArray(records))
    throw new ValidationError('runs must be an array of exported runs', [{ field: 'runs', message: 'not an array' }]);
  if (records.length > 1000)
    throw new ValidationError(`runs must hold at most 1000 exported runs per call; got ${records.length}`, [
      { field: 'runs', message: 'too many' },
    ]);
  const results: RestoreItemResult[] = new Array(records.length);
  const ok = checkExports(records, results);

  const work = async (tx: Queryable, batch: Restorable[]) => {
    const todo = await restorable(ctx, tx, batch, results);
    if (!todo.length) return;
    await writeRestored(ctx, tx, todo);
    await deriveRestored(ctx, tx, todo);
    for (const t of todo) results[t.index] = { index: t.index, id: t.r.run.id, status: 'restored' };
  };

  // One transaction for the batch; when the database refuses it (an exclusive run that is live
  // twice, text it cannot store), each run alone, so the others are still restored.
  const commit = async (batch: Restorable[]): Promise<void> => {
    try {
      await mapDbErrors(() => ctx.db.withTransaction((tx) => work(tx, batch)));
    } catch (err) {
      if (batch.length === 1) {
        const e = err as { code?: string; message?: string };
        const b = batch[0];
        if (err instanceof LedgerError || e.code === '23505' || e.code === 'RL002')
          results[b.index] = {
            index: b.index,
            id: b.r.run.id,
            status: 'invalid',
            error: {
              code: err instanceof LedgerError ? err.code : e.code === 'RL002' ? 'pruned' : 'id_conflict',
              message: (err as Error).message,
            },
          };
        else throw err;
        return;
      }
      const code = (err as { code?: string }).code;
      if (!(err instanceof LedgerError) && code !== '23505' && code !== 'RL002') throw err;
      for (const b of batch) await commit([b]);
    }
  };
  if (ok.length) await commit(ok);
  let restored = 0;
  let duplicates = 0;
  let invalid = 0;
  for (const r of results)
    if (r.status === 'restored') restored++;
    else if (r.status === 'duplicate') duplicates++;
    else invalid++;
  return { results, restored, duplicates, invalid };
}
