-- Over-quota grace periods (issue 15, "Over quota"; docs/plans.md, "Over your plan's limits").
--
-- A user whose usage of a limit that a plan change can leave exceeded (`active_paper_runs`, `strategies`) is
-- above its value has one open overage per limit: when it was found, when its grace period ends
-- (PLAN_GRACE_DAYS later), when the excess became read-only, and when the user was back within the limit.
-- Times are clock time (the application's clock, which tests set). While enforced, `restricted_ids` lists the
-- excess (paper runs under a reduce-only gate, or read-only strategies: the newest beyond the limit); it is
-- empty otherwise. Closed rows are kept for the record; every change is also in the audit log.
create table plan_overage (
    overage_id      uuid primary key,
    user_id         uuid not null references app_user (user_id) on delete cascade,
    limit_key       text not null check (limit_key in ('active_paper_runs', 'strategies')),
    -- the usage and the limit's value when it was found, and as last seen
    usage_at_start  bigint not null check (usage_at_start >= 0),
    allowed_at_start bigint not null check (allowed_at_start >= 0),
    usage           bigint not null check (usage >= 0),
    allowed         bigint not null check (allowed >= 0),
    -- the plan's name as last seen (the refusals and notices name it)
    plan_name       text not null check (length(plan_name) between 1 and 80),
    started_at      timestamptz not null,
    grace_ends_at   timestamptz not null check (grace_ends_at >= started_at),
    enforced_at     timestamptz check (enforced_at >= started_at),
    resolved_at     timestamptz check (resolved_at >= started_at),
    restricted_ids  uuid[] not null default '{}' check (cardinality(restricted_ids) <= 100000),
    check (resolved_at is null or cardinality(restricted_ids) = 0),
    check (enforced_at is not null or cardinality(restricted_ids) = 0)
);
-- One open overage per user and limit.
create unique index plan_overage_open_idx on plan_overage (user_id, limit_key) where resolved_at is null;
create index plan_overage_user_idx on plan_overage (user_id, started_at desc);
-- The sweep's grace ends, and the gates and read-only checks (a GIN index finds a run or strategy).
create index plan_overage_grace_idx on plan_overage (grace_ends_at) where resolved_at is null and enforced_at is null;
create index plan_overage_restricted_idx on plan_overage using gin (restricted_ids) where resolved_at is null;
