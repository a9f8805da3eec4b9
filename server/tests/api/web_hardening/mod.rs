//! Issue 11, the web side of hardening: coverage kept as data (no full scans for anonymous page views), the
//! CSV upload checked before its body is read and one at a time, streamed and limited exports, linear and
//! bounded run forms, CSRF on multipart posts everywhere, fixed upload messages, compare-and-swap strategy
//! saves with quotas, escaped document titles and 4xx answers from the page-data server functions.

use backend::market::{Candles, Pair, Timeframe, store};
use reqwest::Client;

use crate::{
    auth::{browser, confirmed_user, location, post_form},
    helpers::{Options, TestApp, spawn_app_with},
};

mod coverage_kept;
mod exports;
mod page_data;
mod run_forms;
mod strategy_saves;
mod uploads;

async fn app(env: Vec<(&'static str, String)>) -> TestApp {
    spawn_app_with(Options {
        workers: false,
        env,
    })
    .await
}

// ---------------------------------------------------------------------------------------------------------
// Item 8: coverage maintained by the candle writer
// ---------------------------------------------------------------------------------------------------------

const MIN5: i64 = 300_000;
/// 2024-01-01T00:00:00Z.
const T0: i64 = 1_704_067_200_000;

/// Candles of a series at `T0 + k × step` for each `k` (values vary with `salt`, so a rewrite changes rows).
fn candles(tf: Timeframe, ks: impl IntoIterator<Item = i64>, salt: f64) -> Candles {
    let mut c = Candles::with_capacity(tf, 1024);
    for k in ks {
        let p = 100.0 + (k % 97) as f64 + salt;
        c.push(
            T0 + k * tf.millis(),
            p,
            p + 1.0,
            p - 1.0,
            p + 0.5,
            10.0 + salt,
        );
    }
    c
}

/// Writes candles the way imports and the ETL do (one transaction: instrument, candles, series).
async fn write(db: &sqlx::PgPool, pair: &str, c: &Candles) -> i32 {
    let mut tx = db.begin().await.unwrap();
    let inst = store::ensure_instrument(&mut tx, "test", &Pair::parse(pair).unwrap())
        .await
        .unwrap();
    let written = store::upsert_candles(&mut tx, inst.instrument_id, c)
        .await
        .unwrap();
    store::touch_series(&mut tx, inst.instrument_id, c.timeframe, None, written > 0)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    inst.instrument_id
}

// ---------------------------------------------------------------------------------------------------------
// Shared helpers: traders, strategies, a finished run
// ---------------------------------------------------------------------------------------------------------

/// A signed-in trader whose address is marked confirmed.
async fn trader(app: &TestApp, email: &str) -> Client {
    let client = browser();
    confirmed_user(app, &client, email, "Trader", None).await;
    client
}

async fn form(
    app: &TestApp,
    client: &Client,
    action: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    post_form(app, client, "/", action, fields).await
}

fn id_in(loc: &str, prefix: &str) -> uuid::Uuid {
    let rest = loc
        .strip_prefix(prefix)
        .unwrap_or_else(|| panic!("{loc} does not start with {prefix}"));
    uuid::Uuid::parse_str(rest.split(['?', '#']).next().unwrap()).unwrap()
}

async fn create_strategy(app: &TestApp, client: &Client, template: &str, name: &str) -> uuid::Uuid {
    let resp = form(
        app,
        client,
        "/strategies/create",
        &[("template", template), ("name", name)],
    )
    .await;
    let loc = location(&resp);
    assert!(loc.ends_with("?ok=strategy_created"), "{loc}");
    id_in(&loc, "/strategies/")
}

async fn scalar_i64(app: &TestApp, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(&app.ctx.db)
        .await
        .unwrap()
}

/// Imports the repository's ETH/BTC 5m candles; returns the instrument id.
async fn import_eth_btc(app: &TestApp) -> i32 {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/market/ETH-BTC-5m.csv");
    backend::market::csv_import::import_file(
        &app.ctx.db,
        &path,
        &backend::market::csv_import::ImportOptions {
            exchange: "demo".into(),
            pair: Pair::parse("ETH/BTC").unwrap(),
            timeframe: None,
            skip_bad_rows: false,
        },
    )
    .await
    .unwrap()
    .instrument_id
}

fn run_fields(strategy: uuid::Uuid, instrument: i32) -> Vec<(String, String)> {
    [
        ("strategy_id", strategy.to_string()),
        ("version", "1".into()),
        ("param.fast", "12".into()),
        ("param.slow", "26".into()),
        ("param.signal", "9".into()),
        ("timeframe", "5m".into()),
        ("instrument_id", instrument.to_string()),
        ("from", "2018-01-11".into()),
        ("to", "2018-01-20".into()),
        ("initial_cash", "10000".into()),
        ("fee_pct", "0.1".into()),
        ("slippage_bps", "5".into()),
        ("fill", "next_open".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
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
