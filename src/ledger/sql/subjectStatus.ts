/**
 * The subject-status freshness rule (DESIGN invariant 6) as one SQL fragment, used by
 * completion, the reaper and imports alike: a terminal run becomes the subject's current
 * status iff there is none yet or its (finished_at, run id) is greater than the current
 * one's. ON CONFLICT locks the row and re-checks against the latest committed verdict,
 * so the result does not depend on the order in which completions commit.
 *
 * `source` is a CTE/relation with columns namespace, job, subject, id, status, trigger, finished_at.
 * `returning` (optional) is appended as the statement's RETURNING list: it sees the new row,
 * whose previous_status is the status it replaced (null when the subject is new).
 */
export const upsertSubjectStatusFrom = (source: string, returning?: string) => `
  insert into subject_status as s (namespace, job, subject, run_id, status, trigger, finished_at, previous_status, status_changed_at)
  select namespace, job, subject, id, status, trigger, finished_at, null, finished_at
    from ${source}
   where subject is not null and finished_at is not null
  on conflict (namespace, job, subject) do update set
    run_id = excluded.run_id,
    status = excluded.status,
    trigger = excluded.trigger,
    finished_at = excluded.finished_at,
    previous_status = s.status,
    status_changed_at = case when s.status = excluded.status then s.status_changed_at else excluded.finished_at end
  where (s.finished_at, s.run_id) < (excluded.finished_at, excluded.run_id)${
    returning
      ? `
  returning ${returning}`
      : ''
  }`;
