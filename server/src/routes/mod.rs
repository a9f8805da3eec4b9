//! HTTP routes outside the Leptos pages: probes, metrics, operator endpoints, account form handlers and the
//! REST API.

pub mod account;
pub mod api;
pub mod backtests;
pub mod health;
pub mod market;
pub mod metrics;
pub mod ops;
pub mod upload;

use axum::Router;

use crate::startup::AppState;

/// Every non-page route.
pub fn router() -> Router<AppState> {
    Router::new()
        .merge(health::router())
        .merge(metrics::router())
        .merge(market::router())
        .merge(ops::router())
        .merge(account::router())
        .merge(api::router())
        .merge(backtests::router())
}
