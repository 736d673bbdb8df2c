/**
 * The subject-status freshness rule (docs/design.md, promise 6) as one SQL fragment, used by
 * completion, the reaper and imports alike: a terminal run becomes the subject's current
 * status iff there is none yet or its (finished_at, run id) is greater than the current
 * one's. ON CONFLICT locks the row and re-checks against the latest committed verdict,
 * so the result does not depend on the order in which completions commit.
 *
 * The same statement keeps the subject's health (migration 0006): the last success and
 * failure, the streaks and the schedule. A streak is defined on the history, not on the
 * arrival order: `consecutive_successes` is the number of completed runs after the last
 * failure (failed or timed_out) by (finished_at, id), and the other way round; cancelled
 * runs count as neither. So a late, older run changes a streak only when it lands inside
 * it: a late failure older than the last success leaves the success streak alone, one
 * that lands between two successes of the streak shortens it to the successes after it.
 * The row lock makes increments exact; only the late case counts stored runs (older ones
 * of this subject inside the streak), and it does so by subtracting from the stored count,
 * so a fresh run committing meanwhile is never lost.
 *
 * `source` is a CTE/relation of one namespace with columns namespace, job, subject, id,
 * status, trigger, started_at, finished_at; it may hold several runs of one subject (an
 * import batch). It must not contain runs already counted in subject_status.
 * `returning` (optional) is appended as the statement's RETURNING list: it sees the new row,
 * whose previous_status is the status it replaced (null when the subject is new). A row also
 * comes back when only its health changed (a late run): then its run_id is not the source's.
 */
import { nextDueSql } from './schedule.js';

const SUCCESS = `= 'completed'`;
const FAILURE = `in ('failed', 'timed_out')`;

type Side = { at: string; id: string; streak: string; is: string };
const SUCCESS_SIDE: Side = { at: 'last_success_at', id: 'last_success_run_id', streak: 'consecutive_successes', is: SUCCESS };
const FAILURE_SIDE: Side = { at: 'last_failure_at', id: 'last_failure_run_id', streak: 'consecutive_failures', is: FAILURE };

/** `(x.at, x.id) > (y.at, y.id)`, true when y is null (no such run yet). */
const after = (xAt: string, xId: string, yAt: string, yId: string) => `(${yAt} is null or (${xAt}, ${xId}) > (${yAt}, ${yId}))`;

/** The batch moves this side's last run forward. */
const moves = (k: Side) => `(excluded.${k.at} is not null and ${after(`excluded.${k.at}`, `excluded.${k.id}`, `s.${k.at}`, `s.${k.id}`)})`;

/**
 * The new streak of side `k` (the other side is `o`): the runs of k after the other side's
 * last run, which the batch may have moved (o'). Stored ones: all of them when o' did not
 * move; none when o' is after k's last stored run; otherwise the stored count less the
 * stored runs that are now before o' (the late case). Plus the batch's own runs after o'.
 */
function streak(k: Side, o: Side, source: string): string {
  const stored = `case
      when not ${moves(o)} then s.${k.streak}
      when s.${k.at} is null or (excluded.${o.at}, excluded.${o.id}) > (s.${k.at}, s.${k.id}) then 0
      else s.${k.streak} - (select count(*) from runs r
         where r.namespace = s.namespace and r.job = s.job and r.subject = s.subject and r.status ${k.is}
           and ${after('r.finished_at', 'r.id', `s.${o.at}`, `s.${o.id}`)}
           and (r.finished_at, r.id) <= (excluded.${o.at}, excluded.${o.id})
           and not exists (select 1 from ${source} b where b.id = r.id))::int
    end`;
  const batch = `(select count(*) from ${source} b
      where b.job = s.job and b.subject = s.subject and b.finished_at is not null and b.status ${k.is}
        and case when ${moves(o)} then (b.finished_at, b.id) > (excluded.${o.at}, excluded.${o.id})
                 else ${after('b.finished_at', 'b.id', `s.${o.at}`, `s.${o.id}`)} end)::int`;
  return `${k.streak} = ${stored} + ${batch}`;
}

/** The batch's last run of side `k` for subject t, as a lateral join named `alias`. */
const lastOf = (k: Side, source: string, alias: string) => `
  left join lateral (select b.finished_at, b.id from ${source} b
     where b.job = t.job and b.subject = t.subject and b.finished_at is not null and b.status ${k.is}
     order by b.finished_at desc, b.id desc limit 1) ${alias} on true`;

/** A first row's streak: the batch's runs of k after its last run of the other side (alias o). */
const firstStreak = (k: Side, source: string, o: string) => `(select count(*) from ${source} b
     where b.job = t.job and b.subject = t.subject and b.finished_at is not null and b.status ${k.is}
       and ${after('b.finished_at', 'b.id', `${o}.finished_at`, `${o}.id`)})::int`;

export const upsertSubjectStatusFrom = (source: string, returning?: string) => {
  const fresh = `(s.finished_at, s.run_id) < (excluded.finished_at, excluded.run_id)`;
  const verdict = (col: string) => `${col} = case when ${fresh} then excluded.${col} else s.${col} end`;
  const started = `(excluded.last_started_at > s.last_started_at or (s.last_started_at is null and excluded.last_started_at is not null))`;
  const schedule = (col: string) => `${col} = case when ${started} then excluded.${col} else s.${col} end`;
  const side = (k: Side) => [
    `${k.at} = case when ${moves(k)} then excluded.${k.at} else s.${k.at} end`,
    `${k.id} = case when ${moves(k)} then excluded.${k.id} else s.${k.id} end`,
  ];
  return `
  insert into subject_status as s (namespace, job, subject, run_id, status, trigger, finished_at, previous_status, status_changed_at,
                                   last_success_at, last_success_run_id, last_failure_at, last_failure_run_id,
                                   consecutive_successes, consecutive_failures, last_started_at, next_due_at, overdue_at)
  select t.namespace, t.job, t.subject, t.id, t.status, t.trigger, t.finished_at, null, t.finished_at,
         ls.finished_at, ls.id, lf.finished_at, lf.id,
         ${firstStreak(SUCCESS_SIDE, source, 'lf')}, ${firstStreak(FAILURE_SIDE, source, 'ls')},
         st.started, d.due, d.due + d.grace
    from (select distinct on (job, subject) namespace, job, subject, id, status, trigger, finished_at
            from ${source}
           where subject is not null and finished_at is not null
           order by job, subject, finished_at desc, id desc) t
    ${lastOf(SUCCESS_SIDE, source, 'ls')}
    ${lastOf(FAILURE_SIDE, source, 'lf')}
    left join lateral (select max(b.started_at) as started from ${source} b where b.job = t.job and b.subject = t.subject) st on true
    left join lateral (select ${nextDueSql('e', 'st.started')} as due, make_interval(secs => e.grace_s) as grace
                         from expectations e where e.namespace = t.namespace and e.job = t.job and e.per_subject) d on true
  on conflict (namespace, job, subject) do update set
    ${verdict('run_id')},
    ${verdict('status')},
    ${verdict('trigger')},
    ${verdict('finished_at')},
    previous_status = case when ${fresh} then s.status else s.previous_status end,
    status_changed_at = case when ${fresh} and s.status <> excluded.status then excluded.finished_at else s.status_changed_at end,
    ${side(SUCCESS_SIDE).join(',\n    ')},
    ${side(FAILURE_SIDE).join(',\n    ')},
    ${streak(SUCCESS_SIDE, FAILURE_SIDE, source)},
    ${streak(FAILURE_SIDE, SUCCESS_SIDE, source)},
    last_started_at = greatest(s.last_started_at, excluded.last_started_at),
    ${schedule('next_due_at')},
    ${schedule('overdue_at')}
  where ${fresh} or excluded.last_success_at is not null or excluded.last_failure_at is not null or ${started}${
    returning
      ? `
  returning ${returning}`
      : ''
  }`;
};

/**
 * A run started (created running, or started): the subject's and the job's schedule move
 * to the first slot after `at`, in the same statement. Only where an expectation watches
 * the job, so a start costs one lookup of `expectations` otherwise. A subject is watched
 * once it has a status row (its first finished run); `source` has namespace, job, subject.
 */
export const touchScheduleFrom = (source: string, at: string) => `
  update subject_status s set last_started_at = x.at, next_due_at = x.due, overdue_at = x.due + x.grace
    from (select u.namespace, u.job, u.subject, ${at} as at, ${nextDueSql('e', at)} as due, make_interval(secs => e.grace_s) as grace
            from ${source} u join expectations e on e.namespace = u.namespace and e.job = u.job and e.per_subject
           where u.subject is not null) x
   where s.namespace = x.namespace and s.job = x.job and s.subject = x.subject
     and (s.last_started_at is null or s.last_started_at < x.at)`;

export const touchJobScheduleFrom = (source: string, at: string) => `
  update expectations e set last_started_at = ${at}, next_due_at = ${nextDueSql('e', at)},
         overdue_at = ${nextDueSql('e', at)} + make_interval(secs => e.grace_s)
    from ${source} u
   where e.namespace = u.namespace and e.job = u.job and not e.per_subject
     and (e.last_started_at is null or e.last_started_at < ${at})`;
