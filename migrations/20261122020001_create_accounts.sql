-- Accounts, sessions, API tokens, one-time tokens (email verification, password reset), the audit trail and
-- the email outbox.

create table app_user (
    user_id            uuid primary key,
    email              text not null check (length(email) between 3 and 254),
    display_name       text not null default '' check (length(display_name) <= 80),
    password_hash      text not null,
    role               text not null default 'trader' check (role in ('admin', 'trader', 'viewer')),
    time_zone          text not null default 'UTC',
    email_verified_at  timestamptz,
    password_changed_at timestamptz not null default now(),
    disabled_at        timestamptz,
    created_at         timestamptz not null default now(),
    updated_at         timestamptz not null default now()
);
create unique index app_user_email_key on app_user (lower(email));
create trigger app_user_set_updated_at before update on app_user
    for each row execute function set_updated_at();

-- A browser session. The session cookie's JWT names the row (sid); the row is checked on every request, so
-- revocation, sign-out and password changes take effect at once. session_id is 256 random bits, hex.
create table user_session (
    session_id    text primary key check (length(session_id) = 64),
    user_id       uuid not null references app_user (user_id) on delete cascade,
    user_agent    text not null default '',
    ip            text not null default '',
    created_at    timestamptz not null default now(),
    last_seen_at  timestamptz not null default now(),
    expires_at    timestamptz not null,
    revoked_at    timestamptz
);
create index user_session_user_idx on user_session (user_id) where revoked_at is null;

-- API tokens for the REST API: only a SHA-256 of the secret is stored.
create table api_token (
    api_token_id  uuid primary key,
    user_id       uuid not null references app_user (user_id) on delete cascade,
    name          text not null check (length(name) between 1 and 80),
    scope         text not null check (scope in ('read', 'read_write')),
    token_hash    bytea not null unique,
    token_prefix  text not null,
    expires_at    timestamptz,
    last_used_at  timestamptz,
    revoked_at    timestamptz,
    created_at    timestamptz not null default now()
);
create index api_token_user_idx on api_token (user_id);
create unique index api_token_user_name_key on api_token (user_id, lower(name)) where revoked_at is null;

-- Single-use tokens sent by email. Only a SHA-256 of the token is stored.
create table user_token (
    token_hash  bytea primary key,
    user_id     uuid not null references app_user (user_id) on delete cascade,
    purpose     text not null check (purpose in ('verify_email', 'reset_password')),
    expires_at  timestamptz not null,
    used_at     timestamptz,
    created_at  timestamptz not null default now()
);
create index user_token_user_idx on user_token (user_id, purpose);

-- Security events. subject_email keeps failed sign-ins for unknown addresses countable (rate limits) without
-- creating accounts. Rows are never updated.
create table audit_event (
    audit_event_id  bigint generated always as identity primary key,
    user_id         uuid references app_user (user_id) on delete set null,
    actor_id        uuid references app_user (user_id) on delete set null,
    event           text not null,
    subject_email   text,
    ip              text not null default '',
    user_agent      text not null default '',
    detail          jsonb not null default '{}'::jsonb,
    created_at      timestamptz not null default now()
);
create index audit_event_user_idx on audit_event (user_id, created_at desc);
create index audit_event_rate_email_idx on audit_event (event, lower(subject_email), created_at);
create index audit_event_rate_ip_idx on audit_event (event, ip, created_at);

-- Every email is a row here first, then sent by a job. message_id is deterministic so a resend after a crash
-- between the SMTP server's 250 and our commit can be recognised by the receiver.
create table email_outbox (
    email_id     uuid primary key,
    user_id      uuid references app_user (user_id) on delete set null,
    to_address   text not null,
    template     text not null,
    subject      text not null,
    body_text    text not null,
    body_html    text not null,
    message_id   text not null unique,
    status       text not null default 'queued' check (status in ('queued', 'sent', 'failed')),
    attempts     integer not null default 0,
    last_error   text,
    sent_at      timestamptz,
    created_at   timestamptz not null default now(),
    updated_at   timestamptz not null default now()
);
create index email_outbox_status_idx on email_outbox (status, created_at);
create trigger email_outbox_set_updated_at before update on email_outbox
    for each row execute function set_updated_at();
