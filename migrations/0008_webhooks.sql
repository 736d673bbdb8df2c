-- Webhook deliveries: what the dispatcher needs beyond migration 0003.

-- 1. A replay makes a delivered or failed delivery pending again without renumbering its
--    attempts (they key the attempt log): the retry schedule counts the attempts made since
--    `round_start`, the value of `attempts` when the current round began.
alter table webhook_deliveries add column round_start integer not null default 0;

-- 2. Claims look for one endpoint's due deliveries, oldest due first; the listing of an
--    endpoint counts its pending and failed ones. Delivered rows are the bulk and are in neither.
create index webhook_deliveries_claim_idx on webhook_deliveries (namespace, webhook_id, next_at) where state = 'pending';
create index webhook_deliveries_failed_idx on webhook_deliveries (namespace, webhook_id) where state = 'failed';
drop index webhook_deliveries_due_idx;
