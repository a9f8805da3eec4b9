-- Paper trading (docs/paper-trading.md): runs that advance on live candles as the ETL stores them.
--
-- A run's state after a candle is the engine's replay of the candles from warmup_from up to that candle with
-- the gate each candle was processed under (paper_candle.gate). A candle's effects (its paper_candle row, its
-- fills, closed trades, the run's cached state and cursor) commit in one transaction, and paper_candle's key
-- (run, open time) makes a second delivery of the same candle a no-op.
create table paper_run (
    paper_run_id         uuid primary key,
    user_id              uuid not null references app_user (user_id) on delete cascade,
    strategy_id          uuid not null references strategy (strategy_id) on delete cascade,
    strategy_version_id  uuid not null references strategy_version (strategy_version_id) on delete cascade,
    -- runs started together from one form (several instruments)
    batch_id             uuid not null,
    instrument_id        integer not null references instrument (instrument_id),
    timeframe            text not null check (timeframe in ('1m', '5m', '15m', '30m', '1h', '4h', '1d', '1w')),
    -- parameter overrides as [[name, value], …] and the engine's BacktestConfig, as for a backtest
    params               jsonb not null default '[]'::jsonb,
    config               jsonb not null,
    status               text not null default 'active'
                         check (status in ('active', 'paused', 'stopping', 'stopped', 'failed')),
    -- the run's own gate: open; halt while paused; flatten while stopping with "flatten first"
    run_gate             text not null default 'open'
                         check (run_gate in ('open', 'reduce_only', 'halt', 'flatten')),
    -- the first candle the replay reads (warm-up) and the first candle it decides on
    warmup_from          timestamptz not null,
    live_from            timestamptz not null check (live_from >= warmup_from),
    -- the last candle processed (null: none yet) and how many were processed
    last_open_time       timestamptz,
    candles_processed    integer not null default 0,
    -- cached state after last_open_time (the replay is the truth; these serve lists and pages)
    cash                 double precision not null,
    equity               double precision not null,
    position             jsonb,
    pending              jsonb,
    trade_count          integer not null default 0,
    realised_pnl         double precision not null default 0,
    fees_paid            double precision not null default 0,
    error                text,
    stop_reason          text,
    -- the latest notice about the run's data (history revised under it), shown on the run
    notice               text,
    request_id           text,
    created_at           timestamptz not null default now(),
    updated_at           timestamptz not null default now(),
    stopped_at           timestamptz
);
create index paper_run_user_idx on paper_run (user_id, created_at desc);
create index paper_run_feed_idx on paper_run (instrument_id, timeframe)
    where status in ('active', 'paused', 'stopping');
create trigger paper_run_set_updated_at before update on paper_run
    for each row execute function set_updated_at();

-- One processed candle: its prices as the run saw them (for the parity report), the gate it was processed
-- under, the state at its close and the decision (the engine's bar trace: rules, values, what was done).
create table paper_candle (
    paper_run_id  uuid not null references paper_run (paper_run_id) on delete cascade,
    open_time     timestamptz not null,
    open          double precision not null,
    high          double precision not null,
    low           double precision not null,
    close         double precision not null,
    volume        double precision not null,
    gate          text not null check (gate in ('open', 'reduce_only', 'halt', 'flatten')),
    equity        double precision not null,
    cash          double precision not null,
    units         double precision not null default 0,
    decision      jsonb not null,
    processed_at  timestamptz not null default now(),
    primary key (paper_run_id, open_time)
);
-- The replay reads only the gates that are not `open`.
create index paper_candle_gated_idx on paper_candle (paper_run_id, open_time) where gate <> 'open';

-- One fill, in the candle it filled in (entries and exits at that candle's open, stops inside it).
create table paper_fill (
    paper_run_id  uuid not null references paper_run (paper_run_id) on delete cascade,
    open_time     timestamptz not null,
    side          text not null check (side in ('buy', 'sell')),
    price         double precision not null,
    units         double precision not null,
    fee           double precision not null,
    -- entry: the rule; exit: the exit reason (signal, stop_loss, …, flatten)
    reason        text not null,
    rule          text,
    rule_values   jsonb not null default '[]'::jsonb,
    created_at    timestamptz not null default now(),
    primary key (paper_run_id, open_time, side)
);

-- Closed round trips, numbered from 1 in the order they closed.
create table paper_trade (
    paper_run_id  uuid not null references paper_run (paper_run_id) on delete cascade,
    seq           integer not null check (seq > 0),
    entry_time    timestamptz not null,
    exit_time     timestamptz not null,
    entry_price   double precision not null,
    exit_price    double precision not null,
    units         double precision not null,
    fees          double precision not null,
    pnl           double precision not null,
    return_pct    double precision not null,
    bars_held     integer not null,
    exit_reason   text not null,
    entry_rule    text not null,
    exit_rule     text,
    primary key (paper_run_id, seq)
);

-- Missing candles the run found between two it processed (shown on the run, never filled in).
create table paper_gap (
    paper_run_id  uuid not null references paper_run (paper_run_id) on delete cascade,
    gap_from      timestamptz not null,
    gap_to        timestamptz not null check (gap_to > gap_from),
    candles       integer not null,
    detected_at   timestamptz not null default now(),
    primary key (paper_run_id, gap_from)
);

-- Notifications name paper runs (per-run preference overrides; events about a run).
alter table notify_rule add constraint notify_rule_paper_run_fk
    foreign key (paper_run_id) references paper_run (paper_run_id) on delete cascade;
alter table notify_event add constraint notify_event_paper_run_fk
    foreign key (paper_run_id) references paper_run (paper_run_id) on delete set null;
