//! A Binance-compatible REST source: `GET /api/v3/klines` and `GET /api/v3/time`, base URL from
//! `MARKET_DATA_URL`, so other exchanges with the same wire format and the local mock exchange work too.
//!
//! * **Pagination**: a range is fetched in pages of `MARKET_PAGE_LIMIT` candles, each page starting after the
//!   last open time received.
//! * **Rate limits**: 429 (too many requests) and 418 (IP banned) wait for `Retry-After` (bounded by
//!   `MARKET_MAX_RETRY_WAIT_SECS`, else the attempt fails and the job retries later); the used request weight
//!   (`X-MBX-USED-WEIGHT-1M`) above 90% of the budget pauses until the next minute.
//! * **Errors**: 5xx and network errors are retried with exponential back-off (`MARKET_MAX_RETRIES`); every
//!   request has a timeout (`MARKET_HTTP_TIMEOUT_SECS`); an unknown symbol is permanent.
//! * **Closed candles only**: a candle is stored only when its close time is before the exchange's clock
//!   (`/api/v3/time`), so the still-open last candle is never stored as final.
//! * **Validation**: each candle goes through the engine's row validation; invalid ones (high < low, non-finite,
//!   misaligned, out of order) are dropped and logged with the reason.

use std::time::Duration;

use serde_json::Value;
use url::Url;

use super::{Candles, Timeframe, iso};
use crate::settings::MarketSettings;

/// Request-weight budget per minute (Binance's default for `/api/v3`); above 90% of it we pause.
const WEIGHT_BUDGET_1M: u64 = 6000;

/// Why fetching from the source failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SourceError {
    /// The symbol does not exist on the source (HTTP 400, Binance code -1121). Retrying cannot help.
    #[error("the source does not know symbol {0}")]
    UnknownSymbol(String),
    /// Another 4xx answer: our request is wrong. Retrying cannot help.
    #[error("the source rejected the request ({status}): {body}")]
    Rejected { status: u16, body: String },
    /// Rate limited for longer than we wait inside one attempt.
    #[error("rate limited by the source (HTTP {status}); asked to wait {retry_after_secs} s")]
    RateLimited { status: u16, retry_after_secs: u64 },
    /// 5xx after all retries.
    #[error("the source failed with HTTP {status} after {attempts} attempts: {body}")]
    Server {
        status: u16,
        attempts: u32,
        body: String,
    },
    /// Connection refused, reset, timed out… after all retries.
    #[error("cannot reach the source after {attempts} attempts: {message}")]
    Network { attempts: u32, message: String },
    /// The body is not the klines wire format.
    #[error("malformed response from {endpoint}: {message}")]
    Malformed { endpoint: String, message: String },
}

impl SourceError {
    /// Whether a later attempt may succeed.
    pub fn is_transient(&self) -> bool {
        !matches!(self, Self::UnknownSymbol(_) | Self::Rejected { .. })
    }
}

/// What fetching a range produced: validated, closed candles, and how many were dropped.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub candles: Candles,
    /// Candles dropped because they were still open.
    pub open_dropped: usize,
    /// Candles dropped as invalid (each logged with its reason).
    pub invalid_dropped: usize,
    /// Requests made (including retried ones).
    pub requests: u32,
}

/// The REST client. Cheap to clone.
#[derive(Clone)]
pub struct BinanceClient {
    http: reqwest::Client,
    base: Url,
    page_limit: u32,
    max_retries: u32,
    max_retry_wait: Duration,
}

impl BinanceClient {
    /// A client for `settings.data_url`.
    ///
    /// # Errors
    /// When the HTTP client cannot be built (TLS initialisation).
    pub fn new(settings: &MarketSettings) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(settings.http_timeout)
            .connect_timeout(settings.http_timeout.min(Duration::from_secs(5)))
            .user_agent(concat!("vortex/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            http,
            base: settings.data_url.clone(),
            page_limit: settings.page_limit,
            max_retries: settings.max_retries,
            max_retry_wait: settings.max_retry_wait,
        })
    }

    /// The base URL (for logs and run records).
    pub fn base_url(&self) -> &Url {
        &self.base
    }

    fn url(&self, path: &str) -> Result<Url, SourceError> {
        self.base.join(path).map_err(|e| SourceError::Rejected {
            status: 0,
            body: format!("cannot build URL: {e}"),
        })
    }

    /// GETs `path` with `query`, handling rate limits, 5xx and network errors. Returns the parsed JSON body.
    async fn get_json(
        &self,
        path: &str,
        query: &[(&str, String)],
        requests: &mut u32,
    ) -> Result<Value, SourceError> {
        let url = self.url(path)?;
        let mut backoff = Duration::from_millis(250);
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            *requests += 1;
            let retry_left = attempt <= self.max_retries;
            let resp = match self.http.get(url.clone()).query(query).send().await {
                Ok(r) => r,
                Err(e) => {
                    let message = describe_reqwest(e);
                    if retry_left {
                        tracing::warn!(%url, attempt, error = %message, retry_in_ms = backoff.as_millis() as u64, "market source unreachable; retrying");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(30));
                        continue;
                    }
                    return Err(SourceError::Network {
                        attempts: attempt,
                        message,
                    });
                }
            };
            let status = resp.status().as_u16();
            let used_weight = header_u64(&resp, "x-mbx-used-weight-1m");
            let retry_after = header_u64(&resp, "retry-after");
            if status == 429 || status == 418 {
                let wait = retry_after.unwrap_or(1);
                if retry_left && Duration::from_secs(wait) <= self.max_retry_wait {
                    tracing::warn!(%url, status, retry_after_secs = wait, "rate limited by the market source; waiting");
                    tokio::time::sleep(Duration::from_secs(wait)).await;
                    continue;
                }
                return Err(SourceError::RateLimited {
                    status,
                    retry_after_secs: wait,
                });
            }
            let body = resp.text().await.map_err(|e| SourceError::Network {
                attempts: attempt,
                message: describe_reqwest(e),
            });
            let body = match body {
                Ok(b) => b,
                Err(e) if retry_left => {
                    tracing::warn!(%url, attempt, error = %e, "reading the response failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                    continue;
                }
                Err(e) => return Err(e),
            };
            if status >= 500 {
                if retry_left {
                    tracing::warn!(%url, status, attempt, retry_in_ms = backoff.as_millis() as u64, "market source error; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                    continue;
                }
                return Err(SourceError::Server {
                    status,
                    attempts: attempt,
                    body: truncate(&body, 300),
                });
            }
            if status >= 400 {
                if body.contains("-1121") {
                    let symbol = query
                        .iter()
                        .find(|(k, _)| *k == "symbol")
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default();
                    return Err(SourceError::UnknownSymbol(symbol));
                }
                return Err(SourceError::Rejected {
                    status,
                    body: truncate(&body, 300),
                });
            }
            if let Some(w) = used_weight
                && w * 10 >= WEIGHT_BUDGET_1M * 9
            {
                let into_minute = super::now_millis().rem_euclid(60_000);
                let pause = Duration::from_millis(u64::try_from(60_000 - into_minute).unwrap_or(0));
                tracing::warn!(
                    used_weight = w,
                    pause_ms = pause.as_millis() as u64,
                    "request weight near the limit; pausing"
                );
                tokio::time::sleep(pause.min(self.max_retry_wait)).await;
            }
            return serde_json::from_str(&body).map_err(|e| SourceError::Malformed {
                endpoint: path.to_owned(),
                message: format!("{e} (body starts with `{}`)", truncate(&body, 60)),
            });
        }
    }

    /// The exchange's clock (epoch ms).
    ///
    /// # Errors
    /// See [`SourceError`].
    pub async fn server_time(&self) -> Result<i64, SourceError> {
        let mut requests = 0;
        let v = self.get_json("api/v3/time", &[], &mut requests).await?;
        v.get("serverTime")
            .and_then(Value::as_i64)
            .ok_or_else(|| SourceError::Malformed {
                endpoint: "api/v3/time".into(),
                message: "no integer `serverTime`".into(),
            })
    }

    /// Fetches the closed candles of `symbol` with `from <= open_time < to`, paginating. `server_now` is the
    /// exchange's clock: candles closing after it are still open and dropped.
    ///
    /// # Errors
    /// See [`SourceError`]. Nothing partial is returned: a failure on any page fails the whole range.
    pub async fn fetch_range(
        &self,
        symbol: &str,
        timeframe: Timeframe,
        from: i64,
        to: i64,
        server_now: i64,
    ) -> Result<Fetched, SourceError> {
        let step = timeframe.millis();
        let mut out = Fetched {
            candles: Candles::with_capacity(
                timeframe,
                usize::try_from((to - from) / step).unwrap_or(0),
            ),
            open_dropped: 0,
            invalid_dropped: 0,
            requests: 0,
        };
        let mut cursor = from;
        while cursor < to {
            let query = [
                ("symbol", symbol.to_owned()),
                ("interval", timeframe.as_str().to_owned()),
                ("startTime", cursor.to_string()),
                ("endTime", (to - 1).to_string()),
                ("limit", self.page_limit.to_string()),
            ];
            let body = self
                .get_json("api/v3/klines", &query, &mut out.requests)
                .await?;
            let page = parse_klines(&body)?;
            let Some(last) = page.last() else { break };
            let next = last.open_time + 1;
            let full = page.len() >= self.page_limit as usize;
            for k in page {
                if k.open_time < cursor || k.open_time >= to {
                    continue;
                }
                if k.open_time + step > server_now || k.close_time >= server_now {
                    out.open_dropped += 1;
                    continue;
                }
                push_validated(&mut out, symbol, &k);
            }
            if !full || next <= cursor {
                break;
            }
            cursor = next;
        }
        Ok(out)
    }
}

fn push_validated(out: &mut Fetched, symbol: &str, k: &Kline) {
    let c = &mut out.candles;
    c.push(k.open_time, k.open, k.high, k.low, k.close, k.volume);
    let row = c.len() - 1;
    let prev = row.checked_sub(1).map(|p| c.time[p]);
    if let Err(e) = c.validate_row(row, prev) {
        tracing::warn!(symbol, open_time = %iso(k.open_time), reason = %e, "invalid candle from the source rejected");
        out.invalid_dropped += 1;
        for col in [
            &mut c.open,
            &mut c.high,
            &mut c.low,
            &mut c.close,
            &mut c.volume,
        ] {
            col.pop();
        }
        c.time.pop();
    }
}

/// One kline as Binance sends it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Kline {
    pub open_time: i64,
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    pub volume: f64,
    pub close_time: i64,
}

/// Parses a klines body: `[[openTime, "open", "high", "low", "close", "volume", closeTime, …], …]`. Numbers may
/// be strings (Binance) or JSON numbers. Anything else is malformed.
///
/// # Errors
/// [`SourceError::Malformed`] naming the element.
pub fn parse_klines(body: &Value) -> Result<Vec<Kline>, SourceError> {
    let bad = |message: String| SourceError::Malformed {
        endpoint: "api/v3/klines".into(),
        message,
    };
    let rows = body
        .as_array()
        .ok_or_else(|| bad("expected a JSON array of klines".into()))?;
    rows.iter()
        .enumerate()
        .map(|(i, row)| {
            let a = row
                .as_array()
                .filter(|a| a.len() >= 7)
                .ok_or_else(|| bad(format!("kline {i} is not an array of at least 7 fields")))?;
            let int = |j: usize| {
                a[j].as_i64()
                    .ok_or_else(|| bad(format!("kline {i} field {j} is not an integer time")))
            };
            let num = |j: usize| {
                let v = match &a[j] {
                    Value::String(s) => s.parse::<f64>().ok(),
                    Value::Number(n) => n.as_f64(),
                    _ => None,
                };
                v.ok_or_else(|| bad(format!("kline {i} field {j} is not a number")))
            };
            Ok(Kline {
                open_time: int(0)?,
                open: num(1)?,
                high: num(2)?,
                low: num(3)?,
                close: num(4)?,
                volume: num(5)?,
                close_time: int(6)?,
            })
        })
        .collect()
}

fn header_u64(resp: &reqwest::Response, name: &str) -> Option<u64> {
    resp.headers().get(name)?.to_str().ok()?.trim().parse().ok()
}

fn describe_reqwest(e: reqwest::Error) -> String {
    if e.is_timeout() {
        "request timed out".into()
    } else if e.is_connect() {
        "connection failed".into()
    } else {
        // Without the URL: it is logged separately.
        e.without_url().to_string()
    }
}

fn truncate(s: &str, n: usize) -> String {
    match s.char_indices().nth(n) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn klines_parse_from_strings_or_numbers_and_reject_anything_else() {
        let body: Value = serde_json::from_str(
            r#"[[1515560100000,"0.0984","0.0994766","0.09828605","0.0994766","1820.5",1515560399999,"0",1,"0","0","0"],
                [1515560400000,0.1,0.2,0.05,0.15,3,1515560699999]]"#,
        )
        .unwrap();
        let k = parse_klines(&body).unwrap();
        assert_eq!(k.len(), 2);
        assert_eq!(k[0].high, 0.0994766);
        assert_eq!(k[1].close_time, 1_515_560_699_999);
        for bad in [
            r#"{"code":0}"#,
            r#"[[1,"a","1","1","1","1",2]]"#,
            r#"[[1,"1"]]"#,
            r#"[["x","1","1","1","1","1",2]]"#,
        ] {
            let e = parse_klines(&serde_json::from_str(bad).unwrap()).unwrap_err();
            assert!(matches!(e, SourceError::Malformed { .. }), "{bad}: {e}");
        }
    }

    #[test]
    fn invalid_candles_are_dropped_not_stored() {
        let mut out = Fetched {
            candles: Candles::new(Timeframe::M5),
            open_dropped: 0,
            invalid_dropped: 0,
            requests: 0,
        };
        let k = |t: i64, h: f64, l: f64| Kline {
            open_time: t,
            open: 1.0,
            high: h,
            low: l,
            close: 1.0,
            volume: 1.0,
            close_time: t + 299_999,
        };
        push_validated(&mut out, "X", &k(300_000, 2.0, 0.5));
        push_validated(&mut out, "X", &k(600_000, 0.5, 2.0)); // high < low
        push_validated(&mut out, "X", &k(900_000, f64::NAN, 0.5));
        push_validated(&mut out, "X", &k(300_000, 2.0, 0.5)); // not after the previous
        push_validated(&mut out, "X", &k(1_000_000, 2.0, 0.5)); // misaligned
        push_validated(&mut out, "X", &k(1_200_000, 2.0, 0.5));
        assert_eq!(out.candles.time, vec![300_000, 1_200_000]);
        assert_eq!(out.invalid_dropped, 4);
        out.candles.validate().unwrap();
    }
}
