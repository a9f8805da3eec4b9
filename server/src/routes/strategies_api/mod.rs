//! `/api/v1/templates` and `/api/v1/strategies…`: the strategy catalogue and a trader's strategies (each save
//! of changed source an immutable version). Reads need a token, writes a read-write token of a non-viewer: the
//! actions in `backend::backtest::actions::strategies` decide (and audit), each handler parses, calls and
//! maps. Everything is scoped to the token's user:
//! another user's strategy answers 404 exactly like one that does not exist.

mod dto;

pub use dto::*;
