//! Data for the paper-trading pages (reads only; starting and controlling runs go through the HTML form
//! handlers in `server::routes::paper`). Every function passes the call's [`crate::api::actor`] to the actions
//! in `backend::paper::actions`, which decide what it may see (only the signed-in user's runs).
//!
//! * `views`: the data the pages show, as the server functions return it.
//! * `ssr` (server only): what each server function does, through the backend's actions.

mod views;

#[cfg(feature = "ssr")]
pub(crate) mod ssr;

use leptos::{prelude::*, server_fn::codec::GetUrl};

pub use self::views::{
    CandleView, FeedOption, FillView, GapView, KillSwitchView, PaperFormView, PaperListView,
    PaperRow, PaperRunView, ParityDifference, ParityTrade, ParityView, PositionView,
    RiskLimitsView, RiskLockView, SignalRowView, SignalsView,
};
use crate::error::AppError;

/// Processed candles the run page shows (newest first).
pub const CANDLES_SHOWN: i64 = 20;
/// Fills the run page shows (newest first).
pub const FILLS_SHOWN: i64 = 100;
/// Points of the equity curve.
pub const EQUITY_POINTS: usize = 500;

#[server(endpoint = "paper_runs", input = GetUrl)]
pub async fn get_paper_runs(
    status: Option<String>,
    strategy: Option<String>,
    instrument: Option<i32>,
    batch: Option<String>,
) -> Result<PaperListView, AppError> {
    ssr::runs(status, strategy, instrument, batch).await
}

#[server(endpoint = "paper_form", input = GetUrl)]
pub async fn get_paper_form(
    strategy: Option<String>,
    version: Option<i32>,
) -> Result<PaperFormView, AppError> {
    ssr::form(strategy, version).await
}

#[server(endpoint = "paper_run", input = GetUrl)]
pub async fn get_paper_run(id: String) -> Result<PaperRunView, AppError> {
    ssr::run(id).await
}

#[server(endpoint = "paper_parity", input = GetUrl)]
pub async fn get_paper_parity(id: String) -> Result<ParityView, AppError> {
    ssr::parity(id).await
}

/// A status's badge class.
pub fn status_badge(status: &str) -> &'static str {
    match status {
        "active" => "badge ok",
        "paused" | "stopping" => "badge warn",
        "failed" => "badge bad",
        _ => "badge",
    }
}

/// Money with two decimals, signed for P&L.
pub fn money(v: f64) -> String {
    format!("{v:.2}")
}
