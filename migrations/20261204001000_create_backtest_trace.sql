-- "Why here?" traces are computed by backtest workers (within the memory budget) and kept here, so a web
-- request only reads stored data. One row per (run, time, span) asked for; it goes with its run.
create table backtest_trace (
    backtest_run_id uuid not null references backtest_run (backtest_run_id) on delete cascade,
    time_ms         bigint not null,
    span_ms         bigint not null,
    -- The trace (same JSON as the answer), or why it was refused: {"kind", "field", "message"}.
    result          jsonb,
    error           jsonb,
    created_at      timestamptz not null default now(),
    primary key (backtest_run_id, time_ms, span_ms),
    check ((result is null) <> (error is null))
);
