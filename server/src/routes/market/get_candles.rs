use axum::{Json, extract::State};
use backend::market::{Timeframe, iso, parse_time, store};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{
    error::{ApiError, ApiResult},
    state::AppState,
};

/// Most candles one request returns; a longer range returns its newest `MAX_CANDLES` and `truncated: true`.
pub const MAX_CANDLES: i64 = 20_000;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CandlesQuery {
    /// The instrument (see `GET /api/v1/market/instruments`). Required.
    #[param(required = true)]
    instrument_id: Option<i32>,
    /// `1m`, `5m`, `15m`, `30m`, `1h`, `4h`, `1d` or `1w`. Required.
    #[serde(default, deserialize_with = "crate::routes::contract::de_timeframe")]
    #[param(inline, value_type = crate::routes::contract::TimeframeParam, required = true)]
    timeframe: Option<String>,
    /// Start (inclusive): `YYYY-MM-DD` or RFC 3339, years 1970–2099.
    #[serde(default, deserialize_with = "crate::routes::contract::de_opt_date")]
    #[param(schema_with = crate::routes::contract::date_schema)]
    from: Option<String>,
    /// End (exclusive): `YYYY-MM-DD` or RFC 3339, years 1970–2099.
    #[serde(default, deserialize_with = "crate::routes::contract::de_opt_date")]
    #[param(schema_with = crate::routes::contract::date_schema)]
    to: Option<String>,
    /// At most this many candles, the newest ones (1–20 000, default 20 000).
    #[serde(
        default,
        deserialize_with = "crate::routes::contract::de_range::<_, 1, 20_000>"
    )]
    #[param(minimum = 1, maximum = 20_000)]
    limit: Option<i64>,
}

/// `GET /api/v1/market/candles?instrument_id=1&timeframe=5m[&from=2018-01-10][&to=…][&limit=N]`: the candles
/// of one series with `from <= open_time < to`, as `[[open_time_ms, open, high, low, close, volume], …]`,
/// oldest first, at most `limit` (default and maximum 20 000, the newest ones).
#[utoipa::path(
    get,
    path = "/api/v1/market/candles",
    tag = "market",
    security(()),
    params(CandlesQuery),
    responses(
        (status = 200, description = "`{instrument: {instrument_id, exchange, symbol, pair}, timeframe, from, to, \
            truncated, candles: [[open_time_ms, open, high, low, close, volume], …]}`, oldest first", body = Object),
        (status = 400, description = "Missing or invalid parameter", body = crate::routes::openapi::ErrorBody),
        (status = 404, description = "No such instrument", body = crate::routes::openapi::ErrorBody),
    )
)]
pub async fn get_candles(
    State(state): State<AppState>,
    crate::extract::ApiQuery(q): crate::extract::ApiQuery<CandlesQuery>,
) -> ApiResult<Json<Value>> {
    let instrument_id = q
        .instrument_id
        .ok_or_else(|| ApiError::BadRequest("instrument_id is required".into()))?;
    let timeframe = Timeframe::parse(q.timeframe.as_deref().unwrap_or(""))
        .map_err(|e| ApiError::BadRequest(format!("timeframe: {e}")))?;
    let time = |v: &Option<String>, name: &str| {
        v.as_deref()
            .filter(|s| !s.trim().is_empty())
            .map(parse_time)
            .transpose()
            .map_err(|e| ApiError::BadRequest(format!("{name}: {e}")))
    };
    let (from, to) = (time(&q.from, "from")?, time(&q.to, "to")?);
    let limit = q.limit.unwrap_or(MAX_CANDLES);
    if !(1..=MAX_CANDLES).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "limit must be between 1 and {MAX_CANDLES}"
        )));
    }
    let instrument = store::instrument(&state.ctx.db, instrument_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    // One more than asked tells whether the range was cut.
    let candles = store::load_candles(
        &state.ctx.db,
        instrument_id,
        timeframe,
        from,
        to,
        Some(limit + 1),
    )
    .await?;
    let truncated = candles.len() as i64 > limit;
    let skip = usize::from(truncated);
    let rows: Vec<Value> = (skip..candles.len())
        .map(|i| {
            let b = candles.bar(i);
            json!([candles.time[i], b.open, b.high, b.low, b.close, b.volume])
        })
        .collect();
    Ok(Json(json!({
        "instrument": {
            "instrument_id": instrument.instrument_id,
            "exchange": instrument.exchange,
            "symbol": instrument.symbol,
            "pair": instrument.pair_label(),
        },
        "timeframe": timeframe.as_str(),
        "from": from.map(iso),
        "to": to.map(iso),
        "truncated": truncated,
        "candles": rows,
    })))
}
