/**
 * Expectations: "job J runs every 12h (or on this cron schedule) per subject, with 30m
 * grace", and the monitor that notices the run that never happened.
 *
 * Where the state lives. The write path keeps each subject's `last_started_at`,
 * `next_due_at` (the first slot after it) and `overdue_at` (that slot plus grace) in the
 * statement that starts or finishes a run (sql/subjectStatus.ts); with `perSubject: false`
 * the same columns on the expectation row watch the job as a whole. The monitor owns the
 * episode columns (`missed_since`, `missed_due_at`, `next_missed_at`).
 *
 * What the monitor does on each pass, under an advisory lock (one monitor at a time,
 * however many servers), each row update conditional on what it read:
 *   1. tops up the cron slots the write path looks slots up in, and computes the next
 *      slot wherever SQL could not (a start older than the computed slots);
 *   2. `expectation.met` for an episode that a run started since ends;
 *   3. `expectation.missed` when a subject passes its slot plus grace, dated with that slot;
 *   4. `expectation.missed` for each further slot missed in the same episode. Slots that
 *      passed while no monitor ran (every server down for an hour) are reported as ONE
 *      change for the latest of them, with `missedSlots` and `firstDueAt`: nothing is
 *      forgotten and a restart does not flood consumers with a change per slot.
 * The state is in the database, so a restarted monitor continues where the last one
 * stopped: a slot is reported exactly once. The changes go into the namespace's change log
 * (`GET /v1/changes`) in the transaction that updates the state they report.
 */
import { NotFoundError } from '../core/errors.js';
import { cronSlots, nextSlot, parseSchedule, type Schedule } from '../core/schedule.js';
import type { Expectation, ExpectationChange, ExpectationInput, MonitorResult } from '../core/types.js';
import { expectationInputSchema, parseInput, startRunSchema } from '../core/validation.js';
import type { Queryable } from '../store/database.js';
import { type LedgerContext, mapDbErrors } from './context.js';
import { iso } from './rows.js';
import { appendChange } from './sql/changes.js';
import { nextDueSql } from './sql/schedule.js';

/** How many cron slots the write path can look up, from an hour before the refresh on. */
const SLOTS = 512;
const SLOTS_BACK_MS = 3600_000;
/** The most slots one catch-up counts one by one (a cron schedule; intervals are computed). */
const MAX_COUNTED = 10_000;
const BATCH = 500;

interface ExpectationRow {
  namespace: string;
  job: string;
  every: string | null;
  grace: string;
  cron: string | null;
  timezone: string;
  per_subject: boolean;
  created_at: Date;
  updated_at: Date;
  last_started_at: Date | null;
  next_due_at: Date | null;
  overdue_at: Date | null;
}

const EXPECTATION_COLUMNS = `namespace, job, every, cron, timezone, grace, per_subject, created_at, updated_at,
  last_started_at, next_due_at, overdue_at`;

function toExpectation(r: ExpectationRow, now: number): Expectation {
  return {
    namespace: r.namespace,
    job: r.job,
    every: r.every,
    cron: r.cron,
    timezone: r.timezone,
    grace: r.grace,
    perSubject: r.per_subject,
    createdAt: iso(r.created_at)!,
    updatedAt: iso(r.updated_at)!,
    lastStartedAt: iso(r.last_started_at),
    nextDueAt: iso(r.next_due_at),
    overdue: r.overdue_at !== null && r.overdue_at.getTime() <= now,
  };
}

const jobName = (job: unknown) => parseInput(startRunSchema.shape.job, job, 'job');

/** The cron slots from an hour before `now`, and when to compute them again (half-way through). */
function slotsFrom(s: Pick<Schedule, 'cron' | 'timezone'>, now: Date): { slots: string[]; from: string | null; refreshAt: string | null } {
  if (s.cron === null) return { slots: [], from: null, refreshAt: null };
  const from = new Date(now.getTime() - SLOTS_BACK_MS);
  const slots = cronSlots(s.cron, s.timezone, from, SLOTS);
  const last = slots.at(-1)!;
  return {
    slots: slots.map((d) => d.toISOString()),
    from: from.toISOString(),
    refreshAt: new Date((now.getTime() + last.getTime()) / 2).toISOString(),
  };
}

/**
 * Creates or replaces the expectation of `job`. The subjects' schedules are recomputed
 * from their runs (the latest start of each, live runs included) in the same transaction,
 * and any open episode is closed without a change: a new schedule starts afresh.
 * @example
 * await ledger.setExpectation('compliance-check', { every: '12h', grace: '30m' });
 * await ledger.setExpectation('nightly-export', { cron: '0 2 * * *', timezone: 'Europe/Berlin', grace: '1h', perSubject: false });
 */
export async function setExpectation(ctx: LedgerContext, jobRaw: string, raw: ExpectationInput): Promise<Expectation> {
  const job = jobName(jobRaw);
  const input = parseInput(expectationInputSchema, raw);
  const s = parseSchedule(input);
  const now = ctx.now();
  const { slots, from, refreshAt } = slotsFrom(s, now);
  return mapDbErrors(() =>
    ctx.db.withTransaction(async (tx) => {
      await tx.query(
        `insert into expectations as x (namespace, job, every_s, cron, timezone, grace_s, per_subject, slots, slots_refresh_at, created_at, updated_at,
                                        every, grace, slots_from)
         values ($1, $2, $3, $4, $5, $6, $7, $8::timestamptz[], $9, $10, $10, $11, $12, $13)
         on conflict (namespace, job) do update set every_s = excluded.every_s, cron = excluded.cron, timezone = excluded.timezone,
           grace_s = excluded.grace_s, every = excluded.every, grace = excluded.grace, per_subject = excluded.per_subject, slots = excluded.slots,
           slots_refresh_at = excluded.slots_refresh_at, slots_from = excluded.slots_from, updated_at = excluded.updated_at,
           last_started_at = null, next_due_at = null, overdue_at = null, missed_since = null, missed_due_at = null, next_missed_at = null`,
        [
          ctx.namespace,
          job,
          s.everyS,
          s.cron,
          s.timezone,
          s.graceS,
          s.perSubject,
          slots,
          refreshAt,
          now.toISOString(),
          input.every ?? null,
          input.grace,
          from,
        ],
      );
      // The latest start per subject, from the runs (runs_subject_idx per subject row), then its slot.
      await tx.query(
        `update subject_status s set
           last_started_at = greatest(s.last_started_at, (select max(r.started_at) from runs r
                                                           where r.namespace = s.namespace and r.subject = s.subject and r.job = s.job)),
           missed_since = null, missed_due_at = null, next_missed_at = null
         where s.namespace = $1 and s.job = $2`,
        [ctx.namespace, job],
      );
      await tx.query(
        `update subject_status s set
           next_due_at = case when e.per_subject then ${nextDueSql('e', 's.last_started_at')} end,
           overdue_at = case when e.per_subject then ${nextDueSql('e', 's.last_started_at')} + make_interval(secs => e.grace_s) end
          from expectations e
         where e.namespace = $1 and e.job = $2 and s.namespace = e.namespace and s.job = e.job`,
        [ctx.namespace, job],
      );
      if (!s.perSubject)
        await tx.query(
          `update expectations e set last_started_at = r.started, next_due_at = ${nextDueSql('e', 'r.started')},
                  overdue_at = ${nextDueSql('e', 'r.started')} + make_interval(secs => e.grace_s)
             from (select max(started_at) as started from runs where namespace = $1 and job = $2) r
            where e.namespace = $1 and e.job = $2`,
          [ctx.namespace, job],
        );
      return getExpectation(tx, ctx, job);
    }),
  );
}

async function getExpectation(q: Queryable, ctx: LedgerContext, job: string): Promise<Expectation> {
  const { rows } = await q.query<ExpectationRow>(`select ${EXPECTATION_COLUMNS} from expectations where namespace = $1 and job = $2`, [
    ctx.namespace,
    job,
  ]);
  if (!rows[0]) throw new NotFoundError(`job ${job} has no expectation in namespace ${ctx.namespace}`);
  return toExpectation(rows[0], ctx.now().getTime());
}

export async function listExpectations(ctx: LedgerContext): Promise<Expectation[]> {
  const { rows } = await ctx.db.query<ExpectationRow>(`select ${EXPECTATION_COLUMNS} from expectations where namespace = $1 order by job`, [
    ctx.namespace,
  ]);
  const now = ctx.now().getTime();
  return rows.map((r) => toExpectation(r, now));
}

/** Removes the expectation; its subjects are no longer due. False when there was none. */
export async function deleteExpectation(ctx: LedgerContext, jobRaw: string): Promise<boolean> {
  const job = jobName(jobRaw);
  return ctx.db.withTransaction(async (tx) => {
    const { rows } = await tx.query(`delete from expectations where namespace = $1 and job = $2 returning job`, [ctx.namespace, job]);
    if (!rows.length) return false;
    await tx.query(
      `update subject_status set next_due_at = null, overdue_at = null, missed_since = null, missed_due_at = null, next_missed_at = null
        where namespace = $1 and job = $2 and (next_due_at is not null or missed_since is not null)`,
      [ctx.namespace, job],
    );
    return true;
  });
}

// ——— the monitor ———

/** What the monitor watches: subjects of per-subject expectations, and jobs of the others. */
interface Watched {
  table: 'subject_status' | 'expectations';
  from: string;
  key: (alias: string) => string;
  subject: string;
}
const WATCHED: Watched[] = [
  {
    table: 'subject_status',
    from: `subject_status x join expectations e on e.namespace = x.namespace and e.job = x.job and e.per_subject`,
    key: (a) => `${a}.namespace = $1 and ${a}.job = $2 and ${a}.subject = $3`,
    subject: 'x.subject',
  },
  {
    table: 'expectations',
    from: `expectations x join expectations e on e.namespace = x.namespace and e.job = x.job and not e.per_subject`,
    key: (a) => `${a}.namespace = $1 and ${a}.job = $2 and $3::text is null`,
    subject: 'null::text',
  },
];

interface StateRow {
  namespace: string;
  job: string;
  subject: string | null;
  every_s: number | null;
  cron: string | null;
  timezone: string;
  grace_s: number;
  last_started_at: Date | null;
  next_due_at: Date | null;
  missed_since: Date | null;
  missed_due_at: Date | null;
}

const selectState = (w: Watched, where: string) =>
  `select x.namespace, x.job, ${w.subject} as subject, e.every_s, e.cron, e.timezone, e.grace_s,
          x.last_started_at, x.next_due_at, x.missed_since, x.missed_due_at
     from ${w.from} where ${where} limit ${BATCH}`;

const plus = (d: Date, s: number) => new Date(d.getTime() + s * 1000);
const schedOf = (r: StateRow) => ({ everyS: r.every_s, cron: r.cron, timezone: r.timezone });

/** The slots after `from` whose grace has passed by `now`: how many, the first and the last. */
function passedSlots(r: StateRow, from: Date, now: Date): { count: number; first: Date; last: Date } | null {
  const deadline = now.getTime() - r.grace_s * 1000;
  if (r.every_s !== null) {
    const count = Math.floor((deadline - from.getTime()) / (r.every_s * 1000));
    if (count < 1) return null;
    return { count, first: plus(from, r.every_s), last: plus(from, count * r.every_s) };
  }
  let count = 0;
  let first: Date | null = null;
  let last = from;
  for (
    let next = nextSlot(schedOf(r), last);
    next && next.getTime() <= deadline && count < MAX_COUNTED;
    next = nextSlot(schedOf(r), last)
  ) {
    first ??= next;
    last = next;
    count++;
  }
  return first ? { count, first, last } : null;
}

/** One monitor pass over every namespace; see the top of this file. */
export async function monitorExpectations(ctx: LedgerContext): Promise<MonitorResult> {
  const now = ctx.now();
  const at = now.toISOString();
  return ctx.db.withTransaction(async (tx): Promise<MonitorResult> => {
    const lock = await tx.query<{ ok: boolean }>(
      `select pg_try_advisory_xact_lock(hashtext(current_schema() || '.runledger.expectations')) as ok`,
    );
    if (!lock.rows[0].ok) return { acquired: false, changes: [] };
    const changes: ExpectationChange[] = [];
    const change = (type: ExpectationChange['type'], r: StateRow, data: Omit<ExpectationChange['data'], 'job' | 'subject'>) =>
      changes.push({
        type,
        namespace: r.namespace,
        job: r.job,
        subject: r.subject,
        at,
        data: { job: r.job, ...(r.subject !== null ? { subject: r.subject } : {}), ...data },
      });
    const args = (r: StateRow) => [r.namespace, r.job, r.subject];

    // Step 1: top up cron slots, then compute the next slot where SQL could not.
    const stale = await tx.query<{ namespace: string; job: string; cron: string; timezone: string }>(
      `select namespace, job, cron, timezone from expectations where cron is not null and slots_refresh_at <= $1 limit ${BATCH}`,
      [at],
    );
    for (const e of stale.rows) {
      const { slots, from, refreshAt } = slotsFrom(e, now);
      await tx.query(
        `update expectations set slots = $3::timestamptz[], slots_from = $4, slots_refresh_at = $5 where namespace = $1 and job = $2`,
        [e.namespace, e.job, slots, from, refreshAt],
      );
    }
    for (const w of WATCHED) {
      const { rows } = await tx.query<StateRow>(selectState(w, `x.next_due_at is null and x.last_started_at is not null`));
      for (const r of rows) {
        const due = nextSlot(schedOf(r), r.last_started_at!);
        if (!due) continue;
        await tx.query(
          `update ${w.table} x set next_due_at = $5, overdue_at = $6 where ${w.key('x')} and x.last_started_at = $4 and x.next_due_at is null`,
          [...args(r), r.last_started_at, due, plus(due, r.grace_s)],
        );
      }
    }

    for (const w of WATCHED) {
      // Step 2: a run started since the first missed slot ends the episode.
      const met = await tx.query<StateRow>(selectState(w, `x.missed_since is not null and x.last_started_at >= x.missed_since`));
      for (const r of met.rows) {
        const { rows } = await tx.query(
          `update ${w.table} x set missed_since = null, missed_due_at = null, next_missed_at = null
            where ${w.key('x')} and x.missed_since = $4 returning 1`,
          [...args(r), r.missed_since],
        );
        if (rows.length) change('expectation.met', r, { dueAt: iso(r.missed_since)!, lastRunAt: iso(r.last_started_at)! });
      }

      // Step 3: past the slot plus grace, no run started: overdue, dated with the slot.
      const late = await tx.query<StateRow>(selectState(w, `x.missed_since is null and x.overdue_at <= $1`), [at]);
      for (const r of late.rows) {
        const due = r.next_due_at!;
        const following = nextSlot(schedOf(r), due);
        const { rows } = await tx.query(
          `update ${w.table} x set missed_since = $4, missed_due_at = $4, next_missed_at = $5
            where ${w.key('x')} and x.missed_since is null and x.next_due_at = $4 returning 1`,
          [...args(r), due, following ? plus(following, r.grace_s) : null],
        );
        if (rows.length)
          change('expectation.missed', r, { dueAt: iso(due)!, ...(r.last_started_at ? { lastRunAt: iso(r.last_started_at)! } : {}) });
      }

      // Step 4: further slots of the episode; those that passed unwatched as one change.
      const more = await tx.query<StateRow>(selectState(w, `x.missed_since is not null and x.next_missed_at <= $1`), [at]);
      for (const r of more.rows) {
        const passed = passedSlots(r, r.missed_due_at!, now);
        if (!passed) continue;
        const following = nextSlot(schedOf(r), passed.last);
        const { rows } = await tx.query(
          `update ${w.table} x set missed_due_at = $5, next_missed_at = $6 where ${w.key('x')} and x.missed_due_at = $4 returning 1`,
          [...args(r), r.missed_due_at, passed.last, following ? plus(following, r.grace_s) : null],
        );
        if (!rows.length) continue;
        change('expectation.missed', r, {
          dueAt: iso(passed.last)!,
          ...(r.last_started_at ? { lastRunAt: iso(r.last_started_at)! } : {}),
          ...(passed.count > 1 ? { missedSlots: passed.count, firstDueAt: iso(passed.first)! } : {}),
        });
      }
    }
    // Step 5: into each namespace's change log, in this transaction with the state they report.
    for (const c of changes)
      await appendChange(tx, { namespace: c.namespace, type: c.type, job: c.job, subject: c.subject, data: c.data, at: c.at });
    return { acquired: true, changes };
  });
}
