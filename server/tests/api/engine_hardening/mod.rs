//! Issue 11, items 1–3 (and 13, `close[1][1]…`): hostile strategy sources at the size limit against both validate
//! endpoints and the real `vortex` binary; the per-run memory budget at submission, in the worker and between
//! the runs one worker holds; "why here?" traces computed by a worker and read from storage.

use std::{
    path::Path,
    sync::Arc,
    time::{Duration, Instant},
};

use backend::{
    auth::{Role, Scope, api_token, users},
    market::{
        Pair,
        csv_import::{self, ImportOptions},
    },
};
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::TestApp;

mod budget;
mod sources;
mod traces;

async fn token(app: &TestApp, email: &str, scope: Scope) -> String {
    let mut conn = app.ctx.db.acquire().await.unwrap();
    let id = users::insert(
        &mut conn,
        email,
        "Tess",
        "not-a-password-hash",
        Role::Trader,
    )
    .await
    .unwrap()
    .expect("new email");
    users::mark_verified(&mut conn, id).await.unwrap();
    drop(conn);
    api_token::create(&app.ctx.db, id, "tests", scope, None)
        .await
        .unwrap()
        .unwrap()
        .1
}

async fn api(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<&Value>,
) -> (StatusCode, Value) {
    let mut req = app
        .client
        .request(method, app.url(path))
        .bearer_auth(token)
        .timeout(Duration::from_secs(60));
    if let Some(b) = body {
        req = req.json(b);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

// ---------------------------------------------------------------------------------------------------------
// The memory budget
// ---------------------------------------------------------------------------------------------------------

/// An instrument (from the XRP/ETH 5m demo file) with `bars` synthetic 1-minute candles from 2020-01-01.
async fn instrument_with_minutes(app: &TestApp, bars: i64) -> i32 {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/market/XRP-ETH-5m.csv");
    let id = csv_import::import_file(
        &app.ctx.db,
        &path,
        &ImportOptions {
            exchange: "demo".into(),
            pair: Pair::parse("XRP/ETH").unwrap(),
            timeframe: None,
            skip_bad_rows: false,
        },
    )
    .await
    .unwrap()
    .instrument_id;
    add_minutes(app, id, 0, bars).await;
    id
}

/// Adds 1-minute candles `from..to` (minutes after 2020-01-01).
async fn add_minutes(app: &TestApp, id: i32, from: i64, to: i64) {
    sqlx::query(
        r#"insert into candle (instrument_id, timeframe, open_time, open, high, low, close, volume)
           select $1, '1m', timestamptz '2020-01-01 00:00:00+00' + make_interval(mins => i::int),
                  p, p * 1.01, p * 0.99, p * (1 + 0.002 * sin(i * 0.7)), 10
           from (select i, 1 + 0.2 * sin(i / 300.0) + 0.05 * sin(i / 17.0) as p
                 from generate_series($2::bigint, $3::bigint - 1) i) t"#,
    )
    .bind(id)
    .bind(from)
    .bind(to)
    .execute(&app.ctx.db)
    .await
    .unwrap();
}

/// `n` clauses, each an indicator the rules keep as a column (the ≈340-clause strategy of the issue, smaller).
fn many_clauses(n: usize) -> String {
    let clauses: Vec<String> = (0..n)
        .map(|i| format!("sma(close, {}) > 0", i + 2))
        .collect();
    let mut src = String::new();
    for chunk in clauses.chunks(10) {
        src.push_str(&format!("entry long when {}\n", chunk.join(" and ")));
    }
    src.push_str("exit long when close < sma(close, 50)\n");
    src
}

async fn strategy(app: &TestApp, token: &str, source: &str) -> Uuid {
    let (status, body) = api(
        app,
        reqwest::Method::POST,
        "/api/v1/strategies",
        token,
        Some(&json!({ "name": "budget", "source": source })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["id"].as_str().unwrap().parse().unwrap()
}

fn run_body(strategy: Uuid, instrument: i32) -> Value {
    json!({
        "strategy_id": strategy,
        "instrument_ids": [instrument],
        "timeframe": "1m",
        "from": "2020-01-01",
        "to": "2021-01-01",
    })
}

/// Submits a backtest of `strategy` on `instrument` (the year of minutes in [`run_body`]); expects 202 and returns
/// the run id.
async fn submit(app: &TestApp, token: &str, strategy: Uuid, instrument: i32) -> Uuid {
    let (status, body) = api(
        app,
        reqwest::Method::POST,
        "/api/v1/backtests",
        token,
        Some(&run_body(strategy, instrument)),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    body["runs"][0]["id"].as_str().unwrap().parse().unwrap()
}

async fn wait_run(app: &TestApp, token: &str, id: Uuid) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (_, body) = api(
            app,
            reqwest::Method::GET,
            &format!("/api/v1/backtests/{id}"),
            token,
            None,
        )
        .await;
        let status = body["status"].as_str().unwrap_or("").to_owned();
        if matches!(status.as_str(), "done" | "failed" | "cancelled") {
            return body;
        }
        assert!(Instant::now() < deadline, "run {id} still {status}: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Starts an in-process worker over `app`'s database and Redis with its own memory budget; returns its stop
/// switch.
fn worker_with_budget(app: &TestApp, mb: u64) -> tokio::sync::watch::Sender<bool> {
    let mut ctx = app.ctx.clone();
    let mut settings = (*ctx.settings).clone();
    settings.backtest.memory_budget_bytes = mb * 1024 * 1024;
    ctx.settings = Arc::new(settings);
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(backend::jobs::worker::run(ctx, rx));
    tx
}
