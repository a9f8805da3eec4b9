//! `GET /api/v1/market/instruments`: what a backtest can run on.

use axum::{Json, extract::State};
use backend::market::{coverage, iso, store};
use serde::Serialize;
use utoipa::ToSchema;

use crate::{error::ApiResult, extract::ApiActor, state::AppState};

/// A stored series of an instrument.
#[derive(Debug, Serialize, ToSchema)]
pub struct StoredSeries {
    /// `1m`, `5m`, `15m`, `30m`, `1h`, `4h`, `1d` or `1w`.
    pub timeframe: String,
    /// Open time of the first and last stored candle (RFC 3339 UTC); `null` when none is stored.
    pub first: Option<String>,
    pub last: Option<String>,
    /// Candles stored.
    pub count: i64,
    /// Whether the scheduled update keeps this series current.
    pub tracked: bool,
}

/// An instrument and its stored series.
#[derive(Debug, Serialize, ToSchema)]
pub struct InstrumentInfo {
    pub instrument_id: i32,
    pub exchange: String,
    /// The exchange's symbol, e.g. `ETHBTC`.
    pub symbol: String,
    /// `BASE/QUOTE`, e.g. `ETH/BTC`.
    pub pair: String,
    pub active: bool,
    pub timeframes: Vec<StoredSeries>,
}

/// Every instrument.
#[derive(Debug, Serialize, ToSchema)]
pub struct Instruments {
    pub instruments: Vec<InstrumentInfo>,
}

/// `GET /api/v1/market/instruments`: every instrument with its stored series (first/last candle, count), for
/// choosing `instrument_ids`, `timeframe` and a range with candles when creating a backtest.
#[utoipa::path(
    get,
    path = "/api/v1/market/instruments",
    tag = "market",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Instruments by exchange and symbol", body = Instruments),
        (status = 401, description = "No or invalid token", body = crate::routes::openapi::ErrorBody),
        (status = 429, description = "Rate limit reached (see Retry-After)", body = crate::routes::openapi::ErrorBody),
    )
)]
pub async fn get_instruments(
    State(state): State<AppState>,
    ApiActor(_): ApiActor,
) -> ApiResult<Json<Instruments>> {
    let db = &state.ctx.db;
    let instruments = store::instruments(db).await?;
    let series = coverage::series(db, None).await?;
    let out = instruments
        .into_iter()
        .map(|i| InstrumentInfo {
            timeframes: series
                .iter()
                .filter(|s| s.instrument_id == i.instrument_id)
                .map(|s| StoredSeries {
                    timeframe: s.timeframe.as_str().to_owned(),
                    first: s.first.map(iso),
                    last: s.last.map(iso),
                    count: s.count,
                    tracked: s.tracked,
                })
                .collect(),
            pair: i.pair_label(),
            instrument_id: i.instrument_id,
            exchange: i.exchange,
            symbol: i.symbol,
            active: i.active,
        })
        .collect();
    Ok(Json(Instruments { instruments: out }))
}
