//! Backtest runs through the REST API with in-process workers: a run on real candles matches the
//! engine exactly, one submission for several instruments runs as one batch, traces need a finished
//! run.

use std::time::{Duration, Instant};

use backend::{backtest::runs, market::parse_time};
use reqwest::StatusCode;
use serde_json::json;

use super::{app, data_file, get, import, post, queue, strategy_from, submission, trader};

#[tokio::test]
async fn backtests_api_a_run_on_real_candles_finishes_and_matches_the_engine_exactly() {
    let app = app(true, vec![]).await;
    let token = trader(&app, "eve@example.org").await;
    let eth = import(&app, "ETH-BTC-5m.csv").await;
    let strategy = strategy_from(&app, &token, "macd").await;
    let body = json!({
        "strategy_id": strategy,
        "params": {"fast": 8, "signal": 9},
        "instrument_ids": [eth],
        "timeframe": "5m",
        "from": "2018-01-10",
        "to": "2018-01-29",
        "fee": 0.002,
        "slippage_bps": 5,
    });
    let created = post(&app, "/api/v1/backtests", &token, &body).await;
    assert_eq!(created.status, StatusCode::ACCEPTED, "{created:?}");
    let id = created.json["runs"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(created.json["runs"][0]["status"], "queued");
    assert_eq!(
        created.json["runs"][0]["links"]["self"],
        format!("/api/v1/backtests/{id}")
    );

    // Follow it to the end.
    let started = Instant::now();
    let detail = loop {
        let d = get(&app, &format!("/api/v1/backtests/{id}"), &token).await;
        assert_eq!(d.status, StatusCode::OK);
        match d.json["status"].as_str().unwrap() {
            "done" => break d,
            "queued" | "running" => {}
            other => panic!("run ended {other}: {d:?}"),
        }
        assert!(started.elapsed() < Duration::from_secs(60), "still {d:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(detail.json["progress"], 1.0);
    assert!(detail.json["timing"]["engine_ms"].is_u64(), "{detail:?}");
    assert!(detail.json["started_at"].is_string());
    assert_eq!(detail.json["params"], json!({"fast": "8", "signal": "9"}));
    assert_eq!(detail.json["config"]["fee"], 0.002);

    // The same run through the engine directly, on the file's candles.
    let text = std::fs::read_to_string(data_file("ETH-BTC-5m.csv")).unwrap();
    let all = engine::csv::parse_candles(&text, None).unwrap().0;
    let (from, to) = (
        parse_time("2018-01-10").unwrap(),
        parse_time("2018-01-30").unwrap(),
    );
    let keep: Vec<usize> = (0..all.len())
        .filter(|&i| all.time[i] >= from && all.time[i] < to)
        .collect();
    let (a, b) = (keep[0], keep[keep.len() - 1] + 1);
    let candles = all.slice(a..b);
    let source = engine::catalogue::template("macd").unwrap().source;
    let compiled = engine::strategy::compile(
        source,
        &[("fast".into(), "8".into()), ("signal".into(), "9".into())],
    )
    .unwrap();
    let config = runs::config(10_000.0, 0.002, 5.0, "next_open").unwrap();
    let expected = engine::backtest::run(&candles, &compiled, &config).unwrap();
    let trade_count = expected.trades.len();
    assert!(trade_count > 5, "a meaningful run: {trade_count} trades");
    let final_equity = expected.metrics.final_equity.value.unwrap();

    let result = get(&app, &format!("/api/v1/backtests/{id}/result"), &token).await;
    assert_eq!(result.status, StatusCode::OK, "{result:?}");
    let m = &result.json["metrics"];
    assert_eq!(m["final_equity"]["value"].as_f64().unwrap(), final_equity);
    assert_eq!(
        m["trade_count"]["value"].as_f64().unwrap(),
        trade_count as f64
    );
    assert_eq!(
        m["total_return"]["value"].as_f64(),
        expected.metrics.total_return.value
    );
    assert_eq!(detail.json["final_equity"].as_f64().unwrap(), final_equity);
    assert_eq!(detail.json["trade_count"], trade_count);
    assert_eq!(result.json["bars"], candles.len());
    assert_eq!(
        result.json["provenance"]["candles_hash"],
        candles.content_hash()
    );
    assert_eq!(result.json["equity"]["time"][0], candles.time[0]);
    assert_eq!(
        result.json["equity"]["equity"]
            .as_array()
            .unwrap()
            .last()
            .unwrap()
            .as_f64()
            .unwrap(),
        final_equity
    );

    // Trades: the total, pages, sorting.
    let trades = get(
        &app,
        &format!("/api/v1/backtests/{id}/trades?limit=1000"),
        &token,
    )
    .await;
    assert_eq!(trades.status, StatusCode::OK);
    assert_eq!(trades.json["total"], trade_count);
    let list = trades.json["trades"].as_array().unwrap();
    assert_eq!(list.len(), trade_count);
    for (t, e) in list.iter().zip(&expected.trades) {
        assert_eq!(t["pnl"].as_f64().unwrap(), e.pnl);
        assert_eq!(
            parse_time(t["entry_time"].as_str().unwrap()).unwrap(),
            e.entry_time
        );
    }
    let page = get(
        &app,
        &format!("/api/v1/backtests/{id}/trades?sort=pnl&dir=desc&limit=2&offset=1"),
        &token,
    )
    .await;
    let mut pnls: Vec<f64> = expected.trades.iter().map(|t| t.pnl).collect();
    pnls.sort_by(|a, b| b.total_cmp(a));
    assert_eq!(page.json["total"], trade_count);
    assert_eq!(page.json["trades"][0]["pnl"].as_f64().unwrap(), pnls[1]);
    assert_eq!(page.json["trades"][1]["pnl"].as_f64().unwrap(), pnls[2]);
    let bad = get(
        &app,
        &format!("/api/v1/backtests/{id}/trades?limit=5000"),
        &token,
    )
    .await;
    assert_eq!(bad.field(), "limit");

    // CSV export.
    let csv = get(&app, &format!("/api/v1/backtests/{id}/trades.csv"), &token).await;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(
        csv.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let disposition = csv.headers["content-disposition"].to_str().unwrap();
    assert!(disposition.starts_with("attachment;"), "{disposition}");
    assert!(disposition.contains(".csv"), "{disposition}");
    assert_eq!(csv.text.lines().count(), trade_count + 1);
    assert!(csv.text.starts_with("seq,entry_time,"));

    // The trace at the first trade's entry lists the fill.
    let entry = expected.trades[0].entry_time;
    let trace = get(
        &app,
        &format!("/api/v1/backtests/{id}/trace?time={entry}"),
        &token,
    )
    .await;
    assert_eq!(trace.status, StatusCode::OK, "{trace:?}");
    let bar = &trace.json["bars"][0];
    assert_eq!(bar["time"], entry);
    let actions: Vec<&str> = bar["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(
        actions.iter().any(|a| a.starts_with("bought")),
        "{actions:?}"
    );
    assert!(
        bar["values"]
            .as_array()
            .unwrap()
            .iter()
            .all(|v| v["name"].is_string())
    );
    let outside = get(
        &app,
        &format!(
            "/api/v1/backtests/{id}/trace?time={}",
            parse_time("2017-01-01").unwrap()
        ),
        &token,
    )
    .await;
    assert_eq!(outside.status, StatusCode::BAD_REQUEST);
    assert_eq!(outside.field(), "time");
    let missing = get(&app, &format!("/api/v1/backtests/{id}/trace"), &token).await;
    assert_eq!(missing.field(), "time");
    // One request spans at most a chart candle's worth of bars, not the whole run.
    let first = expected.trades[0].entry_time;
    let huge = get(
        &app,
        &format!("/api/v1/backtests/{id}/trace?time={first}&span=1000000000000"),
        &token,
    )
    .await;
    assert_eq!(huge.status, StatusCode::BAD_REQUEST, "{huge:?}");
    assert_eq!(huge.field(), "span");

    // Finished: cannot be cancelled; listed with its metrics.
    let cancel = post(
        &app,
        &format!("/api/v1/backtests/{id}/cancel"),
        &token,
        &json!({}),
    )
    .await;
    assert_eq!(cancel.status, StatusCode::CONFLICT);
    let done = get(
        &app,
        &format!(
            "/api/v1/backtests?status=done&strategy_id={strategy}&instrument_id={eth}&sort=sharpe"
        ),
        &token,
    )
    .await;
    assert_eq!(done.json["runs"][0]["id"], id.as_str());
    assert_eq!(
        done.json["runs"][0]["final_equity"].as_f64().unwrap(),
        final_equity
    );
}

/// One submission for several instruments queues one run each under one batch id; all finish, each on its own
/// instrument's candles, and the batch can be listed and compared.
#[tokio::test]
async fn backtests_api_one_submission_for_several_instruments_runs_each_under_one_batch() {
    let app = app(true, vec![]).await;
    let token = trader(&app, "multi@example.org").await;
    let eth = import(&app, "ETH-BTC-5m.csv").await;
    let ltc = import(&app, "LTC-BTC-5m.csv").await;
    let strategy = strategy_from(&app, &token, "sma_cross").await;
    let mut body = submission(strategy, eth);
    body["instrument_ids"] = json!([eth, ltc, eth]);
    body["from"] = json!("2018-01-10");
    body["to"] = json!("2018-01-29");
    let created = post(&app, "/api/v1/backtests", &token, &body).await;
    assert_eq!(created.status, StatusCode::ACCEPTED, "{created:?}");
    let runs = created.json["runs"].as_array().unwrap();
    assert_eq!(
        runs.len(),
        2,
        "a repeated instrument runs once: {created:?}"
    );
    let batch = created.json["batch_id"].as_str().unwrap().to_owned();
    let started = Instant::now();
    loop {
        let l = get(&app, &format!("/api/v1/backtests?batch_id={batch}"), &token).await;
        assert_eq!(l.status, StatusCode::OK, "{l:?}");
        let list = l.json["runs"].as_array().unwrap();
        assert_eq!(list.len(), 2);
        if list.iter().all(|r| r["status"] == "done") {
            let mut instruments: Vec<i64> = list
                .iter()
                .map(|r| r["instrument_id"].as_i64().unwrap())
                .collect();
            instruments.sort_unstable();
            let mut want = vec![i64::from(eth), i64::from(ltc)];
            want.sort_unstable();
            assert_eq!(instruments, want);
            // Different candles, different results.
            assert_ne!(list[0]["final_equity"], list[1]["final_equity"], "{list:?}");
            break;
        }
        assert!(
            list.iter().all(|r| r["status"] == "queued"
                || r["status"] == "running"
                || r["status"] == "done"),
            "{list:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(60), "{list:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let hashes: std::collections::HashSet<String> = sqlx::query_scalar(
        "select provenance->>'candles_hash' from backtest_result res join backtest_run r using (backtest_run_id) where r.batch_id = $1::uuid",
    )
    .bind(&batch)
    .fetch_all(&app.ctx.db)
    .await
    .unwrap()
    .into_iter()
    .collect();
    assert_eq!(
        hashes.len(),
        2,
        "each run used its own instrument's candles"
    );
}

/// The decision trace is only for finished runs (the span bound is checked on a finished run above).
#[tokio::test]
async fn backtests_api_traces_need_a_finished_run() {
    let app = app(false, vec![]).await;
    let token = trader(&app, "trace@example.org").await;
    let xrp = import(&app, "XRP-ETH-1m.csv").await;
    let strategy = strategy_from(&app, &token, "macd").await;
    let mut body = submission(strategy, xrp);
    body["timeframe"] = json!("1m");
    let id = queue(&app, &token, &body).await;
    let t = get(
        &app,
        &format!("/api/v1/backtests/{id}/trace?time=2019-10-11T12:00:00Z"),
        &token,
    )
    .await;
    assert_eq!(t.status, StatusCode::CONFLICT, "{t:?}");
    assert!(
        t.json["detail"]
            .as_str()
            .unwrap()
            .contains("once the run is done"),
        "{t:?}"
    );
}
