//! The request and response types of backtest runs: the submission, a run as lists show it and in detail,
//! and its live status; and the indicator values that trades and traces report.

use std::collections::BTreeMap;

use backend::backtest::runs;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::routes::contract;

/// A parameter override: a number, a boolean or a string, checked against the declared type and range.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged, expecting = "a number, a boolean or a string")]
pub enum ParamInput {
    Bool(bool),
    Number(f64),
    Text(String),
}

impl utoipa::PartialSchema for ParamInput {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        contract::param_input_schema()
    }
}

impl ToSchema for ParamInput {}

impl ParamInput {
    /// As the strategy language reads it (`12`, `0.5`, `true`).
    pub(crate) fn as_text(&self) -> String {
        match self {
            Self::Bool(b) => b.to_string(),
            // f64's Display never uses exponents and prints whole numbers without a fraction.
            Self::Number(n) => n.to_string(),
            Self::Text(s) => s.clone(),
        }
    }
}

fn default_initial_cash() -> f64 {
    10_000.0
}
fn default_fee() -> f64 {
    0.001
}
fn default_fill() -> String {
    "next_open".into()
}

/// A backtest submission: one run per instrument, all queued or none.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBacktest {
    pub strategy_id: Uuid,
    /// A saved version; default the newest.
    #[schema(minimum = 1)]
    pub version: Option<i32>,
    /// Parameter overrides by name, e.g. `{"fast": 8}`.
    #[serde(default)]
    pub params: BTreeMap<String, ParamInput>,
    /// One run per instrument (1–10), see `GET /api/v1/market/instruments`.
    #[serde(default)]
    #[schema(schema_with = contract::instrument_ids_schema, required = true)]
    pub instrument_ids: Vec<i32>,
    /// `1m`, `5m`, `15m`, `30m`, `1h`, `4h`, `1d` or `1w`.
    #[serde(deserialize_with = "contract::de_timeframe_required")]
    #[schema(schema_with = contract::timeframe_schema)]
    pub timeframe: String,
    /// Start: `YYYY-MM-DD` (00:00 UTC) or RFC 3339, years 1970–2099.
    #[serde(deserialize_with = "contract::de_date")]
    #[schema(schema_with = contract::date_schema, example = "2018-01-10")]
    pub from: String,
    /// End: `YYYY-MM-DD` (inclusive: to the end of that day) or RFC 3339 (exclusive), years 1970–2099.
    #[serde(deserialize_with = "contract::de_date")]
    #[schema(schema_with = contract::date_schema, example = "2018-01-31")]
    pub to: String,
    /// Starting cash in the quote currency (default 10 000; above 0, at most 10¹²).
    #[serde(default = "default_initial_cash")]
    #[schema(exclusive_minimum = 0, maximum = 1_000_000_000_000_f64)]
    pub initial_cash: f64,
    /// Fee per side as a fraction (default 0.001 = 0.1 %; at least 0, below 0.1).
    #[serde(default = "default_fee")]
    #[schema(minimum = 0, exclusive_maximum = 0.1)]
    pub fee: f64,
    /// Slippage in basis points against every fill (default 0; 0–1000).
    #[serde(default)]
    #[schema(minimum = 0, maximum = 1000)]
    pub slippage_bps: f64,
    /// `next_open` (default: fill at the next bar's open) or `same_close`.
    #[serde(default = "default_fill", deserialize_with = "contract::de_fill")]
    #[schema(schema_with = contract::fill_schema)]
    pub fill: String,
}

/// The REST body as the backend's one run request (the form and the REST API both convert into it).
impl From<CreateBacktest> for runs::NewRun {
    fn from(body: CreateBacktest) -> Self {
        Self {
            strategy_id: body.strategy_id,
            version: body.version,
            params: body
                .params
                .iter()
                .map(|(k, v)| (k.clone(), v.as_text()))
                .collect(),
            instrument_ids: body.instrument_ids,
            timeframe: body.timeframe,
            from: body.from,
            to: body.to,
            initial_cash: body.initial_cash,
            fee: body.fee,
            slippage_bps: body.slippage_bps,
            fill: body.fill,
        }
    }
}

/// Where to find a run and what can be done with it.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunLinks {
    #[serde(rename = "self")]
    pub self_: String,
    pub result: String,
    pub trades: String,
    pub trades_csv: String,
    pub trace: String,
    pub cancel: String,
}

impl RunLinks {
    pub(super) fn of(id: Uuid) -> Self {
        let base = format!("/api/v1/backtests/{id}");
        Self {
            result: format!("{base}/result"),
            trades: format!("{base}/trades"),
            trades_csv: format!("{base}/trades.csv"),
            trace: format!("{base}/trace"),
            cancel: format!("{base}/cancel"),
            self_: base,
        }
    }
}

/// A queued run.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueuedRun {
    pub id: Uuid,
    /// `queued`.
    pub status: String,
    pub links: RunLinks,
}

/// What a submission queued.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedBacktests {
    /// Shared by the runs of this submission (filter with `?batch_id=`).
    pub batch_id: Uuid,
    pub runs: Vec<QueuedRun>,
}

/// A run as lists show it.
#[derive(Debug, Serialize, ToSchema)]
pub struct Run {
    pub id: Uuid,
    pub batch_id: Uuid,
    pub strategy_id: Uuid,
    pub strategy_name: String,
    pub version: i32,
    pub instrument_id: i32,
    /// e.g. `ETH/BTC · binance`.
    pub instrument: String,
    pub timeframe: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// `queued`, `running`, `done`, `failed` or `cancelled`.
    pub status: String,
    /// 0–1.
    pub progress: f32,
    pub cancel_requested: bool,
    /// Why the run failed, in words a trader can act on.
    pub error: Option<String>,
    /// Headline metrics once done (fractions: 0.05 = 5 %).
    pub total_return: Option<f64>,
    pub sharpe: Option<f64>,
    pub max_drawdown: Option<f64>,
    pub trade_count: Option<i32>,
    pub final_equity: Option<f64>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub links: RunLinks,
}

impl From<runs::RunSummary> for Run {
    fn from(r: runs::RunSummary) -> Self {
        Self {
            links: RunLinks::of(r.backtest_run_id),
            id: r.backtest_run_id,
            batch_id: r.batch_id,
            strategy_id: r.strategy_id,
            strategy_name: r.strategy_name,
            version: r.version,
            instrument_id: r.instrument_id,
            instrument: r.instrument,
            timeframe: r.timeframe,
            from: r.range_from,
            to: r.range_to,
            status: r.status.as_str().into(),
            progress: r.progress,
            cancel_requested: r.cancel_requested,
            error: r.error,
            total_return: r.total_return,
            sharpe: r.sharpe,
            max_drawdown: r.max_drawdown,
            trade_count: r.trade_count,
            final_equity: r.final_equity,
            created_at: r.created_at,
            finished_at: r.finished_at,
        }
    }
}

/// Runs, filtered and sorted.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunList {
    pub runs: Vec<Run>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListBacktestsQuery {
    pub(super) strategy_id: Option<Uuid>,
    pub(super) instrument_id: Option<i32>,
    /// `queued`, `running`, `done`, `failed` or `cancelled`.
    #[serde(default, deserialize_with = "contract::de_status")]
    #[param(schema_with = contract::status_schema)]
    pub(super) status: Option<String>,
    pub(super) batch_id: Option<Uuid>,
    /// `created_at` (default), `total_return`, `sharpe`, `max_drawdown`, `trade_count` or `final_equity`.
    #[serde(default, deserialize_with = "contract::de_run_sort")]
    #[param(schema_with = contract::run_sort_schema)]
    pub(super) sort: Option<String>,
    /// `desc` (default) or `asc`; missing values sort last.
    #[serde(default, deserialize_with = "contract::de_dir")]
    #[param(schema_with = contract::dir_schema)]
    pub(super) dir: Option<String>,
    /// 1–500, default 100.
    #[serde(default, deserialize_with = "contract::de_range::<_, 1, 500>")]
    #[param(minimum = 1, maximum = 500)]
    pub(super) limit: Option<i64>,
    /// Runs to skip (default 0).
    #[serde(
        default,
        deserialize_with = "contract::de_range::<_, 0, 1_000_000_000>"
    )]
    #[param(minimum = 0, maximum = 1_000_000_000)]
    pub(super) offset: Option<i64>,
}

/// Everything about a run except its result.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunDetail {
    #[serde(flatten)]
    pub run: Run,
    /// A sentence about the status, e.g. `running · 42 %`.
    pub status_message: String,
    pub strategy_version_id: Uuid,
    /// Parameter overrides in effect, as given.
    pub params: BTreeMap<String, String>,
    /// The engine's configuration: `initial_cash`, `fee`, `slippage_bps`, `fill`, …
    #[schema(value_type = Object)]
    pub config: engine::backtest::BacktestConfig,
    /// Where the time went once done: `{queue_ms, load_ms, engine_ms, store_ms, bars}`.
    #[schema(value_type = Option<Object>)]
    pub timing: Option<Value>,
    pub started_at: Option<DateTime<Utc>>,
}

/// A run's live status.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunStatus {
    /// `queued`, `running`, `done`, `failed` or `cancelled`.
    pub status: String,
    pub progress: f32,
    pub error: Option<String>,
    /// e.g. `cancelling…`, `cancelled`.
    pub message: String,
}

/// An indicator value at a signal (`null` while warming up).
#[derive(Debug, Serialize, ToSchema)]
pub struct NamedValue {
    pub name: String,
    pub value: Option<f64>,
}

pub(super) fn named(values: Vec<(String, Option<f64>)>) -> Vec<NamedValue> {
    values
        .into_iter()
        .map(|(name, value)| NamedValue { name, value })
        .collect()
}
