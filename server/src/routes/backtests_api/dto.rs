//! `/api/v1/backtests…`: create backtest runs (validated, limited per user, one run per instrument), list and
//! inspect them, cancel, and read a finished run's result, trades (JSON or CSV) and decision trace. Reads need
//! a token, writes a read-write token of a non-viewer, runs a confirmed email address: the actions in
//! `backend::backtest::actions` decide, each handler parses, calls and maps. Every call is scoped to the
//! token's user by `backend::backtest::runs`: another user's run answers 404.

use std::collections::BTreeMap;

use axum::{
    Json, Router,
    extract::State,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use backend::{
    backtest::{
        Error as BacktestError,
        actions::{exports, runs as act},
        runs,
    },
    market::parse_time,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::{
    error::{ApiError, ApiResult},
    extract::{ApiActor, ApiJson, ApiPath, ApiQuery},
    routes::contract,
    routes::openapi::ErrorBody,
    state::AppState,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/backtests",
            get(list_backtests).post(create_backtest),
        )
        .route("/api/v1/backtests/{id}", get(get_backtest))
        .route("/api/v1/backtests/{id}/result", get(get_backtest_result))
        .route("/api/v1/backtests/{id}/trades", get(list_backtest_trades))
        .route(
            "/api/v1/backtests/{id}/trades.csv",
            get(export_backtest_trades),
        )
        .route("/api/v1/backtests/{id}/cancel", post(cancel_backtest))
        .route("/api/v1/backtests/{id}/trace", get(trace_backtest))
}

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
    fn as_text(&self) -> String {
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
    fn of(id: Uuid) -> Self {
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

/// Backend field names are the web form's; the API names its JSON fields.
fn api_field(e: BacktestError) -> BacktestError {
    match e {
        BacktestError::Invalid { field, message } => {
            let field = match field.as_str() {
                "instrument" => "instrument_ids".to_owned(),
                "strategy" => "strategy_id".to_owned(),
                _ => field,
            };
            BacktestError::Invalid { field, message }
        }
        other => other,
    }
}

/// `POST /api/v1/backtests`: validates the submission and queues one run per instrument.
#[utoipa::path(
    post,
    path = "/api/v1/backtests",
    tag = "backtests",
    security(("bearer" = [])),
    request_body = CreateBacktest,
    responses(
        (status = 202, description = "Queued", body = CreatedBacktests),
        (status = 400, description = "`invalid_input` with `field` (e.g. `from`, `to`, `range` when no candles are stored there — the message names the stored range —, `instrument_ids`, `timeframe`, `strategy_id` for an archived strategy, `params`, `version`, `fee`), malformed JSON or unknown field", body = ErrorBody),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 403, description = "Read-only token, viewer, or an account whose email address is not confirmed", body = ErrorBody),
        (status = 404, description = "No such strategy of yours", body = ErrorBody),
        (status = 409, description = "`limit_reached`: too many backtests queued or running (BACKTEST_MAX_CONCURRENT)", body = ErrorBody),
        (status = 413, description = "Body larger than the limit", body = ErrorBody),
        (status = 415, description = "Body is not application/json", body = ErrorBody),
        (status = 422, description = "`invalid_strategy`: a parameter value is outside its declared type or range; `problems` lists each", body = ErrorBody),
    )
)]
pub async fn create_backtest(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiJson(body): ApiJson<CreateBacktest>,
) -> ApiResult<Response> {
    let created = act::submit(&actor, &state.ctx, &body.into())
        .await
        .map_err(api_field)?;
    let body = CreatedBacktests {
        batch_id: created.batch_id,
        runs: created
            .run_ids
            .into_iter()
            .map(|id| QueuedRun {
                id,
                status: runs::RunState::Queued.as_str().into(),
                links: RunLinks::of(id),
            })
            .collect(),
    };
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
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
    strategy_id: Option<Uuid>,
    instrument_id: Option<i32>,
    /// `queued`, `running`, `done`, `failed` or `cancelled`.
    #[serde(default, deserialize_with = "contract::de_status")]
    #[param(schema_with = contract::status_schema)]
    status: Option<String>,
    batch_id: Option<Uuid>,
    /// `created_at` (default), `total_return`, `sharpe`, `max_drawdown`, `trade_count` or `final_equity`.
    #[serde(default, deserialize_with = "contract::de_run_sort")]
    #[param(schema_with = contract::run_sort_schema)]
    sort: Option<String>,
    /// `desc` (default) or `asc`; missing values sort last.
    #[serde(default, deserialize_with = "contract::de_dir")]
    #[param(schema_with = contract::dir_schema)]
    dir: Option<String>,
    /// 1–500, default 100.
    #[serde(default, deserialize_with = "contract::de_range::<_, 1, 500>")]
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
    /// Runs to skip (default 0).
    #[serde(
        default,
        deserialize_with = "contract::de_range::<_, 0, 1_000_000_000>"
    )]
    #[param(minimum = 0, maximum = 1_000_000_000)]
    offset: Option<i64>,
}

/// `GET /api/v1/backtests`: the caller's runs, newest first by default.
#[utoipa::path(
    get,
    path = "/api/v1/backtests",
    tag = "backtests",
    security(("bearer" = [])),
    params(ListBacktestsQuery),
    responses(
        (status = 200, description = "The caller's runs", body = RunList),
        (status = 400, description = "`invalid_input` with `field` (unknown status, sort or direction), or a malformed query", body = ErrorBody),
        (status = 401, description = "No or invalid token", body = ErrorBody),
    )
)]
pub async fn list_backtests(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiQuery(q): ApiQuery<ListBacktestsQuery>,
) -> ApiResult<Json<RunList>> {
    let filter = runs::RunFilter {
        strategy_id: q.strategy_id,
        instrument_id: q.instrument_id,
        status: q.status,
        batch_id: q.batch_id,
        sort: q.sort,
        dir: q.dir,
        limit: q.limit,
        offset: q.offset,
    };
    let list = act::list(&actor, &state.ctx, &filter).await?;
    Ok(Json(RunList {
        runs: list.into_iter().map(Into::into).collect(),
    }))
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

/// `GET /api/v1/backtests/{id}`: a run's status, progress, error, options and timing.
#[utoipa::path(
    get,
    path = "/api/v1/backtests/{id}",
    tag = "backtests",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Run id")),
    responses(
        (status = 200, description = "The run", body = RunDetail),
        (status = 400, description = "The id is not a UUID", body = ErrorBody),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 404, description = "No such run of yours", body = ErrorBody),
    )
)]
pub async fn get_backtest(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<RunDetail>> {
    let d = act::get(&actor, &state.ctx, id).await?;
    let status_message = runs::RunStatus::from(&d.summary).message;
    Ok(Json(RunDetail {
        run: d.summary.into(),
        status_message,
        strategy_version_id: d.strategy_version_id,
        params: d.params.into_iter().collect(),
        config: d.config,
        timing: d.timing,
        started_at: d.started_at,
    }))
}

/// The run must be done before its result, trades or CSV can be read.
#[derive(Debug, Serialize, ToSchema)]
pub struct Equity {
    /// Bar open times, epoch ms UTC.
    pub time: Vec<i64>,
    pub equity: Vec<f64>,
}

/// A finished run's result.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunResult {
    /// Every metric as `{value, unit, basis, na_reason?}` (see docs/metrics.md), e.g. `final_equity`,
    /// `total_return`, `sharpe`, `max_drawdown`, `trade_count`.
    #[schema(value_type = Object)]
    pub metrics: engine::backtest::Metrics,
    /// Enough to reproduce the result: engine version, candles hash, source hash, parameters, fill model, …
    #[schema(value_type = Object)]
    pub provenance: engine::backtest::Provenance,
    pub equity: Equity,
    /// Bars the run covered.
    pub bars: i32,
    /// Entry signals that could not be filled.
    pub skipped_entries: i32,
}

/// `GET /api/v1/backtests/{id}/result`: metrics, provenance and equity curve of a finished run.
#[utoipa::path(
    get,
    path = "/api/v1/backtests/{id}/result",
    tag = "backtests",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Run id")),
    responses(
        (status = 200, description = "The result", body = RunResult),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 404, description = "No such run of yours", body = ErrorBody),
        (status = 409, description = "`not_finished`: the run is queued, running, failed or cancelled", body = ErrorBody),
    )
)]
pub async fn get_backtest_result(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<RunResult>> {
    let r = act::result(&actor, &state.ctx, id).await?;
    Ok(Json(RunResult {
        metrics: r.metrics,
        provenance: r.provenance,
        equity: Equity {
            time: r.equity.time,
            equity: r.equity.equity,
        },
        bars: r.bars,
        skipped_entries: r.skipped_entries,
    }))
}

/// An indicator value at a signal (`null` while warming up).
#[derive(Debug, Serialize, ToSchema)]
pub struct NamedValue {
    pub name: String,
    pub value: Option<f64>,
}

fn named(values: Vec<(String, Option<f64>)>) -> Vec<NamedValue> {
    values
        .into_iter()
        .map(|(name, value)| NamedValue { name, value })
        .collect()
}

/// One round trip.
#[derive(Debug, Serialize, ToSchema)]
pub struct Trade {
    /// 1, 2, … in time order.
    pub seq: i32,
    pub entry_time: DateTime<Utc>,
    pub exit_time: DateTime<Utc>,
    /// Fill prices after slippage.
    pub entry_price: f64,
    pub exit_price: f64,
    pub units: f64,
    /// Fees of entry and exit, quote currency.
    pub fees: f64,
    /// Net profit, quote currency, fees included.
    pub pnl: f64,
    /// `pnl / entry cost`.
    pub return_pct: f64,
    pub bars_held: i32,
    /// e.g. `exit signal`, `stop loss`, `end of data`.
    pub exit_reason: String,
    /// The entry rule that fired and the values of its series at the signal bar.
    pub entry_rule: String,
    pub entry_values: Vec<NamedValue>,
    pub exit_rule: Option<String>,
    pub exit_values: Vec<NamedValue>,
}

impl From<runs::TradeRow> for Trade {
    fn from(t: runs::TradeRow) -> Self {
        Self {
            seq: t.seq,
            entry_time: t.entry_time,
            exit_time: t.exit_time,
            entry_price: t.entry_price,
            exit_price: t.exit_price,
            units: t.units,
            fees: t.fees,
            pnl: t.pnl,
            return_pct: t.return_pct,
            bars_held: t.bars_held,
            exit_reason: t.exit_reason,
            entry_rule: t.entry_rule,
            entry_values: named(t.entry_values),
            exit_rule: t.exit_rule,
            exit_values: named(t.exit_values),
        }
    }
}

/// A page of trades.
#[derive(Debug, Serialize, ToSchema)]
pub struct TradePage {
    /// All trades of the run.
    pub total: i64,
    pub trades: Vec<Trade>,
}

/// Most trades one page returns.
pub const MAX_TRADES_PAGE: i64 = 1000;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TradesQuery {
    /// `seq` (default), `entry_time`, `exit_time`, `pnl`, `return_pct`, `bars_held` or `exit_reason`.
    #[serde(default, deserialize_with = "contract::de_trade_sort")]
    #[param(schema_with = contract::trade_sort_schema)]
    sort: Option<String>,
    /// `asc` (default) or `desc`.
    #[serde(default, deserialize_with = "contract::de_dir")]
    #[param(schema_with = contract::dir_schema)]
    dir: Option<String>,
    /// 1–1000, default 100.
    #[serde(default, deserialize_with = "contract::de_range::<_, 1, 1000>")]
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
    /// Trades to skip (default 0).
    #[serde(
        default,
        deserialize_with = "contract::de_range::<_, 0, 1_000_000_000>"
    )]
    #[param(minimum = 0, maximum = 1_000_000_000)]
    offset: Option<i64>,
}

/// `GET /api/v1/backtests/{id}/trades`: a page of a finished run's trades, sorted.
#[utoipa::path(
    get,
    path = "/api/v1/backtests/{id}/trades",
    tag = "backtests",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Run id"), TradesQuery),
    responses(
        (status = 200, description = "A page of trades and the total", body = TradePage),
        (status = 400, description = "`invalid_input` with `field` (sort, dir, limit)", body = ErrorBody),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 404, description = "No such run of yours", body = ErrorBody),
        (status = 409, description = "`not_finished`", body = ErrorBody),
    )
)]
pub async fn list_backtest_trades(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(q): ApiQuery<TradesQuery>,
) -> ApiResult<Json<TradePage>> {
    let page = act::TradePage {
        sort: q.sort,
        dir: q.dir,
        limit: q.limit.unwrap_or(100),
        offset: q.offset.unwrap_or(0),
        max_limit: MAX_TRADES_PAGE,
    };
    let (trades, total) = act::trades(&actor, &state.ctx, id, &page).await?;
    Ok(Json(TradePage {
        total,
        trades: trades.into_iter().map(Into::into).collect(),
    }))
}

fn invalid(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::from(BacktestError::Invalid {
        field: field.to_owned(),
        message: message.into(),
    })
}

/// `GET /api/v1/backtests/{id}/trades.csv`: every trade of a finished run as CSV (a download).
#[utoipa::path(
    get,
    path = "/api/v1/backtests/{id}/trades.csv",
    tag = "backtests",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Run id")),
    responses(
        (status = 200, description = "`seq,entry_time,exit_time,entry_price,exit_price,units,fees,pnl,return_pct,bars_held,exit_reason,entry_rule,exit_rule`, one line per trade", content_type = "text/csv", body = String),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 404, description = "No such run of yours", body = ErrorBody),
        (status = 409, description = "`not_finished`", body = ErrorBody),
        (status = 429, description = "Over `EXPORT_RATE_LIMIT_PER_MINUTE` (`Retry-After`)", body = ErrorBody),
        (status = 503, description = "`EXPORT_MAX_CONCURRENT` exports in progress, or the limit cannot be checked (`Retry-After`)", body = ErrorBody),
    )
)]
pub async fn export_backtest_trades(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Response> {
    let csv = axum::body::Body::from_stream(
        exports::trades_csv(&actor, &state.ctx, &state.limits.exports, id).await?,
    );
    let disposition = format!("attachment; filename=\"backtest-{id}-trades.csv\"");
    let mut resp = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
        csv,
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        resp.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
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

/// `POST /api/v1/backtests/{id}/cancel`: cancels a queued run at once, or asks the worker running it to stop.
#[utoipa::path(
    post,
    path = "/api/v1/backtests/{id}/cancel",
    tag = "backtests",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Run id")),
    responses(
        (status = 200, description = "`cancelled`, or still `running` with `cancel_requested` (it stops within a second)", body = RunStatus),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 403, description = "Read-only token or viewer", body = ErrorBody),
        (status = 404, description = "No such run of yours", body = ErrorBody),
        (status = 409, description = "`conflict`: the run has already finished", body = ErrorBody),
    )
)]
pub async fn cancel_backtest(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<RunStatus>> {
    let s = act::cancel(&actor, &state.ctx, id).await?;
    Ok(Json(RunStatus {
        status: s.status.as_str().into(),
        progress: s.progress,
        error: s.error,
        message: s.message,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TraceQuery {
    /// The bar to explain: epoch ms (the open time of a bar or any time inside it), or RFC 3339. Required.
    #[serde(default, deserialize_with = "contract::de_trace_time")]
    #[param(inline, value_type = contract::TraceTimeParam, required = true)]
    time: Option<String>,
    /// Explain the bars in `[time, time + span)` (ms; a candle of a resampled chart). Default 0: one bar.
    #[serde(
        default,
        deserialize_with = "contract::de_range::<_, 0, 31_536_000_000_000>"
    )]
    #[param(minimum = 0, maximum = 31_536_000_000_000_i64)]
    span: Option<i64>,
}

/// A rule and whether it held on the bar.
#[derive(Debug, Serialize, ToSchema)]
pub struct RuleState {
    pub rule: String,
    pub fired: bool,
}

/// One bar of the decision trace.
#[derive(Debug, Serialize, ToSchema)]
pub struct TraceBar {
    pub index: usize,
    /// Open time, epoch ms UTC.
    pub time: i64,
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    pub in_position: bool,
    pub entry_rules: Vec<RuleState>,
    pub exit_rules: Vec<RuleState>,
    /// Values of the strategy's series on this bar (`null` while warming up).
    pub values: Vec<NamedValue>,
    /// What happened, in words (signals, fills, why nothing happened).
    pub actions: Vec<String>,
}

/// "Why here?": the bars around a time with rules, values and actions.
#[derive(Debug, Serialize, ToSchema)]
pub struct Trace {
    pub bars: Vec<TraceBar>,
    /// A caveat, e.g. that the stored candles changed since the run.
    pub note: Option<String>,
}

fn rules(list: Vec<(String, bool)>) -> Vec<RuleState> {
    list.into_iter()
        .map(|(rule, fired)| RuleState { rule, fired })
        .collect()
}

/// `GET /api/v1/backtests/{id}/trace?time=<ms>[&span=<ms>]`: the decision trace at a time (re-runs the exact
/// strategy version on the run's candles).
#[utoipa::path(
    get,
    path = "/api/v1/backtests/{id}/trace",
    tag = "backtests",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Run id"), TraceQuery),
    responses(
        (status = 200, description = "The trace", body = Trace),
        (status = 400, description = "`invalid_input` with `field` `time` (missing, malformed or outside the run) or `span`", body = ErrorBody),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 404, description = "No such run of yours", body = ErrorBody),
    )
)]
pub async fn trace_backtest(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(q): ApiQuery<TraceQuery>,
) -> ApiResult<Json<Trace>> {
    let text = q.time.as_deref().map(str::trim).unwrap_or("");
    if text.is_empty() {
        return Err(invalid("time", "give the bar's time in epoch milliseconds"));
    }
    let time = parse_time(text).map_err(|e| invalid("time", e))?;
    let t = act::trace(&actor, &state.ctx, id, time, q.span.unwrap_or(0)).await?;
    Ok(Json(Trace {
        bars: t
            .bars
            .into_iter()
            .map(|b| TraceBar {
                index: b.index,
                time: b.time,
                open: b.open,
                high: b.high,
                low: b.low,
                close: b.close,
                in_position: b.in_position,
                entry_rules: rules(b.entry_rules),
                exit_rules: rules(b.exit_rules),
                values: named(b.values),
                actions: b.actions,
            })
            .collect(),
        note: t.note,
    }))
}
