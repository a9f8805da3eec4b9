//! HTTP routes outside the Leptos pages: probes, metrics, operator endpoints, account form handlers and the
//! REST API.

pub mod account;
pub mod admin_api;
pub mod admin_forms;
pub mod api;
pub mod backtests;
pub mod backtests_api;
pub mod billing_api;
pub mod contract;
pub mod health;
pub mod market;
pub mod metrics;
pub mod notifications;
pub mod notifications_api;
pub mod openapi;
pub mod ops;
pub mod paper;
pub mod paper_api;
pub mod plans_api;
pub mod run_form;
pub mod strategies_api;
pub mod upload;

use axum::Router;

use crate::state::AppState;

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
        .merge(notifications::router())
        .merge(paper::router())
        .merge(strategies_api::router())
        .merge(backtests_api::router())
        .merge(notifications_api::router())
        .merge(paper_api::router())
        .merge(plans_api::router())
        .merge(billing_api::router())
        .merge(admin_api::router())
        .merge(admin_forms::router())
        .merge(openapi::router())
}
