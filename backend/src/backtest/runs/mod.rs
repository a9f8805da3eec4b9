//! Backtest runs: create (validated, limited per user, one run per instrument), list, status, cancel, and the
//! stored result with its trades, chart data and decision trace.

//!
//! The files: [`submit`] (checking a submission and queueing its runs), [`query`] (lists, one run, status,
//! cancel, result, trades), [`csv`] (the trades as CSV), [`chart`] (chart data, equity thinning, trace types).
//! These functions are the data layer scoped to a user id; the surfaces call the actions in
//! [`crate::backtest::actions`], which check the actor's permission, limits and state first.

pub mod chart;
pub mod csv;
pub mod query;
pub mod submit;

pub use chart::*;
pub use csv::*;
pub use query::*;
pub use submit::*;

use chrono::{DateTime, Utc};
use engine::backtest::{BacktestConfig, Metrics, Provenance};
pub use engine::run_state::RunState;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Error;

/// Most instruments one form submission may start runs for.
pub const MAX_INSTRUMENTS: usize = 10;

/// What the trader asks for. `fee` is a fraction per side (0.001 = 0.1 %).
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct NewRun {
    pub strategy_id: Uuid,
    /// `None` = the newest version.
    #[serde(default)]
    pub version: Option<i32>,
    /// Parameter overrides `(name, value)`, values as typed.
    #[serde(default)]
    pub params: Vec<(String, String)>,
    pub instrument_ids: Vec<i32>,
    pub timeframe: String,
    /// Start: `YYYY-MM-DD` (00:00 UTC) or an RFC 3339 timestamp.
    pub from: String,
    /// End: `YYYY-MM-DD` (inclusive: up to the end of that day) or an RFC 3339 timestamp (exclusive).
    pub to: String,
    pub initial_cash: f64,
    pub fee: f64,
    pub slippage_bps: f64,
    /// `next_open` (default) or `same_close`.
    pub fill: String,
}

/// The runs a submission created (one per instrument).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Created {
    pub batch_id: Uuid,
    pub run_ids: Vec<Uuid>,
}

/// A run as lists show it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RunSummary {
    pub backtest_run_id: Uuid,
    pub batch_id: Uuid,
    pub strategy_id: Uuid,
    pub strategy_name: String,
    pub version: i32,
    pub instrument_id: i32,
    /// e.g. `BTC/USDT · binance`
    pub instrument: String,
    pub timeframe: String,
    pub range_from: DateTime<Utc>,
    pub range_to: DateTime<Utc>,
    pub status: RunState,
    /// 0–1.
    pub progress: f32,
    pub cancel_requested: bool,
    pub error: Option<String>,
    pub total_return: Option<f64>,
    pub sharpe: Option<f64>,
    pub max_drawdown: Option<f64>,
    pub trade_count: Option<i32>,
    pub final_equity: Option<f64>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl RunSummary {
    /// e.g. `MACD v2 · BTC/USDT 1h`
    pub fn label(&self) -> String {
        let pair = self.instrument.split(" · ").next().unwrap_or("");
        format!(
            "{} v{} · {} {}",
            self.strategy_name, self.version, pair, self.timeframe
        )
    }

    pub fn is_active(&self) -> bool {
        self.status.is_active()
    }
}

/// Everything about a run except its result.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RunDetail {
    pub summary: RunSummary,
    pub strategy_version_id: Uuid,
    pub params: Vec<(String, String)>,
    pub config: BacktestConfig,
    /// `{queue_ms, load_ms, engine_ms, store_ms, bars}` once done.
    pub timing: Option<serde_json::Value>,
    pub started_at: Option<DateTime<Utc>>,
}

/// Live status, for polling.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RunStatus {
    pub status: RunState,
    pub progress: f32,
    pub error: Option<String>,
    /// A sentence for the page, e.g. "running · 42 %".
    pub message: String,
}

impl From<&RunSummary> for RunStatus {
    fn from(r: &RunSummary) -> Self {
        let message = match r.status {
            RunState::Queued | RunState::Running if r.cancel_requested => "cancelling…".to_owned(),
            RunState::Queued => "queued: waiting for a worker".to_owned(),
            RunState::Running => format!("running · {:.0} %", r.progress * 100.0),
            RunState::Done => "done".to_owned(),
            RunState::Cancelled => "cancelled".to_owned(),
            RunState::Failed => {
                format!("failed: {}", r.error.as_deref().unwrap_or("unknown error"))
            }
        };
        Self {
            status: r.status,
            progress: r.progress,
            error: r.error.clone(),
            message,
        }
    }
}

/// The equity curve as stored (thinned to `BACKTEST_EQUITY_POINTS`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct EquitySeries {
    pub time: Vec<i64>,
    pub equity: Vec<f64>,
}

/// A finished run's result.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RunResult {
    pub metrics: Metrics,
    pub provenance: Provenance,
    pub equity: EquitySeries,
    pub bars: i32,
    pub skipped_entries: i32,
}

/// One stored trade.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TradeRow {
    pub seq: i32,
    pub entry_time: DateTime<Utc>,
    pub exit_time: DateTime<Utc>,
    pub entry_price: f64,
    pub exit_price: f64,
    pub units: f64,
    pub fees: f64,
    pub pnl: f64,
    pub return_pct: f64,
    pub bars_held: i32,
    pub exit_reason: String,
    pub entry_rule: String,
    /// Indicator values at the entry signal (`None` = NaN, warming up).
    pub entry_values: Vec<(String, Option<f64>)>,
    pub exit_rule: Option<String>,
    pub exit_values: Vec<(String, Option<f64>)>,
}

/// List filters and order.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct RunFilter {
    pub strategy_id: Option<Uuid>,
    pub instrument_id: Option<i32>,
    pub status: Option<String>,
    pub batch_id: Option<Uuid>,
    /// `created_at` (default), `total_return`, `sharpe`, `max_drawdown`, `trade_count`, `final_equity`.
    pub sort: Option<String>,
    /// `desc` (default) or `asc`.
    pub dir: Option<String>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

/// Sortable run columns.
pub const RUN_SORTS: &[&str] = &[
    "created_at",
    "total_return",
    "sharpe",
    "max_drawdown",
    "trade_count",
    "final_equity",
];
/// Sortable trade columns.
pub const TRADE_SORTS: &[&str] = &[
    "seq",
    "entry_time",
    "exit_time",
    "pnl",
    "return_pct",
    "bars_held",
    "exit_reason",
];

fn parse_dir(dir: Option<&str>, default_desc: bool) -> Result<&'static str, Error> {
    match dir.map(str::trim) {
        None | Some("") => Ok(if default_desc { "desc" } else { "asc" }),
        Some("asc") => Ok("asc"),
        Some("desc") => Ok("desc"),
        Some(other) => Err(Error::invalid(
            "dir",
            format!("`{other}` is not a direction; use asc or desc"),
        )),
    }
}
