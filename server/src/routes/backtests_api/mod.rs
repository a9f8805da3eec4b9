//! `/api/v1/backtests…`: create backtest runs (validated, limited per user, one run per instrument), list and
//! inspect them, cancel, and read a finished run's result, trades (JSON or CSV) and decision trace. Reads need
//! a token, writes a read-write token of a non-viewer, runs a confirmed email address: the actions in
//! `backend::backtest::actions` decide, each handler parses, calls and maps. Every call is scoped to the
//! token's user by `backend::backtest::runs`: another user's run answers 404.

mod dto;

pub use dto::*;
