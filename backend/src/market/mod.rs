//! Market data: instruments and candles in Postgres, a Binance-compatible REST source, CSV import, the ETL that
//! moves candles from a source into the database (inline or as jobs), and coverage (what is there, what is
//! missing).
//!
//! * [`store`]: the `instrument`, `candle`, `market_series`, `market_chunk` and `market_etl_run` tables.
//! * [`binance`]: the REST client (pagination, 429/418 with `Retry-After`, 5xx back-off, timeouts, the still-open
//!   candle dropped, invalid candles rejected with a logged reason).
//! * [`csv_import`]: the shared CSV format through the engine's reader, one transaction per file.
//! * [`etl`]: chunk planning, one chunk = one transaction (inline or one `market_chunk` job each), progress.
//! * [`coverage`]: first/last candle, count, gaps as ranges, last update, per series.
//!
//! Timestamps are epoch milliseconds (the engine's unit) everywhere in Rust, `timestamptz` in Postgres.

pub mod alerts;
pub mod binance;
pub mod coverage;
pub mod csv_import;
pub mod etl;
pub mod job_chunk;
pub mod job_update;
pub mod lag;
pub mod store;

use std::fmt;

use chrono::{DateTime, Utc};

pub use engine::candles::{Candles, Gap, Timeframe};

/// An asset code such as `BTC` or `USDT`: 1–16 upper-case ASCII letters or digits (input is upper-cased).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Asset(String);

impl Asset {
    /// Parses an asset code.
    ///
    /// # Errors
    /// A message naming the problem.
    pub fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim().to_ascii_uppercase();
        if t.is_empty() || t.len() > 16 || !t.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(format!(
                "`{text}` is not an asset code (1–16 letters or digits, e.g. BTC)"
            ));
        }
        Ok(Self(t))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Asset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A trading pair: `base` priced in `quote` (ETH/BTC = BTC per ETH).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Pair {
    pub base: Asset,
    pub quote: Asset,
}

impl Pair {
    pub fn new(base: Asset, quote: Asset) -> Self {
        Self { base, quote }
    }

    /// Parses `ETH/BTC`, `ETH-BTC` or `ETH_BTC`.
    ///
    /// # Errors
    /// A message naming the problem.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (b, q) = text
            .split_once(['/', '-', '_'])
            .ok_or_else(|| format!("`{text}` is not a pair like ETH/BTC"))?;
        Ok(Self::new(Asset::parse(b)?, Asset::parse(q)?))
    }

    /// The exchange symbol: base and quote concatenated (`ETHBTC`), as Binance spells it.
    pub fn symbol(&self) -> String {
        format!("{}{}", self.base, self.quote)
    }
}

impl fmt::Display for Pair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.base, self.quote)
    }
}

/// An exchange name as stored in `instrument.exchange`: 1–32 of `a-z 0-9 _ . -`.
///
/// # Errors
/// A message naming the problem.
pub fn parse_exchange(text: &str) -> Result<String, String> {
    let t = text.trim().to_ascii_lowercase();
    if (1..=32).contains(&t.len())
        && t.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.-".contains(c))
    {
        Ok(t)
    } else {
        Err(format!(
            "`{text}` is not an exchange name (1–32 of a-z 0-9 _ . -)"
        ))
    }
}

/// Epoch milliseconds → `DateTime<Utc>` (clamped to chrono's range).
pub fn to_datetime(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// `DateTime<Utc>` → epoch milliseconds.
pub fn to_millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// The current time in epoch milliseconds.
pub fn now_millis() -> i64 {
    Utc::now().timestamp_millis()
}

/// ISO 8601 (`2018-01-10T04:55:00Z`) of epoch milliseconds.
pub fn iso(ms: i64) -> String {
    engine::time::format_iso(ms)
}

/// Parses a date or timestamp given on the command line or in a query: `2024-01-01`, ISO 8601, or epoch ms.
///
/// # Errors
/// A message naming the problem.
pub fn parse_time(text: &str) -> Result<i64, String> {
    engine::time::parse_timestamp(text.trim())
        .map_err(|e| format!("`{text}` is not a date or timestamp: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_and_assets_parse_at_the_edge() {
        let p = Pair::parse("eth/btc").unwrap();
        assert_eq!(p.to_string(), "ETH/BTC");
        assert_eq!(p.symbol(), "ETHBTC");
        assert_eq!(Pair::parse("XRP-ETH").unwrap().quote.as_str(), "ETH");
        for bad in [
            "ETHBTC",
            "ETH/",
            "/BTC",
            "ET H/BTC",
            "ETH/B$C",
            "AAAAAAAAAAAAAAAAA/BTC",
        ] {
            assert!(Pair::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_exchange(" Binance ").unwrap(), "binance");
        assert!(parse_exchange("bin ance").is_err());
        assert!(parse_exchange("").is_err());
        assert_eq!(parse_time("2018-01-10").unwrap(), 1_515_542_400_000);
        assert!(parse_time("yesterday").is_err());
    }
}
