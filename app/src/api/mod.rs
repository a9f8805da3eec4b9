//! `#[server]` functions: the UI's reads and writes. Each calls into `backend` under the `ssr` feature.

pub mod account;
pub mod backtest;
pub mod market;
pub mod status;
