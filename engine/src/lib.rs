//! Vortex engine: candles, indicators, strategy language, backtester and metrics.
#![forbid(unsafe_code)]

pub mod backtest;
pub mod candles;
pub mod catalogue;
pub mod csv;
pub mod indicators;
pub mod strategy;
pub mod time;

/// Version of the engine, recorded in every result's provenance.
pub const ENGINE_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Lower-case hex of a byte slice.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}
