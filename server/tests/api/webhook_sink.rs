//! A webhook receiver for the tests: an axum server on 127.0.0.1 that records every request, answers from a
//! script (status codes, `Retry-After`) and checks Standard Webhooks signatures with its own HMAC code (not
//! the backend's), as a real receiver would.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    Router,
    body::Bytes,
    extract::{OriginalUri, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use base64::{Engine, engine::general_purpose::STANDARD};
use hmac::{KeyInit, Mac};

/// One request the sink received.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub at: Instant,
}

impl Received {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Whether the Standard Webhooks signature verifies with `secret` and the timestamp is within 5 minutes.
    pub fn verifies(&self, secret: &str) -> bool {
        let (Some(id), Some(ts), Some(sigs)) = (
            self.header("webhook-id"),
            self.header("webhook-timestamp"),
            self.header("webhook-signature"),
        ) else {
            return false;
        };
        let Ok(ts_n) = ts.parse::<i64>() else {
            return false;
        };
        if (chrono::Utc::now().timestamp() - ts_n).abs() > 300 {
            return false;
        }
        let Some(key) = secret
            .strip_prefix("whsec_")
            .and_then(|b| STANDARD.decode(b).ok())
        else {
            return false;
        };
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
        mac.update(format!("{id}.{ts}.").as_bytes());
        mac.update(&self.body);
        let expected = STANDARD.encode(mac.finalize().into_bytes());
        sigs.split(' ')
            .any(|s| s.strip_prefix("v1,") == Some(expected.as_str()))
    }
}

#[derive(Default)]
struct Inner {
    script: VecDeque<(u16, Option<u64>)>,
    /// The answer once the script is spent.
    default: (u16, Option<u64>),
    received: Vec<Received>,
    /// Hold the next request: record it (the receiver processed it) but answer only after a minute, as if the
    /// answer were lost; the sender's attempt never learns the outcome.
    hold_next: bool,
    /// The body of every answer (empty unless set).
    body: Bytes,
}

/// A running sink; dropped with the test's runtime.
#[derive(Clone)]
pub struct WebhookSink {
    pub port: u16,
    inner: Arc<Mutex<Inner>>,
}

impl WebhookSink {
    pub async fn start() -> Self {
        let inner = Arc::new(Mutex::new(Inner {
            default: (200, None),
            ..Inner::default()
        }));
        let app = Router::new().fallback(handle).with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { port, inner }
    }

    /// `http://127.0.0.1:{port}{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The next answers, in order: a status and an optional `Retry-After` in seconds.
    pub fn script(&self, answers: &[(u16, Option<u64>)]) {
        self.inner
            .lock()
            .unwrap()
            .script
            .extend(answers.iter().copied());
    }

    /// Answers every request with `body` from now on.
    pub fn body(&self, body: Vec<u8>) {
        self.inner.lock().unwrap().body = Bytes::from(body);
    }

    /// Records the next request but withholds its answer for a minute (see [`Inner::hold_next`]).
    pub fn hold_next(&self) {
        self.inner.lock().unwrap().hold_next = true;
    }

    /// The answer once the script is spent (200 unless set).
    pub fn always(&self, status: u16) {
        self.inner.lock().unwrap().default = (status, None);
    }

    pub fn received(&self) -> Vec<Received> {
        self.inner.lock().unwrap().received.clone()
    }

    /// Waits until at least `n` requests arrived (panics after `timeout`).
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let deadline = Instant::now() + timeout;
        loop {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "webhook sink got {} of {n} requests after {timeout:?}",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn handle(
    State(inner): State<Arc<Mutex<Inner>>>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (status, retry_after, hold, answer) = {
        let mut g = inner.lock().unwrap();
        let hold = std::mem::take(&mut g.hold_next);
        g.received.push(Received {
            path: uri.path().to_owned(),
            query: uri.query().map(str::to_owned),
            headers,
            body,
            at: Instant::now(),
        });
        let d = g.default;
        let (status, retry_after) = g.script.pop_front().unwrap_or(d);
        (status, retry_after, hold, g.body.clone())
    };
    if hold {
        tokio::time::sleep(Duration::from_secs(60)).await;
    }
    let status = StatusCode::from_u16(status).unwrap();
    match retry_after {
        Some(s) => (status, [("retry-after", s.to_string())], answer).into_response(),
        None => (status, answer).into_response(),
    }
}
