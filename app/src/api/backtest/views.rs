//! The data the strategy and backtest pages show, as the server functions of [`super`] return it.

use engine::{
    backtest::{BacktestConfig, Metrics, Provenance},
    run_state::RunState,
    strategy::ParamInfo,
};
use serde::{Deserialize, Serialize};

/// A catalogue template for the "new strategy" form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemplateView {
    /// The catalogue slug (the form's `template` value).
    pub name: String,
    pub title: String,
    pub description: String,
    pub featured: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StrategyRow {
    pub id: String,
    pub name: String,
    pub description: String,
    pub template: Option<String>,
    pub version: i32,
    pub archived: bool,
    pub has_draft: bool,
    pub runs: i64,
    pub updated: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StrategiesView {
    pub strategies: Vec<StrategyRow>,
    pub templates: Vec<TemplateView>,
    pub can_write: bool,
}

/// A problem in a strategy's source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProblemView {
    pub line: usize,
    pub column: usize,
    pub len: usize,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StrategyView {
    pub row: StrategyRow,
    /// The text in the editor: the draft if there is one, else the newest version's source.
    pub source: String,
    pub draft: bool,
    /// The draft slot's revision, sent back with a save (compare-and-swap of the draft).
    pub draft_rev: i32,
    pub problems: Vec<ProblemView>,
    pub params: Vec<ParamInfo>,
    /// `(version, created)`, newest first.
    pub versions: Vec<(i32, String)>,
    pub recent_runs: Vec<RunRow>,
    pub can_write: bool,
    /// Why the strategy is read-only over the user's plan (past the grace period of the `strategies` limit),
    /// if it is.
    pub read_only: Option<String>,
}

/// A run in a list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRow {
    pub id: String,
    pub label: String,
    pub strategy_id: String,
    pub strategy: String,
    pub version: i32,
    pub instrument_id: i32,
    pub instrument: String,
    pub timeframe: String,
    pub range: String,
    pub status: RunState,
    pub progress: f32,
    pub message: String,
    pub total_return: Option<f64>,
    pub sharpe: Option<f64>,
    pub max_drawdown: Option<f64>,
    pub trade_count: Option<i32>,
    pub created: String,
}

impl RunRow {
    pub fn active(&self) -> bool {
        self.status.is_active()
    }
}

/// A stored series and its coverage, for the run form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesOption {
    pub instrument_id: i32,
    pub pair: String,
    pub exchange: String,
    pub timeframe: String,
    pub first: String,
    pub last: String,
    pub count: i64,
    pub gap_count: i64,
    pub missing: i64,
    /// The form's default start for this series: a year before its last candle (or its first candle).
    pub default_from: String,
}

/// Everything the "new backtest" form needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunFormView {
    /// `(id, name, latest version)` of the user's active strategies.
    pub strategies: Vec<(String, String, i32)>,
    pub strategy_id: Option<String>,
    pub versions: Vec<i32>,
    pub version: Option<i32>,
    pub params: Vec<ParamInfo>,
    pub series: Vec<SeriesOption>,
    pub can_run: bool,
    /// Why the user cannot run (unconfirmed email, read-only account).
    pub blocked: Option<String>,
    /// The error of the last submission: `(field, message)`.
    pub error: Option<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunsView {
    pub runs: Vec<RunRow>,
    pub strategies: Vec<(String, String)>,
    pub instruments: Vec<(i32, String)>,
}

/// One trade for the table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TradeView {
    pub seq: i32,
    pub entry_ms: i64,
    pub entry: String,
    pub exit: String,
    pub entry_price: f64,
    pub exit_price: f64,
    pub units: f64,
    pub fees: f64,
    pub pnl: f64,
    pub return_pct: f64,
    pub bars_held: i32,
    pub exit_reason: String,
    pub entry_rule: String,
    pub exit_rule: Option<String>,
    pub entry_values: Vec<(String, Option<f64>)>,
}

/// A run's page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunView {
    pub row: RunRow,
    pub params: Vec<(String, String)>,
    pub config: BacktestConfig,
    pub error: Option<String>,
    /// Where the time went, in words.
    pub timing: Option<String>,
    pub metrics: Option<Metrics>,
    pub provenance: Option<Provenance>,
    pub strategy_version_id: String,
    pub trades: Vec<TradeView>,
    pub trade_total: i64,
    pub page: i64,
    pub per_page: i64,
    pub sort: String,
    pub dir: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompareView {
    pub runs: Vec<(RunRow, Option<Metrics>)>,
}
