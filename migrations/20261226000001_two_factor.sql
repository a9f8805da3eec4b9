-- Two-factor sign-in (TOTP, RFC 6238) with recovery codes (docs/account.md).
--
-- `user_totp`: one authenticator per account. The secret is encrypted with a key derived from JWT_SECRET
-- (SECRETS.md); `enabled_at` is null while the enrolment waits for its first code. `last_step` is the last
-- accepted 30-second time step: a code of that step or an earlier one is refused, so a code works once even
-- across web replicas.
create table user_totp (
    user_id      uuid primary key references app_user (user_id) on delete cascade,
    secret_enc   bytea not null,
    enabled_at   timestamptz,
    last_step    bigint,
    created_at   timestamptz not null default now()
);

-- Single-use recovery codes: only their SHA-256 is kept.
create table user_recovery_code (
    user_id    uuid not null references app_user (user_id) on delete cascade,
    code_hash  text not null check (length(code_hash) = 64),
    used_at    timestamptz,
    primary key (user_id, code_hash)
);

-- The pending second step of a sign-in (password accepted, code not yet): a random token in a short-lived
-- cookie names it; only its SHA-256 is kept. It lives 5 minutes and allows a few attempts.
create table signin_challenge (
    challenge_hash  text primary key check (length(challenge_hash) = 64),
    user_id         uuid not null references app_user (user_id) on delete cascade,
    attempts        integer not null default 0,
    created_at      timestamptz not null default now(),
    expires_at      timestamptz not null,
    used_at         timestamptz
);
create index signin_challenge_user on signin_challenge (user_id);

-- "Two-factor sign-in is mandatory for admins" (docs/admin.md): admins without it are sent to enrol first.
alter table platform_settings add column admin_two_factor_required boolean not null default false;
