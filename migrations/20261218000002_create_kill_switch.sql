-- Kill switches (docs/design/paper-trading.md, "Kill switches"): at most one active switch per scope and
-- target. The effective gate of a paper run's candle is the strictest of the run's own gate and the active
-- switches of the platform, the run's owner and the run.
create table kill_switch (
    switch_id       uuid primary key,
    scope           text not null check (scope in ('platform', 'user', 'run')),
    user_id         uuid references app_user (user_id) on delete cascade,
    paper_run_id    uuid references paper_run (paper_run_id) on delete cascade,
    mode            text not null check (mode in ('reduce_only', 'halt', 'flatten')),
    reason          text not null check (length(reason) between 1 and 500),
    -- who threw it: a user (admin or the trader), or null for the operator at the command line
    thrown_by       uuid references app_user (user_id) on delete set null,
    thrown_by_admin boolean not null default false,
    thrown_at       timestamptz not null default now(),
    released_at     timestamptz,
    released_by     uuid references app_user (user_id) on delete set null,
    release_reason  text check (length(release_reason) <= 500),
    check ((scope = 'platform' and user_id is null and paper_run_id is null)
        or (scope = 'user' and user_id is not null and paper_run_id is null)
        or (scope = 'run' and user_id is not null and paper_run_id is not null))
);
create unique index kill_switch_active_idx on kill_switch (scope, user_id, paper_run_id)
    nulls not distinct where released_at is null;
create index kill_switch_user_idx on kill_switch (user_id, thrown_at desc);

-- Deleting a paper run sets its events' run to null: find them by index.
create index notify_event_paper_run_idx on notify_event (paper_run_id) where paper_run_id is not null;
create index paper_run_strategy_idx on paper_run (strategy_id);
