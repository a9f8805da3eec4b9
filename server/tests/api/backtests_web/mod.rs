//! Strategies and backtests in the browser, end to end: the form handlers, the pages (server-rendered by the
//! real app), the JSON the pages' scripts fetch and the downloads, against real Postgres and Redis with
//! in-process workers running the real backtest job on the repository's ETH/BTC 5m candles.

use std::{
    path::Path,
    time::{Duration, Instant},
};

use backend::market::{
    Pair,
    csv_import::{self, ImportOptions},
};
use reqwest::{Client, StatusCode};
use serde_json::Value;
use uuid::Uuid;

use crate::{
    auth::{browser, confirmed_user, location, post_form, signed_up},
    helpers::{Options, TestApp, spawn_app_with},
};

mod access;
mod in_flight;
mod runs;
mod strategies;

/// The range the runs use (inside the file's 2018-01-10 04:55 … 2018-01-30 04:50).
const FROM: &str = "2018-01-11";
const TO: &str = "2018-01-20";

async fn app(workers: bool, env: Vec<(&'static str, String)>) -> TestApp {
    spawn_app_with(Options { workers, env }).await
}

/// Imports `data/market/ETH-BTC-5m.csv` into the test database; returns the instrument id.
async fn import_eth_btc(app: &TestApp) -> i32 {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/market/ETH-BTC-5m.csv");
    let r = csv_import::import_file(
        &app.ctx.db,
        &path,
        &ImportOptions {
            exchange: "demo".into(),
            pair: Pair::parse("ETH/BTC").unwrap(),
            timeframe: None,
            skip_bad_rows: false,
        },
    )
    .await
    .unwrap();
    assert_eq!(r.rows, 5760);
    r.instrument_id
}

async fn sign_up(app: &TestApp, client: &Client, email: &str) {
    signed_up(app, client, email, "Trader").await;
}

/// A signed-in trader whose email address is confirmed (marked in the database: these tests are about
/// backtests, the emailed link has its own tests).
async fn trader(app: &TestApp, email: &str) -> Client {
    let client = browser();
    confirmed_user(app, &client, email, "Trader", None).await;
    client
}

/// A form post with the CSRF token of a light page.
async fn form(
    app: &TestApp,
    client: &Client,
    action: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    post_form(app, client, "/", action, fields).await
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(&app.ctx.db)
        .await
        .unwrap()
}

/// The id in a redirect like `/strategies/<id>?ok=…` or `/backtests/<id>`.
fn id_in(loc: &str, prefix: &str) -> Uuid {
    let rest = loc
        .strip_prefix(prefix)
        .unwrap_or_else(|| panic!("{loc} does not start with {prefix}"));
    let id = rest.split(['?', '#']).next().unwrap();
    Uuid::parse_str(id).unwrap_or_else(|e| panic!("{loc}: {e}"))
}

async fn create_strategy(app: &TestApp, client: &Client, template: &str) -> Uuid {
    let resp = form(
        app,
        client,
        "/strategies/create",
        &[("template", template), ("name", "")],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let loc = location(&resp);
    assert!(loc.ends_with("?ok=strategy_created"), "{loc}");
    id_in(&loc, "/strategies/")
}

/// The run form's fields for one instrument, as the page posts them.
fn run_fields(strategy: Uuid, instrument: i32) -> Vec<(String, String)> {
    [
        ("strategy_id", strategy.to_string()),
        ("version", "1".into()),
        ("param.fast", "12".into()),
        ("param.slow", "26".into()),
        ("param.signal", "9".into()),
        ("timeframe", "5m".into()),
        ("instrument_id", instrument.to_string()),
        ("from", FROM.into()),
        ("to", TO.into()),
        ("initial_cash", "10000".into()),
        ("fee_pct", "0.1".into()),
        ("slippage_bps", "5".into()),
        ("fill", "next_open".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// `fields` with `key` set to `value` (added when absent).
fn with(fields: &[(String, String)], key: &str, value: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = fields.to_vec();
    match out.iter_mut().find(|(k, _)| k == key) {
        Some(f) => f.1 = value.to_owned(),
        None => out.push((key.to_owned(), value.to_owned())),
    }
    out
}

async fn submit_run(
    app: &TestApp,
    client: &Client,
    fields: &[(String, String)],
) -> reqwest::Response {
    let f: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    form(app, client, "/backtests/create", &f).await
}

/// Submits a run that must be accepted; returns its id.
async fn start_run(app: &TestApp, client: &Client, fields: &[(String, String)]) -> Uuid {
    let resp = submit_run(app, client, fields).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let loc = location(&resp);
    assert!(!loc.contains("failed=1"), "refused: {loc}");
    id_in(&loc, "/backtests/")
}

async fn get_json(app: &TestApp, client: &Client, path: &str) -> (StatusCode, Value) {
    let resp = client.get(app.url(path)).send().await.unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}: {text}"));
    (status, body)
}

/// Polls `status.json` until the run is finished; returns the last answer.
async fn wait_finished(app: &TestApp, client: &Client, run: Uuid) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (code, st) = get_json(app, client, &format!("/backtests/{run}/status.json")).await;
        assert_eq!(code, StatusCode::OK, "{st}");
        if matches!(st["status"].as_str(), Some("done" | "failed" | "cancelled")) {
            return st;
        }
        assert!(Instant::now() < deadline, "run {run} still {st}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
