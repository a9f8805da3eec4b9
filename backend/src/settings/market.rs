//! Market data: the source, the ETL's chunking and retries, the update schedule and the upload limit.

use std::time::Duration;

use url::Url;

use super::reader::Reader;

/// Market data sources and ETL (see `backend::market`).
#[derive(Debug, Clone)]
pub struct MarketSettings {
    /// Base URL of a Binance-compatible REST API (`GET /api/v3/klines`, `GET /api/v3/time`).
    pub data_url: Url,
    /// The exchange name candles fetched from `data_url` are stored under.
    pub exchange: String,
    /// Timeout of one HTTP request to the source.
    pub http_timeout: Duration,
    /// Candles per ETL chunk (one chunk = one job = one transaction).
    pub chunk_candles: u32,
    /// Candles per request (the source's page size; Binance allows up to 1000).
    pub page_limit: u32,
    /// Retries of one request on 429/418/5xx/network errors before the chunk's attempt fails.
    pub max_retries: u32,
    /// Longest `Retry-After` honoured inside one attempt; longer waits fail the attempt (the job retries later).
    pub max_retry_wait: Duration,
    /// How often tracked series are updated from the source (`0` disables the schedule).
    pub update_interval: Duration,
    /// Largest CSV file accepted by the browser upload (bytes).
    pub upload_limit_bytes: usize,
}

/// `MARKET_*`.
pub(super) fn parse(r: &mut Reader<'_>) -> MarketSettings {
    let market_url_raw = r.string("MARKET_DATA_URL", "https://api.binance.com");
    let data_url = match Url::parse(&market_url_raw) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {
            if u.query().is_some() || !u.username().is_empty() {
                r.problem(
                    "MARKET_DATA_URL",
                    "must be a plain base URL without credentials or query",
                );
            }
            Some(u)
        }
        _ => {
            r.problem(
                "MARKET_DATA_URL",
                "must be an http:// or https:// base URL (e.g. https://api.binance.com)",
            );
            None
        }
    };
    let market_exchange = r.string("MARKET_DATA_EXCHANGE", "binance");
    if !(1..=32).contains(&market_exchange.len())
        || !market_exchange
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c))
    {
        r.problem(
            "MARKET_DATA_EXCHANGE",
            "must be 1–32 lower-case letters, digits, '-', '_' or '.'",
        );
    }
    MarketSettings {
        data_url: data_url
            .unwrap_or_else(|| Url::parse("https://api.binance.com").expect("static URL")),
        exchange: market_exchange,
        http_timeout: r.seconds("MARKET_HTTP_TIMEOUT_SECS", 20.0, 0.5, 300.0),
        chunk_candles: r.bounded("MARKET_CHUNK_CANDLES", 5000u32, 10, 100_000),
        page_limit: r.bounded("MARKET_PAGE_LIMIT", 1000u32, 1, 1000),
        max_retries: r.bounded("MARKET_MAX_RETRIES", 4u32, 0, 20),
        max_retry_wait: r.seconds("MARKET_MAX_RETRY_WAIT_SECS", 60.0, 0.0, 3600.0),
        update_interval: r.seconds("MARKET_UPDATE_INTERVAL_SECS", 3600.0, 0.0, 604_800.0),
        upload_limit_bytes: r.bounded(
            "MARKET_UPLOAD_LIMIT_BYTES",
            50 * 1024 * 1024usize,
            1024,
            1 << 31,
        ),
    }
}
