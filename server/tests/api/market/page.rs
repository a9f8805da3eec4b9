//! Coverage on the real files, the server-rendered Market data page and the JSON endpoints.

use backend::market::{coverage, csv_import};
use reqwest::StatusCode;
use serde_json::Value;

use super::{app_with_mock, csv, data_dir, import_opts, t};

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
