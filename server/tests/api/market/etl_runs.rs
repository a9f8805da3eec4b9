//! The ETL against the in-process mock exchange over real HTTP: pagination, rate limits and server
//! errors, malformed answers, resuming an interrupted backfill, open candles, time replay and the
//! scheduled update.

use std::time::{Duration, Instant};

use backend::market::{
    Pair, Timeframe,
    binance::BinanceClient,
    etl::{self, Mode, RunRequest},
    store,
};
use server::mock_exchange::Faults;

use super::{app_with_mock, count, csv, stored, t};
use crate::helpers::TestApp;

fn request(
    base: &str,
    tf: Timeframe,
    mode: Mode,
    from: Option<&str>,
    to: Option<&str>,
) -> RunRequest {
    RunRequest {
        pair: Pair::parse(base).unwrap(),
        timeframe: tf,
        mode,
        from: from.map(t),
        to: to.map(t),
    }
}

/// Plans and runs inline, like `vortex run-etl` without `--enqueue`.
async fn run_inline(
    app: &TestApp,
    req: &RunRequest,
) -> (etl::PlannedRun, Result<etl::Progress, etl::EtlError>) {
    let client = BinanceClient::new(&app.ctx.settings.market).unwrap();
    let now = client.server_time().await.unwrap();
    let run = etl::plan_run(&app.ctx, req, now).await.unwrap();
    let result = etl::run_inline(&app.ctx, &client, &run, true, |_| {}).await;
    (run, result)
}

#[tokio::test]
async fn a_backfill_paginates_stores_exactly_the_exchange_candles_and_a_rerun_changes_nothing() {
    let (app, mock) = app_with_mock(false, vec![]).await;
    let req = request(
        "ETH/BTC",
        Timeframe::M5,
        Mode::Backfill,
        Some("2018-01-10"),
        Some("2018-02-01"),
    );
    let started = Instant::now();
    let (run, result) = run_inline(&app, &req).await;
    let p = result.unwrap();
    let took = started.elapsed();
    let expected = csv("ETH-BTC-5m.csv");
    assert_eq!(p.fetched, expected.len());
    assert_eq!(p.written, expected.len() as u64);
    // 5760 candles in chunks of 2000 on the grid and pages of 500: several chunks, many pages.
    assert!(run.chunks.len() >= 3, "{:?}", run.chunks);
    assert!(mock.requests("klines") >= 12, "{:?}", mock.stats());
    assert_eq!(
        stored(&app, run.instrument.instrument_id, Timeframe::M5).await,
        expected
    );
    eprintln!("backfill of {} candles over HTTP: {took:?}", expected.len());

    // The run row shows the progress.
    let row = store::run(&app.ctx.db, run.run_id).await.unwrap().unwrap();
    assert_eq!(
        (row.status.as_str(), row.candles_fetched),
        ("done", expected.len() as i64)
    );
    assert_eq!(row.chunks_done, row.chunks_total);

    // Re-running plans nothing (every chunk is complete) ...
    let (again, result) = run_inline(&app, &req).await;
    assert!(again.chunks.is_empty() && again.skipped == run.chunks.len());
    assert_eq!(result.unwrap().written, 0);
    // ... and even re-fetching everything writes nothing and counts nothing twice.
    sqlx::query("delete from market_chunk")
        .execute(&app.ctx.db)
        .await
        .unwrap();
    let (_, result) = run_inline(&app, &req).await;
    let p = result.unwrap();
    assert_eq!((p.fetched, p.written), (expected.len(), 0));
    assert_eq!(count(&app).await, expected.len() as i64);
}

#[tokio::test]
async fn rate_limits_wait_for_retry_after_and_server_errors_are_retried() {
    let (app, mock) = app_with_mock(false, vec![]).await;
    mock.set_faults(Faults {
        rate_limit: 2,
        retry_after_secs: 1,
        server_errors: 2,
        ..Faults::default()
    });
    let started = Instant::now();
    let req = request(
        "LTC/BTC",
        Timeframe::M5,
        Mode::Backfill,
        Some("2018-01-10"),
        Some("2018-01-12"),
    );
    let (_, result) = run_inline(&app, &req).await;
    let p = result.unwrap();
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(2),
        "Retry-After of 1 s twice not honoured: {took:?}"
    );
    let stats = mock.stats();
    let status = |s: &str| {
        stats
            .iter()
            .filter(|(k, _)| k.ends_with(s))
            .map(|(_, v)| v)
            .sum::<u64>()
    };
    assert_eq!((status(" 429"), status(" 500")), (2, 2), "{stats:?}");
    assert_eq!(p.fetched as i64, count(&app).await);
    assert!(p.fetched > 500);

    // A ban (418) longer than MARKET_MAX_RETRY_WAIT_SECS fails the attempt instead of sleeping for it.
    mock.set_faults(Faults {
        rate_limit: 50,
        ban: true,
        retry_after_secs: 3600,
        ..Faults::default()
    });
    let client = BinanceClient::new(&app.ctx.settings.market).unwrap();
    let e = client.server_time().await.unwrap_err();
    assert!(
        e.to_string().contains("HTTP 418") && e.to_string().contains("3600"),
        "{e}"
    );
}

#[tokio::test]
async fn malformed_json_fails_the_chunk_job_after_its_retries_with_the_error_recorded_and_nothing_stored()
 {
    let (app, mock) = app_with_mock(true, vec![("JOB_MAX_ATTEMPTS", "2".into())]).await;
    mock.set_faults(Faults {
        malformed: 1000,
        ..Faults::default()
    });
    let client = BinanceClient::new(&app.ctx.settings.market).unwrap();
    let now = client.server_time().await.unwrap();
    let req = request(
        "ETH/BTC",
        Timeframe::M5,
        Mode::Backfill,
        Some("2018-01-11"),
        Some("2018-01-12"),
    );
    let run = etl::plan_run(&app.ctx, &req, now).await.unwrap();
    let jobs = etl::enqueue_run(&app.ctx, &run, true).await.unwrap();
    assert_eq!(jobs.len(), 1);
    let job = app
        .wait_for_job(jobs[0], &["failed"], Duration::from_secs(30))
        .await;
    assert_eq!(job.attempts, 2);
    let error = job.last_error.unwrap();
    assert!(
        error.contains("malformed response from api/v3/klines"),
        "{error}"
    );
    assert_eq!(count(&app).await, 0);
    let row = store::run(&app.ctx.db, run.run_id).await.unwrap().unwrap();
    assert_eq!(row.status, "failed");
    assert!(row.error.unwrap().contains("malformed"));

    // Re-driven once the source is healthy, the same job stores the chunk.
    mock.set_faults(Faults::default());
    backend::jobs::store::redrive(&app.ctx.db, jobs[0])
        .await
        .unwrap();
    app.ctx
        .jobs
        .push(backend::jobs::MARKET_QUEUE, jobs[0])
        .await;
    app.wait_for_job(jobs[0], &["done"], Duration::from_secs(30))
        .await;
    assert_eq!(count(&app).await, 288);
    let row = store::run(&app.ctx.db, run.run_id).await.unwrap().unwrap();
    assert_eq!((row.status.as_str(), row.candles_fetched), ("done", 288));
}

#[tokio::test]
async fn an_interrupted_backfill_keeps_only_whole_chunks_and_resumes_where_it_stopped() {
    let (app, mock) = app_with_mock(
        false,
        vec![
            ("JOB_MAX_ATTEMPTS", "1".into()),
            ("MARKET_MAX_RETRIES", "1".into()),
        ],
    )
    .await;
    // The exchange dies after 6 answers: the first chunk (time + 4 pages) gets through, the second does not.
    mock.set_faults(Faults {
        fail_after: Some(6),
        ..Faults::default()
    });
    let req = request(
        "ZEC/BTC",
        Timeframe::M5,
        Mode::Backfill,
        Some("2018-01-10"),
        Some("2018-02-01"),
    );
    let (first, result) = run_inline(&app, &req).await;
    let e = result.unwrap_err();
    assert!(e.to_string().contains("HTTP 500"), "{e}");
    let stored_now = count(&app).await;
    let in_chunks: i64 =
        sqlx::query_scalar("select coalesce(sum(candles), 0)::bigint from market_chunk")
            .fetch_one(&app.ctx.db)
            .await
            .unwrap();
    assert!(stored_now > 0, "the first chunk should be stored");
    assert_eq!(stored_now, in_chunks, "a partial chunk was stored");
    let row = store::run(&app.ctx.db, first.run_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.status, "failed");
    assert!(row.error.unwrap().contains("HTTP 500"));

    // The exchange recovers: the next run fetches only the missing chunks and completes the series.
    mock.set_faults(Faults::default());
    let (second, result) = run_inline(&app, &req).await;
    result.unwrap();
    assert!(second.skipped >= 1 && second.chunks.len() < first.chunks.len());
    assert_eq!(
        stored(&app, second.instrument.instrument_id, Timeframe::M5).await,
        csv("ZEC-BTC-5m.csv")
    );
}

#[tokio::test]
async fn the_open_candle_is_never_stored_and_the_schedule_picks_up_replayed_candles() {
    let (app, mock) = app_with_mock(true, vec![("MARKET_UPDATE_INTERVAL_SECS", "1".into())]).await;
    // The exchange's clock stands at 00:02, two minutes into the 00:00 candle.
    mock.set_clock(t("2018-01-20T00:02:00Z"), 0.0);
    let req = request(
        "ETH/BTC",
        Timeframe::M5,
        Mode::Daily,
        Some("2018-01-19T12:00:00Z"),
        None,
    );
    let (run, result) = run_inline(&app, &req).await;
    let p = result.unwrap();
    assert_eq!(p.fetched, 144);
    let id = run.instrument.instrument_id;
    let last = store::last_open_time(&app.ctx.db, id, Timeframe::M5)
        .await
        .unwrap();
    assert_eq!(
        last,
        Some(t("2018-01-19T23:55:00Z")),
        "the open 00:00 candle was stored"
    );

    // Time moves on by an hour; the scheduled update (every second here) fetches the candles that closed.
    mock.advance(3_600_000);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let last = store::last_open_time(&app.ctx.db, id, Timeframe::M5)
            .await
            .unwrap();
        if last == Some(t("2018-01-20T00:55:00Z")) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "scheduled update did not catch up: {last:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let expected = csv("ETH-BTC-5m.csv").between(
        Some(t("2018-01-19T12:00:00Z")),
        Some(t("2018-01-20T01:00:00Z")),
    );
    assert_eq!(stored(&app, id, Timeframe::M5).await, expected);
    let kinds: Vec<String> =
        // (the notifications tick runs on its own schedule beside them)
        sqlx::query_scalar(
            "select distinct kind from job where status = 'done' and kind <> 'notify_tick' order by kind",
        )
            .fetch_all(&app.ctx.db)
            .await
            .unwrap();
    assert_eq!(kinds, vec!["market_chunk", "market_update"]);
}
