-- Billing reconciliation (issue 15, "After an outage, list undelivered events and run a nightly reconciliation";
-- docs/billing.md, "Reconciliation").
--
-- Where each processed event came from: its webhook delivery, or the provider's event list read by a
-- reconciliation run (an event whose delivery was lost). Rows written before this migration were webhooks.
alter table billing_event add column source text not null default 'webhook'
    check (source in ('webhook', 'reconcile'));

-- One row per reconciliation run: what it listed and synced, and how far it got. The provider's events are
-- listed newest first, filtered to a window [events_from, events_to] of their `created` time, from `events_upper`
-- down (the list's `created[lte]`). A run that stops early (its page budget, or the provider failing) leaves
-- `events_cursor` = the id of the last event it fully processed (and that event's `created`): the next run lists
-- the same window on from there (`starting_after`). A window read to its end (`events_complete`) moves the
-- watermark: the next window starts at its `events_to` minus an overlap.
create table billing_reconcile_run (
    run_id                 uuid primary key,
    -- The job that ran it (no foreign key: finished job rows are pruned before these).
    job_id                 uuid,
    trigger                text not null check (trigger in ('schedule', 'admin')),
    -- The administrator who pressed "Reconcile now" (NULL: the schedule).
    requested_by           uuid references app_user (user_id) on delete set null,
    started_at             timestamptz not null default now(),
    finished_at            timestamptz,
    -- running → ok (everything read and synced) | partial (stopped early or some subscriptions failed: the next
    -- run continues) | failed (nothing could be read) | abandoned (the worker died; found by the next run).
    outcome                text not null default 'running'
        check (outcome in ('running', 'ok', 'partial', 'failed', 'abandoned')),
    events_from            timestamptz not null,
    events_to              timestamptz not null,
    events_upper           timestamptz not null,
    events_cursor          text check (length(events_cursor) between 1 and 255),
    events_cursor_created  timestamptz,
    events_complete        boolean not null default false,
    pages                  integer not null default 0 check (pages >= 0),
    events_seen            integer not null default 0 check (events_seen >= 0),
    events_processed       integer not null default 0 check (events_processed >= 0),
    events_duplicate       integer not null default 0 check (events_duplicate >= 0),
    subscriptions_synced   integer not null default 0 check (subscriptions_synced >= 0),
    subscriptions_failed   integer not null default 0 check (subscriptions_failed >= 0),
    -- Up to 20 short error texts (no secrets: provider messages are cut and the key is never in them).
    errors                 jsonb not null default '[]'::jsonb check (jsonb_typeof(errors) = 'array'),
    constraint billing_reconcile_window check (events_from <= events_to and events_upper <= events_to),
    constraint billing_reconcile_cursor check ((events_cursor is null) = (events_cursor_created is null))
);
create index billing_reconcile_run_started_idx on billing_reconcile_run (started_at desc);
