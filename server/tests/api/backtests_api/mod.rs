//! The strategies and backtests REST API end to end: real HTTP with bearer tokens, real Postgres and Redis, real
//! candles from `data/market`, in-process workers where a run must finish. Also the OpenAPI document, the
//! interactive reference page and the per-user API rate limit.

use std::path::{Path, PathBuf};

use backend::{
    auth::{Role, Scope, api_token, users},
    market::{Pair, csv_import},
};
use reqwest::{Method, StatusCode, header::HeaderMap};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{Options, TestApp, spawn_app_with};

mod access;
mod bad_input;
mod openapi;
mod run_results;
mod run_slots;
mod stored_values;
mod strategies;

fn data_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../data/market")
        .join(name)
}

/// Imports a demo CSV (`BASE-QUOTE-TF.csv`) as a binance instrument; returns its id.
async fn import(app: &TestApp, file: &str) -> i32 {
    let parts: Vec<&str> = file.trim_end_matches(".csv").split('-').collect();
    let opts = csv_import::ImportOptions {
        exchange: "binance".into(),
        pair: Pair::parse(&format!("{}/{}", parts[0], parts[1])).unwrap(),
        timeframe: None,
        skip_bad_rows: false,
    };
    csv_import::import_file(&app.ctx.db, &data_file(file), &opts)
        .await
        .unwrap()
        .instrument_id
}

/// A verified user of `role` with an API token of `scope`; returns the user id and the token.
async fn user_with_token(app: &TestApp, email: &str, role: Role, scope: Scope) -> (Uuid, String) {
    let mut conn = app.ctx.db.acquire().await.unwrap();
    let id = users::insert(&mut conn, email, "Tess", "not-a-password-hash", role)
        .await
        .unwrap()
        .expect("new email");
    users::mark_verified(&mut conn, id).await.unwrap();
    drop(conn);
    let (_, secret) = api_token::create(&app.ctx.db, id, "tests", scope, None)
        .await
        .unwrap()
        .unwrap();
    (id, secret)
}

async fn trader(app: &TestApp, email: &str) -> String {
    user_with_token(app, email, Role::Trader, Scope::ReadWrite)
        .await
        .1
}

struct Resp {
    status: StatusCode,
    headers: HeaderMap,
    text: String,
    json: Value,
}

impl Resp {
    fn field(&self) -> &str {
        self.json["field"].as_str().unwrap_or("")
    }
    fn error(&self) -> &str {
        self.json["code"].as_str().unwrap_or("")
    }
    fn message(&self) -> &str {
        self.json["detail"].as_str().unwrap_or("")
    }
}

impl std::fmt::Debug for Resp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status, self.text)
    }
}

async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> Resp {
    let mut req = app.client.request(method, app.url(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(b);
    }
    finish(req).await
}

async fn finish(req: reqwest::RequestBuilder) -> Resp {
    let resp = req.send().await.expect("request");
    let status = resp.status();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap();
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Resp {
        status,
        headers,
        text,
        json,
    }
}

async fn get(app: &TestApp, path: &str, token: &str) -> Resp {
    call(app, Method::GET, path, Some(token), None).await
}

async fn post(app: &TestApp, path: &str, token: &str, body: &Value) -> Resp {
    call(app, Method::POST, path, Some(token), Some(body)).await
}

async fn put(app: &TestApp, path: &str, token: &str, body: &Value) -> Resp {
    call(app, Method::PUT, path, Some(token), Some(body)).await
}

/// Creates a strategy from a template; returns its id.
async fn strategy_from(app: &TestApp, token: &str, template: &str) -> Uuid {
    let r = post(
        app,
        "/api/v1/strategies",
        token,
        &json!({ "template": template }),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    r.json["id"].as_str().unwrap().parse().unwrap()
}

/// A valid submission over the XRP/ETH 5m demo candles (2019-10-11 to 2019-10-13).
fn submission(strategy: Uuid, instrument: i32) -> Value {
    json!({
        "strategy_id": strategy,
        "instrument_ids": [instrument],
        "timeframe": "5m",
        "from": "2019-10-11",
        "to": "2019-10-13",
    })
}

/// Queues a backtest; returns the run id.
async fn queue(app: &TestApp, token: &str, body: &Value) -> Uuid {
    let r = post(app, "/api/v1/backtests", token, body).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{r:?}");
    r.json["runs"][0]["id"].as_str().unwrap().parse().unwrap()
}

async fn app(workers: bool, env: Vec<(&'static str, String)>) -> TestApp {
    spawn_app_with(Options { workers, env }).await
}
