-- Sign-up approval (docs/admin.md#pending-sign-ups): a fourth sign-up policy, `approval`, under which a new
-- account waits, with the applicant's reason, until an administrator approves or rejects it. A pending account
-- is an `app_user` row with a `signup_request` row: it cannot sign in, holds no seat and runs nothing.
-- Approving deletes the request row; rejecting deletes the account (the request goes with it) and keeps only a
-- hash of the address with the day it may apply again.
alter table platform_settings drop constraint platform_settings_signup_policy_check;
alter table platform_settings add constraint platform_settings_signup_policy_check
    check (signup_policy in ('open', 'invite', 'approval', 'closed'));

-- Administrators who are notified of new requests (none marked: every active administrator is).
alter table app_user add column signup_approver boolean not null default false;

create table signup_request (
    user_id     uuid primary key references app_user (user_id) on delete cascade,
    reason      text not null check (length(reason) between 1 and 1000),
    created_at  timestamptz not null default now()
);
create index signup_request_created on signup_request (created_at);

-- A rejected address (SHA-256 of its lower-case form) may apply again from `reapply_after`.
create table signup_rejection (
    email_hash     text primary key check (length(email_hash) = 64),
    rejected_at    timestamptz not null default now(),
    reapply_after  timestamptz not null
);

-- Notifications for the sign-up approvers (`admin.signup_requested`).
-- Added NOT VALID, then validated (the pattern for a check on a big table). Note: the migration runs in one
-- transaction, so the drop's ACCESS EXCLUSIVE lock is held until commit anyway; the widened check accepts every
-- existing row, so the scan is the only cost.
alter table notify_event drop constraint notify_event_audience_check;
alter table notify_event add constraint notify_event_audience_check
    check (audience in ('user', 'admins', 'approvers', 'address')) not valid;
alter table notify_event validate constraint notify_event_audience_check;
