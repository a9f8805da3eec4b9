//! The per-user limit of runs in flight through the REST API: a second run is refused until the
//! first is cancelled, and a run whose job gave up is failed for the trader and frees its slot.

use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

use super::{app, get, import, post, queue, strategy_from, submission, trader};

#[tokio::test]
async fn backtests_api_the_concurrency_limit_refuses_a_second_run_until_the_first_is_cancelled() {
    let app = app(false, vec![("BACKTEST_MAX_CONCURRENT", "1".into())]).await;
    let token = trader(&app, "cy@example.org").await;
    let xrp = import(&app, "XRP-ETH-5m.csv").await;
    let strategy = strategy_from(&app, &token, "sma_cross").await;
    let first = queue(&app, &token, &submission(strategy, xrp)).await;

    let second = post(
        &app,
        "/api/v1/backtests",
        &token,
        &submission(strategy, xrp),
    )
    .await;
    assert_eq!(second.status, StatusCode::FORBIDDEN, "{second:?}");
    assert_eq!(second.error(), "plan_limit");
    assert!(
        second.message().contains("the limit is 1"),
        "says why: {second:?}"
    );
    assert!(
        second.message().contains("cancel"),
        "says what to do: {second:?}"
    );

    // A queued run has no result yet.
    let early = get(&app, &format!("/api/v1/backtests/{first}/result"), &token).await;
    assert_eq!(early.status, StatusCode::CONFLICT, "{early:?}");
    assert_eq!(early.error(), "not_finished");
    assert!(early.message().contains("queued"), "{early:?}");
    let early_trades = get(&app, &format!("/api/v1/backtests/{first}/trades"), &token).await;
    assert_eq!(early_trades.error(), "not_finished");

    // Cancel the queued run: cancelled at once, its job too.
    let cancel = post(
        &app,
        &format!("/api/v1/backtests/{first}/cancel"),
        &token,
        &json!({}),
    )
    .await;
    assert_eq!(cancel.status, StatusCode::OK, "{cancel:?}");
    assert_eq!(cancel.json["status"], "cancelled");
    let detail = get(&app, &format!("/api/v1/backtests/{first}"), &token).await;
    assert_eq!(detail.json["status"], "cancelled");
    assert_eq!(detail.json["cancel_requested"], true);
    assert!(detail.json["finished_at"].is_string());
    let job: String = sqlx::query_scalar(
        "select j.status from job j join backtest_run r on r.job_id = j.job_id where r.backtest_run_id = $1",
    )
    .bind(first)
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    assert_eq!(job, "cancelled");
    let again = post(
        &app,
        &format!("/api/v1/backtests/{first}/cancel"),
        &token,
        &json!({}),
    )
    .await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{again:?}");
    assert_eq!(again.error(), "conflict");
    let result = get(&app, &format!("/api/v1/backtests/{first}/result"), &token).await;
    assert_eq!(result.error(), "not_finished");

    // The slot is free again.
    let third = post(
        &app,
        "/api/v1/backtests",
        &token,
        &submission(strategy, xrp),
    )
    .await;
    assert_eq!(third.status, StatusCode::ACCEPTED, "{third:?}");
    let batch = third.json["batch_id"].as_str().unwrap();
    let listed = get(&app, &format!("/api/v1/backtests?batch_id={batch}"), &token).await;
    assert_eq!(listed.json["runs"].as_array().unwrap().len(), 1);
    assert_eq!(listed.json["runs"][0]["status"], "queued");
    let cancelled = get(&app, "/api/v1/backtests?status=cancelled", &token).await;
    assert_eq!(cancelled.json["runs"][0]["id"], first.to_string());
}

/// A run whose job ran out of attempts (or whose job row is gone) is failed for the trader, with a message
/// that leaks nothing internal; it no longer counts against the concurrency limit and cannot be cancelled.
#[tokio::test]
async fn backtests_api_a_run_whose_job_gave_up_is_failed_for_the_trader_and_frees_its_slot() {
    let app = app(false, vec![("BACKTEST_MAX_CONCURRENT", "1".into())]).await;
    let token = trader(&app, "gaveup@example.org").await;
    let xrp = import(&app, "XRP-ETH-5m.csv").await;
    let strategy = strategy_from(&app, &token, "macd").await;
    let id = queue(&app, &token, &submission(strategy, xrp)).await;
    let job_id: Uuid =
        sqlx::query_scalar("select job_id from backtest_run where backtest_run_id = $1")
            .bind(id)
            .fetch_one(&app.ctx.db)
            .await
            .unwrap();
    // The worker died on every attempt: the job is failed, with an operator-facing error.
    sqlx::query(
        "update job set status = 'failed', attempts = max_attempts, last_error = 'pool timed out: 10.0.0.7:5432 (secret detail)' where job_id = $1",
    )
    .bind(job_id)
    .execute(&app.ctx.db)
    .await
    .unwrap();
    let d = get(&app, &format!("/api/v1/backtests/{id}"), &token).await;
    assert_eq!(d.json["status"], "failed", "{d:?}");
    let error = d.json["error"].as_str().unwrap();
    assert!(
        error.contains("could not finish") && !error.contains("10.0.0.7"),
        "{error}"
    );
    // Its slot is free again, and a failed run cannot be cancelled.
    let again = post(
        &app,
        "/api/v1/backtests",
        &token,
        &submission(strategy, xrp),
    )
    .await;
    assert_eq!(again.status, StatusCode::ACCEPTED, "{again:?}");
    let c = post(
        &app,
        &format!("/api/v1/backtests/{id}/cancel"),
        &token,
        &json!({}),
    )
    .await;
    assert_eq!(c.status, StatusCode::CONFLICT, "{c:?}");
    // The worker's bookkeeping writes the outcome onto the run row itself…
    backend::jobs::registry::fail_dependents(&app.ctx, job_id).await;
    let stored: String =
        sqlx::query_scalar("select status from backtest_run where backtest_run_id = $1")
            .bind(id)
            .fetch_one(&app.ctx.db)
            .await
            .unwrap();
    assert_eq!(stored, "failed");
    // …and a run whose job row was pruned before that is failed too, never "running" again.
    let second: Uuid = again.json["runs"][0]["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    sqlx::query("delete from job where job_id = (select job_id from backtest_run where backtest_run_id = $1)")
        .bind(second)
        .execute(&app.ctx.db)
        .await
        .unwrap();
    let d = get(&app, &format!("/api/v1/backtests/{second}"), &token).await;
    assert_eq!(d.json["status"], "failed", "{d:?}");
}
