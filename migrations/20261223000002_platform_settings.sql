-- Platform settings an administrator changes in the console (docs/admin.md): whether anyone may sign up
-- (`open`) or nobody (`closed`: accounts are made by admins with `vortex create-admin` or promoted), and a
-- maintenance banner shown at the top of every page (empty: none). One row.
create table platform_settings (
    id             boolean primary key default true check (id),
    signup_policy  text not null default 'open' check (signup_policy in ('open', 'closed')),
    banner         text not null default '' check (length(banner) <= 500),
    updated_by     uuid references app_user (user_id) on delete set null,
    updated_at     timestamptz not null default now()
);
insert into platform_settings (id) values (true);
