//! Runs in flight: the per-user limit refuses a second run until the first is cancelled, and
//! cancelling a running backtest stops the worker and stores no result.

use std::time::{Duration, Instant};

use reqwest::StatusCode;

use super::{
    app, count, create_strategy, form, get_json, import_eth_btc, run_fields, start_run, submit_run,
    trader, wait_finished, with,
};
use crate::auth::{location, page_text};

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
