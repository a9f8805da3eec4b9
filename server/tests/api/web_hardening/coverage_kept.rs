//! Issue 11, item 8: coverage kept as data by every candle write (imports, the ETL) and equal to a
//! full recomputation; anonymous page views answered without reading candles; nginx's per-client
//! limits on the public coverage answers and page views.

use std::time::Duration;

use backend::market::{Pair, Timeframe, coverage};
use reqwest::{Client, StatusCode};
use serde_json::Value;

use super::{MIN5, app, candles, write};

/// The maintained coverage equals a full recomputation from the candles, gaps included.
async fn assert_coverage_exact(db: &sqlx::PgPool, step: &str) {
    let kept = coverage::coverage(db, None, 100_000).await.unwrap();
    let scanned = coverage::scan(db, None, 100_000).await.unwrap();
    assert_eq!(kept, scanned, "after {step}");
    // With a short gap list too (the counts still cover all gaps).
    let kept = coverage::coverage(db, None, 2).await.unwrap();
    let scanned = coverage::scan(db, None, 2).await.unwrap();
    assert_eq!(kept, scanned, "after {step} (2 gaps listed)");
}

#[tokio::test]
async fn coverage_kept_by_every_candle_write_equals_a_full_recomputation() {
    let app = app(Vec::new()).await;
    let db = &app.ctx.db;
    let tf = Timeframe::M5;
    // Holes at 10..20 and 50.
    let first: Vec<i64> = (0..100)
        .filter(|k| !(10..20).contains(k) && *k != 50)
        .collect();
    write(db, "ETH/BTC", &candles(tf, first.clone(), 0.0)).await;
    assert_coverage_exact(db, "a first import with two gaps").await;
    let c = coverage::coverage(db, None, 10).await.unwrap();
    assert_eq!((c[0].count, c[0].gap_count, c[0].missing), (89, 2, 11));

    // Part of a gap filled: it splits in two.
    write(db, "ETH/BTC", &candles(tf, 12..15, 0.0)).await;
    assert_coverage_exact(db, "filling part of a gap").await;
    // The same candles again, and again with changed values: nothing counted twice.
    write(db, "ETH/BTC", &candles(tf, first.clone(), 0.0)).await;
    write(db, "ETH/BTC", &candles(tf, first.clone(), 1.5)).await;
    assert_coverage_exact(db, "re-imports").await;
    // Before the first candle (with a gap to it) and after the last (with a gap from it).
    write(db, "ETH/BTC", &candles(tf, -300..-200, 0.0)).await;
    write(db, "ETH/BTC", &candles(tf, 200..230, 0.0)).await;
    assert_coverage_exact(db, "prepending and appending").await;
    // A write spanning existing candles, gaps and new ground closes gaps and opens none.
    write(db, "ETH/BTC", &candles(tf, -250..120, 2.0)).await;
    assert_coverage_exact(db, "an overlapping write").await;
    // A single candle inside a gap.
    write(db, "ETH/BTC", &candles(tf, [150], 0.0)).await;
    assert_coverage_exact(db, "one candle in a gap").await;

    // Bulk writes (the COPY path, > 50,000 candles), into new ground and over stored candles.
    let bulk: Vec<i64> = (1_000..80_000).filter(|k| k % 1_000 != 7).collect();
    write(db, "ETH/BTC", &candles(tf, bulk, 0.0)).await;
    assert_coverage_exact(db, "a bulk import").await;
    let bulk: Vec<i64> = (500..70_000).filter(|k| k % 5_000 != 3).collect();
    write(db, "ETH/BTC", &candles(tf, bulk, 3.0)).await;
    assert_coverage_exact(db, "a bulk import over stored candles").await;

    // Other series are separate: another timeframe of the same instrument, another instrument.
    write(
        db,
        "ETH/BTC",
        &candles(Timeframe::H1, (0..50).step_by(3), 0.0),
    )
    .await;
    write(
        db,
        "LTC/BTC",
        &candles(tf, (0..40).filter(|k| k % 7 != 0), 0.0),
    )
    .await;
    assert_coverage_exact(db, "other series").await;

    // Concurrent writers of one series (adjacent and overlapping ranges, as parallel ETL chunks do).
    let mut tasks = Vec::new();
    for w in 0..6i64 {
        let db = db.clone();
        tasks.push(tokio::spawn(async move {
            let start = 200_000 + w * 90;
            let ks: Vec<i64> = (start..start + 100).filter(|k| k % 11 != 0).collect();
            write(&db, "ETH/BTC", &candles(Timeframe::M5, ks, w as f64)).await;
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_coverage_exact(db, "concurrent writers").await;

    // Imports of a CSV file (the upload's and the CLI's path) keep it too.
    let text = "timestamp,open,high,low,close,volume\n\
                2024-03-01T00:00:00Z,1,2,0.5,1.5,10\n\
                2024-03-01T00:05:00Z,1,2,0.5,1.5,10\n\
                2024-03-01T00:25:00Z,1,2,0.5,1.5,10\n";
    backend::market::csv_import::import_text(
        db,
        text,
        "x.csv",
        &backend::market::csv_import::ImportOptions {
            exchange: "test".into(),
            pair: Pair::parse("XRP/BTC").unwrap(),
            timeframe: None,
            skip_bad_rows: false,
        },
    )
    .await
    .unwrap();
    assert_coverage_exact(db, "a CSV import").await;
    let _ = MIN5;
}

/// The public coverage answers never read the candle table: with `candle` locked by another transaction they
/// still answer at once (before coverage was kept as data, every view scanned every candle and waited here).
#[tokio::test]
async fn coverage_pages_answer_without_reading_candles() {
    let app = app(Vec::new()).await;
    let db = &app.ctx.db;
    let id = write(
        db,
        "ETH/BTC",
        &candles(Timeframe::M5, (0..500).filter(|k| k % 50 != 1), 0.0),
    )
    .await;
    let mut lock = db.begin().await.unwrap();
    sqlx::query("lock table candle in access exclusive mode")
        .execute(&mut *lock)
        .await
        .unwrap();
    let client = Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    for path in ["/api/v1/market/coverage", "/api/market_overview", "/market"] {
        let resp = client
            .get(app.url(path))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{path} waited for the candle table: {e}"));
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
        let body = resp.text().await.unwrap();
        if path == "/api/v1/market/coverage" {
            let v: Value = serde_json::from_str(&body).unwrap();
            let s = &v["series"][0];
            assert_eq!(s["instrument_id"], id);
            assert_eq!(s["count"], 490, "{s}");
            assert_eq!(s["gap_count"], 10, "{s}");
        }
    }
    lock.rollback().await.unwrap();
}

// ---------------------------------------------------------------------------------------------------------
// Item 8: nginx rate-limits the public coverage answers and page views per client
// ---------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn nginx_limits_coverage_answers_and_page_views_per_client() {
    use crate::{
        helpers::{TestDb, base_env},
        nginx::{Nginx, VortexProc},
    };
    let db = TestDb::new().await;
    let site = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(site.path().join("pkg")).unwrap();
    std::fs::write(site.path().join("pkg/vortex.css"), "body{}\n").unwrap();
    let mut env = base_env(
        &db,
        &format!("vortex-test-{}", uuid::Uuid::new_v4().simple()),
    );
    env.insert("TRUSTED_PROXIES".into(), "127.0.0.1".into());
    env.insert("SITE_ROOT".into(), site.path().display().to_string());
    let app = VortexProc::start(&["serve", "--no-worker"], &env).await;
    let nginx = Nginx::start(&[app.port]);

    // (path, client address, burst, rate per second) as configured in nginx/.
    for (path, from, burst, rate) in [
        ("/api/v1/market/coverage", "127.0.0.5", 10.0, 2.0),
        ("/api/market_overview", "127.0.0.6", 10.0, 2.0),
        ("/market", "127.0.0.7", 10.0, 2.0),
        ("/signin", "127.0.0.8", 30.0, 10.0),
    ] {
        let client = nginx.client_from(from);
        let started = std::time::Instant::now();
        let mut passed = 0usize;
        let mut limited = 0usize;
        for _ in 0..60 {
            let status = client.get(nginx.https(path)).send().await.unwrap().status();
            match status {
                StatusCode::OK => passed += 1,
                StatusCode::TOO_MANY_REQUESTS => limited += 1,
                other => panic!("{path}: {other}"),
            }
        }
        let elapsed = started.elapsed().as_secs_f64();
        assert!(
            limited > 0,
            "{path}: no 429 among 60 requests in {elapsed:.2}s"
        );
        let allowed = burst + 2.0 + rate * elapsed;
        assert!(
            (passed as f64) <= allowed && passed as f64 >= burst,
            "{path}: {passed} passed in {elapsed:.2}s (allowed {allowed:.0})"
        );
    }
    // Another client is not affected by those.
    let other = nginx.client_from("127.0.0.9");
    assert_eq!(
        other
            .get(nginx.https("/api/v1/market/coverage"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
}

/// The ETL's writes (chunks fetched over HTTP from the mock exchange, several runs of one series at once, in
/// disjoint and adjacent ranges) keep the coverage equal to a full recomputation too.
#[tokio::test]
async fn coverage_after_etl_backfills_equals_a_full_recomputation() {
    use backend::market::{
        binance::BinanceClient,
        etl::{self, Mode, RunRequest},
        parse_time,
    };
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/market");
    let mock = server::mock_exchange::MockExchange::load(&dir).unwrap();
    let addr = mock.spawn(([127, 0, 0, 1], 0).into()).await.unwrap();
    let app = app(vec![
        ("MARKET_DATA_URL", format!("http://{addr}")),
        ("MARKET_CHUNK_CANDLES", "700".into()),
        ("MARKET_PAGE_LIMIT", "500".into()),
        ("MARKET_UPDATE_INTERVAL_SECS", "0".into()),
        ("MARKET_HTTP_TIMEOUT_SECS", "5".into()),
    ])
    .await;
    let client = BinanceClient::new(&app.ctx.settings.market).unwrap();
    let now = client.server_time().await.unwrap();
    let run = |pair: &str, from: &str, to: &str| {
        let req = RunRequest {
            pair: Pair::parse(pair).unwrap(),
            timeframe: Timeframe::M5,
            mode: Mode::Backfill,
            from: Some(parse_time(from).unwrap()),
            to: Some(parse_time(to).unwrap()),
        };
        let (ctx, client) = (app.ctx.clone(), client.clone());
        async move {
            let planned = etl::plan_run(&ctx, &req, now).await.unwrap();
            etl::run_inline(&ctx, &client, &planned, false, |_| {})
                .await
                .unwrap();
        }
    };
    // Two disjoint ranges of one series at once (a hole between them), then the hole, then everything.
    tokio::join!(
        run("ETH/BTC", "2018-01-10", "2018-01-14"),
        run("ETH/BTC", "2018-01-18", "2018-01-22"),
        run("LTC/BTC", "2018-01-10", "2018-01-31"),
    );
    assert_coverage_exact(&app.ctx.db, "two disjoint backfills").await;
    let c = coverage::coverage(&app.ctx.db, None, 10).await.unwrap();
    assert!(
        c.iter().any(|s| s.gap_count > 0),
        "the hole is a gap: {c:?}"
    );
    tokio::join!(
        run("ETH/BTC", "2018-01-14", "2018-01-16"),
        run("ETH/BTC", "2018-01-16", "2018-01-18"),
    );
    assert_coverage_exact(&app.ctx.db, "filling the hole from both sides").await;
    run("ETH/BTC", "2018-01-09", "2018-02-01").await;
    assert_coverage_exact(&app.ctx.db, "the whole range again").await;
}
