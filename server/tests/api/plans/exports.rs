//! Rows per export: a finished run with more trades than the plan's `export_rows` is refused with the limit
//! named; the run and its trades stay.

use std::time::Duration;

use backend::market::{Pair, csv_import};
use reqwest::{Method, StatusCode};
use serde_json::json;

use super::{person, rest, strategy_of};
use crate::helpers::{Options, spawn_app_with};

#[tokio::test]
async fn plans_an_export_over_the_plans_rows_is_refused_and_the_run_is_kept() {
    let app = spawn_app_with(Options {
        workers: true,
        env: vec![],
    })
    .await;
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/market/ETH-BTC-5m.csv");
    let instrument = csv_import::import_file(
        &app.ctx.db,
        &path,
        &csv_import::ImportOptions {
            exchange: "demo".into(),
            pair: Pair::parse("ETH/BTC").unwrap(),
            timeframe: None,
            skip_bad_rows: false,
        },
    )
    .await
    .unwrap()
    .instrument_id;
    let root = person(&app, "root@example.org", "admin").await;
    let ann = person(&app, "ann@example.org", "trader").await;
    let strategy = strategy_of(&app, &ann).await;
    let (status, body) = rest(
        &app,
        Method::POST,
        "/api/v1/backtests",
        Some(&ann.token),
        Some(
            json!({ "strategy_id": strategy, "instrument_ids": [instrument], "timeframe": "5m",
                     "from": "2018-01-11", "to": "2018-01-20" }),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let run = body["runs"][0]["id"]
        .as_str()
        .or_else(|| body["run_ids"][0].as_str())
        .unwrap_or_else(|| panic!("no run id in {body}"))
        .to_owned();
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    let trades = loop {
        let (_, r) = rest(
            &app,
            Method::GET,
            &format!("/api/v1/backtests/{run}"),
            Some(&ann.token),
            None,
        )
        .await;
        if r["status"] == "done" {
            break r["trade_count"].as_i64().unwrap();
        }
        assert!(
            r["status"] != "failed" && std::time::Instant::now() < deadline,
            "{r}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(trades >= 2, "too few trades for the test: {trades}");
    let csv = format!("/api/v1/backtests/{run}/trades.csv");
    let resp = app
        .client
        .get(app.url(&csv))
        .bearer_auth(&ann.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);

    let (status, body) = rest(
        &app,
        Method::PUT,
        &format!("/api/v1/admin/users/{}/plan", ann.id),
        Some(&root.token),
        Some(json!({ "overrides": { "export_rows": 1 }, "reason": "export test" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = rest(&app, Method::GET, &csv, Some(&ann.token), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(
        (
            &body["code"],
            &body["limit"],
            &body["usage"],
            &body["allowed"]
        ),
        (
            &json!("plan_limit"),
            &json!("export_rows"),
            &json!(trades),
            &json!(1)
        ),
        "{body}"
    );
    let (status, r) = rest(
        &app,
        Method::GET,
        &format!("/api/v1/backtests/{run}"),
        Some(&ann.token),
        None,
    )
    .await;
    assert_eq!(
        (status, &r["trade_count"]),
        (StatusCode::OK, &json!(trades))
    );
}
