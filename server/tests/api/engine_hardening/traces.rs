//! "Why here?" traces computed by a worker, stored, read from storage and bounded by the memory
//! budget.

use std::time::Duration;

use backend::auth::Scope;
use reqwest::StatusCode;
use serde_json::Value;

use super::{
    api, instrument_with_minutes, many_clauses, strategy, submit, token, wait_run,
    worker_with_budget,
};
use crate::helpers::{Options, spawn_app_with};

// ---------------------------------------------------------------------------------------------------------
// "Why here?" traces
// ---------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn engine_hardening_traces_are_computed_by_a_worker_stored_and_bounded_by_the_budget() {
    let app = spawn_app_with(Options {
        workers: true,
        env: vec![],
    })
    .await;
    let token = token(&app, "why@example.org", Scope::ReadWrite).await;
    let inst = instrument_with_minutes(&app, 40_000).await;
    let s = strategy(
        &app,
        &token,
        "let fast = ema(close, 12)\nlet slow = ema(close, 200)\nentry long when crosses_above(fast, slow)\nexit long when crosses_below(fast, slow)\n",
    )
    .await;
    let id = submit(&app, &token, s, inst).await;
    assert_eq!(wait_run(&app, &token, id).await["status"], "done");
    // The last trade's entry: far from the first bar, so its EMA values depend on the whole history.
    let (entry, values): (i64, Value) = sqlx::query_as(
        r#"select (extract(epoch from t.entry_time) * 1000)::bigint,
                  (select jsonb_agg(jsonb_build_array(res.value_names -> t.entry_rule -> (o - 1)::int, v) order by o)
                   from unnest(t.entry_vals) with ordinality u(v, o))
           from backtest_trade t join backtest_result res using (backtest_run_id)
           where backtest_run_id = $1 order by seq desc limit 1"#,
    )
    .bind(id)
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    let path = format!("/api/v1/backtests/{id}/trace?time={entry}");
    let (status, first) = api(&app, reqwest::Method::GET, &path, &token, None).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let bar = &first["bars"][0];
    assert_eq!(bar["time"], entry, "{first}");
    assert!(
        bar["actions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a.as_str().unwrap().starts_with("bought")),
        "{first}"
    );
    // The values the trace shows at the signal bar (the bar before the fill) are those the backtest stored.
    let prev = entry - 60_000;
    let (_, signal) = api(
        &app,
        reqwest::Method::GET,
        &format!("/api/v1/backtests/{id}/trace?time={prev}"),
        &token,
        None,
    )
    .await;
    for pair in values.as_array().unwrap() {
        let name = pair[0].as_str().unwrap();
        let stored = pair[1].as_f64().unwrap();
        let shown = signal["bars"][0]["values"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("{name} in {signal}"))["value"]
            .as_f64()
            .unwrap();
        assert_eq!(shown, stored, "{name}");
    }
    // Computed by a backtest worker, and kept.
    let jobs: i64 = sqlx::query_scalar(
        "select count(*) from job where kind = 'backtest_trace' and queue = 'backtest' and status = 'done'",
    )
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    assert_eq!(jobs, 2);
    let stored: i64 =
        sqlx::query_scalar("select count(*) from backtest_trace where backtest_run_id = $1")
            .bind(id)
            .fetch_one(&app.ctx.db)
            .await
            .unwrap();
    assert_eq!(stored, 2);
    // Asked again, the answer is read from storage: no new job, and the same answer even with the candles gone.
    sqlx::query("delete from candle where instrument_id = $1")
        .bind(inst)
        .execute(&app.ctx.db)
        .await
        .unwrap();
    let (status, again) = api(&app, reqwest::Method::GET, &path, &token, None).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again, first);
    let jobs: i64 = sqlx::query_scalar("select count(*) from job where kind = 'backtest_trace'")
        .fetch_one(&app.ctx.db)
        .await
        .unwrap();
    assert_eq!(jobs, 2);
}

#[tokio::test]
async fn engine_hardening_a_trace_over_the_memory_budget_is_refused_with_what_to_shorten() {
    let app = spawn_app_with(Options {
        workers: false,
        env: vec![],
    })
    .await;
    let token = token(&app, "big@example.org", Scope::ReadWrite).await;
    let inst = instrument_with_minutes(&app, 150_000).await;
    let s = strategy(&app, &token, &many_clauses(20)).await;
    let id = submit(&app, &token, s, inst).await;
    // The run finishes under the default budget…
    let big = worker_with_budget(&app, 1024);
    assert_eq!(wait_run(&app, &token, id).await["status"], "done");
    big.send(true).unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    // …a worker with a 16 MB budget refuses to trace it (it would need the run's columns again).
    let _small = worker_with_budget(&app, 16);
    let time: i64 = sqlx::query_scalar(
        "select (provenance->>'last_time')::bigint from backtest_result where backtest_run_id = $1",
    )
    .bind(id)
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    let (status, body) = api(
        &app,
        reqwest::Method::GET,
        &format!("/api/v1/backtests/{id}/trace?time={time}"),
        &token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let msg = body["detail"].as_str().unwrap();
    assert!(
        msg.contains("tracing this run needs about") && msg.contains("fewer candles"),
        "{msg}"
    );
}
