//! HTTP routes outside the Leptos pages: probes, metrics and operator endpoints.

pub mod health;
pub mod market;
pub mod metrics;
pub mod ops;

use axum::Router;

use crate::startup::AppState;

/// Every non-page route.
pub fn router() -> Router<AppState> {
    Router::new()
        .merge(health::router())
        .merge(metrics::router())
        .merge(market::router())
        .merge(ops::router())
}
