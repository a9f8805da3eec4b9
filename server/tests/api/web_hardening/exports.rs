//! Issue 11, items 6 and 13: exports streamed, bounded and limited per process and per user (and
//! refused while Redis is down), escaped document titles, and the memory figures of an export.

use std::time::Duration;

use reqwest::{Client, StatusCode};

use super::{create_strategy, id_in, import_eth_btc, run_fields, scalar_i64, submit_run, trader};
use crate::{
    auth::{location, page_text},
    helpers::{Options, TestApp, spawn_app_with},
};

/// A finished run of the MACD template on ETH/BTC whose trades are then copied until it has at least
/// `trades` of them (distinct `seq`, shifted times), as a long run would have.
async fn finished_run(app: &TestApp, client: &Client, name: &str, trades: i64) -> uuid::Uuid {
    let instrument = import_eth_btc(app).await;
    let strategy = create_strategy(app, client, "macd", name).await;
    let resp = submit_run(app, client, &run_fields(strategy, instrument)).await;
    let loc = location(&resp);
    assert!(!loc.contains("failed=1"), "refused: {loc}");
    let run = id_in(&loc, "/backtests/");
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    loop {
        let status: String =
            sqlx::query_scalar("select status from backtest_run where backtest_run_id = $1")
                .bind(run)
                .fetch_one(&app.ctx.db)
                .await
                .unwrap();
        if status == "done" {
            break;
        }
        assert!(
            status != "failed" && std::time::Instant::now() < deadline,
            "run {run}: {status}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let have = scalar_i64(
        app,
        &format!("select count(*) from backtest_trade where backtest_run_id = '{run}'"),
    )
    .await;
    assert!(have > 2, "too few trades: {have}");
    let copies = (trades + have - 1) / have - 1;
    if copies > 0 {
        // Copies of the run's stored chunks, each copy's trades a day later and one more in P&L.
        sqlx::query(
            r#"insert into backtest_trade_chunk (backtest_run_id, first_seq, n, entry_time, exit_time, entry_price,
                   exit_price, units, fees, pnl, return_pct, bars_held, exit_reason, rules, entry_rule, exit_rule,
                   entry_ends, entry_vals, exit_ends, exit_vals)
               select backtest_run_id, first_seq + k * $2, n,
                      array(select x + k * interval '1 day' from unnest(entry_time) with ordinality u(x, o) order by o),
                      array(select x + k * interval '1 day' from unnest(exit_time) with ordinality u(x, o) order by o),
                      entry_price, exit_price, units, fees,
                      array(select x + k from unnest(pnl) with ordinality u(x, o) order by o),
                      return_pct, bars_held, exit_reason, rules, entry_rule, exit_rule, entry_ends, entry_vals,
                      exit_ends, exit_vals
               from backtest_trade_chunk, generate_series(1, $3::int) k
               where backtest_run_id = $1"#,
        )
        .bind(run)
        .bind(i32::try_from(have).unwrap())
        .bind(i32::try_from(copies).unwrap())
        .execute(&app.ctx.db)
        .await
        .unwrap();
    }
    run
}

/// The app with in-process workers (runs finish).
async fn app_with_workers(env: Vec<(&'static str, String)>) -> TestApp {
    spawn_app_with(Options { workers: true, env }).await
}

// ---------------------------------------------------------------------------------------------------------
// Item 6: exports streamed, bounded and limited; item 13: titles escaped
// ---------------------------------------------------------------------------------------------------------

const EVIL_NAME: &str =
    r#"</title><meta http-equiv="refresh" content="0;url=https://evil.example/">"#;

/// The `<title>` element of a page.
fn title_of(html: &str) -> &str {
    let start = html.find("<title>").expect("a title") + "<title>".len();
    let end = html[start..].find("</title>").expect("title end") + start;
    &html[start..end]
}

#[tokio::test]
async fn exports_stream_every_trade_unchanged_and_the_report_lists_a_bounded_number() {
    let app = app_with_workers(Vec::new()).await;
    let ann = trader(&app, "ann@example.org").await;
    let run = finished_run(&app, &ann, EVIL_NAME, 12_000).await;
    let db = &app.ctx.db;
    let user: uuid::Uuid =
        sqlx::query_scalar("select user_id from app_user where email = 'ann@example.org'")
            .fetch_one(db)
            .await
            .unwrap();
    let total = scalar_i64(
        &app,
        &format!("select count(*) from backtest_trade where backtest_run_id = '{run}'"),
    )
    .await;
    assert!(total >= 12_000, "{total}");

    // The CSV: byte for byte what the whole-list formatter makes of every trade.
    let all = backend::backtest::runs::all_trades(db, user, run)
        .await
        .unwrap();
    let expected_csv = backend::backtest::runs::trades_csv(&all);
    let resp = ann
        .get(app.url(&format!("/backtests/{run}/trades.csv")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.headers().get("content-length").is_none(),
        "streamed, not built in memory first"
    );
    let csv = resp.text().await.unwrap();
    assert_eq!(csv.lines().count() as i64, total + 1);
    assert!(csv == expected_csv, "the streamed CSV differs");

    // The JSON: the same bytes as the whole document built as one value.
    let detail = backend::backtest::runs::get(db, user, run).await.unwrap();
    let result = backend::backtest::runs::result(db, user, run)
        .await
        .unwrap();
    let source: String =
        sqlx::query_scalar("select source from strategy_version where strategy_version_id = $1")
            .bind(detail.strategy_version_id)
            .fetch_one(db)
            .await
            .unwrap();
    let expected_json = serde_json::json!({
        "format": "vortex-backtest-result/1",
        "run": detail,
        "strategy_source": source,
        "result": result,
        "trades": all,
    })
    .to_string();
    let json = ann
        .get(app.url(&format!("/backtests/{run}/result.json")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(json == expected_json, "the streamed JSON differs");

    // The HTML report lists the first 5,000 trades and says where the others are.
    let html = ann
        .get(app.url(&format!("/backtests/{run}/report.html")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let rows = html.matches("<tr><td>").count();
    assert_eq!(rows, 5_000, "trade rows in the report");
    assert!(
        html.contains(&format!("first 5000 of {total} trades"))
            && html.contains(&format!("backtest-{run}-trades.csv")),
        "the note about the left-out trades is missing"
    );
    assert!(!title_of(&html).contains("<meta"), "{}", title_of(&html));

    // Item 13: the strategy's name cannot leave the <title> of the strategy and run pages.
    let strategy: uuid::Uuid =
        sqlx::query_scalar("select strategy_id from strategy where name = $1")
            .bind(EVIL_NAME)
            .fetch_one(db)
            .await
            .unwrap();
    for path in [
        format!("/strategies/{strategy}"),
        format!("/backtests/{run}"),
    ] {
        let page = page_text(&app, &ann, &path).await;
        let head = &page[..page.find("</head>").expect("a head")];
        assert!(
            !head.contains("<meta http-equiv"),
            "{path}: the name broke out of the title: {}",
            title_of(head)
        );
        assert!(
            title_of(head).contains("&lt;/title&gt;&lt;meta http-equiv="),
            "{path}: {}",
            title_of(head)
        );
    }
}

#[tokio::test]
async fn exports_are_limited_per_process_and_per_user_and_refused_while_redis_is_down() {
    let mut redis = crate::helpers::RedisServer::start(crate::helpers::free_port());
    let app = app_with_workers(vec![
        ("EXPORT_MAX_CONCURRENT", "1".into()),
        ("EXPORT_RATE_LIMIT_PER_MINUTE", "3".into()),
        ("REDIS_URL", redis.url()),
    ])
    .await;
    let ann = trader(&app, "ann@example.org").await;
    let run = finished_run(&app, &ann, "Big run", 40_000).await;

    // Stay inside one rate-limit window (one minute) for the counted requests below.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    if now % 60 > 40 {
        tokio::time::sleep(Duration::from_secs(61 - now % 60)).await;
    }

    // One export in progress (its body not read: the stream waits for the client) holds the only slot.
    let slow = ann
        .get(app.url(&format!("/backtests/{run}/result.json")))
        .send()
        .await
        .unwrap();
    assert_eq!(slow.status(), StatusCode::OK);
    let busy = ann
        .get(app.url(&format!("/backtests/{run}/trades.csv")))
        .send()
        .await
        .unwrap();
    assert_eq!(busy.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(busy.headers().get("retry-after").is_some());
    // Reading the first to the end frees the slot.
    let body = slow.text().await.unwrap();
    assert!(body.ends_with("]}"), "complete document");
    let resp = ann
        .get(app.url(&format!("/backtests/{run}/report.html")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let _ = resp.text().await;
    // Three exports counted this minute (one refused as busy): the fourth is over the per-user limit.
    let over = ann
        .get(app.url(&format!("/backtests/{run}/trades.csv")))
        .send()
        .await
        .unwrap();
    assert_eq!(over.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = over.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");

    // Redis down: the expensive endpoints' limits cannot be counted, so they refuse (fail closed).
    redis.stop();
    // Ann is over her limit (429 while Redis counts): with Redis down the answer is 503, not an export.
    let resp = ann
        .get(app.url(&format!("/backtests/{run}/trades.csv")))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "export with Redis down"
    );
    let time: i64 = sqlx::query_scalar(
        "select (extract(epoch from entry_time) * 1000)::bigint from backtest_trade where backtest_run_id = $1 and seq = 1",
    )
    .bind(run)
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    let resp = ann
        .get(app.url(&format!("/backtests/{run}/trace.json?time={time}")))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "trace with Redis down"
    );
    assert!(resp.headers().get("retry-after").is_some());
}

// ---------------------------------------------------------------------------------------------------------
// Figures (not a check): memory of exporting a 27,000-trade run, streamed vs built whole
// ---------------------------------------------------------------------------------------------------------

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Peak RSS growth (KiB) of this process while `work` runs, sampled every 2 ms.
async fn peak_growth<F: std::future::Future<Output = ()>>(work: F) -> u64 {
    use std::sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    };
    let base = rss_kib();
    let peak = Arc::new(AtomicU64::new(base));
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, stop) = (peak.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                peak.fetch_max(rss_kib(), Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };
    work.await;
    stop.store(true, Ordering::SeqCst);
    sampler.join().unwrap();
    peak.load(Ordering::SeqCst).saturating_sub(base)
}

/// `cargo nextest run -p server --test api export_memory_figures --run-ignored only --no-capture`
#[tokio::test]
#[ignore = "prints figures for the report; not a check"]
async fn export_memory_figures() {
    let app = app_with_workers(Vec::new()).await;
    let ann = trader(&app, "ann@example.org").await;
    let run = finished_run(&app, &ann, "Figures", 27_000).await;
    let db = app.ctx.db.clone();
    let user: uuid::Uuid =
        sqlx::query_scalar("select user_id from app_user where email = 'ann@example.org'")
            .fetch_one(&db)
            .await
            .unwrap();
    let total = scalar_i64(
        &app,
        &format!("select count(*) from backtest_trade where backtest_run_id = '{run}'"),
    )
    .await;
    for path in ["trades.csv", "result.json", "report.html"] {
        let url = app.url(&format!("/backtests/{run}/{path}"));
        let client = ann.clone();
        let mut bytes = 0usize;
        let grew = peak_growth(async {
            let mut resp = client.get(url).send().await.unwrap();
            while let Some(chunk) = resp.chunk().await.unwrap() {
                bytes += chunk.len();
            }
        })
        .await;
        println!(
            "FIGURE streamed {path}: {total} trades, {bytes} bytes, peak RSS growth {} MiB",
            grew / 1024
        );
    }
    // The previous way: every trade loaded, then the whole document built, then sent.
    let grew = peak_growth(async {
        let all = backend::backtest::runs::all_trades(&db, user, run)
            .await
            .unwrap();
        let csv = backend::backtest::runs::trades_csv(&all);
        std::hint::black_box(&csv);
    })
    .await;
    println!(
        "FIGURE whole trades.csv (before): peak RSS growth {} MiB",
        grew / 1024
    );
    let grew = peak_growth(async {
        let all = backend::backtest::runs::all_trades(&db, user, run)
            .await
            .unwrap();
        let doc = serde_json::json!({ "trades": all }).to_string();
        std::hint::black_box(&doc);
    })
    .await;
    println!(
        "FIGURE whole result.json (before): peak RSS growth {} MiB",
        grew / 1024
    );
}
