//! Backtests: the run form, the runs list (filter, sort, pick runs to compare), one run's results (metrics,
//! charts with trade markers, "why here?", trades, provenance, exports) and the comparison of several runs.
//!
//! Without JavaScript every page works as plain HTML (forms post to `server::routes::backtests`, the trades
//! table sorts and pages by links). After hydration `/backtest-chart.js` draws the charts and polls a running
//! backtest's status, reloading the page when it finishes.
//!
//! One file per page: [`list`] (the runs list and the runs table), [`new`] (the run form), [`run`] (one run's
//! results) and [`compare`].

mod compare;
mod list;
mod new;
mod run;

pub use compare::ComparePage;
pub use list::{RunsPage, RunsTable};
pub use new::NewBacktestPage;
pub use run::RunPage;

use crate::api::backtest::RunState;

pub(super) fn pct(v: Option<f64>) -> String {
    v.map_or_else(|| "—".into(), |v| format!("{:.2} %", v * 100.0))
}

pub(super) fn num(v: Option<f64>) -> String {
    v.map_or_else(|| "—".into(), |v| format!("{v:.2}"))
}

pub(super) fn status_badge(status: RunState) -> &'static str {
    match status {
        RunState::Done => "badge ok",
        RunState::Failed => "badge bad",
        RunState::Cancelled => "badge",
        RunState::Queued | RunState::Running => "badge warn",
    }
}
