//! Strategies (each save an immutable version) and backtest runs: creation with validation and per-user
//! limits, status and cancellation, stored results, exports and the decision trace. Every function takes the
//! acting user's id and only ever reads or writes that user's rows: another user's strategy or run is
//! [`Error::NotFound`], exactly like one that does not exist.
//!
//! Surfaces call the [`actions`] (they take the [`crate::Actor`] and enforce permission, limits, state rules and
//! audit); the modules below them are the data layer. The work itself runs in the `backtest` job ([`job`]).

pub mod actions;
pub mod budget;
pub mod export;
pub mod job;
pub mod range;
pub mod report;
pub mod runs;
pub mod strategies;
pub mod trace;

use serde::{Deserialize, Serialize};

pub use crate::error::Error;
pub use engine::run_state::RunState;

/// One problem in a strategy's source (1-based line and column; line 0 = not tied to a position).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    pub line: usize,
    pub column: usize,
    pub len: usize,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line > 0 {
            write!(
                f,
                "line {}, column {}: {}",
                self.line, self.column, self.message
            )
        } else {
            f.write_str(&self.message)
        }
    }
}

impl From<engine::strategy::Diagnostic> for Problem {
    fn from(d: engine::strategy::Diagnostic) -> Self {
        Self {
            line: d.line,
            column: d.column,
            len: d.len,
            message: d.message,
        }
    }
}

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
