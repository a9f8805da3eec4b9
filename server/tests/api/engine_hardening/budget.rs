//! Issue 11, items 2 and 3: the per-run memory budget at submission, in the worker and between the
//! runs one worker holds.

use std::time::{Duration, Instant};

use backend::auth::Scope;
use reqwest::StatusCode;

use super::{
    add_minutes, api, instrument_with_minutes, many_clauses, run_body, strategy, submit, token,
    wait_run, worker_with_budget,
};
use crate::helpers::{Options, spawn_app_with};

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
