-- Platform settings an administrator changes in the console (docs/admin.md): whether anyone may sign up
-- (`open`), only people with an invitation link (`invite`) or nobody (`closed`: accounts are made by admins with
-- `vortex create-admin` or promoted), and a maintenance banner shown at the top of every page (empty: none).
-- One row.
create table platform_settings (
    id             boolean primary key default true check (id),
    signup_policy  text not null default 'open' check (signup_policy in ('open', 'invite', 'closed')),
    banner         text not null default '' check (length(banner) <= 500),
    updated_by     uuid references app_user (user_id) on delete set null,
    updated_at     timestamptz not null default now()
);
insert into platform_settings (id) values (true);

-- Single-use invitation links (`/signup?invite=<token>`): only the SHA-256 of the token is kept. A link works
-- once, until it expires, while sign-up is `invite` (or `open`, where it is not needed).
create table signup_invite (
    token_hash  text primary key check (length(token_hash) = 64),
    created_by  uuid references app_user (user_id) on delete set null,
    created_at  timestamptz not null default now(),
    expires_at  timestamptz not null,
    used_at     timestamptz,
    used_by     uuid references app_user (user_id) on delete set null
);
