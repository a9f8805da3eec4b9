//! Market data, read-only: candles for charts and coverage are public for now (prices are not user data); the
//! instrument list for API clients needs a token like the rest of the API. Issue 5.

pub(crate) mod get_candles;
pub(crate) mod get_coverage;
pub(crate) mod get_instruments;

use axum::{Router, routing::get};

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/market/candles", get(get_candles::get_candles))
        .route("/api/v1/market/coverage", get(get_coverage::get_coverage))
        .route(
            "/api/v1/market/instruments",
            get(get_instruments::get_instruments),
        )
}
