//! [`Gate`]: what a bar allows. A backtest runs every bar [`Gate::Open`]; paper trading replays its history
//! with the gate each candle was processed under (the warm-up before the run's start, kill switches and risk
//! locks), so a paper run and a backtest share one matching model and differ only where a gate says so.
//!
//! Semantics (docs/paper-trading.md, "Kill switch"):
//! - **open**: the strategy trades normally.
//! - **no_entry**: entries decided at this close are refused (a paper run whose entries wait for an inbound
//!   signal); an entry decided at the previous close still fills, and exits work as with open.
//! - **reduce_only**: exits (signals, max bars, stops, targets) work; entries are refused, and an entry order
//!   decided at the previous close is cancelled before it fills.
//! - **halt**: no new orders at all (neither entries nor signal exits); a pending entry is cancelled, a pending
//!   exit (already submitted) still fills. Protective orders attached at entry (stop loss, take profit, trailing
//!   stop) stay working: a halted run never leaves a position unprotected.
//! - **flatten**: an open position is closed by a market order at the next fill (next open, or this close with
//!   the same-close fill model), then the run behaves as halt; with no position it is halt.
//! - **warmup**: before the run's first live candle: indicators see the bar, nothing is decided or filled.

use serde::{Deserialize, Serialize};

/// What a bar allows, from the least to the most restrictive (see the module docs).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "snake_case")]
pub enum Gate {
    #[default]
    Open,
    NoEntry,
    ReduceOnly,
    Halt,
    Flatten,
    Warmup,
}

impl Gate {
    pub const ALL: [Gate; 6] = [
        Gate::Open,
        Gate::NoEntry,
        Gate::ReduceOnly,
        Gate::Halt,
        Gate::Flatten,
        Gate::Warmup,
    ];

    /// The stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            Gate::Open => "open",
            Gate::NoEntry => "no_entry",
            Gate::ReduceOnly => "reduce_only",
            Gate::Halt => "halt",
            Gate::Flatten => "flatten",
            Gate::Warmup => "warmup",
        }
    }

    /// Parses the stored text (also `reduce-only`).
    pub fn parse(text: &str) -> Option<Gate> {
        let t = text.trim().to_ascii_lowercase().replace('-', "_");
        Self::ALL.into_iter().find(|g| g.as_str() == t)
    }

    /// New entries may be decided at this close.
    pub fn allows_entry(self) -> bool {
        self == Gate::Open
    }

    /// An entry decided at the previous close may fill in this bar.
    pub fn allows_entry_fill(self) -> bool {
        matches!(self, Gate::Open | Gate::NoEntry)
    }

    /// The strategy's own exits (signals, max bars) may be submitted.
    pub fn allows_exit(self) -> bool {
        matches!(
            self,
            Gate::Open | Gate::NoEntry | Gate::ReduceOnly | Gate::Flatten
        )
    }

    /// The stricter of two gates (the strictest level that applies wins).
    pub fn strictest(self, other: Gate) -> Gate {
        self.max(other)
    }
}

impl std::fmt::Display for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
