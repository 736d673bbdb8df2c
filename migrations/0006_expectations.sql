-- Expectations and subject health: streaks and schedules on the subject status, exclusive
-- runs, and the per-job expectations the monitor checks.

-- 1. Subject health, kept by the statement that writes the verdict (sql/subjectStatus.ts).
--    A streak is exact whatever the order in which runs arrive: consecutive_successes counts
--    the completed runs after the last failure (failed or timed_out) by (finished_at, id),
--    consecutive_failures the failures after the last success; cancelled runs count as
--    neither. The last success and failure keep their run id to break ties on equal times.
alter table subject_status
  add column last_success_at       timestamptz,
  add column last_success_run_id   text,
  add column last_failure_at       timestamptz,
  add column last_failure_run_id   text,
  add column consecutive_successes integer not null default 0,
  add column consecutive_failures  integer not null default 0,
  -- The schedule: the latest start of any run of the subject, the first slot after it, and
  -- that slot plus the grace period (the moment the subject becomes overdue).
  add column last_started_at       timestamptz,
  add column next_due_at           timestamptz,
  add column overdue_at            timestamptz,
  -- The monitor's episode (expectations.ts): the first slot reported missed, the latest one,
  -- and when the slot after it will be missed. All null while the subject is on time.
  add column missed_since          timestamptz,
  add column missed_due_at         timestamptz,
  add column next_missed_at        timestamptz;

create index subject_status_due_idx on subject_status (namespace, next_due_at) where next_due_at is not null;
create index subject_status_overdue_idx on subject_status (overdue_at) where overdue_at is not null;
create index subject_status_missed_idx on subject_status (next_missed_at) where missed_since is not null;

-- 2. Exclusive runs: at most one live exclusive run per (namespace, job, subject). The
--    database enforces it, so two servers racing cannot both win. A run without a subject
--    is exclusive per job.
alter table runs add column exclusive boolean not null default false;
create unique index runs_exclusive_idx on runs (namespace, job, coalesce(subject, ''))
  where exclusive and status in ('submitted', 'running', 'retrying');

-- 3. Expectations, one per (namespace, job): an interval (every_s) or a cron expression in
--    a time zone, and a grace period. For a cron schedule `slots` holds every slot after
--    `slots_from`, computed in the time zone by the monitor, so that the write path can
--    find the first slot after a start in SQL. With per_subject false the job as a whole is watched and
--    the schedule and episode columns here are its state (the subject rows' otherwise).
create table expectations (
  namespace        text        not null,
  job              text        not null,
  -- The durations as given (read back exactly) and in seconds (what SQL computes with).
  every            text,
  every_s          integer     check (every_s > 0),
  cron             text,
  timezone         text        not null default 'UTC',
  grace            text        not null,
  grace_s          integer     not null check (grace_s >= 0),
  per_subject      boolean     not null default true,
  slots            timestamptz[] not null default '{}',
  slots_from       timestamptz,
  slots_refresh_at timestamptz,
  created_at       timestamptz not null,
  updated_at       timestamptz not null,
  last_started_at  timestamptz,
  next_due_at      timestamptz,
  overdue_at       timestamptz,
  missed_since     timestamptz,
  missed_due_at    timestamptz,
  next_missed_at   timestamptz,
  primary key (namespace, job),
  check ((every_s is null) <> (cron is null))
);
