-- Password checks are reserved here before argon2 runs: 'signin', and 'reauth' (the current password
-- confirming a password change or a new API token). Reserving takes a per-account and a per-client advisory
-- lock, so parallel guesses are counted at once and cannot exceed the limit; the outcome is recorded
-- afterwards. A reservation whose process died stays 'pending' and keeps counting as a failure.
-- account is lower(email) (also for addresses without an account); client is the client IP.
create table auth_attempt (
    auth_attempt_id  bigint generated always as identity primary key,
    kind             text not null check (kind in ('signin', 'reauth')),
    account          text not null,
    client           text not null default '',
    outcome          text not null default 'pending' check (outcome in ('pending', 'failed', 'succeeded')),
    created_at       timestamptz not null default now(),
    -- when the outcome was recorded (progressive delays run from here, not from the reservation)
    finished_at      timestamptz
);
create index auth_attempt_account_idx on auth_attempt (account, created_at);
create index auth_attempt_client_idx on auth_attempt (client, created_at);
