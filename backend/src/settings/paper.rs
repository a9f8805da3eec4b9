//! Paper trading: warm-up, limits and the catch-up schedule.

use std::time::Duration;

use super::reader::Reader;
use crate::risk_limits::{self as risk, RiskLimits};

/// `PAPER_*` (see docs/paper-trading.md).
#[derive(Debug, Clone)]
pub struct PaperSettings {
    /// Candles of history a run's indicators warm up on by default (`PAPER_WARMUP_BARS`).
    pub warmup_bars: i64,
    /// Most warm-up candles a start request may ask for (`PAPER_MAX_WARMUP_BARS`).
    pub max_warmup_bars: i64,
    /// Active (or paused, or stopping) runs one user may have unless their plan says otherwise
    /// (`PAPER_MAX_ACTIVE_RUNS`; the default plan's value).
    pub max_active_runs: i64,
    /// Most candles one run processes in one `paper_advance` job; more are left to the next job, which is
    /// enqueued at once (`PAPER_CATCHUP_CANDLES`).
    pub catchup_candles: usize,
    /// Most candles a run's replay may read (warm-up plus processed); a run reaching it stops with a message
    /// (`PAPER_MAX_WINDOW_BARS`).
    pub max_window_bars: usize,
    /// How often workers look for runs behind their feed (`PAPER_TICK_SECS`).
    pub tick: Duration,
    /// The risk limits a run starts with unless its start request says otherwise (`PAPER_RISK_*`; 0 = no
    /// such limit, the default for each).
    pub risk: RiskLimits,
}

pub(super) fn parse(r: &mut Reader<'_>) -> PaperSettings {
    PaperSettings {
        warmup_bars: r.bounded("PAPER_WARMUP_BARS", 500i64, 0, 100_000),
        max_warmup_bars: r.bounded("PAPER_MAX_WARMUP_BARS", 5_000i64, 0, 100_000),
        max_active_runs: r.bounded("PAPER_MAX_ACTIVE_RUNS", 20i64, 1, 100_000),
        catchup_candles: r.bounded("PAPER_CATCHUP_CANDLES", 500usize, 1, 100_000),
        max_window_bars: r.bounded("PAPER_MAX_WINDOW_BARS", 200_000usize, 1_000, 5_000_000),
        tick: Duration::from_secs(r.bounded("PAPER_TICK_SECS", 10u64, 1, 3600)),
        risk: parse_risk(r),
    }
}

fn parse_risk(r: &mut Reader<'_>) -> RiskLimits {
    let mode_text = r.string("PAPER_RISK_MODE", "halt");
    let mode = risk::mode(&mode_text).unwrap_or_else(|| {
        r.problem(
            "PAPER_RISK_MODE",
            format!("`{mode_text}` is not a mode; use reduce_only, halt or flatten"),
        );
        engine::backtest::Gate::Halt
    });
    let pct = |r: &mut Reader<'_>, var: &str| {
        Some(r.bounded(var, 0.0f64, 0.0, risk::MAX_PCT)).filter(|x| *x > 0.0)
    };
    let amount = |r: &mut Reader<'_>, var: &str| {
        Some(r.bounded(var, 0.0f64, 0.0, risk::MAX_AMOUNT)).filter(|x| *x > 0.0)
    };
    let count = |r: &mut Reader<'_>, var: &str| {
        Some(r.bounded(var, 0i32, 0, risk::MAX_COUNT)).filter(|x| *x > 0)
    };
    RiskLimits {
        mode,
        max_drawdown_pct: pct(r, "PAPER_RISK_MAX_DRAWDOWN_PCT"),
        daily_loss: amount(r, "PAPER_RISK_DAILY_LOSS"),
        daily_loss_pct: pct(r, "PAPER_RISK_DAILY_LOSS_PCT"),
        max_consecutive_losses: count(r, "PAPER_RISK_MAX_CONSECUTIVE_LOSSES"),
        max_position_value: amount(r, "PAPER_RISK_MAX_POSITION_VALUE"),
        max_orders_per_day: count(r, "PAPER_RISK_MAX_ORDERS_PER_DAY"),
        stale_feed_secs: Some(r.bounded(
            "PAPER_RISK_STALE_FEED_SECS",
            0i64,
            0,
            risk::MAX_STALE_SECS,
        ))
        .filter(|x| *x > 0),
    }
}
