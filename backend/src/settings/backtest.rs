//! Backtests and strategies: per-user limits, the memory budget, exports and quotas.

use super::reader::Reader;

/// Backtests run by workers (see `backend::backtest`).
#[derive(Debug, Clone)]
pub struct BacktestSettings {
    /// Queued plus running backtests one user may have at a time (subscription plans will set this per plan).
    pub max_concurrent: i64,
    /// REST API requests per user per minute (`API_RATE_LIMIT_PER_MINUTE`).
    pub api_rate_per_minute: u64,
    /// Most candles one backtest may load (bounds a worker's memory: ~56 bytes per candle while it runs).
    pub max_bars: i64,
    /// Points of the equity curve stored with a result (longer curves are thinned, keeping each bucket's low).
    pub equity_points: usize,
    /// Most memory one backtest or "why here?" trace may need, in bytes (`BACKTEST_MEMORY_BUDGET_MB`); also what
    /// the backtests a worker process runs at once may need together (see `backend::backtest::budget`).
    pub memory_budget_bytes: u64,
    // --- issue 11 (web): exports and strategy quotas ---
    /// Exports (trades CSV, result JSON, HTML report) streamed at once by one web process
    /// (`EXPORT_MAX_CONCURRENT`); more answer 503 with `Retry-After`.
    pub export_max_concurrent: usize,
    /// Exports one user may start per minute (`EXPORT_RATE_LIMIT_PER_MINUTE`); refused (503) when Redis
    /// cannot count them.
    pub export_rate_per_minute: u64,
    /// Strategies one user may own, archived ones included (`STRATEGY_QUOTA`).
    pub strategy_quota: i64,
    /// Saved versions one user may have across all strategies (`STRATEGY_VERSION_QUOTA`).
    pub version_quota: i64,
}

/// `BACKTEST_*`, `API_RATE_LIMIT_PER_MINUTE`, `EXPORT_*`, `STRATEGY_*`.
pub(super) fn parse(r: &mut Reader<'_>) -> BacktestSettings {
    BacktestSettings {
        max_concurrent: r.bounded("BACKTEST_MAX_CONCURRENT", 3i64, 1, 1000),
        api_rate_per_minute: r.bounded("API_RATE_LIMIT_PER_MINUTE", 600u64, 1, 1_000_000),
        max_bars: r.bounded("BACKTEST_MAX_BARS", 5_000_000i64, 1000, 100_000_000),
        equity_points: r.bounded("BACKTEST_EQUITY_POINTS", 5000usize, 100, 1_000_000),
        memory_budget_bytes: r.bounded("BACKTEST_MEMORY_BUDGET_MB", 1024u64, 16, 1 << 20)
            * 1024
            * 1024,
        export_max_concurrent: r.bounded("EXPORT_MAX_CONCURRENT", 4usize, 1, 1000),
        export_rate_per_minute: r.bounded("EXPORT_RATE_LIMIT_PER_MINUTE", 20u64, 1, 100_000),
        strategy_quota: r.bounded("STRATEGY_QUOTA", 200i64, 1, 1_000_000),
        version_quota: r.bounded("STRATEGY_VERSION_QUOTA", 5000i64, 1, 100_000_000),
    }
}
