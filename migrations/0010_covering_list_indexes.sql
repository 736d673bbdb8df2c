-- Covering indexes for the runs list's filter pairs.
--
-- A runs page is read in two steps (src/ledger/queries.ts): the ids of the page from an index,
-- then the rows by primary key. When a page filters on two columns, the planner walks the
-- index of one and checks the other on every entry it meets. If the second column is in the
-- index (INCLUDE), that check is made on the index entry itself, in an index-only scan,
-- instead of by fetching the row from the table: a rare status with a trigger that none of
-- its runs has walked every run of that status in the table (584 ms at 10M runs, 50 000 random
-- heap reads) and now walks index entries only (1 ms at 1M, was 7.8 ms).
--
-- Rebuilding them takes a lock that holds writes to runs for as long as it lasts (about a
-- minute per index at 10M runs on a small machine).
drop index runs_status_idx;
create index runs_status_idx on runs (namespace, status, created_at desc, id desc) include (job, subject, trigger, actor);
drop index runs_job_idx;
create index runs_job_idx on runs (namespace, job, created_at desc, id desc) include (status, subject, trigger, actor);
drop index runs_subject_idx;
create index runs_subject_idx on runs (namespace, subject, created_at desc, id desc) include (job, status, trigger) where subject is not null;
