//! Vortex engine: candles, indicators, the strategy language, the backtester and metrics.
//!
//! Pure and deterministic: no I/O runtime, no clock, no randomness (see `clippy.toml`); it
//! compiles for `wasm32-unknown-unknown` so the UI can reuse its types.
//!
//! # Integration notes
//!
//! Everything the server, the worker and the CLI need is a library call:
//!
//! ```no_run
//! use engine::backtest::{self, BacktestConfig, Fill};
//! use engine::candles::Timeframe;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // 1. Candles. The caller opens the file; the reader takes any `impl Read`.
//! //    `None` infers the timeframe. Errors name the line (`CsvError::line()`); gaps are returned.
//! let file = std::fs::File::open("data/market/ETH-BTC-5m.csv")?;
//! let (candles, gaps) = engine::csv::read_candles(file, None)?;
//! let hourly = candles.resample(Timeframe::H1)?;            // larger timeframe
//! let window = candles.between(Some(1_515_560_100_000), None); // --from/--to (epoch ms)
//!
//! // 2. Strategy: a template by case-insensitive name, or a custom source (`--strategy-file`).
//! let source = engine::catalogue::template("MACD").expect("built in").source;
//! let overrides = vec![("fast".to_string(), "8".to_string())]; // --param k=v
//! let strategy = match engine::strategy::compile(source, &overrides) {
//!     Ok(s) => s,
//!     Err(diags) => {
//!         for d in &diags {
//!             eprintln!("{}", d.render(source)); // line:column with a caret
//!         }
//!         std::process::exit(2);
//!     }
//! };
//! for p in strategy.params() { /* name, kind, default, value, min, max: build a form */ }
//!
//! // 3. Backtest (--fee 0.001 --slippage-bps 5 --fill next-open|close --cash 10000).
//! let config = BacktestConfig {
//!     fee: 0.001,
//!     slippage_bps: 5.0,
//!     fill: Fill::parse("next-open").expect("valid"),
//!     initial_cash: 10_000.0,
//!     ..BacktestConfig::default()
//! };
//! let result = backtest::run(&candles, &strategy, &config)?;
//! // Worker: progress and cancellation (return false to cancel → BacktestError::Cancelled).
//! let result = backtest::run_with(&candles, &strategy, &config, &mut |done, total| {
//!     let _ = (done, total); // report progress
//!     true
//! })?;
//! // `--format json`: `serde_json::to_string(&result)` has `trades`, `equity`, `metrics`
//! // (each metric: value or n/a with reason, unit, basis; `metrics.final_equity`), `provenance`.
//! for (name, m) in result.metrics.iter() { /* summary table */ }
//!
//! // 4. "Why did / didn't it trade here": the decision trace for a range of bars.
//! let why = backtest::trace(&candles, &strategy, &config, 100..200)?;
//!
//! // 5. `vortex indicator --csv FILE 'rsi(close, 14)' 'macd(close, 12, 26, 9)'`:
//! //    one (name, column) per output (MACD gives three), aligned with `candles.time`.
//! let cols = engine::strategy::eval_series("macd(close, 12, 26, 9)", &candles)
//!     .map_err(|d| d[0].render("macd(close, 12, 26, 9)"))?;
//! # let _ = (gaps, hourly, window, why, cols);
//! # Ok(())
//! # }
//! ```
//!
//! Main types: [`candles::Candles`] (columnar: `time` epoch ms UTC open times, `open`, `high`,
//! `low`, `close`, `volume`), [`candles::Timeframe`] (`Timeframe::parse("5m")`),
//! [`candles::CandleError`], [`candles::Gap`], [`csv::CsvError`], [`strategy::Diagnostic`],
//! [`strategy::CompiledStrategy`], [`backtest::BacktestConfig`], [`backtest::BacktestResult`],
//! [`backtest::Trade`], [`backtest::Metrics`], [`backtest::Provenance`],
//! [`backtest::BarTrace`], [`ENGINE_VERSION`]. All result types are `Serialize`/`Deserialize`
//! and `Clone`.
//!
//! Timing (`timing` in the CLI's JSON) is measured by the caller: the engine reads no clock.
//! Candles from [`csv::read_candles`] are validated; candles from elsewhere (database) should be
//! checked with [`candles::Candles::validate`] before a run.
//!
//! Documentation: `docs/strategy-language.md`, `docs/indicators.md`, `docs/metrics.md`.
#![forbid(unsafe_code)]

pub mod backtest;
pub mod candles;
pub mod catalogue;
pub mod csv;
pub mod indicators;
pub mod run_state;
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
