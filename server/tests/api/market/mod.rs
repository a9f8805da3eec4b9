//! Market data end to end: the ETL against the in-process mock exchange over real HTTP (pagination, faults,
//! open candles, resume, time replay and the scheduled update), CSV import, coverage on the real files, the
//! Market data page and the JSON endpoints.

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use backend::market::{
    Pair, Timeframe,
    binance::BinanceClient,
    coverage,
    csv_import::{self, ImportError, ImportOptions},
    etl::{self, Mode, RunRequest},
    parse_time, store,
};
use reqwest::StatusCode;
use serde_json::Value;
use server::mock_exchange::{Faults, MockExchange};

use crate::helpers::{Options, TestApp, spawn_app_with};

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/market")
}

fn csv(name: &str) -> engine::candles::Candles {
    let text = std::fs::read_to_string(data_dir().join(name)).unwrap();
    engine::csv::parse_candles(&text, None).unwrap().0
}

fn t(s: &str) -> i64 {
    parse_time(s).unwrap()
}

/// The mock exchange on a free port, and an app whose market source is that mock.
async fn app_with_mock(workers: bool, env: Vec<(&'static str, String)>) -> (TestApp, MockExchange) {
    let mock = MockExchange::load(&data_dir()).unwrap();
    let addr = mock.spawn(([127, 0, 0, 1], 0).into()).await.unwrap();
    let mut all = vec![
        ("MARKET_DATA_URL", format!("http://{addr}")),
        ("MARKET_CHUNK_CANDLES", "2000".into()),
        ("MARKET_PAGE_LIMIT", "500".into()),
        ("MARKET_UPDATE_INTERVAL_SECS", "0".into()),
        ("MARKET_HTTP_TIMEOUT_SECS", "5".into()),
    ];
    all.extend(env);
    let app = spawn_app_with(Options { workers, env: all }).await;
    (app, mock)
}

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

async fn count(app: &TestApp) -> i64 {
    sqlx::query_scalar("select count(*) from candle")
        .fetch_one(&app.ctx.db)
        .await
        .unwrap()
}

async fn stored(app: &TestApp, instrument_id: i32, tf: Timeframe) -> engine::candles::Candles {
    store::load_candles(&app.ctx.db, instrument_id, tf, None, None, None)
        .await
        .unwrap()
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
    let jobs = etl::enqueue_run(&app.ctx, &run).await.unwrap();
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
        sqlx::query_scalar("select distinct kind from job where status = 'done' order by kind")
            .fetch_all(&app.ctx.db)
            .await
            .unwrap();
    assert_eq!(kinds, vec!["market_chunk", "market_update"]);
}

fn import_opts(pair: &str, skip_bad_rows: bool) -> ImportOptions {
    ImportOptions {
        exchange: "demo".into(),
        pair: Pair::parse(pair).unwrap(),
        timeframe: None,
        skip_bad_rows,
    }
}

#[tokio::test]
async fn csv_import_is_all_or_nothing_by_default_and_reports_bad_lines_when_skipping() {
    let (app, _mock) = app_with_mock(false, vec![]).await;
    let db = &app.ctx.db;
    let good = data_dir().join("XRP-ETH-5m.csv");
    let r = csv_import::import_file(db, &good, &import_opts("XRP/ETH", false))
        .await
        .unwrap();
    assert_eq!((r.rows, r.written, r.timeframe), (706, 706, Timeframe::M5));
    let again = csv_import::import_file(db, &good, &import_opts("XRP/ETH", false))
        .await
        .unwrap();
    assert_eq!(again.written, 0, "re-importing wrote rows again");
    assert_eq!(count(&app).await, 706);

    let bad = "timestamp,open,high,low,close,volume\n\
               2018-01-10T04:55:00Z,1,2,0.5,1.5,5\n\
               2018-01-10T05:00:00Z,1,2,0.5,1.5,5\n\
               2018-01-10T05:05:00Z,1,0.9,0.5,1.5,5\n\
               2018-01-10T05:10:00Z,1,2,0.5,1.5,5\n";
    let e = csv_import::import_text(db, bad, "bad.csv", &import_opts("AAA/BBB", false))
        .await
        .unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, ImportError::Csv { .. }));
    assert!(
        msg.contains("bad.csv: line 4") && msg.contains("high 0.9 is below"),
        "{msg}"
    );
    assert_eq!(
        count(&app).await,
        706,
        "something from the bad file was stored"
    );

    let r = csv_import::import_text(db, bad, "bad.csv", &import_opts("AAA/BBB", true))
        .await
        .unwrap();
    assert_eq!((r.rows, r.written), (3, 3));
    assert_eq!(
        r.rejected
            .iter()
            .filter_map(|e| e.line())
            .collect::<Vec<_>>(),
        vec![4]
    );
    assert_eq!(r.gaps.len(), 1);
}

#[tokio::test]
async fn coverage_finds_the_real_gaps_of_the_demo_files() {
    let (app, _mock) = app_with_mock(false, vec![]).await;
    for (file, pair) in [
        ("ADA-BTC-5m.csv", "ADA/BTC"),
        ("TRX-BTC-5m.csv", "TRX/BTC"),
        ("XRP-ETH-1m.csv", "XRP/ETH"),
    ] {
        let r = csv_import::import_file(
            &app.ctx.db,
            &data_dir().join(file),
            &import_opts(pair, false),
        )
        .await
        .unwrap();
        let cov = coverage::coverage(&app.ctx.db, Some(r.instrument_id), 10_000)
            .await
            .unwrap();
        let c = cov.iter().find(|c| c.timeframe == r.timeframe).unwrap();
        let engine_gaps = csv(file).gaps();
        assert_eq!(c.gaps, engine_gaps, "{file}");
        assert_eq!(c.gap_count, engine_gaps.len() as i64);
        assert_eq!(c.count + c.missing, c.expected, "{file}");
        assert!(c.last_update.is_some());
    }
    let ada = coverage::coverage(&app.ctx.db, None, 100).await.unwrap();
    let ada = ada.iter().find(|c| c.symbol == "ADABTC").unwrap();
    // ADA-BTC-5m: 5720 of 5760 candles from 2018-01-10 04:55 to 2018-01-30 04:50.
    assert_eq!(
        (ada.count, ada.expected, ada.missing, ada.gap_count),
        (5720, 5760, 40, 5)
    );
    assert_eq!(ada.first, Some(t("2018-01-10T04:55:00Z")));
}

#[tokio::test]
async fn the_market_page_is_server_rendered_with_coverage_and_the_json_endpoints_serve_candles() {
    let (app, _mock) = app_with_mock(false, vec![]).await;
    let empty = app.get("/market").await;
    assert_eq!(empty.status(), StatusCode::OK);
    assert!(empty.text().await.unwrap().contains("No market data yet"));

    let r = csv_import::import_file(
        &app.ctx.db,
        &data_dir().join("ADA-BTC-5m.csv"),
        &import_opts("ADA/BTC", false),
    )
    .await
    .unwrap();
    let html = app.get("/market").await.text().await.unwrap();
    for needle in [
        "<title>Market data · Vortex</title>",
        "ADA/BTC 5m",
        "data-missing=\"40\"",
        "class=\"gap\"",
        "data-market-chart",
        &format!(
            "/api/v1/market/candles?instrument_id={}&amp;timeframe=5m",
            r.instrument_id
        ),
    ] {
        assert!(html.contains(needle), "{needle} missing from the SSR page");
    }
    // A chosen range goes into the chart's data URL; anything but a plain date is ignored.
    let html = app
        .get(&format!(
            "/market?series={}:5m&from=2018-01-20&to=%3Cscript%3E",
            r.instrument_id
        ))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("timeframe=5m&amp;from=2018-01-20\""),
        "range not applied"
    );
    assert!(!html.contains("<script>"));

    let url = format!(
        "/api/v1/market/candles?instrument_id={}&timeframe=5m&from=2018-01-20&to=2018-01-21",
        r.instrument_id
    );
    let body: Value = app.get(&url).await.json().await.unwrap();
    let candles = body["candles"].as_array().unwrap();
    assert_eq!(candles.len(), 288);
    assert_eq!(candles[0][0].as_i64(), Some(t("2018-01-20")));
    assert_eq!(body["truncated"], false);
    let body: Value = app
        .get(&format!(
            "/api/v1/market/candles?instrument_id={}&timeframe=5m&limit=10",
            r.instrument_id
        ))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["candles"].as_array().unwrap().len(), 10);
    assert_eq!(body["truncated"], true);
    assert_eq!(
        body["candles"][9][0].as_i64(),
        Some(t("2018-01-30T04:50:00Z"))
    );

    for (query, status) in [
        ("timeframe=5m".to_owned(), StatusCode::BAD_REQUEST),
        (
            format!("instrument_id={}&timeframe=7m", r.instrument_id),
            StatusCode::BAD_REQUEST,
        ),
        (
            format!("instrument_id={}&timeframe=5m&from=soon", r.instrument_id),
            StatusCode::BAD_REQUEST,
        ),
        (
            format!("instrument_id={}&timeframe=5m&limit=0", r.instrument_id),
            StatusCode::BAD_REQUEST,
        ),
        (
            "instrument_id=999999&timeframe=5m".to_owned(),
            StatusCode::NOT_FOUND,
        ),
    ] {
        let resp = app.get(&format!("/api/v1/market/candles?{query}")).await;
        assert_eq!(resp.status(), status, "{query}");
    }
    let cov: Value = app
        .get("/api/v1/market/coverage")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(cov["series"][0]["missing"], 40);
    assert_eq!(cov["series"][0]["gaps"].as_array().unwrap().len(), 5);
}

#[tokio::test]
async fn the_cli_imports_a_folder_rejects_bad_files_and_explains_bad_arguments() {
    let (app, mock) = app_with_mock(false, vec![]).await;
    let db_url: String = {
        let opts = app.ctx.db.connect_options();
        format!(
            "postgres://postgres@127.0.0.1:5432/{}",
            opts.get_database().unwrap()
        )
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        data_dir().join("XRP-ETH-5m.csv"),
        dir.path().join("XRP-ETH-5m.csv"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("BAD-BTC-5m.csv"),
        "timestamp,open,high,low,close,volume\n2018-01-10T04:55:00Z,1,2,0.5,1.5,5\n2018-01-10T05:00:00Z,1,2,0.5,oops,5\n",
    )
    .unwrap();
    // tokio's Command: the mock exchange runs on this test's runtime and must keep answering meanwhile.
    let vortex = async |args: &[&str]| {
        tokio::process::Command::new(crate::helpers::vortex_bin())
            .args(args)
            .env("APP_ENV", "test")
            .env("DATABASE_URL", &db_url)
            .env("LOG_LEVEL", "warn")
            .env("MARKET_DATA_URL", app.ctx.settings.market.data_url.as_str())
            .env("MARKET_HTTP_TIMEOUT_SECS", "5")
            .output()
            .await
            .unwrap()
    };
    let source = format!("csv:{}", dir.path().display());
    let out = vortex(&["run-etl", "--source", &source]).await;
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stdout.contains("demo XRP/ETH 5m: 706 rows read, 706 written"),
        "{stdout}"
    );
    assert!(
        stderr.contains("line 3: close: `oops` is not a number"),
        "{stderr}"
    );
    assert!(
        stderr.contains("nothing from this file was stored"),
        "{stderr}"
    );

    // The exchange source through the binary, with a plain log when not on a terminal.
    let out = vortex(&[
        "run-etl",
        "--assets",
        "XRP",
        "--quote",
        "ETH",
        "--timeframe",
        "15m",
        "--mode",
        "backfill",
        "--from",
        "2019-10-11",
        "--to",
        "2019-10-12",
    ])
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // `--to 2019-10-12` includes the 12th, as it does in run-strategy, the form and the API: two days.
    assert!(
        stdout.contains("XRP/ETH 15m: 192 candles fetched, 192 written"),
        "{stdout}"
    );
    assert!(mock.requests("klines") >= 1);

    for (args, needle) in [
        (
            vec!["run-etl", "--assets", "BTC", "--mode", "weekly"],
            "invalid value 'weekly' for '--mode",
        ),
        (
            vec!["run-etl", "--timeframe", "2h"],
            "unknown timeframe `2h`",
        ),
        (
            vec!["run-etl"],
            "--assets is required for the exchange source",
        ),
        (
            vec![
                "run-etl",
                "--assets",
                "BTC",
                "--from",
                "2024-02-01",
                "--to",
                "2024-01-01",
            ],
            "is not before --to",
        ),
        (
            vec!["run-etl", "--source", "csv:/no/such/file.csv"],
            "does not exist",
        ),
    ] {
        let out = vortex(&args).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
}

#[tokio::test]
async fn a_large_import_takes_the_copy_path_and_stays_idempotent() {
    let (app, _mock) = app_with_mock(false, vec![]).await;
    // 11 copies of ETH-BTC-5m laid end to end: 63 360 candles, above the COPY threshold.
    let one = csv("ETH-BTC-5m.csv");
    let span = one.time[one.len() - 1] - one.time[0] + Timeframe::M5.millis();
    let mut text = String::from("timestamp,open,high,low,close,volume\n");
    for k in 0..11 {
        for i in 0..one.len() {
            let b = one.bar(i);
            text.push_str(&format!(
                "{},{},{},{},{},{}\n",
                one.time[i] + k * span,
                b.open,
                b.high,
                b.low,
                b.close,
                b.volume
            ));
        }
    }
    let opts = import_opts("BIG/BTC", false);
    let r = csv_import::import_text(&app.ctx.db, &text, "big.csv", &opts)
        .await
        .unwrap();
    assert_eq!((r.rows, r.written), (63_360, 63_360));
    let again = csv_import::import_text(&app.ctx.db, &text, "big.csv", &opts)
        .await
        .unwrap();
    assert_eq!(again.written, 0);
    let back = stored(&app, r.instrument_id, Timeframe::M5).await;
    assert_eq!(back.len(), 63_360);
    assert_eq!(
        back.between(None, Some(one.time[0] + span)),
        one,
        "values changed on the way through COPY"
    );
}
