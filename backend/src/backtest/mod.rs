//! Strategies (each save an immutable version) and backtest runs: creation with validation and per-user
//! limits, status and cancellation, stored results, exports and the decision trace. Every function takes the
//! acting user's id and only ever reads or writes that user's rows: another user's strategy or run is
//! [`Error::NotFound`], exactly like one that does not exist.
//!
//! Surfaces call the [`actions`] (they take the [`crate::Actor`] and enforce permission, limits, state rules and
//! audit); the modules below them are the data layer. The work itself runs in the `backtest` job ([`job`]).

pub mod actions;
pub mod budget;
pub mod catalogue;
pub mod export;
pub mod job;
pub mod range;
pub mod report;
pub mod runs;
pub mod strategies;
pub mod trace;
pub(crate) mod trade_chunks;

pub use crate::error::{Error, Problem};
pub use engine::run_state::RunState;

/// Compiles a strategy's source (with parameter overrides), turning diagnostics into [`Problem`]s.
///
/// # Errors
/// [`Error::Strategy`] with every problem found.
pub fn compile(
    source: &str,
    overrides: &[(String, String)],
) -> Result<engine::strategy::CompiledStrategy, Error> {
    engine::strategy::compile(source, overrides)
        .map_err(|d| Error::Strategy(d.into_iter().map(Problem::from).collect()))
}

/// `NaN`/infinite → `None`, for JSON.
pub(crate) fn finite(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}
