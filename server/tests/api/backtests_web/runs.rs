//! A run on the repository's real candles: its pages, charts, trace, JSON, downloads and comparison
//! agree with the engine; bad submissions go back to the run form with the values kept.

use std::{path::Path, time::Duration};

use reqwest::StatusCode;
use serde_json::Value;
use uuid::Uuid;

use super::{
    FROM, TO, app, count, create_strategy, get_json, import_eth_btc, run_fields, start_run,
    submit_run, trader, wait_finished, with,
};
use crate::auth::{location, page_text};

fn ms(date: &str) -> i64 {
    backend::market::parse_time(date).unwrap()
}

// ---------------------------------------------------------------------------------------------------------
// 3. A run on real candles, its pages, JSON and downloads
// ---------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_run_on_real_candles_finishes_and_its_page_charts_trace_exports_and_comparison_agree_with_the_engine()
 {
    let app = app(true, vec![]).await;
    let instrument = import_eth_btc(&app).await;
    let ann = trader(&app, "ann@example.org").await;
    let strategy = create_strategy(&app, &ann, "macd").await;

    // The run form offers the stored series.
    let page = page_text(&app, &ann, &format!("/backtests/new?strategy={strategy}")).await;
    assert!(page.contains(r#"id="run-form""#), "run form missing");
    assert!(page.contains("ETH/BTC"), "series missing from the form");
    assert!(page.contains(r#"name="param.fast""#));

    let fields = run_fields(strategy, instrument);
    let run = start_run(&app, &ann, &fields).await;
    let st = wait_finished(&app, &ann, run).await;
    assert_eq!(st["status"], "done", "{st}");
    assert_eq!(st["message"], "done");
    assert_eq!(st["progress"], 1.0);

    let (trade_count, final_equity, job_id): (i32, f64, Uuid) = sqlx::query_as(
        "select trade_count, final_equity, job_id from backtest_run where backtest_run_id = $1",
    )
    .bind(run)
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    let stored_trades = count(
        &app,
        &format!("select count(*) from backtest_trade where backtest_run_id = '{run}'"),
    )
    .await;
    assert!(
        trade_count > 2,
        "too few trades to test with: {trade_count}"
    );
    assert_eq!(stored_trades, i64::from(trade_count));
    let job = app
        .wait_for_job(job_id, &["done"], Duration::from_secs(5))
        .await;
    assert_eq!(job.attempts, 1);
    assert_eq!(job.queue, "backtest");

    // The stored result is exactly what the engine computes on the same candles, strategy and options.
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/market/ETH-BTC-5m.csv"),
    )
    .unwrap();
    let (all, _) = engine::csv::parse_candles(&text, None).unwrap();
    let candles = all.between(Some(ms(FROM)), Some(ms(TO) + engine::time::DAY_MS));
    let source: String = sqlx::query_scalar(
        "select source from strategy_version where strategy_id = $1 and version = 1",
    )
    .bind(strategy)
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    let params: Vec<(String, String)> = [("fast", "12"), ("slow", "26"), ("signal", "9")]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let compiled = engine::strategy::compile(&source, &params).unwrap();
    let config = engine::backtest::BacktestConfig {
        initial_cash: 10_000.0,
        fee: 0.001,
        slippage_bps: 5.0,
        ..Default::default()
    };
    let expected = engine::backtest::run(&candles, &compiled, &config).unwrap();
    assert_eq!(Some(final_equity), expected.metrics.final_equity.value);
    assert_eq!(expected.trades.len(), trade_count as usize);
    assert_eq!(expected.provenance.bars, candles.len());

    // The run page: metric cards, the trades table, provenance, exports.
    let page = page_text(&app, &ann, &format!("/backtests/{run}")).await;
    for needle in [
        r#"id="metrics""#,
        "Final equity",
        "Max drawdown",
        r#"class="data trades""#,
        &format!("Trades ({trade_count})"),
        r#"id="provenance""#,
        "Data hash",
        &expected.provenance.candles_hash,
        &expected.provenance.strategy_source_hash,
        &format!("/backtests/{run}/trades.csv"),
        &format!("/backtests/{run}/report.html"),
        r#"id="timing""#,
    ] {
        assert!(page.contains(needle), "{needle} missing from the run page");
    }
    assert!(
        !page.contains(r#"id="run-status""#),
        "a finished run shows progress"
    );
    // The range as the trader typed it (the end date inclusive).
    assert!(
        page.contains(&format!("{FROM} → {TO}")),
        "range not shown as typed"
    );
    // The runs list shows it.
    let list = page_text(&app, &ann, "/backtests").await;
    assert!(list.contains(&format!(r#"data-run-id="{run}""#)));

    // chart.json: candles, equity and the same trades as the database.
    let (code, chart) = get_json(&app, &ann, &format!("/backtests/{run}/chart.json")).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(
        chart["candles"]["time"].as_array().unwrap().len(),
        candles.len()
    );
    assert_eq!(chart["candles"]["timeframe"], "5m");
    assert!(!chart["equity"]["equity"].as_array().unwrap().is_empty());
    assert_eq!(chart["initial_cash"], 10_000.0);
    let chart_trades = chart["trades"].as_array().unwrap();
    assert_eq!(chart_trades.len(), trade_count as usize);
    let first_entry = chart_trades[0]["entry_time"].as_i64().unwrap();
    assert_eq!(first_entry, expected.trades[0].entry_time);

    // trace.json at the first trade's entry: the bar where it bought.
    let (code, trace) = get_json(
        &app,
        &ann,
        &format!("/backtests/{run}/trace.json?time={first_entry}"),
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{trace}");
    let bar = &trace["bars"][0];
    assert_eq!(bar["time"], first_entry);
    assert!(
        bar["actions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a.as_str().unwrap().contains("bought")),
        "{trace}"
    );
    assert!(trace["note"].is_null(), "{trace}");
    // A time outside the run is a clear 400; a missing time too.
    let (code, body) = get_json(&app, &ann, &format!("/backtests/{run}/trace.json?time=0")).await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("outside this run"),
        "{body}"
    );
    let (code, _) = get_json(&app, &ann, &format!("/backtests/{run}/trace.json")).await;
    assert_eq!(code, StatusCode::BAD_REQUEST);

    // trades.csv: a header and one line per trade, as an attachment.
    let resp = ann
        .get(app.url(&format!("/backtests/{run}/trades.csv")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let cd = resp.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cd.starts_with("attachment;") && cd.contains(".csv"), "{cd}");
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let csv = resp.text().await.unwrap();
    assert_eq!(csv.lines().count(), trade_count as usize + 1, "{csv}");
    assert!(csv.starts_with("seq,entry_time,exit_time"));

    // result.json: the whole result.
    let resp = ann
        .get(app.url(&format!("/backtests/{run}/result.json")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment;")
    );
    let doc: Value = resp.json().await.unwrap();
    assert_eq!(doc["format"], "vortex-backtest-result/1");
    assert_eq!(doc["run"]["summary"]["backtest_run_id"], run.to_string());
    assert_eq!(
        doc["result"]["metrics"]["final_equity"]["value"],
        final_equity
    );
    assert_eq!(
        doc["trades"].as_array().unwrap().len(),
        trade_count as usize
    );
    assert_eq!(doc["strategy_source"], source);

    // report.html: one self-contained file (chart library, chart script and data inlined).
    let resp = ann
        .get(app.url(&format!("/backtests/{run}/report.html")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment;")
    );
    let html = resp.text().await.unwrap();
    let lib = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../public/vendor/lightweight-charts-5.2.1.standalone.production.js"),
    )
    .unwrap();
    assert!(html.contains(lib.trim()), "chart library not inlined");
    assert!(html.contains(r#"<script type="application/json" id="chart-data">"#));
    assert!(html.contains("data-backtest-chart"));
    assert!(
        !html.contains("src=\"http"),
        "the report loads something from the network"
    );
    assert!(
        !html.contains("<script src="),
        "the report loads an external script"
    );
    assert!(
        !html.contains("<link "),
        "the report loads an external stylesheet"
    );
    assert_eq!(html.matches("<tr><td>").count(), trade_count as usize);
    assert!(
        html.contains(&format!("{FROM} → {TO}")),
        "the report shows another range than the run's page"
    );

    // A second run with other parameters; the comparison shows both side by side.
    let other = start_run(&app, &ann, &with(&fields, "param.fast", "8")).await;
    assert_eq!(wait_finished(&app, &ann, other).await["status"], "done");
    let cmp = page_text(
        &app,
        &ann,
        &format!("/backtests/compare?ids={run}&ids={other}"),
    )
    .await;
    assert!(
        cmp.contains(r#"id="compare-table""#),
        "comparison table missing"
    );
    assert!(
        cmp.contains(&format!("/backtests/{run}\""))
            && cmp.contains(&format!("/backtests/{other}\""))
    );
    let row = &cmp[cmp.find("Final equity").expect("final equity row")..];
    let row = &row[..row.find("</tr>").unwrap()];
    assert_eq!(row.matches("<td class=\"num\">").count(), 2, "{row}");
    assert!(row.contains(&format!("{final_equity:.2}")), "{row}");
    let (code, both) = get_json(
        &app,
        &ann,
        &format!("/backtests/compare.json?ids={run}&ids={other}"),
    )
    .await;
    assert_eq!(code, StatusCode::OK);
    let runs = both["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2, "{both}");
    assert_eq!(runs[0]["id"], run.to_string());
    assert_eq!(runs[1]["id"], other.to_string());
    for r in runs {
        assert!(!r["equity"].as_array().unwrap().is_empty());
        assert_eq!(
            r["equity"].as_array().unwrap().len(),
            r["time"].as_array().unwrap().len()
        );
    }
}

// ---------------------------------------------------------------------------------------------------------
// 4. Bad input on the run form
// ---------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn bad_run_submissions_go_back_to_the_form_with_the_values_kept_and_the_problem_named() {
    let app = app(false, vec![]).await;
    let instrument = import_eth_btc(&app).await;
    let ann = trader(&app, "ann@example.org").await;
    let strategy = create_strategy(&app, &ann, "macd").await;
    let good = run_fields(strategy, instrument);
    type Fields = Vec<(String, String)>;
    let cases: Vec<(&str, Fields, &str)> = vec![
        ("empty to", with(&good, "to", ""), "give an end date"),
        (
            "to before from",
            with(&with(&good, "from", "2018-01-20"), "to", "2018-01-12"),
            "the end must be after the start",
        ),
        (
            "unknown instrument",
            with(&good, "instrument_id", "987654"),
            "there is no instrument 987654",
        ),
        (
            "no candles in the range",
            with(&with(&good, "from", "2019-03-01"), "to", "2019-03-31"),
            "there are no ETH/BTC 5m candles between",
        ),
        (
            "fee not a number",
            with(&good, "fee_pct", "abc"),
            "is not a number",
        ),
        (
            "parameter out of range",
            with(&good, "param.fast", "1000"),
            "`fast` = 1000 is out of range",
        ),
        (
            "no such strategy",
            with(&good, "strategy_id", &Uuid::new_v4().to_string()),
            "no such strategy",
        ),
    ];
    for (what, fields, message) in cases {
        let resp = submit_run(&app, &ann, &fields).await;
        assert_eq!(resp.status(), StatusCode::SEE_OTHER, "{what}");
        let loc = location(&resp);
        assert!(
            loc.starts_with("/backtests/new?") && loc.ends_with("&failed=1"),
            "{what}: {loc}"
        );
        let has_cookie = resp.headers().get_all("set-cookie").iter().any(|c| {
            c.to_str()
                .unwrap()
                .starts_with(&format!("{}=", backend::web::FORM_ERROR_COOKIE))
        });
        assert!(has_cookie, "{what}: no form-error cookie");
        // The values as typed are in the query.
        let query: Vec<(String, String)> =
            url::form_urlencoded::parse(loc.split_once('?').unwrap().1.as_bytes())
                .into_owned()
                .collect();
        for key in ["from", "to", "fee_pct", "param.fast", "instrument_id"] {
            let typed = fields.iter().find(|(k, _)| k == key).unwrap();
            assert!(
                query.iter().any(|(k, v)| k == key && v == &typed.1),
                "{what}: {key}={} not kept in {loc}",
                typed.1
            );
        }
        // Following the redirect (with the cookie) shows the form and the problem.
        let resp = ann.get(app.url(&loc)).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{what}");
        let page = resp.text().await.unwrap();
        assert!(
            page.contains(r#"id="run-form""#),
            "{what}: the form is not shown"
        );
        let shown = &page[page
            .find(r#"id="form-error""#)
            .unwrap_or_else(|| panic!("{what}: no error shown"))..];
        let shown = &shown[..shown.find("</p>").unwrap()];
        assert!(shown.contains(message), "{what}: {shown}");
        assert_eq!(
            count(&app, "select count(*) from backtest_run").await,
            0,
            "{what}: a run was stored"
        );
        assert_eq!(
            count(&app, "select count(*) from job where kind = 'backtest'").await,
            0
        );
    }
    // The typed values are back in the inputs.
    let fields = with(&good, "fee_pct", "abc");
    let loc = location(&submit_run(&app, &ann, &fields).await);
    let page = page_text(&app, &ann, &loc).await;
    assert_eq!(input_value(&page, "fee_pct"), "abc");
    assert_eq!(input_value(&page, "from"), FROM);
    assert_eq!(input_value(&page, "param.fast"), "12");
    // Without `failed=1` (a later visit) the old error is not shown.
    let page = page_text(&app, &ann, &format!("/backtests/new?strategy={strategy}")).await;
    assert!(!page.contains(r#"id="form-error""#));
}

/// The `value` of the input named `name` in a page.
fn input_value<'a>(page: &'a str, name: &str) -> &'a str {
    let at = page
        .find(&format!(r#"name="{name}""#))
        .unwrap_or_else(|| panic!("no input {name}"));
    let tag = &page[at..];
    let tag = &tag[..tag.find('>').unwrap()];
    let v = &tag[tag
        .find(r#"value=""#)
        .unwrap_or_else(|| panic!("{name} has no value"))
        + 7..];
    &v[..v.find('"').unwrap()]
}
