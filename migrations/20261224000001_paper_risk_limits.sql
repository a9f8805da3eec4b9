-- Risk limits per paper run (docs/paper-trading.md, "Risk limits"; docs/design/paper-trading.md).

-- The run's limits: {mode, max_drawdown_pct, daily_loss, daily_loss_pct, max_consecutive_losses,
-- max_position_value, max_orders_per_day, stale_feed_secs}; a missing or null limit is off.
alter table paper_run add column risk_limits jsonb not null default '{"mode": "halt"}'::jsonb;

-- A breached limit: the run's mode as a gate on its candles from `applies_from` until `until` (exclusive; null:
-- until the owner releases it). Written with the candle whose close breached it (one per run, limit and candle,
-- so a recomputed or duplicate step cannot lock twice).
create table paper_risk_lock (
    lock_id uuid primary key,
    paper_run_id uuid not null references paper_run (paper_run_id) on delete cascade,
    limit_kind text not null check (limit_kind in ('max_drawdown', 'daily_loss', 'consecutive_losses',
                                                   'max_position_value', 'max_orders_per_day', 'stale_feed')),
    mode text not null check (mode in ('reduce_only', 'halt', 'flatten')),
    reason text not null,
    value float8 not null,
    threshold float8 not null,
    -- The candle at whose close it was found (for a feed that stopped: the last candle processed).
    candle_time timestamptz not null,
    applies_from timestamptz not null,
    until timestamptz,
    locked_at timestamptz not null,
    released_at timestamptz,
    released_by uuid references app_user (user_id) on delete set null,
    release_reason text,
    -- The run's last processed candle at the release: the limit measures again from the candle after it.
    released_after timestamptz,
    unique (paper_run_id, limit_kind, candle_time)
);

create index paper_risk_lock_run on paper_risk_lock (paper_run_id, locked_at desc);
