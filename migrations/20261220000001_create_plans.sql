-- Plans and limits (issue 15, "Plans and limits"; docs/plans.md).
--
-- A plan is data: its price (minor units + ISO currency), billing period, trial days and limits. `limits` is a
-- JSON object of limit name → integer (the names in `backend::plans::Limit`); a name that is absent means
-- "no plan-specific value": the instance setting where one exists (BACKTEST_MAX_CONCURRENT, BACKTEST_MAX_BARS,
-- STRATEGY_QUOTA, API_RATE_LIMIT_PER_MINUTE), otherwise unlimited. The values are validated by the actions.
-- Plans are never deleted (users may be on them): they are archived, which stops new assignments.
create table plan (
    plan_id         uuid primary key,
    slug            text not null check (slug ~ '^[a-z0-9][a-z0-9-]{0,39}$'),
    name            text not null check (length(name) between 1 and 80),
    description     text not null default '' check (length(description) <= 500),
    price_minor     bigint not null default 0 check (price_minor between 0 and 100000000000),
    currency        text not null default 'USD' check (currency ~ '^[A-Z]{3}$'),
    billing_period  text not null default 'month' check (billing_period in ('month', 'year')),
    trial_days      integer not null default 0 check (trial_days between 0 and 365),
    is_default      boolean not null default false,
    limits          jsonb not null default '{}'::jsonb check (jsonb_typeof(limits) = 'object'),
    archived_at     timestamptz,
    created_at      timestamptz not null default now(),
    updated_at      timestamptz not null default now(),
    constraint plan_slug_key unique (slug),
    constraint plan_default_not_archived check (not (is_default and archived_at is not null))
);
-- Exactly one default plan at a time (the actions move the flag in one transaction).
create unique index plan_one_default on plan (is_default) where is_default;
create trigger plan_set_updated_at before update on plan
    for each row execute function set_updated_at();

-- The free plan every user without an assignment is on. Its limits are empty: each is the instance setting
-- (or unlimited), so an existing install behaves exactly as before.
insert into plan (plan_id, slug, name, description, is_default)
values ('00000000-0000-4000-8000-000000000001', 'free', 'Free',
        'The default plan: the limits this instance is configured with.', true);

-- A user's plan assignment and per-user overrides (a comp). No row = the default plan with no overrides.
-- `plan_id` null = the default plan (whichever it is) with these overrides. After `ends_at` the row no longer
-- applies (the user is back on the default plan); the row is kept for the record. `overrides` is a subset of
-- the limits, as in `plan.limits`. Payments (later) will add a subscription table keyed by user next to this.
create table user_plan (
    user_id      uuid primary key references app_user (user_id) on delete cascade,
    plan_id      uuid references plan (plan_id),
    overrides    jsonb not null default '{}'::jsonb check (jsonb_typeof(overrides) = 'object'),
    reason       text not null default '' check (length(reason) <= 500),
    assigned_by  uuid references app_user (user_id) on delete set null,
    ends_at      timestamptz,
    assigned_at  timestamptz not null default now()
);
create index user_plan_plan_idx on user_plan (plan_id);
