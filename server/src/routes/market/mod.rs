//! Market data, read-only and public for now (prices are not user data): candles for charts and coverage.
//! Issue 5.

mod get_candles;
mod get_coverage;

use axum::{Router, routing::get};

use crate::startup::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/market/candles", get(get_candles::get_candles))
        .route("/api/v1/market/coverage", get(get_coverage::get_coverage))
}
