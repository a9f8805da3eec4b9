//! A finished run's result (metrics, provenance, equity curve), its trades by page, and all its trades as CSV.

use axum::{
    Json,
    extract::State,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use backend::backtest::{
    actions::{exports, runs as act},
    runs,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::dto::{NamedValue, named};
use crate::{
    error::ApiResult,
    extract::{ApiActor, ApiPath, ApiQuery},
    routes::contract,
    routes::openapi::ErrorBody,
    state::AppState,
};

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
        (status = 403, description = "`plan_limit`: the run has more trades than the plan's `export_rows`", body = ErrorBody),
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
