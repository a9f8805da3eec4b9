//! A local mock exchange speaking the Binance klines wire format, serving the repository's real candles
//! (`data/market/BASE-QUOTE-TF.csv`, symbol `BASEQUOTE`). Used by the ETL tests (in-process, over real HTTP)
//! and for offline demos (`vortex mock-exchange --port 9100`, then `MARKET_DATA_URL=http://127.0.0.1:9100`).
//!
//! * `GET /api/v3/time` → `{"serverTime": ms}` (the mock's clock);
//! * `GET /api/v3/klines?symbol&interval&startTime&endTime&limit` → `[[openTime,"o","h","l","c","v",closeTime,
//!   "quoteVolume",trades,"takerBase","takerQuote","0"], …]`; timeframes not in a file are resampled from a
//!   smaller one by the engine; an unknown symbol is HTTP 400 `{"code":-1121,"msg":"Invalid symbol."}`;
//! * **Time replay**: the clock starts at `--now` (default: the real time) and runs `--speed` times faster;
//!   candles opening after the clock do not exist yet, and the candle containing the clock is served still
//!   open (close time in the future), as Binance does. `POST /mock/clock {"now": ms}` or `{"advance_ms": n}`
//!   moves it.
//! * **Faults** (`POST /mock/faults`, JSON of [`Faults`]): the next `rate_limit` requests get 429 with
//!   `Retry-After: retry_after_secs` (`ban` → 418), the next `server_errors` get 500, the next `malformed` get a
//!   truncated JSON body, `fail_after` answers 500 to every request after that many more, `slow_ms` delays every
//!   answer, `open_candle: false` hides the still-open candle.
//! * `GET /mock/stats` → requests served by endpoint and status.

use std::{
    collections::{BTreeMap, HashMap},
    net::SocketAddr,
    path::Path,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    Json, Router,
    extract::{Query, State},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use backend::market::csv_import::list_dir;
use engine::candles::{Candles, Timeframe};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::net::TcpListener;

/// Fault switches. Counters count down per request.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Faults {
    pub rate_limit: u32,
    pub retry_after_secs: u64,
    /// Answer rate-limited requests with 418 (IP ban) instead of 429.
    pub ban: bool,
    pub server_errors: u32,
    pub malformed: u32,
    /// After this many more successful requests, every request gets 500 (`None`: off).
    pub fail_after: Option<u32>,
    pub slow_ms: u64,
    pub open_candle: bool,
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            rate_limit: 0,
            retry_after_secs: 1,
            ban: false,
            server_errors: 0,
            malformed: 0,
            fail_after: None,
            slow_ms: 0,
            open_candle: true,
        }
    }
}

/// The mock's clock: `base` at `started`, running `speed` times real time.
#[derive(Debug, Clone, Copy)]
struct Clock {
    base: i64,
    started: Instant,
    speed: f64,
}

impl Clock {
    fn now(&self) -> i64 {
        self.base + (self.started.elapsed().as_secs_f64() * 1000.0 * self.speed) as i64
    }
}

struct Inner {
    /// (symbol, timeframe) → candles.
    series: HashMap<(String, Timeframe), Candles>,
    faults: Mutex<Faults>,
    clock: Mutex<Clock>,
    stats: Mutex<BTreeMap<String, u64>>,
}

/// A loaded mock exchange. Cheap to clone; clones share clock, faults and stats.
#[derive(Clone)]
pub struct MockExchange {
    inner: Arc<Inner>,
}

impl MockExchange {
    /// Loads every `BASE-QUOTE-TF.csv` of `dir` through the engine's CSV reader.
    ///
    /// # Errors
    /// When the folder or a file cannot be read or parsed.
    pub fn load(dir: &Path) -> anyhow::Result<Self> {
        let mut series = HashMap::new();
        for (path, name) in list_dir(dir).map_err(anyhow::Error::msg)? {
            let text = std::fs::read_to_string(&path)?;
            let (candles, _) = engine::csv::parse_candles(&text, Some(name.timeframe))
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            series.insert((name.pair.symbol(), name.timeframe), candles);
        }
        anyhow::ensure!(
            !series.is_empty(),
            "no BASE-QUOTE-TF.csv files in {}",
            dir.display()
        );
        Ok(Self {
            inner: Arc::new(Inner {
                series,
                faults: Mutex::new(Faults::default()),
                clock: Mutex::new(Clock {
                    base: chrono::Utc::now().timestamp_millis(),
                    started: Instant::now(),
                    speed: 1.0,
                }),
                stats: Mutex::new(BTreeMap::new()),
            }),
        })
    }

    /// Sets the clock to `now_ms`, running `speed` times real time from here.
    pub fn set_clock(&self, now_ms: i64, speed: f64) {
        *lock(&self.inner.clock) = Clock {
            base: now_ms,
            started: Instant::now(),
            speed,
        };
    }

    /// Moves the clock forward.
    pub fn advance(&self, ms: i64) {
        let mut c = lock(&self.inner.clock);
        c.base += ms;
    }

    /// The clock (epoch ms).
    pub fn now(&self) -> i64 {
        lock(&self.inner.clock).now()
    }

    pub fn set_faults(&self, faults: Faults) {
        *lock(&self.inner.faults) = faults;
    }

    /// Requests answered, keyed `endpoint status` (e.g. `klines 200`).
    pub fn stats(&self) -> BTreeMap<String, u64> {
        lock(&self.inner.stats).clone()
    }

    /// Number of requests to `endpoint` (any status).
    pub fn requests(&self, endpoint: &str) -> u64 {
        self.stats()
            .iter()
            .filter(|(k, _)| k.split(' ').next() == Some(endpoint))
            .map(|(_, v)| v)
            .sum()
    }

    /// The candles served for `symbol` at `timeframe` (resampled when no file has that timeframe).
    pub fn candles(&self, symbol: &str, timeframe: Timeframe) -> Option<Candles> {
        if let Some(c) = self.inner.series.get(&(symbol.to_owned(), timeframe)) {
            return Some(c.clone());
        }
        Timeframe::ALL
            .iter()
            .rev()
            .filter(|tf| tf.millis() < timeframe.millis() && timeframe.millis() % tf.millis() == 0)
            .find_map(|tf| self.inner.series.get(&(symbol.to_owned(), *tf)))
            .and_then(|c| c.resample(timeframe).ok())
    }

    /// The router (mount it anywhere, or use [`MockExchange::serve`]).
    pub fn router(&self) -> Router {
        Router::new()
            .route("/api/v3/time", get(time))
            .route("/api/v3/ping", get(|| async { Json(json!({})) }))
            .route("/api/v3/klines", get(klines))
            .route("/mock/faults", post(set_faults))
            .route("/mock/clock", post(set_clock))
            .route("/mock/stats", get(stats))
            .with_state(self.clone())
    }

    /// Serves on `listener` until the task is dropped.
    pub async fn serve(self, listener: TcpListener) -> std::io::Result<()> {
        axum::serve(listener, self.router()).await
    }

    /// Binds `addr` (port 0 picks one) and serves in a background task. Returns the bound address.
    ///
    /// # Errors
    /// When the address cannot be bound.
    pub async fn spawn(&self, addr: SocketAddr) -> std::io::Result<SocketAddr> {
        let listener = TcpListener::bind(addr).await?;
        let bound = listener.local_addr()?;
        tokio::spawn(self.clone().serve(listener));
        Ok(bound)
    }

    fn count(&self, endpoint: &str, status: StatusCode) {
        *lock(&self.inner.stats)
            .entry(format!("{endpoint} {}", status.as_u16()))
            .or_default() += 1;
    }

    /// Applies the fault switches to one request: `Some(response)` when a fault answers it.
    async fn fault(&self, endpoint: &str) -> Option<Response> {
        let (slow, answer) = {
            let mut f = lock(&self.inner.faults);
            let answer = if f.rate_limit > 0 {
                f.rate_limit -= 1;
                let status = if f.ban {
                    StatusCode::IM_A_TEAPOT
                } else {
                    StatusCode::TOO_MANY_REQUESTS
                };
                let mut r = (
                    status,
                    Json(json!({"code": -1003, "msg": "Too many requests."})),
                )
                    .into_response();
                if let Ok(v) = HeaderValue::from_str(&f.retry_after_secs.to_string()) {
                    r.headers_mut().insert(header::RETRY_AFTER, v);
                }
                Some(r)
            } else if f.server_errors > 0 {
                f.server_errors -= 1;
                Some((StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response())
            } else if f.fail_after == Some(0) {
                Some((StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response())
            } else if f.malformed > 0 && endpoint == "klines" {
                f.malformed -= 1;
                Some(
                    (
                        StatusCode::OK,
                        [(header::CONTENT_TYPE, "application/json")],
                        "[[1515560100000,\"0.0984\",\"0.09",
                    )
                        .into_response(),
                )
            } else {
                if let Some(n) = f.fail_after.as_mut() {
                    *n -= 1;
                }
                None
            };
            (f.slow_ms, answer)
        };
        if slow > 0 {
            tokio::time::sleep(Duration::from_millis(slow)).await;
        }
        if let Some(r) = &answer {
            self.count(endpoint, r.status());
        }
        answer
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

async fn time(State(mock): State<MockExchange>) -> Response {
    if let Some(r) = mock.fault("time").await {
        return r;
    }
    mock.count("time", StatusCode::OK);
    Json(json!({ "serverTime": mock.now() })).into_response()
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct KlinesQuery {
    symbol: Option<String>,
    interval: Option<String>,
    start_time: Option<i64>,
    end_time: Option<i64>,
    limit: Option<usize>,
}

fn binance_error(status: StatusCode, code: i32, msg: &str) -> Response {
    (status, Json(json!({ "code": code, "msg": msg }))).into_response()
}

async fn klines(State(mock): State<MockExchange>, Query(q): Query<KlinesQuery>) -> Response {
    if let Some(r) = mock.fault("klines").await {
        return r;
    }
    let resp = klines_body(&mock, &q);
    mock.count("klines", resp.status());
    resp
}

fn klines_body(mock: &MockExchange, q: &KlinesQuery) -> Response {
    let Some(symbol) = q.symbol.as_deref() else {
        return binance_error(
            StatusCode::BAD_REQUEST,
            -1102,
            "Mandatory parameter 'symbol' was not sent.",
        );
    };
    let Some(tf) = q.interval.as_deref().and_then(|i| Timeframe::parse(i).ok()) else {
        return binance_error(StatusCode::BAD_REQUEST, -1120, "Invalid interval.");
    };
    let limit = q.limit.unwrap_or(500);
    if !(1..=1000).contains(&limit) {
        return binance_error(
            StatusCode::BAD_REQUEST,
            -1130,
            "Invalid data sent for a parameter: limit.",
        );
    }
    let Some(candles) = mock.candles(symbol, tf) else {
        return binance_error(StatusCode::BAD_REQUEST, -1121, "Invalid symbol.");
    };
    let now = mock.now();
    let open_candle = lock(&mock.inner.faults).open_candle;
    let start = q.start_time.unwrap_or(i64::MIN);
    let end = q.end_time.unwrap_or(i64::MAX).min(now);
    let step = tf.millis();
    let from = candles.time.partition_point(|&t| t < start);
    let rows: Vec<serde_json::Value> = (from..candles.len())
        .take_while(|&i| candles.time[i] <= end)
        .filter(|&i| open_candle || candles.time[i] + step <= now)
        .take(limit)
        .map(|i| {
            let b = candles.bar(i);
            let t = candles.time[i];
            json!([
                t,
                b.open.to_string(),
                b.high.to_string(),
                b.low.to_string(),
                b.close.to_string(),
                b.volume.to_string(),
                t + step - 1,
                (b.volume * b.close).to_string(),
                1,
                "0",
                "0",
                "0"
            ])
        })
        .collect();
    (
        [(
            axum::http::HeaderName::from_static("x-mbx-used-weight-1m"),
            HeaderValue::from_static("2"),
        )],
        Json(rows),
    )
        .into_response()
}

async fn set_faults(State(mock): State<MockExchange>, Json(f): Json<Faults>) -> impl IntoResponse {
    mock.set_faults(f.clone());
    Json(f)
}

#[derive(Debug, Deserialize)]
struct ClockBody {
    now: Option<i64>,
    advance_ms: Option<i64>,
    speed: Option<f64>,
}

async fn set_clock(
    State(mock): State<MockExchange>,
    Json(b): Json<ClockBody>,
) -> impl IntoResponse {
    if let Some(now) = b.now {
        mock.set_clock(now, b.speed.unwrap_or(1.0));
    } else if let Some(speed) = b.speed {
        mock.set_clock(mock.now(), speed);
    }
    if let Some(ms) = b.advance_ms {
        mock.advance(ms);
    }
    Json(json!({ "now": mock.now() }))
}

async fn stats(State(mock): State<MockExchange>) -> impl IntoResponse {
    Json(mock.stats())
}
