use axum::{Json, extract::State};
use backend::market::{coverage, iso};
use serde_json::{Value, json};

use crate::{error::ApiResult, state::AppState};

/// `GET /api/v1/market/coverage`: per series, first/last candle, count, missing candles, the first 100 gaps
/// (`[from, to, missing]`, open times of the missing candles) and the last update.
#[utoipa::path(
    get,
    path = "/api/v1/market/coverage",
    tag = "market",
    security(()),
    responses(
        (status = 200, description = "`{series: [{instrument_id, exchange, symbol, pair, timeframe, tracked, first, \
            last, count, expected, missing, gap_count, gaps: [[from, to, missing], …], last_update}]}`", body = Object),
    )
)]
pub async fn get_coverage(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let series = coverage::coverage(&state.ctx.db, None, 100).await?;
    let out: Vec<Value> = series
        .into_iter()
        .map(|s| {
            json!({
                "instrument_id": s.instrument_id,
                "exchange": s.exchange,
                "symbol": s.symbol,
                "pair": format!("{}/{}", s.base, s.quote),
                "timeframe": s.timeframe.as_str(),
                "tracked": s.tracked,
                "first": s.first.map(iso),
                "last": s.last.map(iso),
                "count": s.count,
                "expected": s.expected,
                "missing": s.missing,
                "gap_count": s.gap_count,
                "gaps": s.gaps.iter().map(|g| json!([iso(g.from), iso(g.to), g.missing])).collect::<Vec<_>>(),
                "last_update": s.last_update.map(|t| t.to_rfc3339()),
            })
        })
        .collect();
    Ok(Json(json!({ "series": out })))
}
