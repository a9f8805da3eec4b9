//! The market-data page and API: the series kept updated, tracking and untracking, "update now" and a backfill's
//! chunk jobs, with their refusals and audit entries, against the real server and Postgres.

use backend::market::{Pair, csv_import};
use reqwest::{Method, StatusCode};
use serde_json::json;

use super::{app, count, form_post, person, rest};
use crate::auth::{location, page_text};
use crate::helpers::TestApp;

async fn import(app: &TestApp) {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/market/XRP-ETH-5m.csv");
    let opts = csv_import::ImportOptions {
        exchange: "binance".into(),
        pair: Pair::parse("XRP/ETH").unwrap(),
        timeframe: None,
        skip_bad_rows: false,
    };
    csv_import::import_file(&app.ctx.db, &path, &opts)
        .await
        .unwrap();
}

#[tokio::test]
async fn admins_track_series_update_now_and_backfill_ranges() {
    let app = app().await;
    let root = person(&app, "root@example.org", "admin").await;
    let ann = person(&app, "ann@example.org", "trader").await;
    import(&app).await;

    // The page lists the imported series, not tracked, with its coverage.
    let page = page_text(&app, &root.browser, "/admin/market").await;
    assert!(
        page.contains("data-series=\"XRP/ETH:5m\" data-tracked=\"false\""),
        "{page}"
    );
    assert!(page.contains("id=\"market-exchange\">binance<"), "{page}");

    // Track it through the form; the schedule's series list now has it.
    let resp = form_post(
        &root.browser,
        &app,
        "/admin/market/track",
        &[
            ("pair", "XRP/ETH"),
            ("timeframe", "5m"),
            ("tracked", "true"),
        ],
    )
    .await;
    assert!(
        location(&resp).ends_with("ok=admin_market_tracked"),
        "{}",
        location(&resp)
    );
    let tracked = backend::market::store::tracked_series(&app.ctx.db, "binance")
        .await
        .unwrap();
    assert_eq!(tracked.len(), 1);
    assert_eq!(tracked[0].instrument.symbol, "XRPETH");
    // A new pair through the API: an instrument and a tracked series appear; stopping works; an unknown series
    // cannot be stopped; a bad pair or timeframe is named.
    let (status, body) = rest(
        &app,
        Method::POST,
        "/api/v1/admin/market/series",
        Some(&root.token),
        Some(json!({ "pair": "SOL/USDT", "timeframe": "1h", "tracked": true })),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, body) = rest(
        &app,
        Method::POST,
        "/api/v1/admin/market/series",
        Some(&root.token),
        Some(json!({ "pair": "XRP/ETH", "timeframe": "5m", "tracked": false })),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let tracked = backend::market::store::tracked_series(&app.ctx.db, "binance")
        .await
        .unwrap();
    assert_eq!(
        tracked
            .iter()
            .map(|s| format!("{} {}", s.instrument.symbol, s.timeframe.as_str()))
            .collect::<Vec<_>>(),
        ["SOLUSDT 1h"]
    );
    let (status, _) = rest(
        &app,
        Method::POST,
        "/api/v1/admin/market/series",
        Some(&root.token),
        Some(json!({ "pair": "DOGE/BTC", "timeframe": "1d", "tracked": false })),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    for body in [
        json!({ "pair": "SOLUSDT", "timeframe": "1h", "tracked": true }),
        json!({ "pair": " SOL/USDT", "timeframe": "1h", "tracked": true }),
        json!({ "pair": "SOL/USDT", "timeframe": "2h", "tracked": true }),
    ] {
        let (status, b) = rest(
            &app,
            Method::POST,
            "/api/v1/admin/market/series",
            Some(&root.token),
            Some(body.clone()),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {b}");
    }
    assert_eq!(
        count(
            &app,
            "select count(*) from audit_event where event = 'market_series_tracked'",
            None
        )
        .await,
        3
    );

    // Update now: one job of the scheduled kind; a second request while it waits is refused.
    let (status, body) = rest(
        &app,
        Method::POST,
        "/api/v1/admin/market/update",
        Some(&root.token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let (status, body) = rest(
        &app,
        Method::POST,
        "/api/v1/admin/market/update",
        Some(&root.token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(
        count(
            &app,
            "select count(*) from job where kind = 'market_update' and status = 'queued'",
            None
        )
        .await,
        1
    );

    // A backfill of two days of hourly candles: an ETL run and its chunk jobs; the page lists the run.
    let (status, body) = rest(
        &app,
        Method::POST,
        "/api/v1/admin/market/backfill",
        Some(&root.token),
        Some(json!({ "pair": "SOL/USDT", "timeframe": "1h", "from": "2024-01-01", "to": "2024-01-03" })),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    // 48 hourly candles: one chunk at the default 5000 candles per chunk.
    let chunks = body["chunks"].as_i64().unwrap();
    assert_eq!(chunks, 1, "{body}");
    assert_eq!(
        count(
            &app,
            "select count(*) from job where kind = 'market_chunk' and status = 'queued'",
            None
        )
        .await,
        chunks
    );
    assert_eq!(
        count(
            &app,
            "select count(*) from market_etl_run where mode = 'backfill' and chunks_total > 0",
            None
        )
        .await,
        1
    );
    let page = page_text(&app, &root.browser, "/admin/market").await;
    assert!(page.contains("SOLUSDT 1h"), "{page}");
    assert!(
        page.contains(&format!("id=\"chunks-pending\">{chunks}<")),
        "{page}"
    );

    // Refusals name the field; nothing is queued.
    for (body, field) in [
        (
            json!({ "pair": "SOL/USDT", "timeframe": "1h", "from": "2099-01-01", "to": "2099-01-02" }),
            "from",
        ),
        (
            json!({ "pair": "SOL/USDT", "timeframe": "1h", "from": "2024-01-03", "to": "2024-01-01" }),
            "to",
        ),
        (
            json!({ "pair": "SOL/USDT", "timeframe": "1m", "from": "1990-01-01", "to": "2024-01-01" }),
            "from",
        ),
    ] {
        let (status, b) = rest(
            &app,
            Method::POST,
            "/api/v1/admin/market/backfill",
            Some(&root.token),
            Some(body.clone()),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {b}");
        assert_eq!(b["field"], field, "{body}: {b}");
    }
    assert_eq!(
        count(
            &app,
            "select count(*) from job where kind = 'market_chunk'",
            None
        )
        .await,
        chunks
    );
    // The cap: 2000 chunks of 5000 one-minute candles fit; one candle more does not (from a start on the chunk
    // grid: minute 2630 × 5000 since the epoch).
    let cap = backend::admin::market::MAX_BACKFILL_CHUNKS * 5000;
    let from = chrono::DateTime::parse_from_rfc3339("1995-01-01T22:40:00Z").unwrap();
    for (minutes, ok) in [(cap, true), (cap + 1, false)] {
        let to = (from + chrono::Duration::minutes(minutes)).to_rfc3339();
        let (status, b) = rest(
            &app,
            Method::POST,
            "/api/v1/admin/market/backfill",
            Some(&root.token),
            Some(json!({ "pair": "BNB/BTC", "timeframe": "1m", "from": from.to_rfc3339(), "to": to })),
        )
        .await;
        if ok {
            assert_eq!(status, StatusCode::ACCEPTED, "{minutes}: {b}");
            assert_eq!(b["chunks"], 2000, "{b}");
        } else {
            assert_eq!(
                (status, b["field"].as_str()),
                (StatusCode::BAD_REQUEST, Some("from")),
                "{b}"
            );
        }
    }
    // The backfills did not track what they fetch.
    let tracked = |app: &TestApp| {
        let db = app.ctx.db.clone();
        async move {
            backend::market::store::tracked_series(&db, "binance")
                .await
                .unwrap()
                .into_iter()
                .map(|s| s.instrument.symbol)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(tracked(&app).await, ["SOLUSDT"]);
    // A split that contradicts the stored symbol is refused.
    let (status, b) = rest(
        &app,
        Method::POST,
        "/api/v1/admin/market/series",
        Some(&root.token),
        Some(json!({ "pair": "SOLU/SDT", "timeframe": "1h", "tracked": true })),
    )
    .await;
    assert_eq!(
        (status, b["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("pair")),
        "{b}"
    );

    // The form shows a refusal in place.
    let resp = form_post(
        &root.browser,
        &app,
        "/admin/market/backfill",
        &[
            ("pair", "SOL/USDT"),
            ("timeframe", "1m"),
            ("from", "1990-01-01"),
            ("to", "2024-01-01"),
        ],
    )
    .await;
    let page = page_text(&app, &root.browser, &location(&resp)).await;
    assert!(page.contains("split the range"), "{page}");

    // The API's view.
    let (status, body) = rest(
        &app,
        Method::GET,
        "/api/v1/admin/market",
        Some(&root.token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["last_update_status"], "queued");
    assert!(
        body["series"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["symbol"] == "XRPETH"
                && s["candles"].as_i64().unwrap() > 0
                && !s["tracked"].as_bool().unwrap()),
        "{body}"
    );

    // A read-only admin token reads but changes nothing.
    let (_, ro) = backend::auth::api_token::create(
        &app.ctx.db,
        root.id,
        "read-only",
        backend::auth::Scope::Read,
        None,
    )
    .await
    .unwrap()
    .unwrap();
    let (status, _) = rest(&app, Method::GET, "/api/v1/admin/market", Some(&ro), None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = rest(
        &app,
        Method::POST,
        "/api/v1/admin/market/update",
        Some(&ro),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Traders: 403 everywhere, nothing changes.
    for (method, path, body) in [
        (Method::GET, "/api/v1/admin/market", None),
        (
            Method::POST,
            "/api/v1/admin/market/series",
            Some(json!({ "pair": "XRP/ETH", "timeframe": "5m", "tracked": true })),
        ),
        (Method::POST, "/api/v1/admin/market/update", None),
        (
            Method::POST,
            "/api/v1/admin/market/backfill",
            Some(
                json!({ "pair": "XRP/ETH", "timeframe": "5m", "from": "2024-01-01", "to": "2024-01-02" }),
            ),
        ),
    ] {
        let (status, _) = rest(&app, method.clone(), path, Some(&ann.token), body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}");
    }
    let resp = ann
        .browser
        .get(app.url("/admin/market"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        backend::market::store::tracked_series(&app.ctx.db, "binance")
            .await
            .unwrap()
            .len(),
        1
    );
}
