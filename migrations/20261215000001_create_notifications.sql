-- Notifications (issue 13, docs/design/notifications.md §1): the whole schema in one migration, so the later
-- steps only add code. Columns that drive scheduling hold *clock time* (`Ctx.clock`, a manual clock in tests),
-- not database time; each says so.

-- The event stream, written by notify::emit in the transaction of the effect that caused it.
create table notify_event (
    event_id       uuid primary key,
    critical       boolean not null default false,
    event_type     text not null,                              -- 'backtest.finished'
    category       text not null,                              -- 'backtests'
    audience       text not null check (audience in ('user', 'admins', 'address')),
    user_id        uuid references app_user (user_id) on delete cascade,  -- subject; null = all admins
    paper_run_id   uuid,             -- per-run overrides; FK added by the paper-trading migration
    dedupe_key     text unique,      -- 'backtest.finished:<run_id>': a second emit is a no-op
    coalesce_key   text,             -- 'paper.fill:<run_id>', 'backtest.batch:<batch_id>'
    payload        jsonb not null,   -- typed payload (serde), self-contained: templates need nothing else
    occurred_at    timestamptz not null,                       -- clock time
    fanned_out_at  timestamptz,                                -- clock time
    created_at     timestamptz not null default now(),
    check (audience <> 'user' or user_id is not null)
);
create index notify_event_unfanned_idx on notify_event (created_at) where fanned_out_at is null;
create index notify_event_user_idx on notify_event (user_id, created_at desc);

-- In-app centre: one row per event × user, written by the fan-out; read marks live here.
create table notification (
    notification_id  uuid primary key,                         -- v5('notification|event_id|user_id')
    seq              bigint generated always as identity unique,  -- order, cursors, SSE
    user_id          uuid not null references app_user (user_id) on delete cascade,
    event_id         uuid not null references notify_event (event_id) on delete cascade,
    event_type       text not null,
    category         text not null,
    critical         boolean not null,
    title            text not null check (length(title) <= 200),
    body             text not null default '' check (length(body) <= 2000),
    url              text check (url like '/%'),               -- a path on this site: '/backtests/<id>'
    read_at          timestamptz,
    created_at       timestamptz not null default now(),
    unique (event_id, user_id)
);
create index notification_user_idx on notification (user_id, seq desc);
create index notification_unread_idx on notification (user_id, seq desc) where read_at is null;

-- Preferences: rules with wildcards; the most specific matching rule wins (design §4.2).
create table notify_rule (
    rule_id       uuid primary key,
    user_id       uuid not null references app_user (user_id) on delete cascade,
    paper_run_id  uuid,                                         -- null = every run
    category      text not null default '*',
    event_type    text not null default '*',
    channel       text not null default '*' check (channel in ('*', 'inapp', 'email', 'webhook')),
    mode          text not null check (mode in ('off', 'immediate', 'digest')),
    source        text not null default 'user' check (source in ('user', 'unsubscribe', 'admin')),
    updated_at    timestamptz not null default now(),
    check (event_type = '*' or category <> '*')
);
create unique index notify_rule_key
    on notify_rule (user_id, paper_run_id, category, event_type, channel) nulls not distinct;

-- Quiet hours and digest schedule; the time zone is the profile's (app_user.time_zone).
create table notify_settings (
    user_id           uuid primary key references app_user (user_id) on delete cascade,
    quiet_start       time,                                     -- both null = none; may wrap midnight
    quiet_end         time,
    quiet_action      text not null default 'defer' check (quiet_action in ('defer', 'digest')),
    digest_frequency  text not null default 'daily' check (digest_frequency in ('off', 'daily', 'weekly')),
    digest_weekday    smallint not null default 1 check (digest_weekday between 1 and 7),  -- ISO, Monday = 1
    digest_time       time not null default '08:00',
    next_digest_at    timestamptz,      -- clock time; recomputed on every change and after each digest
    updated_at        timestamptz not null default now(),
    check ((quiet_start is null) = (quiet_end is null))
);
create index notify_settings_digest_idx on notify_settings (next_digest_at) where next_digest_at is not null;

-- Chat and generic webhooks. Slack/Discord URLs are bearer secrets: never logged, never returned.
create table notify_webhook (
    webhook_id             uuid primary key,
    user_id                uuid not null references app_user (user_id) on delete cascade,
    name                   text not null check (length(name) between 1 and 80),
    kind                   text not null check (kind in ('slack', 'discord', 'generic')),
    url                    text not null,
    url_hint               text not null,                       -- 'https://hooks.slack.com/…/x9Qe'
    categories             text[] not null,                     -- what this destination receives
    secret                 text check (secret like 'whsec_%'),  -- generic only
    previous_secret        text,                                -- still signed with during a rotation
    previous_secret_until  timestamptz,
    disabled_at            timestamptz,
    disabled_reason        text,                                -- 'gone' (410/404), 'failing', 'user'
    consecutive_failures   integer not null default 0,
    last_success_at        timestamptz,
    last_failure_at        timestamptz,
    created_at             timestamptz not null default now(),
    updated_at             timestamptz not null default now(),
    check ((kind = 'generic') = (secret is not null))
);
create unique index notify_webhook_name_key on notify_webhook (user_id, lower(name));

-- Open batches: coalescing windows, quiet-hours deferrals, the hourly cap's "N more", digests.
create table notify_batch (
    batch_id    uuid primary key,
    user_id     uuid not null references app_user (user_id) on delete cascade,
    channel     text not null check (channel in ('email', 'webhook')),
    webhook_id  uuid references notify_webhook (webhook_id) on delete cascade,
    kind        text not null check (kind in ('coalesce', 'quiet', 'cap', 'digest')),
    batch_key   text not null,                                  -- the coalesce key; '' for the others
    flush_at    timestamptz not null,                           -- clock time
    status      text not null default 'open' check (status in ('open', 'flushed')),
    created_at  timestamptz not null default now()
);
create unique index notify_batch_open_key on notify_batch (user_id, channel, webhook_id, kind, batch_key)
    nulls not distinct where status = 'open';
create index notify_batch_due_idx on notify_batch (flush_at) where status = 'open';

-- One row per recipient × channel × event, or per batch message. Also the delivery log.
create table notify_delivery (
    delivery_id       uuid primary key,     -- v5('delivery|event|user|channel|target') or v5('batch|batch_id')
    user_id           uuid not null references app_user (user_id) on delete cascade,
    event_id          uuid references notify_event (event_id) on delete cascade,  -- null for batch messages
    batch_id          uuid references notify_batch (batch_id) on delete set null,
    is_batch_message  boolean not null default false,
    channel           text not null check (channel in ('email', 'webhook')),
    webhook_id        uuid references notify_webhook (webhook_id) on delete cascade,
    category          text not null,
    critical          boolean not null default false,
    status            text not null check (status in
                          ('pending', 'queued', 'sent', 'failed', 'suppressed', 'batched', 'cancelled')),
    -- off | unsubscribed | undeliverable | channel_disabled | quiet | coalesced | capped | digest
    -- | suppressed_by:<event_id> | refused_destination | rejected_address | gone | http_4xx
    reason            text,
    not_before        timestamptz,          -- clock time: when the batch of a 'pending' row flushes
    released_at       timestamptz,          -- clock time it became 'queued' (the hourly-cap window)
    job_id            uuid,
    provider_ref      text,                 -- Message-ID, or the webhook-id header
    attempts          integer not null default 0,
    last_error        text,
    sent_at           timestamptz,
    created_at        timestamptz not null default now(),
    updated_at        timestamptz not null default now(),
    check ((channel = 'webhook') = (webhook_id is not null)),
    check (is_batch_message or event_id is not null)
);
create index notify_delivery_pending_idx on notify_delivery (batch_id) where status = 'pending';
create index notify_delivery_user_idx on notify_delivery (user_id, created_at desc);
create index notify_delivery_event_idx on notify_delivery (event_id);
create index notify_delivery_cap_idx on notify_delivery (user_id, channel, released_at)
    where released_at is not null;
create index notify_delivery_webhook_idx on notify_delivery (webhook_id, created_at desc)
    where webhook_id is not null;

-- Each SMTP/HTTP try, so users and admins see what happened, and can replay.
create table notify_attempt (
    attempt_id   bigint generated always as identity primary key,
    delivery_id  uuid not null references notify_delivery (delivery_id) on delete cascade,
    attempt      integer not null,
    started_at   timestamptz not null default now(),
    duration_ms  integer,
    outcome      text not null,  -- ok | retry | rate_limited | failed | gone | refused | rejected_address
    http_status  integer,
    smtp_code    integer,
    remote_addr  text,           -- the pinned address connected to
    error        text check (length(error) <= 2000)
);
create index notify_attempt_delivery_idx on notify_attempt (delivery_id, attempt_id);

-- Storm control: a kill switch silences the per-order events it causes, for a while.
create table notify_suppression (
    suppression_id  bigint generated always as identity primary key,
    user_id         uuid not null references app_user (user_id) on delete cascade,
    scope           text not null,                              -- 'paper_run:<id>' | 'user'
    event_types     text[] not null,
    cause_event_id  uuid not null references notify_event (event_id) on delete cascade,
    until           timestamptz not null                        -- clock time
);
create index notify_suppression_idx on notify_suppression (user_id, until);

-- Owned by `mail`: addresses the relay rejected permanently; no mail goes to them until cleared.
create table mail_suppression (
    address       text primary key,                             -- lower(address)
    reason        text not null check (reason in ('rejected', 'manual')),
    smtp_code     integer,
    smtp_message  text,
    created_at    timestamptz not null default now()
);

alter table email_outbox
    add column mail_class text not null default 'transactional'
        check (mail_class in ('transactional', 'subscription')),
    add column category text,
    add column event_id uuid references notify_event (event_id) on delete set null,
    add column delivery_id uuid unique references notify_delivery (delivery_id) on delete set null,
    add column headers jsonb not null default '{}'::jsonb,       -- List-Id, List-Unsubscribe, …
    add column inline_parts jsonb not null default '[]'::jsonb,  -- [{cid, content_type, base64}]
    drop constraint email_outbox_status_check,
    add constraint email_outbox_status_check check (status in ('queued', 'sent', 'failed', 'suppressed'));

create trigger notify_delivery_set_updated_at before update on notify_delivery
    for each row execute function set_updated_at();
create trigger notify_webhook_set_updated_at before update on notify_webhook
    for each row execute function set_updated_at();
create trigger notify_settings_set_updated_at before update on notify_settings
    for each row execute function set_updated_at();
create trigger notify_rule_set_updated_at before update on notify_rule
    for each row execute function set_updated_at();

-- One shape for the user's and the admin's delivery log: notification deliveries, and the account-flow mails
-- (outbox rows without a delivery).
create view notify_delivery_log as
    select d.delivery_id as log_id, d.user_id, d.channel, d.webhook_id, d.category,
           coalesce(e.event_type, case when d.is_batch_message then 'notification.batch' end) as event_type,
           d.status, d.reason, d.attempts, d.last_error, d.provider_ref, d.sent_at, d.created_at
    from notify_delivery d left join notify_event e using (event_id)
    union all
    select o.email_id, o.user_id, 'email', null::uuid, coalesce(o.category, 'account'), o.template,
           o.status, null::text, o.attempts, o.last_error, o.message_id, o.sent_at, o.created_at
    from email_outbox o where o.delivery_id is null;
