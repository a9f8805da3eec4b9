//! Paper trading in the browser, end to end against the real app, Postgres and Redis: the start form (errors
//! in place), the run page, the runs list, the parity page, the pause / resume / stop forms, the live stream
//! (`/api/events/paper/{id}`) and who may see what. Candles "arrive" by storing them and calling
//! `backend::paper::advance::advance` in a transaction, as the `paper_advance` job does.

mod access;
mod flow;
mod position;
mod risk;
mod signals;

use std::time::{Duration, Instant};

use backend::market::{Pair, store};
use engine::candles::{Candles, Timeframe};
use reqwest::{Client, StatusCode};
use uuid::Uuid;

use crate::{
    auth::{browser, confirmed_user, location, post_form},
    helpers::{Options, TestApp, spawn_app_with},
};

/// The app, without workers (the tests advance runs themselves), on the `demo` exchange with a market
/// source that refuses at once (a run's start falls back to the local clock).
async fn app() -> TestApp {
    app_with(Vec::new()).await
}

async fn app_with(extra: Vec<(&'static str, String)>) -> TestApp {
    let mut env = vec![
        ("MARKET_DATA_EXCHANGE", "demo".into()),
        ("MARKET_DATA_URL", "http://127.0.0.1:9".into()),
        ("NOTIFY_SSE_HEARTBEAT_SECS", "1".into()),
    ];
    env.extend(extra);
    spawn_app_with(Options {
        workers: false,
        env,
    })
    .await
}

/// A signed-in trader with a confirmed email address.
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

async fn html(app: &TestApp, client: &Client, path: &str) -> (StatusCode, String) {
    let resp = client.get(app.url(path)).send().await.unwrap();
    (resp.status(), resp.text().await.unwrap())
}

async fn create_strategy(app: &TestApp, client: &Client) -> Uuid {
    let resp = form(
        app,
        client,
        "/strategies/create",
        &[("template", "rsi"), ("name", "")],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    id_in(&location(&resp), "/strategies/")
}

fn id_in(loc: &str, prefix: &str) -> Uuid {
    let rest = loc
        .strip_prefix(prefix)
        .unwrap_or_else(|| panic!("{loc} does not start with {prefix}"));
    Uuid::parse_str(rest.split(['?', '#']).next().unwrap()).unwrap()
}

const TF: &str = "5m";

fn tf() -> Timeframe {
    Timeframe::parse(TF).unwrap()
}

/// A tracked (live-feed) ETH/BTC 5m series on the `demo` exchange with a few old candles; its id.
async fn live_series(app: &TestApp) -> i32 {
    let mut conn = app.ctx.db.acquire().await.unwrap();
    let inst = store::ensure_instrument(&mut conn, "demo", &Pair::parse("ETH/BTC").unwrap())
        .await
        .unwrap();
    store::touch_series(&mut conn, inst.instrument_id, tf(), Some(true), true)
        .await
        .unwrap();
    let start = tf().floor(chrono::Utc::now().timestamp_millis()) - 50 * tf().millis();
    store_candles(app, inst.instrument_id, start, 10).await;
    inst.instrument_id
}

/// Stores `n` candles from `from` (epoch ms), gently rising.
async fn store_candles(app: &TestApp, instrument: i32, from: i64, n: usize) {
    let mut c = Candles::with_capacity(tf(), n);
    for i in 0..n {
        let p = 0.05 + (from / tf().millis() % 1000) as f64 * 1e-6 + i as f64 * 1e-5;
        c.push(
            from + i as i64 * tf().millis(),
            p,
            p * 1.001,
            p * 0.999,
            p * 1.0005,
            10.0,
        );
    }
    let mut conn = app.ctx.db.acquire().await.unwrap();
    store::upsert_candles(&mut conn, instrument, &c)
        .await
        .unwrap();
}

/// Stores `n` candles from the run's first live candle on, and advances the series (as `paper_advance`).
async fn arrive(app: &TestApp, instrument: i32, run: Uuid, n: usize) {
    let (live_from, last): (
        chrono::DateTime<chrono::Utc>,
        Option<chrono::DateTime<chrono::Utc>>,
    ) = sqlx::query_as("select live_from, last_open_time from paper_run where paper_run_id = $1")
        .bind(run)
        .fetch_one(&app.ctx.db)
        .await
        .unwrap();
    let from = last.map_or(live_from.timestamp_millis(), |t| {
        t.timestamp_millis() + tf().millis()
    });
    store_candles(app, instrument, from, n).await;
    let mut tx = app.ctx.db.begin().await.unwrap();
    backend::paper::advance::advance(&app.ctx, &mut tx, instrument, tf())
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

/// The start form's fields for one instrument, fee included.
fn start_fields(strategy: Uuid, instrument: i32) -> Vec<(String, String)> {
    [
        ("strategy_id", strategy.to_string()),
        ("version", "1".into()),
        ("timeframe", TF.into()),
        ("instrument_id", instrument.to_string()),
        ("initial_cash", "10000".into()),
        ("fee_pct", "0.1".into()),
        ("slippage_bps", "5".into()),
        ("fill", "next_open".into()),
        ("warmup_bars", "20".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

fn pairs(fields: &[(String, String)]) -> Vec<(&str, &str)> {
    fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

/// Starts one run through the form; its id.
async fn start_run(app: &TestApp, client: &Client, strategy: Uuid, instrument: i32) -> Uuid {
    let fields = start_fields(strategy, instrument);
    let resp = form(app, client, "/paper/create", &pairs(&fields)).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let loc = location(&resp);
    id_in(&loc, "/paper/")
}

async fn status_of(app: &TestApp, run: Uuid) -> String {
    sqlx::query_scalar("select status from paper_run where paper_run_id = $1")
        .bind(run)
        .fetch_one(&app.ctx.db)
        .await
        .unwrap()
}

/// Waits until the app's paper listener is connected (a signal sent before would not be heard).
async fn wait_listening(app: &TestApp) {
    wait_listening_db(&app.ctx.db).await;
}

/// [`wait_listening`] for any process on the database.
pub async fn wait_listening_db(db: &sqlx::PgPool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let n: i64 = sqlx::query_scalar(
            "select count(*) from pg_stat_activity where datname = current_database() and query ilike 'listen%paper_run%'",
        )
        .fetch_one(db)
        .await
        .unwrap();
        if n > 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the paper listener never connected"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The text of the element with `id` (the first tag's content up to the next `<`).
fn text_of(html: &str, id: &str) -> String {
    let key = format!(r#"id="{id}""#);
    let at = html
        .find(&key)
        .unwrap_or_else(|| panic!("no #{id} in the page"));
    let rest = &html[at..];
    let start = rest.find('>').unwrap() + 1;
    rest[start..].split('<').next().unwrap().trim().to_owned()
}
