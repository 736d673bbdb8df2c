-- The change feed and webhooks.

-- 1. The change log: one row per change an outsider may act on (run.finished, run.suspect,
--    subject.changed, ...), inserted by the statement that makes the change.
--    Ids come from a sequence, so they are handed out at insert time, not in commit order:
--    a reader at id 41 that sees 43 committed while 42 is in flight must not pass 42.
--    Each row therefore records the id of its writing transaction (`xid`), and readers
--    serve only rows whose xid is below the xmin of their snapshot (every transaction below
--    it has ended, so that part of the log can no longer grow), in (xid, id) order. A late
--    commit delays readers; it is never skipped. The primary key is that order.
create table changes (
  namespace  text        not null,
  id         bigint      generated always as identity,
  xid        xid8        not null default pg_current_xact_id(),
  type       text        not null,
  at         timestamptz not null,
  run_id     text,
  job        text        not null,
  subject    text,
  data       jsonb       not null,
  primary key (namespace, xid, id)
);

-- 2. Webhook subscriptions. (after_xid, after_id) is how far the fan-out has read the feed
--    for this endpoint: changes past it are turned into deliveries by whichever server
--    locks the subscription first (SKIP LOCKED). The secret is kept because it signs.
create table webhooks (
  namespace        text        not null,
  id               text        not null,
  url              text        not null,
  types            text[]      not null,
  job              text,
  description      text,
  secret           text        not null,
  created_at       timestamptz not null,
  disabled_at      timestamptz,
  disabled_reason  text,
  after_xid        xid8        not null,
  after_id         bigint      not null,
  primary key (namespace, id)
);

-- 3. One delivery per (endpoint, change). `next_at` is when it is due; a server that claims
--    it pushes `next_at` past the request timeout (a lease), so a server killed mid-request
--    leaves it due again for another. `attempts` counts claims and fences late answers.
create table webhook_deliveries (
  namespace    text        not null,
  webhook_id   text        not null,
  change_xid   xid8        not null,
  change_id    bigint      not null,
  state        text        not null check (state in ('pending', 'delivered', 'failed')),
  attempts     integer     not null default 0,
  next_at      timestamptz not null,
  created_at   timestamptz not null,
  finished_at  timestamptz,
  primary key (namespace, webhook_id, change_id),
  foreign key (namespace, webhook_id) references webhooks (namespace, id) on delete cascade
);
create index webhook_deliveries_due_idx on webhook_deliveries (next_at) where state = 'pending';
create index webhook_deliveries_recent_idx on webhook_deliveries (namespace, webhook_id, created_at desc, change_id desc);

-- 4. Every attempt, kept (failed ones included): the delivery log.
create table webhook_attempts (
  namespace    text        not null,
  webhook_id   text        not null,
  change_id    bigint      not null,
  attempt      integer     not null,
  at           timestamptz not null,
  duration_ms  integer     not null,
  status_code  integer,
  error        text,
  outcome      text        not null check (outcome in ('delivered', 'retry', 'failed', 'disabled')),
  primary key (namespace, webhook_id, change_id, attempt),
  foreign key (namespace, webhook_id) references webhooks (namespace, id) on delete cascade
);
