//! Data for the strategy and backtest pages (reads only; changes go through the HTML form handlers in
//! `server::routes::backtests`). Every function passes the call's [`crate::api::actor`] to the actions in
//! `backend::backtest::actions`, which decide what it may see (only the signed-in user's rows).

// Until the split that follows, the old file (with its inner `ssr` module) lives here whole.
#[allow(clippy::module_inception)]
mod ssr;

pub use ssr::*;
