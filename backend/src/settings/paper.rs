//! Paper trading: warm-up, limits and the catch-up schedule.

use std::time::Duration;

use super::reader::Reader;

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
}

pub(super) fn parse(r: &mut Reader<'_>) -> PaperSettings {
    PaperSettings {
        warmup_bars: r.bounded("PAPER_WARMUP_BARS", 500i64, 0, 100_000),
        max_warmup_bars: r.bounded("PAPER_MAX_WARMUP_BARS", 5_000i64, 0, 100_000),
        max_active_runs: r.bounded("PAPER_MAX_ACTIVE_RUNS", 20i64, 1, 100_000),
        catchup_candles: r.bounded("PAPER_CATCHUP_CANDLES", 500usize, 1, 100_000),
        max_window_bars: r.bounded("PAPER_MAX_WINDOW_BARS", 200_000usize, 1_000, 5_000_000),
        tick: Duration::from_secs(r.bounded("PAPER_TICK_SECS", 10u64, 1, 3600)),
    }
}
