-- Changing the account's email address (docs/account.md): a confirmation link goes to the new address; only the
-- SHA-256 of its token is kept. It works once, for 24 hours; a newer request replaces it.
create table email_change (
    token_hash  text primary key check (length(token_hash) = 64),
    user_id     uuid not null references app_user (user_id) on delete cascade,
    new_email   text not null check (length(new_email) between 3 and 254),
    created_at  timestamptz not null default now(),
    expires_at  timestamptz not null,
    used_at     timestamptz
);
create index email_change_user on email_change (user_id);
