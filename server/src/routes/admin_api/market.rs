//! The market-data admin API (docs/admin.md#market-data): the console's `/admin/market` page for admin tokens.
//! Each handler parses, calls one action of `backend::admin::market` and maps the result.

use axum::{Json, extract::State, http::StatusCode};
use backend::admin::market;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{
    error::ApiResult,
    extract::{ApiActor, ApiJson},
    routes::{contract, openapi::ErrorBody},
    state::AppState,
};

/// A pair exactly as its schema's pattern says (`^[A-Za-z0-9]{1,16}[/_-][A-Za-z0-9]{1,16}$`: two asset codes
/// joined by `/`, `-` or `_`, no surrounding spaces).
fn de_pair<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    let ok = s.split_once(['/', '-', '_']).is_some_and(|(b, q)| {
        [b, q]
            .iter()
            .all(|a| (1..=16).contains(&a.len()) && a.chars().all(|c| c.is_ascii_alphanumeric()))
    });
    if ok {
        Ok(s)
    } else {
        Err(contract::rule::<D::Error>(
            "a pair is two asset codes of 1–16 letters or digits joined by /, - or _ (ETH/BTC)",
        ))
    }
}

/// One stored series.
#[derive(Debug, Serialize, ToSchema)]
pub struct SeriesOut {
    pub instrument_id: i32,
    pub exchange: String,
    pub symbol: String,
    pub pair: String,
    pub timeframe: String,
    /// Kept updated by the schedule.
    pub tracked: bool,
    pub first: Option<DateTime<Utc>>,
    pub last: Option<DateTime<Utc>>,
    pub candles: i64,
    /// Seconds since the newest candle closed.
    pub lag_secs: Option<i64>,
    pub last_update: Option<DateTime<Utc>>,
    /// On the configured exchange: can be tracked and backfilled.
    pub fetchable: bool,
}

/// One ETL run.
#[derive(Debug, Serialize, ToSchema)]
pub struct EtlRunOut {
    pub run_id: Uuid,
    pub symbol: String,
    pub timeframe: String,
    /// `backfill`, `daily` or `csv`.
    pub mode: String,
    pub range_from: DateTime<Utc>,
    pub range_to: DateTime<Utc>,
    pub chunks_done: i32,
    pub chunks_total: i32,
    pub candles_fetched: i64,
    /// `running`, `done` or `failed`.
    pub status: String,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// The market data kept updated.
#[derive(Debug, Serialize, ToSchema)]
pub struct MarketOut {
    pub exchange: String,
    pub source: String,
    /// `MARKET_UPDATE_INTERVAL_SECS` (0: off).
    pub update_every_secs: u64,
    /// The last update job's status (`queued`, `running`, `done`, `failed`), if any ran.
    pub last_update_status: Option<String>,
    pub last_update_error: Option<String>,
    pub chunks_pending: i64,
    pub series: Vec<SeriesOut>,
    /// The 20 newest.
    pub runs: Vec<EtlRunOut>,
}

/// Start or stop keeping a series updated.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrackIn {
    #[serde(deserialize_with = "de_pair")]
    #[schema(
        pattern = "^[A-Za-z0-9]{1,16}[/_-][A-Za-z0-9]{1,16}$",
        example = "ETH/BTC"
    )]
    pub pair: String,
    #[serde(deserialize_with = "contract::de_timeframe_required")]
    #[schema(schema_with = contract::timeframe_schema)]
    pub timeframe: String,
    pub tracked: bool,
}

/// A range to fetch.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BackfillIn {
    #[serde(deserialize_with = "de_pair")]
    #[schema(
        pattern = "^[A-Za-z0-9]{1,16}[/_-][A-Za-z0-9]{1,16}$",
        example = "ETH/BTC"
    )]
    pub pair: String,
    #[serde(deserialize_with = "contract::de_timeframe_required")]
    #[schema(schema_with = contract::timeframe_schema)]
    pub timeframe: String,
    /// Start (inclusive): `YYYY-MM-DD` or RFC 3339, in the past.
    #[serde(deserialize_with = "contract::de_date")]
    #[schema(schema_with = contract::date_schema)]
    pub from: String,
    /// End (exclusive): `YYYY-MM-DD` or RFC 3339, later than `from`.
    #[serde(deserialize_with = "contract::de_date")]
    #[schema(schema_with = contract::date_schema)]
    pub to: String,
}

/// A queued backfill.
#[derive(Debug, Serialize, ToSchema)]
pub struct BackfillOut {
    pub run_id: Uuid,
    /// Chunk jobs queued.
    pub chunks: usize,
    /// Chunks fetched completely before (skipped).
    pub skipped: usize,
}

/// A queued update.
#[derive(Debug, Serialize, ToSchema)]
pub struct UpdateOut {
    pub job_id: Uuid,
}

/// `GET /api/v1/admin/market`: the series kept updated, their coverage and lag, the newest ETL runs.
#[utoipa::path(
    get,
    path = "/api/v1/admin/market",
    tag = "admin",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The market data", body = MarketOut),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
    )
)]
pub async fn admin_market(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
) -> ApiResult<Json<MarketOut>> {
    let o = market::overview(&actor, &state.ctx).await?;
    Ok(Json(MarketOut {
        exchange: o.exchange,
        source: o.source,
        update_every_secs: o.update_every_secs,
        last_update_status: o.last_update.as_ref().map(|j| j.status.clone()),
        last_update_error: o.last_update.and_then(|j| j.last_error),
        chunks_pending: o.chunks_pending,
        series: o
            .series
            .into_iter()
            .map(|s| SeriesOut {
                instrument_id: s.instrument_id,
                exchange: s.exchange,
                symbol: s.symbol,
                pair: s.pair,
                timeframe: s.timeframe,
                tracked: s.tracked,
                first: s.first,
                last: s.last,
                candles: s.candles,
                lag_secs: s.lag_secs,
                last_update: s.last_update,
                fetchable: s.fetchable,
            })
            .collect(),
        runs: o
            .runs
            .into_iter()
            .map(|r| EtlRunOut {
                run_id: r.run_id,
                symbol: r.symbol,
                timeframe: r.timeframe,
                mode: r.mode,
                range_from: r.range_from,
                range_to: r.range_to,
                chunks_done: r.chunks_done,
                chunks_total: r.chunks_total,
                candles_fetched: r.candles_fetched,
                status: r.status,
                error: r.error,
                created_at: r.created_at,
            })
            .collect(),
    }))
}

/// `POST /api/v1/admin/market/series`: starts or stops keeping a series of the configured exchange updated
/// (audited as `market_series_tracked`).
#[utoipa::path(
    post,
    path = "/api/v1/admin/market/series",
    tag = "admin",
    security(("bearer" = [])),
    request_body = TrackIn,
    responses(
        (status = 204, description = "Saved"),
        (status = 400, description = "`invalid_input` (`pair`, `timeframe`) or a malformed body", body = ErrorBody),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 403, description = "Not an admin, or a read-only token", body = ErrorBody),
        (status = 404, description = "Stopping a series that does not exist", body = ErrorBody),
    )
)]
pub async fn track_series(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiJson(body): ApiJson<TrackIn>,
) -> ApiResult<StatusCode> {
    market::set_tracked(
        &actor,
        &state.ctx,
        &body.pair,
        &body.timeframe,
        body.tracked,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/admin/market/update`: queues the update of every tracked series now (audited as
/// `market_update_requested`).
#[utoipa::path(
    post,
    path = "/api/v1/admin/market/update",
    tag = "admin",
    security(("bearer" = [])),
    responses(
        (status = 202, description = "Queued", body = UpdateOut),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 403, description = "Not an admin, or a read-only token", body = ErrorBody),
        (status = 409, description = "`conflict`: an update is queued or running", body = ErrorBody),
    )
)]
pub async fn update_market(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
) -> ApiResult<(StatusCode, Json<UpdateOut>)> {
    let job_id = market::update_now(&actor, &state.ctx).await?;
    Ok((StatusCode::ACCEPTED, Json(UpdateOut { job_id })))
}

/// `POST /api/v1/admin/market/backfill`: fetches a range of a series of the configured exchange from the
/// source in chunk jobs (audited as `market_backfill_requested`).
#[utoipa::path(
    post,
    path = "/api/v1/admin/market/backfill",
    tag = "admin",
    security(("bearer" = [])),
    request_body = BackfillIn,
    responses(
        (status = 202, description = "Queued", body = BackfillOut),
        (status = 400, description = "`invalid_input` (`pair`, `timeframe`, `from` in the future or a range of more than 2000 chunks, `to` not after `from`) or a malformed body", body = ErrorBody),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 403, description = "Not an admin, or a read-only token", body = ErrorBody),
    )
)]
pub async fn backfill_market(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiJson(body): ApiJson<BackfillIn>,
) -> ApiResult<(StatusCode, Json<BackfillOut>)> {
    let b = market::backfill(
        &actor,
        &state.ctx,
        &body.pair,
        &body.timeframe,
        &body.from,
        &body.to,
    )
    .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(BackfillOut {
            run_id: b.run_id,
            chunks: b.chunks,
            skipped: b.skipped,
        }),
    ))
}
