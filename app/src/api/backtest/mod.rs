//! Data for the strategy and backtest pages (reads only; changes go through the HTML form handlers in
//! `server::routes::backtests`). Every function passes the call's [`crate::api::actor`] to the actions in
//! `backend::backtest::actions`, which decide what it may see (only the signed-in user's rows).
//!
//! * `views`: the data the pages show, as the server functions return it.
//! * `ssr` (server only): what each server function does, through the backend's actions.

mod views;

#[cfg(feature = "ssr")]
pub(crate) mod ssr;

pub use engine::run_state::RunState;
use leptos::{prelude::*, server_fn::codec::GetUrl};

pub use self::views::{
    CompareView, ProblemView, RunFormView, RunRow, RunView, RunsView, SeriesOption, StrategiesView,
    StrategyRow, StrategyView, TemplateView, TradeView,
};
use crate::error::AppError;

/// Trades per page on the run page.
pub const TRADES_PER_PAGE: i64 = 50;

#[server(endpoint = "strategies", input = GetUrl)]
pub async fn get_strategies(archived: bool) -> Result<StrategiesView, AppError> {
    ssr::strategies(archived).await
}

#[server(endpoint = "strategy", input = GetUrl)]
pub async fn get_strategy(id: String) -> Result<StrategyView, AppError> {
    ssr::strategy(id).await
}

#[server(endpoint = "run_form", input = GetUrl)]
pub async fn get_run_form(
    strategy: Option<String>,
    version: Option<i32>,
) -> Result<RunFormView, AppError> {
    ssr::run_form(strategy, version).await
}

#[server(endpoint = "runs", input = GetUrl)]
pub async fn get_runs(
    strategy: Option<String>,
    instrument: Option<i32>,
    status: Option<String>,
    batch: Option<String>,
    sort: Option<String>,
    dir: Option<String>,
) -> Result<RunsView, AppError> {
    ssr::runs(strategy, instrument, status, batch, sort, dir).await
}

#[server(endpoint = "run", input = GetUrl)]
pub async fn get_run(
    id: String,
    sort: Option<String>,
    dir: Option<String>,
    page: Option<i64>,
) -> Result<RunView, AppError> {
    ssr::run(id, sort, dir, page).await
}

#[server(endpoint = "compare", input = GetUrl)]
pub async fn get_compare(ids: Vec<String>) -> Result<CompareView, AppError> {
    ssr::compare(ids).await
}

/// Formats a metric value by its unit.
pub fn format_metric(value: Option<f64>, unit: &str) -> String {
    match value {
        None => "n/a".into(),
        Some(v) => match unit {
            "fraction" => format!("{:.2} %", v * 100.0),
            "currency" => format!("{v:.2}"),
            "count" | "bars" => format!("{v:.0}"),
            _ => format!("{v:.2}"),
        },
    }
}

/// A metric's display name.
pub fn metric_label(name: &str) -> String {
    let s = name.replace('_', " ");
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => s,
    }
}
