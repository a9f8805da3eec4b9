-- Traders' strategies (each save an immutable version) and backtest runs with their stored results.

create table strategy (
    strategy_id     uuid primary key,
    user_id         uuid not null references app_user (user_id) on delete cascade,
    name            text not null check (length(name) between 1 and 80),
    description     text not null default '' check (length(description) <= 2000),
    -- the catalogue template it was created from, if any
    template        text,
    -- the newest version's number (versions are 1, 2, 3, …)
    latest_version  integer not null default 1 check (latest_version > 0),
    -- an unsaved edit that did not compile: kept so the trader does not lose it (never run)
    draft_source    text check (length(draft_source) <= 65536),
    archived_at     timestamptz,
    created_at      timestamptz not null default now(),
    updated_at      timestamptz not null default now()
);
create index strategy_user_idx on strategy (user_id, updated_at desc);
create trigger strategy_set_updated_at before update on strategy
    for each row execute function set_updated_at();

-- One saved version. Rows are never updated or deleted while the strategy exists: a run points at the exact
-- source it ran.
create table strategy_version (
    strategy_version_id  uuid primary key,
    strategy_id          uuid not null references strategy (strategy_id) on delete cascade,
    version              integer not null check (version > 0),
    source               text not null check (length(source) <= 65536),
    source_hash          text not null,
    -- the declared parameters (name, kind, default, min, max) for building forms
    params               jsonb not null default '[]'::jsonb,
    created_at           timestamptz not null default now(),
    constraint strategy_version_key unique (strategy_id, version)
);

create function strategy_version_immutable() returns trigger as $$
begin
    raise exception 'strategy versions are immutable';
end;
$$ language plpgsql;
create trigger strategy_version_no_update before update on strategy_version
    for each row execute function strategy_version_immutable();

-- One backtest: what to run (a strategy version, parameters, one instrument's series, a range, the fill
-- model) and where it is (status, progress). The job row (queue) carries the work; this row is what the
-- trader sees. Runs created together from one form (several instruments) share batch_id.
create table backtest_run (
    backtest_run_id      uuid primary key,
    user_id              uuid not null references app_user (user_id) on delete cascade,
    strategy_id          uuid not null references strategy (strategy_id) on delete cascade,
    strategy_version_id  uuid not null references strategy_version (strategy_version_id) on delete cascade,
    batch_id             uuid not null,
    job_id               uuid,
    instrument_id        integer not null references instrument (instrument_id),
    timeframe            text not null check (timeframe in ('1m', '5m', '15m', '30m', '1h', '4h', '1d', '1w')),
    range_from           timestamptz not null,
    range_to             timestamptz not null check (range_to > range_from),
    -- parameter overrides as [[name, value], …] (text, as typed)
    params               jsonb not null default '[]'::jsonb,
    -- the engine's BacktestConfig
    config               jsonb not null,
    status               text not null default 'queued'
                         check (status in ('queued', 'running', 'done', 'failed', 'cancelled')),
    progress             real not null default 0 check (progress between 0 and 1),
    cancel_requested     boolean not null default false,
    error                text,
    -- headline metrics copied from the result, for sorting and filtering the runs list
    total_return         double precision,
    sharpe               double precision,
    max_drawdown         double precision,
    trade_count          integer,
    final_equity         double precision,
    -- where the time went: {queue_ms, load_ms, engine_ms, store_ms, bars}
    timing               jsonb,
    request_id           text,
    created_at           timestamptz not null default now(),
    started_at           timestamptz,
    finished_at          timestamptz,
    updated_at           timestamptz not null default now()
);
create index backtest_run_user_idx on backtest_run (user_id, created_at desc);
create index backtest_run_active_idx on backtest_run (user_id) where status in ('queued', 'running');
create index backtest_run_job_idx on backtest_run (job_id);
create trigger backtest_run_set_updated_at before update on backtest_run
    for each row execute function set_updated_at();

-- A finished run's result, written once (in the transaction that marks the job done).
create table backtest_result (
    backtest_run_id  uuid primary key references backtest_run (backtest_run_id) on delete cascade,
    job_id           uuid not null,
    metrics          jsonb not null,
    provenance       jsonb not null,
    -- {"time": [ms…], "equity": […]}, thinned to BACKTEST_EQUITY_POINTS
    equity           jsonb not null,
    bars             integer not null,
    skipped_entries  integer not null default 0,
    created_at       timestamptz not null default now()
);

-- Every trade of a result (sortable and paginated in SQL).
create table backtest_trade (
    backtest_run_id  uuid not null references backtest_result (backtest_run_id) on delete cascade,
    seq              integer not null,
    entry_time       timestamptz not null,
    exit_time        timestamptz not null,
    entry_price      double precision not null,
    exit_price       double precision not null,
    units            double precision not null,
    fees             double precision not null,
    pnl              double precision not null,
    return_pct       double precision not null,
    bars_held        integer not null,
    exit_reason      text not null,
    entry_rule       text not null,
    -- [[name, value|null], …] at the signal bar
    entry_values     jsonb not null default '[]'::jsonb,
    exit_rule        text,
    exit_values      jsonb not null default '[]'::jsonb,
    primary key (backtest_run_id, seq)
);
