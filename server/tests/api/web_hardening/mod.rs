//! Issue 11, the web side of hardening: coverage kept as data (no full scans for anonymous page views), the
//! CSV upload checked before its body is read and one at a time, streamed and limited exports, linear and
//! bounded run forms, CSRF on multipart posts everywhere, fixed upload messages, compare-and-swap strategy
//! saves with quotas, escaped document titles and 4xx answers from the page-data server functions.

use std::time::Duration;

use backend::market::{Candles, Pair, Timeframe, coverage, store};
use reqwest::{Client, StatusCode};
use serde_json::Value;

use crate::{
    auth::{PASSWORD, browser, create_admin, csrf, location, page_text, post_form, sign_in},
    helpers::{Options, TestApp, spawn_app_with},
};

async fn app(env: Vec<(&'static str, String)>) -> TestApp {
    spawn_app_with(Options {
        workers: false,
        env,
    })
    .await
}

// ---------------------------------------------------------------------------------------------------------
// Item 8: coverage maintained by the candle writer
// ---------------------------------------------------------------------------------------------------------

const MIN5: i64 = 300_000;
/// 2024-01-01T00:00:00Z.
const T0: i64 = 1_704_067_200_000;

/// Candles of a series at `T0 + k × step` for each `k` (values vary with `salt`, so a rewrite changes rows).
fn candles(tf: Timeframe, ks: impl IntoIterator<Item = i64>, salt: f64) -> Candles {
    let mut c = Candles::with_capacity(tf, 1024);
    for k in ks {
        let p = 100.0 + (k % 97) as f64 + salt;
        c.push(
            T0 + k * tf.millis(),
            p,
            p + 1.0,
            p - 1.0,
            p + 0.5,
            10.0 + salt,
        );
    }
    c
}

/// Writes candles the way imports and the ETL do (one transaction: instrument, candles, series).
async fn write(db: &sqlx::PgPool, pair: &str, c: &Candles) -> i32 {
    let mut tx = db.begin().await.unwrap();
    let inst = store::ensure_instrument(&mut tx, "test", &Pair::parse(pair).unwrap())
        .await
        .unwrap();
    let written = store::upsert_candles(&mut tx, inst.instrument_id, c)
        .await
        .unwrap();
    store::touch_series(&mut tx, inst.instrument_id, c.timeframe, None, written > 0)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    inst.instrument_id
}

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
// Shared helpers: traders, strategies, a finished run
// ---------------------------------------------------------------------------------------------------------

/// A signed-in trader whose address is marked confirmed.
async fn trader(app: &TestApp, email: &str) -> Client {
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

/// A signed-in admin.
async fn admin(app: &TestApp, email: &str) -> Client {
    let pass = "the boss has a long passphrase";
    let (code, out) = create_admin(app, email, pass);
    assert_eq!(code, 0, "{out}");
    let client = browser();
    assert_eq!(
        location(&sign_in(app, &client, email, pass).await),
        "/account"
    );
    client
}

async fn form(
    app: &TestApp,
    client: &Client,
    action: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    post_form(app, client, "/", action, fields).await
}

fn id_in(loc: &str, prefix: &str) -> uuid::Uuid {
    let rest = loc
        .strip_prefix(prefix)
        .unwrap_or_else(|| panic!("{loc} does not start with {prefix}"));
    uuid::Uuid::parse_str(rest.split(['?', '#']).next().unwrap()).unwrap()
}

async fn create_strategy(app: &TestApp, client: &Client, template: &str, name: &str) -> uuid::Uuid {
    let resp = form(
        app,
        client,
        "/strategies/create",
        &[("template", template), ("name", name)],
    )
    .await;
    let loc = location(&resp);
    assert!(loc.ends_with("?ok=strategy_created"), "{loc}");
    id_in(&loc, "/strategies/")
}

async fn scalar_i64(app: &TestApp, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(&app.ctx.db)
        .await
        .unwrap()
}

/// Imports the repository's ETH/BTC 5m candles; returns the instrument id.
async fn import_eth_btc(app: &TestApp) -> i32 {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/market/ETH-BTC-5m.csv");
    backend::market::csv_import::import_file(
        &app.ctx.db,
        &path,
        &backend::market::csv_import::ImportOptions {
            exchange: "demo".into(),
            pair: Pair::parse("ETH/BTC").unwrap(),
            timeframe: None,
            skip_bad_rows: false,
        },
    )
    .await
    .unwrap()
    .instrument_id
}

fn run_fields(strategy: uuid::Uuid, instrument: i32) -> Vec<(String, String)> {
    [
        ("strategy_id", strategy.to_string()),
        ("version", "1".into()),
        ("param.fast", "12".into()),
        ("param.slow", "26".into()),
        ("param.signal", "9".into()),
        ("timeframe", "5m".into()),
        ("instrument_id", instrument.to_string()),
        ("from", "2018-01-11".into()),
        ("to", "2018-01-20".into()),
        ("initial_cash", "10000".into()),
        ("fee_pct", "0.1".into()),
        ("slippage_bps", "5".into()),
        ("fill", "next_open".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
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
        sqlx::query(
            r#"insert into backtest_trade (backtest_run_id, seq, entry_time, exit_time, entry_price, exit_price,
                   units, fees, pnl, return_pct, bars_held, exit_reason, entry_rule, entry_values, exit_rule,
                   exit_values)
               select backtest_run_id, seq + n * $2, entry_time + n * interval '1 day',
                      exit_time + n * interval '1 day', entry_price, exit_price, units, fees, pnl + n,
                      return_pct, bars_held, exit_reason, entry_rule, entry_values, exit_rule, exit_values
               from backtest_trade, generate_series(1, $3::int) n
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
// Item 5: the CSV upload; item 12: multipart CSRF, upload messages, market page details
// ---------------------------------------------------------------------------------------------------------

const BOUNDARY: &str = "vortexboundary7MA4YWxkTrZu0gW";

fn text_part(name: &str, value: &str) -> String {
    format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
}

fn file_head() -> String {
    format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.csv\"\r\nContent-Type: text/csv\r\n\r\n"
    )
}

/// A multipart body: `head` at once, then `chunks` CSV chunks of `chunk` bytes, one every `every`, then the
/// closing boundary. `sent` counts the bytes the server has pulled so far.
fn slow_body(
    head: String,
    chunks: usize,
    chunk: usize,
    every: Duration,
    sent: std::sync::Arc<std::sync::atomic::AtomicUsize>,
) -> reqwest::Body {
    use std::sync::atomic::Ordering;
    let first = head.into_bytes();
    let stream = futures::stream::unfold(0usize, move |i| {
        let sent = sent.clone();
        let first = first.clone();
        async move {
            let bytes: Vec<u8> = if i == 0 {
                first
            } else if i <= chunks {
                tokio::time::sleep(every).await;
                // Whole CSV lines, all valid, for distinct 1m candles.
                let mut out = String::with_capacity(chunk + 64);
                let mut k = (i - 1) * 100_000;
                while out.len() < chunk {
                    let t = 1_599_999_960_000i64 + i64::try_from(k).unwrap() * 60_000;
                    out.push_str(&format!("{t},1.0,2.0,0.5,1.5,10.0\n"));
                    k += 1;
                }
                out.into_bytes()
            } else if i == chunks + 1 {
                format!("\r\n--{BOUNDARY}--\r\n").into_bytes()
            } else {
                return None;
            };
            sent.fetch_add(bytes.len(), Ordering::SeqCst);
            Some((Ok::<_, std::io::Error>(bytes), i + 1))
        }
    });
    reqwest::Body::wrap_stream(stream)
}

async fn post_upload(
    app: &TestApp,
    client: &Client,
    body: reqwest::Body,
    header_token: Option<&str>,
) -> reqwest::Result<reqwest::Response> {
    let mut req = client
        .post(app.url("/market/upload"))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(body);
    if let Some(t) = header_token {
        req = req.header("x-csrf-token", t);
    }
    req.send().await
}

#[tokio::test]
async fn uploads_by_traders_or_with_forged_tokens_are_refused_before_the_body_is_read() {
    use std::sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    };
    let app = app(Vec::new()).await;
    let tess = trader(&app, "tess@example.org").await;
    let boss = admin(&app, "boss@example.org").await;
    // 40 chunks of 256 KiB, one every 100 ms: 10 MiB over 4 s.
    let (chunks, chunk, every) = (40, 256 * 1024, Duration::from_millis(100));
    let whole = chunks * chunk;

    let cases: Vec<(&str, &Client, String)> = vec![
        (
            "a trader with a valid token",
            &tess,
            text_part("csrf", &csrf(&app, &tess, "/market").await)
                + &text_part("pair", "ETH/BTC")
                + &file_head(),
        ),
        (
            "an admin with a forged token",
            &boss,
            text_part("csrf", "forged") + &text_part("pair", "ETH/BTC") + &file_head(),
        ),
        ("an admin whose file comes before the token", &boss, {
            let _ = csrf(&app, &boss, "/market").await;
            text_part("pair", "ETH/BTC") + &file_head()
        }),
    ];
    for (who, client, head) in cases {
        let sent = Arc::new(AtomicUsize::new(0));
        let started = std::time::Instant::now();
        let resp = tokio::time::timeout(
            Duration::from_secs(3),
            post_upload(
                &app,
                client,
                slow_body(head, chunks, chunk, every, sent.clone()),
                None,
            ),
        )
        .await
        .unwrap_or_else(|_| panic!("{who}: no answer before the upload was sent"))
        .unwrap_or_else(|e| panic!("{who}: {e}"));
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{who}");
        let read = sent.load(Ordering::SeqCst);
        assert!(
            read < whole / 4,
            "{who}: {read} of {whole} bytes were read before the refusal ({:?})",
            started.elapsed()
        );
    }
    assert_eq!(scalar_i64(&app, "select count(*) from candle").await, 0);
}

#[tokio::test]
async fn one_upload_at_a_time_and_the_page_scripts_header_token_works() {
    use std::sync::{Arc, atomic::AtomicUsize};
    let app = app(Vec::new()).await;
    let boss = admin(&app, "boss@example.org").await;
    let token = csrf(&app, &boss, "/market").await;
    // A slow upload (the page's script: token in the header, no csrf field) holds the slot …
    let head = text_part("pair", "ETH/BTC")
        + &text_part("timeframe", "1m")
        + &file_head()
        + "timestamp,open,high,low,close,volume\n";
    let slow = {
        let app_url = app.url("/market/upload");
        let boss = boss.clone();
        let token = token.clone();
        let body = slow_body(
            head,
            20,
            16 * 1024,
            Duration::from_millis(150),
            Arc::new(AtomicUsize::new(0)),
        );
        tokio::spawn(async move {
            boss.post(app_url)
                .header(
                    "content-type",
                    format!("multipart/form-data; boundary={BOUNDARY}"),
                )
                .header("x-csrf-token", token)
                .body(body)
                .send()
                .await
                .unwrap()
        })
    };
    tokio::time::sleep(Duration::from_millis(600)).await;
    // … so a second one is refused at once with 503 and Retry-After, …
    let second = text_part("csrf", &token)
        + &text_part("pair", "LTC/BTC")
        + &file_head()
        + "timestamp,open,high,low,close,volume\n2024-01-01T00:00:00Z,1,2,0.5,1.5,10\n2024-01-01T00:01:00Z,1,2,0.5,1.5,10\n"
        + &format!("\r\n--{BOUNDARY}--\r\n");
    let resp = post_upload(&app, &boss, reqwest::Body::from(second.clone()), None)
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(resp.headers()["retry-after"], "30");
    // … and the first one completes and is stored.
    let first = slow.await.unwrap();
    let to = location(&first);
    assert!(to.starts_with("/market?uploaded="), "{to}");
    let stored = scalar_i64(&app, "select count(*) from candle").await;
    assert!(stored > 1000, "{stored}");
    // Then the next upload goes through.
    let resp = post_upload(&app, &boss, reqwest::Body::from(second), None)
        .await
        .unwrap();
    assert!(
        location(&resp).starts_with("/market?uploaded=2&written=2"),
        "{}",
        location(&resp)
    );
}

#[tokio::test]
async fn multipart_posts_need_the_csrf_token_everywhere_but_the_upload_route() {
    let app = app(Vec::new()).await;
    let ann = trader(&app, "ann@example.org").await;
    let strategy = create_strategy(&app, &ann, "macd", "Mine").await;
    // A multipart post without a token header (a cross-site form can send one) to a route without a body.
    let resp = ann
        .post(app.url(&format!("/strategies/{strategy}/archive")))
        .multipart(reqwest::multipart::Form::new().text("x", "y"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let archived: bool =
        sqlx::query_scalar("select archived_at is not null from strategy where strategy_id = $1")
            .bind(strategy)
            .fetch_one(&app.ctx.db)
            .await
            .unwrap();
    assert!(
        !archived,
        "a tokenless multipart post archived the strategy"
    );
    // With the token in the header it is an ordinary post.
    let token = csrf(&app, &ann, "/strategies").await;
    let resp = ann
        .post(app.url(&format!("/strategies/{strategy}/archive")))
        .header("x-csrf-token", token)
        .multipart(reqwest::multipart::Form::new().text("x", "y"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn the_market_page_shows_fixed_upload_messages_and_operational_details_to_admins_only() {
    let app = app(Vec::new()).await;
    let db = &app.ctx.db;
    let id = write(db, "ETH/BTC", &candles(Timeframe::M5, 0..10, 0.0)).await;
    let run = uuid::Uuid::new_v4();
    let mut conn = db.acquire().await.unwrap();
    store::insert_run(
        &mut conn,
        &store::NewRun {
            run_id: run,
            instrument_id: id,
            timeframe: Timeframe::M5,
            mode: "csv",
            source: "csv:/srv/vortex/private/secret-file.csv",
            from: T0,
            to: T0 + 10 * MIN5,
            chunks_total: 7,
            candles_expected: 10,
        },
    )
    .await
    .unwrap();
    drop(conn);
    store::fail_run(db, run, "connection to 10.11.12.13:5432 refused")
        .await
        .unwrap();

    // Free text in the query is never shown as the page's alert; known codes show fixed messages.
    let visitor = browser();
    let page = page_text(
        &app,
        &visitor,
        "/market?upload_error=Your+account+is+locked.+Call+0800",
    )
    .await;
    assert!(!page.contains("Your account is locked"), "free text shown");
    let page = page_text(
        &app,
        &visitor,
        "/market?uploaded=%3Cb%3E1%3C%2Fb%3E&written=9",
    )
    .await;
    assert!(!page.contains("Upload stored"), "non-numeric counts shown");
    let page = page_text(&app, &visitor, "/market?upload_error=csv").await;
    assert!(page.contains("The file has a bad row; nothing was stored."));

    // Anyone sees the run's status; only admins see its source path, error text and job counts.
    for (who, client, admin_view) in [
        ("anonymous", browser(), false),
        ("trader", trader(&app, "tess@example.org").await, false),
        ("admin", admin(&app, "boss@example.org").await, true),
    ] {
        let page = page_text(&app, &client, "/market").await;
        assert!(
            page.contains(&format!(r#"data-run="{run}""#)),
            "{who}: the run is listed"
        );
        for secret in [
            "/srv/vortex/private",
            "10.11.12.13",
            r#"class="run-chunks""#,
        ] {
            assert_eq!(page.contains(secret), admin_view, "{who}: {secret}");
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// Item 7: run forms are parsed in linear time and bounded
// ---------------------------------------------------------------------------------------------------------

/// Short distinct names: `a`, `b`, … `aa`, …
fn short_name(mut i: usize) -> String {
    let mut s = String::new();
    loop {
        s.push(char::from(b'a' + u8::try_from(i % 26).unwrap()));
        i /= 26;
        if i == 0 {
            return s;
        }
    }
}

#[tokio::test]
async fn huge_and_over_declared_run_forms_are_refused_quickly_with_a_clear_error() {
    let app = app(Vec::new()).await;
    let instrument = import_eth_btc(&app).await;
    let ann = trader(&app, "ann@example.org").await;
    let strategy = create_strategy(&app, &ann, "macd", "Mine").await;
    let token = csrf(&app, &ann, "/").await;

    // 150,000 distinct `param.*` fields (under the 2 MiB body limit): refused at once, not parsed.
    let mut body = format!("csrf={token}&strategy_id={strategy}&instrument_id={instrument}");
    for i in 0..150_000 {
        body.push_str("&param.");
        body.push_str(&short_name(i));
        body.push('=');
    }
    assert!(body.len() < 2 * 1024 * 1024, "{}", body.len());
    let started = std::time::Instant::now();
    let resp = ann
        .post(app.url("/backtests/create"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .expect("an answer within 5 s");
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(resp.text().await.unwrap().contains("at most 1000"));

    // Within the field limit but more parameters than any strategy declares: back to the form, named.
    let mut fields = run_fields(strategy, instrument);
    for i in 0..100 {
        fields.push((format!("param.{}", short_name(i)), "1".into()));
    }
    let resp = submit_run(&app, &ann, &fields).await;
    let loc = location(&resp);
    assert!(
        loc.starts_with("/backtests/new?") && loc.contains("failed=1"),
        "{loc}"
    );
    let page = page_text(&app, &ann, &loc).await;
    assert!(page.contains("parameters"), "the form names the problem");
    // More values than the strategy declares (MACD has three): refused and said so.
    let mut fields = run_fields(strategy, instrument);
    fields.push(("param.extra".into(), "1".into()));
    let loc = location(&submit_run(&app, &ann, &fields).await);
    assert!(loc.contains("failed=1"), "{loc}");
    let page = page_text(&app, &ann, &loc).await.replace("<!>", "");
    assert!(
        page.contains("4 parameter values were sent but this strategy declares 3"),
        "{page}"
    );
    assert_eq!(
        scalar_i64(&app, "select count(*) from backtest_run").await,
        0
    );
}

// ---------------------------------------------------------------------------------------------------------
// Item 13: page-data server functions answer ordinary errors with 4xx
// ---------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn page_data_server_functions_answer_4xx_for_ordinary_errors() {
    let app = app(Vec::new()).await;
    let ann = trader(&app, "ann@example.org").await;
    let anonymous = Client::new();
    let missing = uuid::Uuid::new_v4();
    let cases: Vec<(&str, &Client, String, StatusCode)> = vec![
        (
            "not found",
            &ann,
            format!("/api/strategy?id={missing}"),
            StatusCode::NOT_FOUND,
        ),
        (
            "not found",
            &ann,
            format!("/api/run?id={missing}"),
            StatusCode::NOT_FOUND,
        ),
        (
            "malformed id",
            &ann,
            "/api/run?id=nope".into(),
            StatusCode::NOT_FOUND,
        ),
        (
            "not found",
            &ann,
            format!("/api/compare?ids[0]={missing}"),
            StatusCode::NOT_FOUND,
        ),
        (
            "not found",
            &ann,
            format!("/api/run_form?strategy={missing}"),
            StatusCode::NOT_FOUND,
        ),
        (
            "anonymous",
            &anonymous,
            format!("/api/strategy?id={missing}"),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "anonymous",
            &anonymous,
            "/api/runs".into(),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "anonymous",
            &anonymous,
            "/api/run_form".into(),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "missing argument",
            &ann,
            "/api/strategy".into(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "bad argument",
            &ann,
            "/api/runs?instrument=abc".into(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "bad sort",
            &ann,
            "/api/runs?sort=nonsense".into(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ];
    for (what, client, path, want) in cases {
        let resp = client.get(app.url(&path)).send().await.unwrap();
        let status = resp.status();
        let body = resp.text().await.unwrap();
        assert_eq!(status, want, "{what}: {path}: {body}");
    }
    // A success is still 200.
    let resp = ann.get(app.url("/api/runs")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

// ---------------------------------------------------------------------------------------------------------
// Item 12: strategy saves are compare-and-swap; quotas bound strategies and versions
// ---------------------------------------------------------------------------------------------------------

async fn strategy_row(app: &TestApp, id: uuid::Uuid) -> (String, Option<String>, i32, i32) {
    sqlx::query_as(
        "select name, draft_source, draft_rev, latest_version from strategy where strategy_id = $1",
    )
    .bind(id)
    .fetch_one(&app.ctx.db)
    .await
    .unwrap()
}

async fn save(app: &TestApp, client: &Client, id: uuid::Uuid, fields: &[(&str, &str)]) -> String {
    location(&form(app, client, &format!("/strategies/{id}/save"), fields).await)
}

#[tokio::test]
async fn saves_are_all_or_nothing_and_a_stale_tab_cannot_overwrite_the_draft() {
    let app = app(Vec::new()).await;
    let ann = trader(&app, "ann@example.org").await;
    let id = create_strategy(&app, &ann, "macd", "Original").await;
    let page = page_text(&app, &ann, &format!("/strategies/{id}")).await;
    assert!(
        page.contains(r#"name="draft_rev" value="0""#),
        "the form carries the draft revision"
    );
    let good = sqlx::query_scalar::<_, String>(
        "select source from strategy_version where strategy_id = $1",
    )
    .bind(id)
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();

    // Source that does not compile, with a new name: the draft is kept, the name is not stored.
    let to = save(
        &app,
        &ann,
        id,
        &[
            ("name", "Renamed"),
            ("source", "entry long when nonsense("),
            ("base_version", "1"),
            ("draft_rev", "0"),
        ],
    )
    .await;
    assert!(to.ends_with("?error=strategy_invalid"), "{to}");
    let (name, draft, rev, latest) = strategy_row(&app, id).await;
    assert_eq!(
        (name.as_str(), draft.as_deref(), rev, latest),
        ("Original", Some("entry long when nonsense("), 1, 1)
    );

    // Another tab opened before that draft (draft_rev 0) saves bad source: refused, the draft is kept as is.
    let to = save(
        &app,
        &ann,
        id,
        &[
            ("source", "exit long when other tab("),
            ("base_version", "1"),
            ("draft_rev", "0"),
        ],
    )
    .await;
    assert!(to.ends_with("?error=strategy_draft_stale"), "{to}");
    assert_eq!(
        strategy_row(&app, id).await.1.as_deref(),
        Some("entry long when nonsense(")
    );
    // The same stale tab with a bad name: nothing stored either.
    let to = save(
        &app,
        &ann,
        id,
        &[
            ("name", ""),
            ("source", "exit long when other tab("),
            ("base_version", "1"),
            ("draft_rev", "0"),
        ],
    )
    .await;
    assert!(to.contains("?error="), "{to}");
    assert_eq!(
        strategy_row(&app, id).await,
        (
            "Original".into(),
            Some("entry long when nonsense(".into()),
            1,
            1
        )
    );

    // The tab that saw the draft saves a good change: version 2, draft cleared, name stored.
    let changed = good.replacen("param fast: int = 12", "param fast: int = 11", 1);
    assert_ne!(changed, good, "the template changed; adjust the test");
    let to = save(
        &app,
        &ann,
        id,
        &[
            ("name", "Renamed"),
            ("source", &changed),
            ("base_version", "1"),
            ("draft_rev", "1"),
        ],
    )
    .await;
    assert!(to.ends_with("?ok=strategy_saved"), "{to}");
    let (name, draft, rev, latest) = strategy_row(&app, id).await;
    assert_eq!((name.as_str(), draft, rev, latest), ("Renamed", None, 2, 2));
    // A save based on version 1 now is stale: refused, and with the current draft revision its source is
    // kept as the draft (nothing else).
    let to = save(
        &app,
        &ann,
        id,
        &[
            ("name", "Stale name"),
            ("source", &good),
            ("base_version", "1"),
            ("draft_rev", "2"),
        ],
    )
    .await;
    assert!(to.ends_with("?error=strategy_stale"), "{to}");
    let (name, _, _, latest) = strategy_row(&app, id).await;
    assert_eq!((name.as_str(), latest), ("Renamed", 2));
}

#[tokio::test]
async fn quotas_bound_the_strategies_and_versions_of_one_user() {
    let app = app(vec![
        ("STRATEGY_QUOTA", "2".into()),
        ("STRATEGY_VERSION_QUOTA", "3".into()),
    ])
    .await;
    let ann = trader(&app, "ann@example.org").await;
    let first = create_strategy(&app, &ann, "macd", "One").await;
    let _second = create_strategy(&app, &ann, "sma_cross", "Two").await;
    let to = location(
        &form(
            &app,
            &ann,
            "/strategies/create",
            &[("template", "macd"), ("name", "Three")],
        )
        .await,
    );
    assert_eq!(to, "/strategies?error=strategy_quota");
    let to = location(&form(&app, &ann, &format!("/strategies/{first}/duplicate"), &[]).await);
    assert!(to.ends_with("?error=strategy_quota"), "{to}");
    assert_eq!(scalar_i64(&app, "select count(*) from strategy").await, 2);
    let page = page_text(&app, &ann, "/strategies?error=strategy_quota").await;
    assert!(page.contains("limit of strategies or saved versions"));

    // Two versions exist; the third is allowed, the fourth is not.
    let source: String =
        sqlx::query_scalar("select source from strategy_version where strategy_id = $1")
            .bind(first)
            .fetch_one(&app.ctx.db)
            .await
            .unwrap();
    let v2 = format!("{source}\n# two\n");
    let to = save(
        &app,
        &ann,
        first,
        &[("source", &v2), ("base_version", "1"), ("draft_rev", "0")],
    )
    .await;
    assert!(to.ends_with("?ok=strategy_saved"), "{to}");
    let v3 = format!("{source}\n# three\n");
    let to = save(
        &app,
        &ann,
        first,
        &[("source", &v3), ("base_version", "2"), ("draft_rev", "0")],
    )
    .await;
    assert!(to.ends_with("?error=strategy_quota"), "{to}");
    assert_eq!(
        scalar_i64(&app, "select count(*) from strategy_version").await,
        3
    );
    // A rename alone is not a version and is still allowed.
    let to = save(
        &app,
        &ann,
        first,
        &[
            ("name", "Renamed"),
            ("base_version", "2"),
            ("draft_rev", "0"),
        ],
    )
    .await;
    assert!(to.ends_with("?ok=strategy_unchanged"), "{to}");
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
