//! The data the paper-trading pages show, as the server functions of [`super`] return it.

use engine::strategy::ParamInfo;
use serde::{Deserialize, Serialize};

/// A paper run in a list (and at the top of its page).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaperRow {
    pub id: String,
    pub batch_id: String,
    pub strategy_id: String,
    pub strategy: String,
    pub version: i32,
    pub instrument_id: i32,
    pub symbol: String,
    pub timeframe: String,
    /// `active`, `paused`, `stopping`, `stopped` or `failed`.
    pub status: String,
    /// The run's own gate (`open`, `halt`, `flatten`).
    pub gate: String,
    pub initial_cash: f64,
    pub cash: f64,
    pub equity: f64,
    pub position_units: f64,
    pub realised_pnl: f64,
    pub trades: i32,
    pub candles: i32,
    pub live_from: String,
    pub last_candle: Option<String>,
    pub started: String,
    pub stopped: Option<String>,
    pub error: Option<String>,
    pub stop_reason: Option<String>,
}

impl PaperRow {
    /// `strategy@vN`.
    pub fn label(&self) -> String {
        format!("{}@v{}", self.strategy, self.version)
    }

    /// Still processing candles.
    pub fn live(&self) -> bool {
        matches!(self.status.as_str(), "active" | "paused" | "stopping")
    }
}

/// The runs list with what its filters offer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaperListView {
    pub runs: Vec<PaperRow>,
    /// `(id, name)` of the user's strategies.
    pub strategies: Vec<(String, String)>,
    /// `(id, label)` of the instruments the user's runs or the live feeds use.
    pub instruments: Vec<(i32, String)>,
}

/// A series with a live feed (tracked by the scheduled market update).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeedOption {
    pub instrument_id: i32,
    pub pair: String,
    pub exchange: String,
    pub timeframe: String,
    /// The newest stored candle (open time).
    pub last: String,
}

/// Everything the start form needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaperFormView {
    /// `(id, name, latest version)` of the user's active strategies.
    pub strategies: Vec<(String, String, i32)>,
    pub strategy_id: Option<String>,
    pub versions: Vec<i32>,
    pub version: Option<i32>,
    pub params: Vec<ParamInfo>,
    pub feeds: Vec<FeedOption>,
    pub warmup_bars: i64,
    pub max_warmup_bars: i64,
    pub can_start: bool,
    /// Why the user cannot start runs (unconfirmed email, read-only account).
    pub blocked: Option<String>,
    /// The error of the last submission: `(field, message)`.
    pub error: Option<(String, String)>,
    /// The risk limits a run starts with (`PAPER_RISK_*`).
    pub risk_defaults: RiskLimitsView,
}

/// The open position at the last close.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PositionView {
    pub units: f64,
    pub entry_price: f64,
    pub entry_time: String,
    pub entry_rule: String,
    /// Value at the last close minus what it cost (fees included); `None` before any close.
    pub unrealised: Option<f64>,
    pub last_close: Option<f64>,
}

/// A fill.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FillView {
    pub time: String,
    pub side: String,
    pub price: f64,
    pub units: f64,
    pub fee: f64,
    pub reason: String,
    pub rule: Option<String>,
    /// `name = value` of the rule's values at the signal bar.
    pub values: String,
}

/// One processed candle and the decision taken at its close (the engine's bar trace).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CandleView {
    pub time: String,
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    pub gate: String,
    pub equity: f64,
    pub units: f64,
    pub entry_rules: Vec<(String, bool)>,
    pub exit_rules: Vec<(String, bool)>,
    pub values: Vec<(String, Option<f64>)>,
    pub actions: Vec<String>,
}

/// A gap in the feed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GapView {
    pub from: String,
    pub to: String,
    pub candles: i32,
}

/// One run's page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaperRunView {
    pub row: PaperRow,
    pub params: Vec<(String, String)>,
    pub fee: f64,
    pub slippage_bps: f64,
    pub fill: String,
    pub warmup_from: String,
    pub fees_paid: f64,
    pub position: Option<PositionView>,
    /// The order decided at the last close, in words.
    pub pending: Option<String>,
    pub notice: Option<String>,
    pub gaps: Vec<GapView>,
    /// Now minus the last processed candle's close, in words.
    pub feed_lag: Option<String>,
    /// `(open time ms, equity)`, oldest first.
    pub equity: Vec<(i64, f64)>,
    pub fills: Vec<FillView>,
    /// Newest first.
    pub candles: Vec<CandleView>,
    pub can_control: bool,
    /// The gate the next candle is processed under (the run's own, kill switches, risk locks).
    pub effective_gate: String,
    /// Active kill switches over the run.
    pub kill_switches: Vec<KillSwitchView>,
    /// Why the plan keeps the run reduce-only (over the plan's active paper runs past the grace period), if
    /// it does.
    pub plan_gate: Option<String>,
    pub risk_limits: RiskLimitsView,
    /// Newest first.
    pub risk_locks: Vec<RiskLockView>,
    /// The error of the last risk or kill-switch form: `(field, message)`.
    pub error: Option<(String, String)>,
    /// Inbound signals: settings and the newest requests received.
    pub signals: SignalsView,
}

/// A run's inbound signals as its page shows them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SignalsView {
    /// `off` or `gate`.
    pub mode: String,
    pub has_secret: bool,
    pub allow_ips: Vec<String>,
    pub rotated: Option<String>,
    /// The signal URL (on the operator's `PUBLIC_URL`).
    pub url: String,
    /// Requests in the last 3 minutes, and whether that nears TradingView's limit.
    pub recent: i64,
    pub near_limit: bool,
    /// Newest first.
    pub received: Vec<SignalRowView>,
}

/// One request a run's signal URL received.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignalRowView {
    pub received: String,
    pub verdict: String,
    pub status: i16,
    pub reason: Option<String>,
    pub action: Option<String>,
    pub ticker: Option<String>,
    pub id: Option<String>,
    pub auth: Option<String>,
    pub ip: Option<String>,
    pub applied: Option<String>,
}

/// An active kill switch over a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KillSwitchView {
    pub id: String,
    /// `platform`, `user` or `run`.
    pub scope: String,
    pub mode: String,
    pub reason: String,
    /// Thrown by an administrator: only administrators release it.
    pub by_admin: bool,
    pub thrown: String,
}

/// A run's risk limits (`None`: off).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RiskLimitsView {
    pub mode: String,
    pub max_drawdown_pct: Option<f64>,
    pub daily_loss: Option<f64>,
    pub daily_loss_pct: Option<f64>,
    pub max_consecutive_losses: Option<i32>,
    pub max_position_value: Option<f64>,
    pub max_orders_per_day: Option<i32>,
    pub stale_feed_secs: Option<i64>,
}

/// A risk lock on a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RiskLockView {
    pub limit: String,
    pub mode: String,
    pub reason: String,
    pub candle: String,
    /// When it ends by itself, in words (`None`: when released).
    pub until: Option<String>,
    pub released: Option<String>,
    pub active: bool,
}

/// A trade as the parity report shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParityTrade {
    pub entry: String,
    pub exit: Option<String>,
    pub entry_price: f64,
    pub exit_price: Option<f64>,
    pub units: f64,
    pub fees: f64,
    pub exit_reason: Option<String>,
}

/// One difference between the run and its backtest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParityDifference {
    pub kind: String,
    pub entry: String,
    pub fields: Vec<String>,
    pub paper: Option<ParityTrade>,
    pub backtest: Option<ParityTrade>,
    pub cause: String,
    pub detail: String,
}

/// The parity report page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParityView {
    pub row: PaperRow,
    pub summary: String,
    pub window_from: String,
    pub live_from: String,
    pub window_to: Option<String>,
    pub candles: usize,
    pub paper_trades: usize,
    pub backtest_trades: usize,
    pub matched: usize,
    pub open_position_matches: Option<bool>,
    pub differences: Vec<ParityDifference>,
}
