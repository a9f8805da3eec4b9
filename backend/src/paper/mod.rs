//! Paper trading: strategy runs that advance on live candles as the ETL stores them (docs/paper-trading.md).
//!
//! * [`start`]: checking a start request and creating one run per instrument (a batch), all or none.
//! * [`advance`]: the `paper_advance` job. For one series, every active run processes each newly stored
//!   candle once, in order: the engine replays the run's candles (warm-up included) with the gate each candle
//!   was processed under ([`engine::backtest::replay`]), and the candle's effects (its `paper_candle` row,
//!   fills, closed trades, the run's cached state and cursor, events) commit together with the job's `done`
//!   mark. A second delivery, a retry after a crash or a Redis outage finds the cursor moved and does nothing.
//! * [`feed`]: how stored candles reach the runs: a hook the market ETL calls in the transaction that stored
//!   them (enqueues `paper_advance` for series with active runs), and the `paper_tick` schedule that catches
//!   up anything the hook missed.
//! * [`query`]: lists, one run, fills, trades, equity, decisions, gaps.
//! * [`control`]: pause, resume, stop (optionally flattening first).
//! * [`kill`]: kill switches (platform, user, run; reduce-only, halt, flatten).
//! * [`risk`]: risk limits per run (drawdown, daily loss, losing streak, position value, orders per day, stale
//!   feed): breaches found by the step become risk locks (a gate, like a kill switch).
//! * [`parity`]: the parity report (a backtest of the run's window, diffed trade by trade).
//! * [`signals`]: inbound signals (TradingView-style webhooks) that gate a run's entries and exits.
//! * [`actions`]: the policy every surface calls (who may, limits, audit).

pub mod actions;
pub mod advance;
pub mod control;
pub mod feed;
pub mod kill;
pub mod parity;
pub mod query;
pub mod risk;
pub mod signals;
pub mod start;
pub mod step;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use crate::error::{Error, Result};

/// Most instruments one start request may name.
pub const MAX_INSTRUMENTS: usize = 10;

/// Where a run is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Deciding on every new candle.
    Active,
    /// Processing candles (equity, protective stops) but submitting no new orders (gate halt).
    Paused,
    /// Stopping with "flatten first": closes the position at the next open, then stops.
    Stopping,
    /// Stopped: no more candles are processed; everything it did stays.
    Stopped,
    /// Stopped by an error (shown on the run).
    Failed,
}

impl Status {
    pub const ALL: [Status; 5] = [
        Status::Active,
        Status::Paused,
        Status::Stopping,
        Status::Stopped,
        Status::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Paused => "paused",
            Status::Stopping => "stopping",
            Status::Stopped => "stopped",
            Status::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// Still processing candles (counts against the active-run limit).
    pub fn is_live(self) -> bool {
        matches!(self, Status::Active | Status::Paused | Status::Stopping)
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a trader asks for: the same settings as a backtest, minus the range (a paper run starts now).
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct NewPaperRun {
    pub strategy_id: Uuid,
    /// `None` = the newest version.
    #[serde(default)]
    pub version: Option<i32>,
    /// Parameter overrides `(name, value)`, values as typed.
    #[serde(default)]
    pub params: Vec<(String, String)>,
    pub instrument_ids: Vec<i32>,
    pub timeframe: String,
    pub initial_cash: f64,
    /// Fee per side as a fraction (0.001 = 0.1 %). Required: a run never starts on an assumed fee.
    pub fee: Option<f64>,
    pub slippage_bps: f64,
    /// `next_open` (default) or `same_close`.
    pub fill: String,
    /// Candles of history the indicators warm up on (default `PAPER_WARMUP_BARS`).
    #[serde(default)]
    pub warmup_bars: Option<i64>,
    /// Risk limits (absent fields: the `PAPER_RISK_*` defaults; 0 = no such limit).
    #[serde(default)]
    pub risk: risk::RiskInput,
}

/// The runs a start request created (one per instrument).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Started {
    pub batch_id: Uuid,
    pub run_ids: Vec<Uuid>,
}

/// One run as lists show it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PaperRunSummary {
    pub paper_run_id: Uuid,
    pub batch_id: Uuid,
    pub strategy_id: Uuid,
    pub strategy_name: String,
    pub version: i32,
    pub instrument_id: i32,
    pub symbol: String,
    pub timeframe: String,
    pub status: Status,
    /// The run's own gate (`open`, `halt` while paused, `flatten` while stopping).
    pub run_gate: String,
    pub initial_cash: f64,
    pub cash: f64,
    pub equity: f64,
    /// Units held (0 when flat).
    pub position_units: f64,
    pub realised_pnl: f64,
    pub trade_count: i32,
    pub candles_processed: i32,
    /// The first candle it decides on, and the last one processed.
    pub live_from: DateTime<Utc>,
    pub last_candle: Option<DateTime<Utc>>,
    pub error: Option<String>,
    pub stop_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub stopped_at: Option<DateTime<Utc>>,
}

/// A fill.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Fill {
    /// Open time of the candle it filled in.
    pub time: DateTime<Utc>,
    /// `buy` or `sell`.
    pub side: String,
    pub price: f64,
    pub units: f64,
    pub fee: f64,
    /// Entry: `entry`; exit: the reason (`signal`, `stop_loss`, …, `flatten`).
    pub reason: String,
    pub rule: Option<String>,
    /// The rule's values at the signal bar.
    pub values: Vec<(String, Option<f64>)>,
}
