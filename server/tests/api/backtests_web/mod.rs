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
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{
    auth::{PASSWORD, browser, csrf, location, page_text, post_form, sign_in},
    helpers::{Options, TestApp, spawn_app_with},
};

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
    let resp = post_form(
        app,
        client,
        "/signup",
        "/auth/signup",
        &[
            ("email", email),
            ("display_name", "Trader"),
            ("password", PASSWORD),
        ],
    )
    .await;
    assert_eq!(location(&resp), "/signin?ok=check_email");
}

/// A signed-in trader whose email address is confirmed (marked in the database: these tests are about
/// backtests, the emailed link has its own tests).
async fn trader(app: &TestApp, email: &str) -> Client {
    let client = browser();
    sign_up(app, &client, email).await;
    sqlx::query("update app_user set email_verified_at = now() where email = $1")
        .bind(email)
        .execute(&app.ctx.db)
        .await
        .unwrap();
    assert_eq!(
        location(&sign_in(app, &client, email, PASSWORD).await),
        "/account"
    );
    client
}

/// A signed-in trader who never confirmed their email address.
async fn unverified(app: &TestApp, email: &str) -> Client {
    let client = browser();
    sign_up(app, &client, email).await;
    let resp = sign_in(app, &client, email, PASSWORD).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    client
}

async fn user_id(app: &TestApp, email: &str) -> Uuid {
    sqlx::query_scalar("select user_id from app_user where email = $1")
        .bind(email)
        .fetch_one(&app.ctx.db)
        .await
        .unwrap()
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

/// Posts a form and returns where it redirects to.
async fn redirect(app: &TestApp, client: &Client, action: &str, fields: &[(&str, &str)]) -> String {
    location(&form(app, client, action, fields).await)
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

fn ms(date: &str) -> i64 {
    backend::market::parse_time(date).unwrap()
}

// ---------------------------------------------------------------------------------------------------------
// 1. Strategies through the forms
// ---------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_strategy_is_created_from_a_template_saved_as_versions_kept_as_a_draft_duplicated_archived_and_restored()
 {
    let app = app(false, vec![]).await;
    let ann = trader(&app, "ann@example.org").await;
    let id = create_strategy(&app, &ann, "macd").await;

    // The page shows the source and the parameter table.
    let page = page_text(&app, &ann, &format!("/strategies/{id}?ok=strategy_created")).await;
    assert!(
        page.contains("macd(close, fast, slow, signal).macd"),
        "source missing: {page}"
    );
    assert!(page.contains(r#"id="params""#), "parameter table missing");
    for p in [
        "<code>fast</code>",
        "<code>slow</code>",
        "<code>signal</code>",
    ] {
        assert!(page.contains(p), "{p} missing from the parameter table");
    }
    assert!(page.contains("Strategy created."), "flash message");

    // Bad create requests come back to the list with the reason.
    let resp = form(&app, &ann, "/strategies/create", &[("template", "nope")]).await;
    assert_eq!(location(&resp), "/strategies?error=strategy_template");
    let long = "x".repeat(81);
    assert_eq!(
        redirect(
            &app,
            &ann,
            "/strategies/create",
            &[("template", "macd"), ("name", &long)]
        )
        .await,
        "/strategies?error=strategy_name"
    );
    assert_eq!(count(&app, "select count(*) from strategy").await, 1);

    let v1: String = sqlx::query_scalar(
        "select source from strategy_version where strategy_id = $1 and version = 1",
    )
    .bind(id)
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    let action = format!("/strategies/{id}/save");

    // A changed source is a new version; version 1 stays as it was.
    let v2 = v1.replace("param fast: int = 12", "param fast: int = 10");
    assert_ne!(v1, v2);
    assert_eq!(
        redirect(
            &app,
            &ann,
            &action,
            &[
                ("name", "My MACD"),
                ("description", "tuned"),
                ("source", &v2.replace('\n', "\r\n")),
                ("base_version", "1"),
            ]
        )
        .await,
        format!("/strategies/{id}?ok=strategy_saved")
    );
    let versions: Vec<(i32, String)> = sqlx::query_as(
        "select version, source from strategy_version where strategy_id = $1 order by version",
    )
    .bind(id)
    .fetch_all(&app.ctx.db)
    .await
    .unwrap();
    assert_eq!(versions, vec![(1, v1.clone()), (2, v2.clone())]);
    let (name, latest): (String, i32) =
        sqlx::query_as("select name, latest_version from strategy where strategy_id = $1")
            .bind(id)
            .fetch_one(&app.ctx.db)
            .await
            .unwrap();
    assert_eq!((name.as_str(), latest), ("My MACD", 2));

    // Saving the same source again makes no version.
    assert_eq!(
        redirect(
            &app,
            &ann,
            &action,
            &[("source", &v2), ("base_version", "2")]
        )
        .await,
        format!("/strategies/{id}?ok=strategy_unchanged")
    );

    // A stale base version is refused.
    assert_eq!(
        redirect(
            &app,
            &ann,
            &action,
            &[("source", &v1), ("base_version", "1")]
        )
        .await,
        format!("/strategies/{id}?error=strategy_stale")
    );
    // …and the refused edit is not lost: it is the draft now (v1's text differs from the newest, v2).
    let page = page_text(
        &app,
        &ann,
        &format!("/strategies/{id}?error=strategy_stale"),
    )
    .await;
    assert!(
        page.contains("Your edit was not saved as a version"),
        "stale message"
    );
    assert!(
        page.contains(r#"id="draft-notice""#),
        "the refused edit is kept as the draft"
    );
    let draft: Option<String> =
        sqlx::query_scalar("select draft_source from strategy where strategy_id = $1")
            .bind(id)
            .fetch_one(&app.ctx.db)
            .await
            .unwrap();
    assert_eq!(draft.as_deref(), Some(v1.as_str()));

    // Source that does not compile is kept as the draft, never a version; the page shows it and the problem
    // with its line number.
    let broken = v2.replace(
        "crosses_above(line, signal_line)",
        "crosses_above(line, signl_line)",
    );
    let broken_line = broken
        .lines()
        .position(|l| l.contains("signl_line"))
        .unwrap()
        + 1;
    assert_eq!(
        redirect(
            &app,
            &ann,
            &action,
            &[("source", &broken), ("base_version", "2")]
        )
        .await,
        format!("/strategies/{id}?error=strategy_invalid")
    );
    assert_eq!(
        count(&app, "select count(*) from strategy_version").await,
        2,
        "an invalid source became a version"
    );
    let draft: Option<String> =
        sqlx::query_scalar("select draft_source from strategy where strategy_id = $1")
            .bind(id)
            .fetch_one(&app.ctx.db)
            .await
            .unwrap();
    assert_eq!(draft.as_deref(), Some(broken.as_str()));
    let page = page_text(
        &app,
        &ann,
        &format!("/strategies/{id}?error=strategy_invalid"),
    )
    .await;
    assert!(
        page.contains(r#"id="draft-notice""#),
        "draft notice missing"
    );
    assert!(
        page.contains("crosses_above(line, signl_line)"),
        "the editor does not show the draft"
    );
    assert!(page.contains(r#"id="problems""#), "problem list missing");
    assert!(
        page.contains(&format!("line {broken_line}, column")) && page.contains("signl_line"),
        "the problem with its line is not shown: {}",
        &page[page.find(r#"id="problems""#).unwrap()..][..400]
    );
    assert!(page.contains("does not compile"), "flash message");
    // The list marks it.
    let list = page_text(&app, &ann, "/strategies").await;
    assert!(list.contains("unsaved draft"));

    // Discarding the draft brings the newest version back into the editor.
    let resp = form(&app, &ann, &format!("/strategies/{id}/discard-draft"), &[]).await;
    assert_eq!(
        location(&resp),
        format!("/strategies/{id}?ok=draft_discarded")
    );
    let page = page_text(&app, &ann, &format!("/strategies/{id}")).await;
    assert!(!page.contains(r#"id="draft-notice""#));
    assert!(page.contains("param fast: int = 10"));
    assert!(!page.contains("signl_line"));

    // Duplicating copies the newest version into a new strategy.
    let resp = form(&app, &ann, &format!("/strategies/{id}/duplicate"), &[]).await;
    let loc = location(&resp);
    assert!(loc.ends_with("?ok=strategy_duplicated"), "{loc}");
    let copy = id_in(&loc, "/strategies/");
    assert_ne!(copy, id);
    let (copy_name, copy_source): (String, String) = sqlx::query_as(
        "select s.name, v.source from strategy s join strategy_version v using (strategy_id)
         where s.strategy_id = $1 and v.version = 1",
    )
    .bind(copy)
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    assert_eq!(copy_name, "My MACD (copy)");
    assert_eq!(copy_source, v2);

    // Archiving hides it from the list and refuses runs with a clear message.
    let instrument = import_eth_btc(&app).await;
    let resp = form(&app, &ann, &format!("/strategies/{id}/archive"), &[]).await;
    assert_eq!(location(&resp), "/strategies?ok=strategy_archived");
    let list = page_text(&app, &ann, "/strategies").await;
    assert!(
        !list.contains(&format!("/strategies/{id}\"")),
        "archived strategy listed"
    );
    assert!(list.contains(&format!("/strategies/{copy}\"")));
    let all = page_text(&app, &ann, "/strategies?archived=1").await;
    assert!(all.contains(&format!("/strategies/{id}\"")));
    let fields = with(&run_fields(id, instrument), "version", "2");
    let resp = submit_run(&app, &ann, &fields).await;
    let loc = location(&resp);
    assert!(
        loc.starts_with("/backtests/new?") && loc.contains("failed=1"),
        "{loc}"
    );
    let page = page_text(&app, &ann, &loc).await;
    assert!(
        page.contains("this strategy is archived; restore it to run it"),
        "no clear message for an archived strategy"
    );
    assert_eq!(count(&app, "select count(*) from backtest_run").await, 0);
    // Editing an archived strategy is refused too, saying why.
    let resp = form(
        &app,
        &ann,
        &action,
        &[("source", &v1), ("base_version", "2")],
    )
    .await;
    let loc = location(&resp);
    assert_eq!(loc, format!("/strategies/{id}?error=strategy_is_archived"));
    let page = page_text(&app, &ann, &loc).await;
    assert!(page.contains("This strategy is archived, so it cannot be edited"));
    assert!(
        !page.contains(r#"id="save-strategy""#),
        "archived strategy offers saving"
    );
    assert_eq!(
        count(
            &app,
            &format!("select count(*) from strategy_version where strategy_id = '{id}'")
        )
        .await,
        2
    );

    // Restoring brings it back and it runs again.
    let resp = form(&app, &ann, &format!("/strategies/{id}/restore"), &[]).await;
    assert_eq!(location(&resp), "/strategies?ok=strategy_restored");
    let list = page_text(&app, &ann, "/strategies").await;
    assert!(list.contains(&format!("/strategies/{id}\"")));
    start_run(&app, &ann, &fields).await;

    let events: Vec<String> = sqlx::query_scalar(
        "select event from audit_event where event like 'strategy_%' or event like 'backtest_%' order by created_at, event",
    )
    .fetch_all(&app.ctx.db)
    .await
    .unwrap();
    for e in [
        "strategy_created",
        "strategy_saved",
        "strategy_archived",
        "strategy_restored",
        "backtest_started",
    ] {
        assert!(events.iter().any(|x| x == e), "{e} not audited: {events:?}");
    }
}

// ---------------------------------------------------------------------------------------------------------
// 2. Live validation
// ---------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn the_editor_validation_answers_params_or_positioned_diagnostics_and_needs_csrf_and_a_session()
 {
    let app = app(false, vec![]).await;
    let ann = trader(&app, "ann@example.org").await;
    let token = csrf(&app, &ann, "/strategies").await;
    let macd = engine::catalogue::template("macd").unwrap().source;
    let validate = |client: &Client, token: Option<&str>, source: &str| {
        let mut req = client
            .post(app.url("/strategies/validate"))
            .json(&json!({ "source": source }));
        if let Some(t) = token {
            req = req.header("x-csrf-token", t);
        }
        req.send()
    };

    let resp = validate(&ann, Some(&token), macd).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["ok"], true, "{body}");
    let names: Vec<&str> = body["params"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["fast", "slow", "signal"]);
    assert_eq!(body["diagnostics"], json!([]));

    let typo = macd.replace(
        "macd(close, fast, slow, signal).signal",
        "macd(close, fast, slwo, signal).signal",
    );
    let line = typo.lines().position(|l| l.contains("slwo")).unwrap() + 1;
    let column = typo.lines().nth(line - 1).unwrap().find("slwo").unwrap() + 1;
    let resp = validate(&ann, Some(&token), &typo).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["ok"], false, "{body}");
    let d = &body["diagnostics"][0];
    assert_eq!(d["line"], line, "{body}");
    assert_eq!(d["column"], column, "{body}");
    assert!(d["message"].as_str().unwrap().contains("slwo"), "{body}");
    assert!(d["len"].as_u64().unwrap() > 0, "{body}");

    // Without the CSRF header: refused before anything runs.
    let resp = validate(&ann, None, macd).await.unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let resp = validate(&ann, Some("not-the-token"), macd).await.unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);

    // Anonymous (with a valid CSRF pair, so only the missing session is the problem): 401 JSON.
    let anon = browser();
    let anon_token = csrf(&app, &anon, "/signin").await;
    let resp = validate(&anon, Some(&anon_token), macd).await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["code"], "unauthorized", "{body}");
}

// ---------------------------------------------------------------------------------------------------------
// 3. A run on real candles, its pages, JSON and downloads
// ---------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_run_on_real_candles_finishes_and_its_page_charts_trace_exports_and_comparison_agree_with_the_engine()
 {
    let app = app(true, vec![]).await;
    let instrument = import_eth_btc(&app).await;
    let ann = trader(&app, "ann@example.org").await;
    let strategy = create_strategy(&app, &ann, "macd").await;

    // The run form offers the stored series.
    let page = page_text(&app, &ann, &format!("/backtests/new?strategy={strategy}")).await;
    assert!(page.contains(r#"id="run-form""#), "run form missing");
    assert!(page.contains("ETH/BTC"), "series missing from the form");
    assert!(page.contains(r#"name="param.fast""#));

    let fields = run_fields(strategy, instrument);
    let run = start_run(&app, &ann, &fields).await;
    let st = wait_finished(&app, &ann, run).await;
    assert_eq!(st["status"], "done", "{st}");
    assert_eq!(st["message"], "done");
    assert_eq!(st["progress"], 1.0);

    let (trade_count, final_equity, job_id): (i32, f64, Uuid) = sqlx::query_as(
        "select trade_count, final_equity, job_id from backtest_run where backtest_run_id = $1",
    )
    .bind(run)
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    let stored_trades = count(
        &app,
        &format!("select count(*) from backtest_trade where backtest_run_id = '{run}'"),
    )
    .await;
    assert!(
        trade_count > 2,
        "too few trades to test with: {trade_count}"
    );
    assert_eq!(stored_trades, i64::from(trade_count));
    let job = app
        .wait_for_job(job_id, &["done"], Duration::from_secs(5))
        .await;
    assert_eq!(job.attempts, 1);
    assert_eq!(job.queue, "backtest");

    // The stored result is exactly what the engine computes on the same candles, strategy and options.
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/market/ETH-BTC-5m.csv"),
    )
    .unwrap();
    let (all, _) = engine::csv::parse_candles(&text, None).unwrap();
    let candles = all.between(Some(ms(FROM)), Some(ms(TO) + engine::time::DAY_MS));
    let source: String = sqlx::query_scalar(
        "select source from strategy_version where strategy_id = $1 and version = 1",
    )
    .bind(strategy)
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    let params: Vec<(String, String)> = [("fast", "12"), ("slow", "26"), ("signal", "9")]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let compiled = engine::strategy::compile(&source, &params).unwrap();
    let config = engine::backtest::BacktestConfig {
        initial_cash: 10_000.0,
        fee: 0.001,
        slippage_bps: 5.0,
        ..Default::default()
    };
    let expected = engine::backtest::run(&candles, &compiled, &config).unwrap();
    assert_eq!(Some(final_equity), expected.metrics.final_equity.value);
    assert_eq!(expected.trades.len(), trade_count as usize);
    assert_eq!(expected.provenance.bars, candles.len());

    // The run page: metric cards, the trades table, provenance, exports.
    let page = page_text(&app, &ann, &format!("/backtests/{run}")).await;
    for needle in [
        r#"id="metrics""#,
        "Final equity",
        "Max drawdown",
        r#"class="data trades""#,
        &format!("Trades ({trade_count})"),
        r#"id="provenance""#,
        "Data hash",
        &expected.provenance.candles_hash,
        &expected.provenance.strategy_source_hash,
        &format!("/backtests/{run}/trades.csv"),
        &format!("/backtests/{run}/report.html"),
        r#"id="timing""#,
    ] {
        assert!(page.contains(needle), "{needle} missing from the run page");
    }
    assert!(
        !page.contains(r#"id="run-status""#),
        "a finished run shows progress"
    );
    // The range as the trader typed it (the end date inclusive).
    assert!(
        page.contains(&format!("{FROM} → {TO}")),
        "range not shown as typed"
    );
    // The runs list shows it.
    let list = page_text(&app, &ann, "/backtests").await;
    assert!(list.contains(&format!(r#"data-run-id="{run}""#)));

    // chart.json: candles, equity and the same trades as the database.
    let (code, chart) = get_json(&app, &ann, &format!("/backtests/{run}/chart.json")).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(
        chart["candles"]["time"].as_array().unwrap().len(),
        candles.len()
    );
    assert_eq!(chart["candles"]["timeframe"], "5m");
    assert!(!chart["equity"]["equity"].as_array().unwrap().is_empty());
    assert_eq!(chart["initial_cash"], 10_000.0);
    let chart_trades = chart["trades"].as_array().unwrap();
    assert_eq!(chart_trades.len(), trade_count as usize);
    let first_entry = chart_trades[0]["entry_time"].as_i64().unwrap();
    assert_eq!(first_entry, expected.trades[0].entry_time);

    // trace.json at the first trade's entry: the bar where it bought.
    let (code, trace) = get_json(
        &app,
        &ann,
        &format!("/backtests/{run}/trace.json?time={first_entry}"),
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{trace}");
    let bar = &trace["bars"][0];
    assert_eq!(bar["time"], first_entry);
    assert!(
        bar["actions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a.as_str().unwrap().contains("bought")),
        "{trace}"
    );
    assert!(trace["note"].is_null(), "{trace}");
    // A time outside the run is a clear 400; a missing time too.
    let (code, body) = get_json(&app, &ann, &format!("/backtests/{run}/trace.json?time=0")).await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("outside this run"),
        "{body}"
    );
    let (code, _) = get_json(&app, &ann, &format!("/backtests/{run}/trace.json")).await;
    assert_eq!(code, StatusCode::BAD_REQUEST);

    // trades.csv: a header and one line per trade, as an attachment.
    let resp = ann
        .get(app.url(&format!("/backtests/{run}/trades.csv")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let cd = resp.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cd.starts_with("attachment;") && cd.contains(".csv"), "{cd}");
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let csv = resp.text().await.unwrap();
    assert_eq!(csv.lines().count(), trade_count as usize + 1, "{csv}");
    assert!(csv.starts_with("seq,entry_time,exit_time"));

    // result.json: the whole result.
    let resp = ann
        .get(app.url(&format!("/backtests/{run}/result.json")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment;")
    );
    let doc: Value = resp.json().await.unwrap();
    assert_eq!(doc["format"], "vortex-backtest-result/1");
    assert_eq!(doc["run"]["summary"]["backtest_run_id"], run.to_string());
    assert_eq!(
        doc["result"]["metrics"]["final_equity"]["value"],
        final_equity
    );
    assert_eq!(
        doc["trades"].as_array().unwrap().len(),
        trade_count as usize
    );
    assert_eq!(doc["strategy_source"], source);

    // report.html: one self-contained file (chart library, chart script and data inlined).
    let resp = ann
        .get(app.url(&format!("/backtests/{run}/report.html")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment;")
    );
    let html = resp.text().await.unwrap();
    let lib = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../public/vendor/lightweight-charts-5.2.1.standalone.production.js"),
    )
    .unwrap();
    assert!(html.contains(lib.trim()), "chart library not inlined");
    assert!(html.contains(r#"<script type="application/json" id="chart-data">"#));
    assert!(html.contains("data-backtest-chart"));
    assert!(
        !html.contains("src=\"http"),
        "the report loads something from the network"
    );
    assert!(
        !html.contains("<script src="),
        "the report loads an external script"
    );
    assert!(
        !html.contains("<link "),
        "the report loads an external stylesheet"
    );
    assert_eq!(html.matches("<tr><td>").count(), trade_count as usize);
    assert!(
        html.contains(&format!("{FROM} → {TO}")),
        "the report shows another range than the run's page"
    );

    // A second run with other parameters; the comparison shows both side by side.
    let other = start_run(&app, &ann, &with(&fields, "param.fast", "8")).await;
    assert_eq!(wait_finished(&app, &ann, other).await["status"], "done");
    let cmp = page_text(
        &app,
        &ann,
        &format!("/backtests/compare?ids={run}&ids={other}"),
    )
    .await;
    assert!(
        cmp.contains(r#"id="compare-table""#),
        "comparison table missing"
    );
    assert!(
        cmp.contains(&format!("/backtests/{run}\""))
            && cmp.contains(&format!("/backtests/{other}\""))
    );
    let row = &cmp[cmp.find("Final equity").expect("final equity row")..];
    let row = &row[..row.find("</tr>").unwrap()];
    assert_eq!(row.matches("<td class=\"num\">").count(), 2, "{row}");
    assert!(row.contains(&format!("{final_equity:.2}")), "{row}");
    let (code, both) = get_json(
        &app,
        &ann,
        &format!("/backtests/compare.json?ids={run}&ids={other}"),
    )
    .await;
    assert_eq!(code, StatusCode::OK);
    let runs = both["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2, "{both}");
    assert_eq!(runs[0]["id"], run.to_string());
    assert_eq!(runs[1]["id"], other.to_string());
    for r in runs {
        assert!(!r["equity"].as_array().unwrap().is_empty());
        assert_eq!(
            r["equity"].as_array().unwrap().len(),
            r["time"].as_array().unwrap().len()
        );
    }
}

// ---------------------------------------------------------------------------------------------------------
// 4. Bad input on the run form
// ---------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn bad_run_submissions_go_back_to_the_form_with_the_values_kept_and_the_problem_named() {
    let app = app(false, vec![]).await;
    let instrument = import_eth_btc(&app).await;
    let ann = trader(&app, "ann@example.org").await;
    let strategy = create_strategy(&app, &ann, "macd").await;
    let good = run_fields(strategy, instrument);
    type Fields = Vec<(String, String)>;
    let cases: Vec<(&str, Fields, &str)> = vec![
        ("empty to", with(&good, "to", ""), "give an end date"),
        (
            "to before from",
            with(&with(&good, "from", "2018-01-20"), "to", "2018-01-12"),
            "the end must be after the start",
        ),
        (
            "unknown instrument",
            with(&good, "instrument_id", "987654"),
            "there is no instrument 987654",
        ),
        (
            "no candles in the range",
            with(&with(&good, "from", "2019-03-01"), "to", "2019-03-31"),
            "there are no ETH/BTC 5m candles between",
        ),
        (
            "fee not a number",
            with(&good, "fee_pct", "abc"),
            "is not a number",
        ),
        (
            "parameter out of range",
            with(&good, "param.fast", "1000"),
            "`fast` = 1000 is out of range",
        ),
        (
            "no such strategy",
            with(&good, "strategy_id", &Uuid::new_v4().to_string()),
            "no such strategy",
        ),
    ];
    for (what, fields, message) in cases {
        let resp = submit_run(&app, &ann, &fields).await;
        assert_eq!(resp.status(), StatusCode::SEE_OTHER, "{what}");
        let loc = location(&resp);
        assert!(
            loc.starts_with("/backtests/new?") && loc.ends_with("&failed=1"),
            "{what}: {loc}"
        );
        let has_cookie = resp.headers().get_all("set-cookie").iter().any(|c| {
            c.to_str()
                .unwrap()
                .starts_with(&format!("{}=", backend::web::FORM_ERROR_COOKIE))
        });
        assert!(has_cookie, "{what}: no form-error cookie");
        // The values as typed are in the query.
        let query: Vec<(String, String)> =
            url::form_urlencoded::parse(loc.split_once('?').unwrap().1.as_bytes())
                .into_owned()
                .collect();
        for key in ["from", "to", "fee_pct", "param.fast", "instrument_id"] {
            let typed = fields.iter().find(|(k, _)| k == key).unwrap();
            assert!(
                query.iter().any(|(k, v)| k == key && v == &typed.1),
                "{what}: {key}={} not kept in {loc}",
                typed.1
            );
        }
        // Following the redirect (with the cookie) shows the form and the problem.
        let resp = ann.get(app.url(&loc)).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{what}");
        let page = resp.text().await.unwrap();
        assert!(
            page.contains(r#"id="run-form""#),
            "{what}: the form is not shown"
        );
        let shown = &page[page
            .find(r#"id="form-error""#)
            .unwrap_or_else(|| panic!("{what}: no error shown"))..];
        let shown = &shown[..shown.find("</p>").unwrap()];
        assert!(shown.contains(message), "{what}: {shown}");
        assert_eq!(
            count(&app, "select count(*) from backtest_run").await,
            0,
            "{what}: a run was stored"
        );
        assert_eq!(
            count(&app, "select count(*) from job where kind = 'backtest'").await,
            0
        );
    }
    // The typed values are back in the inputs.
    let fields = with(&good, "fee_pct", "abc");
    let loc = location(&submit_run(&app, &ann, &fields).await);
    let page = page_text(&app, &ann, &loc).await;
    assert_eq!(input_value(&page, "fee_pct"), "abc");
    assert_eq!(input_value(&page, "from"), FROM);
    assert_eq!(input_value(&page, "param.fast"), "12");
    // Without `failed=1` (a later visit) the old error is not shown.
    let page = page_text(&app, &ann, &format!("/backtests/new?strategy={strategy}")).await;
    assert!(!page.contains(r#"id="form-error""#));
}

// ---------------------------------------------------------------------------------------------------------
// 5. Authorization
// ---------------------------------------------------------------------------------------------------------

/// The `value` of the input named `name` in a page.
fn input_value<'a>(page: &'a str, name: &str) -> &'a str {
    let at = page
        .find(&format!(r#"name="{name}""#))
        .unwrap_or_else(|| panic!("no input {name}"));
    let tag = &page[at..];
    let tag = &tag[..tag.find('>').unwrap()];
    let v = &tag[tag
        .find(r#"value=""#)
        .unwrap_or_else(|| panic!("{name} has no value"))
        + 7..];
    &v[..v.find('"').unwrap()]
}

/// What the database holds about a user's strategies and runs (to prove nothing changed).
async fn snapshot(app: &TestApp) -> Vec<String> {
    let mut out: Vec<String> = sqlx::query_scalar(
        "select concat_ws('|', strategy_id, user_id, name, latest_version, draft_source, archived_at, updated_at) from strategy order by 1",
    )
    .fetch_all(&app.ctx.db)
    .await
    .unwrap();
    out.extend(
        sqlx::query_scalar::<_, String>(
            "select concat_ws('|', strategy_version_id, version, source_hash) from strategy_version order by 1",
        )
        .fetch_all(&app.ctx.db)
        .await
        .unwrap(),
    );
    out.extend(
        sqlx::query_scalar::<_, String>(
            "select concat_ws('|', backtest_run_id, status, cancel_requested, updated_at) from backtest_run order by 1",
        )
        .fetch_all(&app.ctx.db)
        .await
        .unwrap(),
    );
    out.extend(
        sqlx::query_scalar::<_, String>(
            "select concat_ws('|', job_id, status, attempts) from job where kind = 'backtest' order by 1",
        )
        .fetch_all(&app.ctx.db)
        .await
        .unwrap(),
    );
    out
}

#[tokio::test]
async fn another_trader_gets_not_found_everywhere_anonymous_visitors_are_sent_to_sign_in_and_read_only_or_unconfirmed_accounts_cannot_run()
 {
    let app = app(true, vec![]).await;
    let instrument = import_eth_btc(&app).await;
    let ann = trader(&app, "ann@example.org").await;
    let strategy = create_strategy(&app, &ann, "macd").await;
    let fields = run_fields(strategy, instrument);
    let run = start_run(&app, &ann, &fields).await;
    assert_eq!(wait_finished(&app, &ann, run).await["status"], "done");
    // A draft, so discarding it would show.
    let resp = form(
        &app,
        &ann,
        &format!("/strategies/{strategy}/save"),
        &[("source", "entry long when"), ("base_version", "1")],
    )
    .await;
    assert!(location(&resp).ends_with("error=strategy_invalid"));
    let before = snapshot(&app).await;

    let bob = trader(&app, "bob@example.org").await;
    let bob_id = user_id(&app, "bob@example.org").await;
    // Form posts: an HTML 404 page, exactly as for ids that do not exist.
    for action in [
        format!("/strategies/{strategy}/save"),
        format!("/strategies/{strategy}/duplicate"),
        format!("/strategies/{strategy}/archive"),
        format!("/strategies/{strategy}/restore"),
        format!("/strategies/{strategy}/discard-draft"),
        format!("/backtests/{run}/cancel"),
        format!("/strategies/{}/archive", Uuid::new_v4()),
        format!("/backtests/{}/cancel", Uuid::new_v4()),
    ] {
        let resp = form(
            &app,
            &bob,
            &action,
            &[
                ("source", "# mine now\nentry long when close > 0\n"),
                ("name", "stolen"),
            ],
        )
        .await;
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{action}");
        assert!(
            resp.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html"),
            "{action}"
        );
        let body = resp.text().await.unwrap();
        assert!(body.contains("Not found"), "{action}: {body}");
    }
    // Starting a run on someone else's strategy is refused exactly like a strategy that does not exist.
    let foreign = submit_run(&app, &bob, &fields).await;
    let missing = submit_run(
        &app,
        &bob,
        &with(&fields, "strategy_id", &Uuid::new_v4().to_string()),
    )
    .await;
    assert_eq!(foreign.status(), missing.status());
    let (foreign_loc, missing_loc) = (location(&foreign), location(&missing));
    assert!(foreign_loc.contains("failed=1"), "{foreign_loc}");
    assert!(
        !foreign_loc.contains(&strategy.to_string()),
        "{foreign_loc}"
    );
    let page = page_text(&app, &bob, &foreign_loc).await;
    assert!(page.contains("no such strategy"), "no clear message");
    assert!(
        !page.contains("MACD") && !page.contains("macd("),
        "ann's strategy leaked"
    );
    assert_eq!(
        foreign_loc, missing_loc,
        "someone else's strategy is distinguishable"
    );
    // JSON endpoints: 404 JSON.
    let first_entry: i64 = sqlx::query_scalar(
        "select (extract(epoch from entry_time) * 1000)::bigint from backtest_trade where backtest_run_id = $1 and seq = 1",
    )
    .bind(run)
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    for path in [
        format!("/backtests/{run}/status.json"),
        format!("/backtests/{run}/chart.json"),
        format!("/backtests/{run}/trace.json?time={first_entry}"),
        format!("/backtests/compare.json?ids={run}"),
        format!("/backtests/{}/status.json", Uuid::new_v4()),
        "/backtests/not-a-uuid/status.json".to_owned(),
    ] {
        let (code, body) = get_json(&app, &bob, &path).await;
        assert_eq!(code, StatusCode::NOT_FOUND, "{path}: {body}");
        assert_eq!(body["code"], "not_found", "{path}: {body}");
    }
    // Downloads: the HTML 404 page.
    for path in [
        format!("/backtests/{run}/trades.csv"),
        format!("/backtests/{run}/result.json"),
        format!("/backtests/{run}/report.html"),
    ] {
        let resp = bob.get(app.url(&path)).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{path}");
        assert!(
            resp.headers().get("content-disposition").is_none(),
            "{path}"
        );
        let body = resp.text().await.unwrap();
        assert!(
            body.contains("Not found") && !body.contains("seq,"),
            "{path}"
        );
    }
    // Pages: the not-found view, nothing of ann's.
    for path in [
        format!("/strategies/{strategy}"),
        format!("/backtests/{run}"),
        format!("/backtests/compare?ids={run}&ids={run}"),
        format!("/backtests/new?strategy={strategy}"),
    ] {
        let resp = bob.get(app.url(&path)).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{path}");
        let body = resp.text().await.unwrap();
        assert!(body.contains("not found"), "{path}");
        assert!(!body.contains("macd(close"), "{path}: ann's source leaked");
        assert!(
            !body.contains("Final equity"),
            "{path}: ann's result leaked"
        );
    }
    // Lists and server functions show bob nothing of ann's.
    for path in [
        "/strategies".to_owned(),
        "/strategies?archived=1".to_owned(),
        "/backtests".to_owned(),
        format!("/backtests?strategy={strategy}"),
    ] {
        let body = page_text(&app, &bob, &path).await;
        assert!(!body.contains(&strategy.to_string()), "{path}");
        assert!(!body.contains(&run.to_string()), "{path}");
    }
    for path in [
        format!("/api/strategy?id={strategy}"),
        format!("/api/run?id={run}"),
        format!("/api/compare?ids%5B0%5D={run}"),
        format!("/api/run_form?strategy={strategy}"),
    ] {
        let resp = bob.get(app.url(&path)).send().await.unwrap();
        let status = resp.status();
        let body = resp.text().await.unwrap();
        assert!(!status.is_success(), "{path}: {status} {body}");
        assert!(body.contains("not_found"), "{path}: {body}");
    }
    assert_eq!(
        count(
            &app,
            &format!("select count(*) from strategy where user_id = '{bob_id}'")
        )
        .await,
        0
    );
    assert_eq!(snapshot(&app).await, before, "bob changed ann's rows");

    // Anonymous: pages go to sign-in, JSON is 401, form posts go to sign-in.
    let anon = browser();
    for path in [
        "/strategies".to_owned(),
        format!("/strategies/{strategy}"),
        "/backtests".to_owned(),
        "/backtests/new".to_owned(),
        format!("/backtests/{run}"),
        format!("/backtests/compare?ids={run}"),
        format!("/backtests/{run}/trades.csv"),
        format!("/backtests/{run}/result.json"),
        format!("/backtests/{run}/report.html"),
    ] {
        let resp = anon.get(app.url(&path)).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::SEE_OTHER, "{path}");
        assert!(
            location(&resp).starts_with("/signin"),
            "{path}: {}",
            location(&resp)
        );
    }
    for path in [
        format!("/backtests/{run}/status.json"),
        format!("/backtests/{run}/chart.json"),
        format!("/backtests/{run}/trace.json?time={first_entry}"),
        format!("/backtests/compare.json?ids={run}"),
    ] {
        let (code, body) = get_json(&app, &anon, &path).await;
        assert_eq!(code, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(body["code"], "unauthorized", "{path}");
    }
    for action in [
        "/strategies/create".to_owned(),
        format!("/strategies/{strategy}/archive"),
        "/backtests/create".to_owned(),
        format!("/backtests/{run}/cancel"),
    ] {
        let resp = post_form(&app, &anon, "/signin", &action, &[("template", "macd")]).await;
        assert_eq!(resp.status(), StatusCode::SEE_OTHER, "{action}");
        assert!(location(&resp).starts_with("/signin"), "{action}");
    }
    assert_eq!(
        snapshot(&app).await,
        before,
        "anonymous requests changed rows"
    );

    // A viewer (read-only account) sees but cannot create or run.
    let cleo = trader(&app, "cleo@example.org").await;
    let cleo_strategy = create_strategy(&app, &cleo, "rsi").await;
    sqlx::query("update app_user set role = 'viewer' where email = 'cleo@example.org'")
        .execute(&app.ctx.db)
        .await
        .unwrap();
    let resp = form(&app, &cleo, "/strategies/create", &[("template", "macd")]).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert!(resp.text().await.unwrap().contains("Read-only account"));
    let resp = form(
        &app,
        &cleo,
        &format!("/strategies/{cleo_strategy}/archive"),
        &[],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let cleo_fields = vec![
        ("strategy_id".to_owned(), cleo_strategy.to_string()),
        ("instrument_id".to_owned(), instrument.to_string()),
        ("timeframe".to_owned(), "5m".to_owned()),
        ("from".to_owned(), FROM.to_owned()),
        ("to".to_owned(), TO.to_owned()),
        ("initial_cash".to_owned(), "10000".to_owned()),
        ("fee_pct".to_owned(), "0.1".to_owned()),
        ("slippage_bps".to_owned(), "0".to_owned()),
    ];
    let resp = submit_run(&app, &cleo, &cleo_fields).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let page = page_text(
        &app,
        &cleo,
        &format!("/backtests/new?strategy={cleo_strategy}"),
    )
    .await;
    assert!(page.contains(r#"id="run-blocked""#) && page.contains("read-only"));
    assert!(
        page.contains(r#"id="start-backtest" disabled"#),
        "run button enabled"
    );
    let page = page_text(&app, &cleo, "/strategies").await;
    assert!(
        !page.contains(r#"id="new-strategy""#),
        "viewer sees the create form"
    );
    assert_eq!(
        count(&app, "select count(*) from strategy").await,
        2,
        "the viewer created a strategy"
    );

    // A trader who has not confirmed their email address cannot start a run, and is told why.
    let dan = unverified(&app, "dan@example.org").await;
    let dan_strategy = create_strategy(&app, &dan, "macd").await;
    let resp = submit_run(&app, &dan, &run_fields(dan_strategy, instrument)).await;
    let loc = location(&resp);
    assert!(loc.contains("failed=1"), "{loc}");
    let page = page_text(&app, &dan, &loc).await;
    assert!(
        page.contains("Confirm your email address"),
        "no clear message for an unconfirmed address"
    );
    let dan_id = user_id(&app, "dan@example.org").await;
    assert_eq!(
        count(
            &app,
            &format!("select count(*) from backtest_run where user_id = '{dan_id}'")
        )
        .await,
        0
    );
}

// ---------------------------------------------------------------------------------------------------------
// 6. The per-user limit of runs in flight
// ---------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn the_concurrent_run_limit_refuses_a_second_run_until_the_first_is_cancelled() {
    let app = app(false, vec![("BACKTEST_MAX_CONCURRENT", "1".into())]).await;
    let instrument = import_eth_btc(&app).await;
    let ann = trader(&app, "ann@example.org").await;
    let strategy = create_strategy(&app, &ann, "macd").await;
    let fields = run_fields(strategy, instrument);

    let first = start_run(&app, &ann, &fields).await;
    let (code, st) = get_json(&app, &ann, &format!("/backtests/{first}/status.json")).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(st["status"], "queued", "{st}");
    let page = page_text(&app, &ann, &format!("/backtests/{first}")).await;
    assert!(page.contains(r#"id="run-status""#) && page.contains(r#"id="cancel-run""#));

    let resp = submit_run(&app, &ann, &with(&fields, "param.fast", "8")).await;
    let loc = location(&resp);
    assert!(loc.contains("failed=1"), "second run accepted: {loc}");
    let page = page_text(&app, &ann, &loc).await;
    assert!(
        page.contains("the limit is 1 at a time"),
        "no limit message"
    );
    assert_eq!(count(&app, "select count(*) from backtest_run").await, 1);

    let resp = form(&app, &ann, &format!("/backtests/{first}/cancel"), &[]).await;
    assert_eq!(
        location(&resp),
        format!("/backtests/{first}?ok=cancel_requested")
    );
    let (_, st) = get_json(&app, &ann, &format!("/backtests/{first}/status.json")).await;
    assert_eq!(st["status"], "cancelled", "{st}");
    let job_status: String = sqlx::query_scalar(
        "select j.status from job j join backtest_run r using (job_id) where r.backtest_run_id = $1",
    )
    .bind(first)
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    assert_eq!(job_status, "cancelled");
    let page = page_text(&app, &ann, &format!("/backtests/{first}")).await;
    assert!(page.contains(r#"id="run-cancelled""#));
    // Cancelling again: it has already finished.
    let resp = form(&app, &ann, &format!("/backtests/{first}/cancel"), &[]).await;
    assert_eq!(
        location(&resp),
        format!("/backtests/{first}?error=already_finished")
    );

    let second = start_run(&app, &ann, &with(&fields, "param.fast", "8")).await;
    assert_ne!(second, first);
    assert_eq!(count(&app, "select count(*) from backtest_run").await, 2);
}

#[tokio::test]
async fn cancelling_a_running_backtest_stops_the_worker_and_stores_no_result() {
    use sqlx::Connection;
    let app = app(false, vec![]).await;
    let instrument = import_eth_btc(&app).await;
    let ann = trader(&app, "ann@example.org").await;
    let strategy = create_strategy(&app, &ann, "macd").await;
    let run = start_run(&app, &ann, &run_fields(strategy, instrument)).await;

    // Hold the candles so the job stops while loading them, after it marked the run running; then start a
    // worker.
    let url = {
        use secrecy::ExposeSecret;
        app.ctx.settings.database_url.expose_secret().to_owned()
    };
    let mut lock = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query("begin").execute(&mut lock).await.unwrap();
    sqlx::query("lock table candle in access exclusive mode")
        .execute(&mut lock)
        .await
        .unwrap();
    let (_stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(backend::jobs::worker::run(app.ctx.clone(), stopped));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let waiting = count(
            &app,
            "select count(*) from pg_stat_activity where datname = current_database() \
             and wait_event_type = 'Lock' and query like '%from candle%'",
        )
        .await;
        if waiting > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the job never loaded candles");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, st) = get_json(&app, &ann, &format!("/backtests/{run}/status.json")).await;
    assert_eq!(st["status"], "running", "{st}");

    let resp = form(&app, &ann, &format!("/backtests/{run}/cancel"), &[]).await;
    assert_eq!(
        location(&resp),
        format!("/backtests/{run}?ok=cancel_requested")
    );
    let (_, st) = get_json(&app, &ann, &format!("/backtests/{run}/status.json")).await;
    assert_eq!(
        (st["status"].as_str(), st["message"].as_str()),
        (Some("running"), Some("cancelling…")),
        "{st}"
    );
    // The worker notices within its sync interval (250 ms), then the candles are released.
    tokio::time::sleep(Duration::from_millis(800)).await;
    sqlx::query("rollback").execute(&mut lock).await.unwrap();

    let st = wait_finished(&app, &ann, run).await;
    assert_eq!(st["status"], "cancelled", "{st}");
    let (job_status, results): (String, i64) = sqlx::query_as(
        "select j.status, (select count(*) from backtest_result where backtest_run_id = r.backtest_run_id)
         from backtest_run r join job j using (job_id) where r.backtest_run_id = $1",
    )
    .bind(run)
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    assert_eq!((job_status.as_str(), results), ("done", 0));
    let page = page_text(&app, &ann, &format!("/backtests/{run}")).await;
    assert!(page.contains(r#"id="run-cancelled""#));
    assert!(!page.contains(r#"id="metrics""#));
    // Nothing to export: the run exists but has no result, the same answer (409 not_finished) on every surface.
    let resp = ann
        .get(app.url(&format!("/backtests/{run}/trades.csv")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CONFLICT);
}
