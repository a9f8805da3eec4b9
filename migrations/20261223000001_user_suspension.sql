-- Suspension of accounts by an administrator (issue 15, "Admin console"; docs/admin.md).
--
-- `disabled_at` (from the accounts migration) stays the one switch that every sign-in, session and API token
-- check reads; a suspension sets it together with the reason the user is shown at sign-in, an optional end
-- (after which the next sign-in lifts the suspension) and the administrator who suspended. Unsuspending clears
-- all four. The audit trail keeps the history (`user_suspended`, `user_unsuspended`).
alter table app_user
    add column suspended_reason text check (length(suspended_reason) between 1 and 500),
    add column suspended_until  timestamptz,
    add column suspended_by     uuid references app_user (user_id) on delete set null,
    add constraint app_user_suspension_needs_disabled
        check (disabled_at is not null or (suspended_reason is null and suspended_until is null));

-- The admin user list filters by role and status and orders by creation.
create index app_user_created_idx on app_user (created_at desc);
