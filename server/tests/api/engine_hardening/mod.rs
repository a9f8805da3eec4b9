//! Issue 11, items 1–3 (and 13, `close[1][1]…`): hostile strategy sources at the size limit against both validate
//! endpoints and the real `vortex` binary; the per-run memory budget at submission, in the worker and between
//! the runs one worker holds; "why here?" traces computed by a worker and read from storage.

use std::{
    path::Path,
    process::Command,
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
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{
    auth::{PASSWORD, browser, csrf, location, post_form, sign_in},
    helpers::{Options, TestApp, spawn_app_with, vortex_bin},
};

const MAX: usize = engine::strategy::limits::MAX_SOURCE_BYTES;

/// Sources as large as the limit allows that nest or chain far beyond the depth limit.
fn hostile_sources() -> Vec<(&'static str, String)> {
    let fill = |head: &str, unit: &str, tail: &str| {
        let n = (MAX - head.len() - tail.len()) / unit.len();
        format!("{head}{}{tail}", unit.repeat(n))
    };
    let nest = |open: &str, mid: &str, close: &str, head: &str, tail: &str| {
        let n = (MAX - head.len() - tail.len() - mid.len()) / (open.len() + close.len());
        format!("{head}{}{mid}{}{tail}", open.repeat(n), close.repeat(n))
    };
    vec![
        // 1+1+1+… : 30,000 terms in 60 KB.
        ("sum chain", fill("entry long when close > 1", "+1", "\n")),
        (
            "and chain",
            fill("entry long when close > 1", " and true", "\n"),
        ),
        // close[1][1]… ×3,000 is 9 KB; the limit allows far more.
        (
            "look-back chain (9 KB)",
            format!("entry long when close{} > 1\n", "[1]".repeat(3000)),
        ),
        (
            "look-back chain",
            fill("entry long when close", "[1]", " > 1\n"),
        ),
        ("minus chain", fill("entry long when close > ", "- ", "1\n")),
        ("not chain", fill("entry long when ", "not ", "close > 1\n")),
        (
            "parentheses",
            nest("(", "close", ")", "entry long when ", " > 1\n"),
        ),
        (
            "calls",
            nest("abs(", "close", ")", "entry long when ", " > 1\n"),
        ),
    ]
}

fn assert_depth_diagnostic(what: &str, body: &Value) {
    assert_eq!(body["ok"], false, "{what}: {body}");
    let d = &body["diagnostics"][0];
    assert!(
        d["message"]
            .as_str()
            .unwrap_or("")
            .contains("nested too deeply"),
        "{what}: {body}"
    );
    assert!(d["line"].as_u64().unwrap_or(0) >= 1, "{what}: {body}");
    assert!(d["column"].as_u64().unwrap_or(0) >= 1, "{what}: {body}");
}

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

async fn browser_trader(app: &TestApp, email: &str) -> Client {
    let client = browser();
    let resp = post_form(
        app,
        &client,
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

#[tokio::test]
async fn engine_hardening_deep_sources_at_the_size_limit_are_diagnosed_by_both_validate_endpoints_and_the_cli()
 {
    let app = spawn_app_with(Options::default()).await;
    let read_only = token(&app, "reader@example.org", Scope::Read).await;
    let ann = browser_trader(&app, "ann@example.org").await;
    let csrf_token = csrf(&app, &ann, "/strategies").await;
    let dir = tempfile::tempdir().unwrap();
    let csv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/market/ETH-BTC-5m.csv");
    for (what, source) in hostile_sources() {
        assert!(source.len() <= MAX, "{what}");
        // REST API with a read-only token.
        let (status, body) = api(
            &app,
            reqwest::Method::POST,
            "/api/v1/strategies/validate",
            &read_only,
            Some(&json!({ "source": source })),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{what}: {body}");
        assert_depth_diagnostic(what, &body);
        // The editor's validation in the browser.
        let resp = ann
            .post(app.url("/strategies/validate"))
            .header("x-csrf-token", &csrf_token)
            .json(&json!({ "source": source }))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{what}");
        let body: Value = resp.json().await.unwrap();
        assert_depth_diagnostic(what, &body);
        // The real binary: a rendered diagnostic and exit code 2, not "stack overflow".
        let file = dir.path().join("deep.vx");
        std::fs::write(&file, &source).unwrap();
        let out = Command::new(vortex_bin())
            .args(["run-strategy", "--strategy-file"])
            .arg(&file)
            .arg("--csv")
            .arg(&csv)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("APP_ENV", "test")
            .output()
            .expect("run vortex");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{what}: {err}");
        assert!(
            err.contains("nested too deeply") && err.contains("--> line 1, column"),
            "{what}: {err}"
        );
    }
    // The server (this process) is still up and answering.
    let health = app.get("/health").await;
    assert_eq!(health.status(), StatusCode::OK);
    let (status, body) = api(
        &app,
        reqwest::Method::POST,
        "/api/v1/strategies/validate",
        &read_only,
        Some(&json!({ "source": "entry long when close > 1\n" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["ok"], true, "{body}");
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

#[tokio::test]
async fn engine_hardening_runs_over_the_memory_budget_are_refused_at_submission_and_in_the_worker_saying_what_to_shorten()
 {
    let app = spawn_app_with(Options {
        workers: false,
        env: vec![("BACKTEST_MEMORY_BUDGET_MB", "16".into())],
    })
    .await;
    let token = token(&app, "budget@example.org", Scope::ReadWrite).await;
    let inst = instrument_with_minutes(&app, 100_000).await;
    // Sixty kept indicator columns over 100,000 bars: about 60 MB, refused before anything is queued.
    let wide = strategy(&app, &token, &many_clauses(60)).await;
    let (status, body) = api(
        &app,
        reqwest::Method::POST,
        "/api/v1/backtests",
        &token,
        Some(&run_body(wide, inst)),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["field"], "range", "{body}");
    let msg = body["detail"].as_str().unwrap();
    for hint in [
        "more than the 16 MB",
        "fewer candles",
        "shorter range",
        "larger timeframe",
        "fewer",
    ] {
        assert!(msg.contains(hint), "{hint}: {msg}");
    }
    let runs: i64 = sqlx::query_scalar("select count(*) from backtest_run")
        .fetch_one(&app.ctx.db)
        .await
        .unwrap();
    assert_eq!(runs, 0);

    // A simple strategy on the same bars fits and is queued…
    let narrow = strategy(
        &app,
        &token,
        "entry long when crosses_above(sma(close, 10), sma(close, 30))\nexit long when crosses_below(sma(close, 10), sma(close, 30))\n",
    )
    .await;
    let id = submit(&app, &token, narrow, inst).await;
    // …but by the time a worker takes it, three times as many candles are stored in its range: the worker
    // counts them, refuses the run before loading them, and says what to shorten.
    add_minutes(&app, inst, 100_000, 300_000).await;
    let _worker = worker_with_budget(&app, 16);
    let run = wait_run(&app, &token, id).await;
    assert_eq!(run["status"], "failed", "{run}");
    let error = run["error"].as_str().unwrap();
    assert!(
        error.contains("300000 candles") && error.contains("fewer candles"),
        "{error}"
    );
    // Refused, not crashed: the job finished on its first attempt.
    let (attempts, status): (i32, String) = sqlx::query_as(
        "select attempts, status from job where kind = 'backtest' and payload->>'backtest_run_id' = $1",
    )
    .bind(id.to_string())
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    assert_eq!((attempts, status.as_str()), (1, "done"));
}

#[tokio::test]
async fn engine_hardening_a_run_waiting_for_memory_in_a_worker_has_not_spent_an_attempt() {
    let app = spawn_app_with(Options {
        workers: false,
        env: vec![("WORKER_CONCURRENCY", "2".into())],
    })
    .await;
    let token = token(&app, "twice@example.org", Scope::ReadWrite).await;
    let inst = instrument_with_minutes(&app, 250_000).await;
    let s = strategy(
        &app,
        &token,
        "entry long when crosses_above(ema(close, 10), sma(close, 30))\nexit long when crosses_below(ema(close, 10), sma(close, 30))\n",
    )
    .await;
    let mut ids = Vec::new();
    for _ in 0..2 {
        ids.push(submit(&app, &token, s, inst).await);
    }
    // Each run needs a bit more than half of 64 MB: the worker takes both jobs (concurrency 2) but runs one at a
    // time. The one waiting holds its job without having spent an attempt, so if this worker were killed (by
    // the other run), its attempts would be untouched.
    let _worker = worker_with_budget(&app, 64);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen_waiting = false;
    while Instant::now() < deadline {
        let rows: Vec<(String, i32)> = sqlx::query_as(
            "select status, attempts from job where kind = 'backtest' order by enqueued_at",
        )
        .fetch_all(&app.ctx.db)
        .await
        .unwrap();
        if rows.iter().all(|(s, _)| s == "running")
            && rows.iter().filter(|(_, a)| *a == 0).count() == 1
            && rows.iter().filter(|(_, a)| *a == 1).count() == 1
        {
            seen_waiting = true;
            break;
        }
        if rows.iter().all(|(s, _)| s == "done") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        seen_waiting,
        "never saw one run running and the other waiting with its attempt given back"
    );
    for id in &ids {
        let run = wait_run(&app, &token, *id).await;
        assert_eq!(run["status"], "done", "{run}");
    }
    let attempts: Vec<i32> =
        sqlx::query_scalar("select attempts from job where kind = 'backtest' order by enqueued_at")
            .fetch_all(&app.ctx.db)
            .await
            .unwrap();
    assert_eq!(attempts, [1, 1]);
}

// ---------------------------------------------------------------------------------------------------------
// "Why here?" traces
// ---------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn engine_hardening_traces_are_computed_by_a_worker_stored_and_bounded_by_the_budget() {
    let app = spawn_app_with(Options {
        workers: true,
        env: vec![],
    })
    .await;
    let token = token(&app, "why@example.org", Scope::ReadWrite).await;
    let inst = instrument_with_minutes(&app, 40_000).await;
    let s = strategy(
        &app,
        &token,
        "let fast = ema(close, 12)\nlet slow = ema(close, 200)\nentry long when crosses_above(fast, slow)\nexit long when crosses_below(fast, slow)\n",
    )
    .await;
    let id = submit(&app, &token, s, inst).await;
    assert_eq!(wait_run(&app, &token, id).await["status"], "done");
    // The last trade's entry: far from the first bar, so its EMA values depend on the whole history.
    let (entry, values): (i64, Value) = sqlx::query_as(
        r#"select (extract(epoch from entry_time) * 1000)::bigint, entry_values from backtest_trade
           where backtest_run_id = $1 order by seq desc limit 1"#,
    )
    .bind(id)
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    let path = format!("/api/v1/backtests/{id}/trace?time={entry}");
    let (status, first) = api(&app, reqwest::Method::GET, &path, &token, None).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let bar = &first["bars"][0];
    assert_eq!(bar["time"], entry, "{first}");
    assert!(
        bar["actions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a.as_str().unwrap().starts_with("bought")),
        "{first}"
    );
    // The values the trace shows at the signal bar (the bar before the fill) are those the backtest stored.
    let prev = entry - 60_000;
    let (_, signal) = api(
        &app,
        reqwest::Method::GET,
        &format!("/api/v1/backtests/{id}/trace?time={prev}"),
        &token,
        None,
    )
    .await;
    for pair in values.as_array().unwrap() {
        let name = pair[0].as_str().unwrap();
        let stored = pair[1].as_f64().unwrap();
        let shown = signal["bars"][0]["values"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("{name} in {signal}"))["value"]
            .as_f64()
            .unwrap();
        assert_eq!(shown, stored, "{name}");
    }
    // Computed by a backtest worker, and kept.
    let jobs: i64 = sqlx::query_scalar(
        "select count(*) from job where kind = 'backtest_trace' and queue = 'backtest' and status = 'done'",
    )
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    assert_eq!(jobs, 2);
    let stored: i64 =
        sqlx::query_scalar("select count(*) from backtest_trace where backtest_run_id = $1")
            .bind(id)
            .fetch_one(&app.ctx.db)
            .await
            .unwrap();
    assert_eq!(stored, 2);
    // Asked again, the answer is read from storage: no new job, and the same answer even with the candles gone.
    sqlx::query("delete from candle where instrument_id = $1")
        .bind(inst)
        .execute(&app.ctx.db)
        .await
        .unwrap();
    let (status, again) = api(&app, reqwest::Method::GET, &path, &token, None).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again, first);
    let jobs: i64 = sqlx::query_scalar("select count(*) from job where kind = 'backtest_trace'")
        .fetch_one(&app.ctx.db)
        .await
        .unwrap();
    assert_eq!(jobs, 2);
}

#[tokio::test]
async fn engine_hardening_a_trace_over_the_memory_budget_is_refused_with_what_to_shorten() {
    let app = spawn_app_with(Options {
        workers: false,
        env: vec![],
    })
    .await;
    let token = token(&app, "big@example.org", Scope::ReadWrite).await;
    let inst = instrument_with_minutes(&app, 150_000).await;
    let s = strategy(&app, &token, &many_clauses(20)).await;
    let id = submit(&app, &token, s, inst).await;
    // The run finishes under the default budget…
    let big = worker_with_budget(&app, 1024);
    assert_eq!(wait_run(&app, &token, id).await["status"], "done");
    big.send(true).unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    // …a worker with a 16 MB budget refuses to trace it (it would need the run's columns again).
    let _small = worker_with_budget(&app, 16);
    let time: i64 = sqlx::query_scalar(
        "select (provenance->>'last_time')::bigint from backtest_result where backtest_run_id = $1",
    )
    .bind(id)
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    let (status, body) = api(
        &app,
        reqwest::Method::GET,
        &format!("/api/v1/backtests/{id}/trace?time={time}"),
        &token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let msg = body["detail"].as_str().unwrap();
    assert!(
        msg.contains("tracing this run needs about") && msg.contains("fewer candles"),
        "{msg}"
    );
}
