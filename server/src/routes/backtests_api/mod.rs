//! `/api/v1/backtests…`: create backtest runs (validated, limited per user, one run per instrument), list and
//! inspect them, cancel, and read a finished run's result, trades (JSON or CSV) and decision trace. Reads need
//! a token, writes a read-write token of a non-viewer, runs a confirmed email address: the actions in
//! `backend::backtest::actions` decide, each handler parses, calls and maps. Every call is scoped to the
//! token's user by `backend::backtest::runs`: another user's run answers 404.
//!
//! * [`dto`]: the run's request and response types (submission, run, list, detail, status).
//! * [`runs`]: submit, list, get and cancel runs.
//! * [`results`]: a finished run's result, trades and trades as CSV.
//! * [`trace`]: the decision trace of a run at a time.

pub mod dto;
pub mod results;
pub mod runs;
pub mod trace;

use axum::{
    Router,
    routing::{get, post},
};

use self::{
    results::{export_backtest_trades, get_backtest_result, list_backtest_trades},
    runs::{cancel_backtest, create_backtest, get_backtest, list_backtests},
    trace::trace_backtest,
};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/backtests",
            get(list_backtests).post(create_backtest),
        )
        .route("/api/v1/backtests/{id}", get(get_backtest))
        .route("/api/v1/backtests/{id}/result", get(get_backtest_result))
        .route("/api/v1/backtests/{id}/trades", get(list_backtest_trades))
        .route(
            "/api/v1/backtests/{id}/trades.csv",
            get(export_backtest_trades),
        )
        .route("/api/v1/backtests/{id}/cancel", post(cancel_backtest))
        .route("/api/v1/backtests/{id}/trace", get(trace_backtest))
}
