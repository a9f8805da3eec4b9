//! Risk limits per run on real candles through the `paper_advance` step the workers run: each limit trips,
//! the run goes to its mode from the next candle, the lock and the `risk.limit_hit` event exist once (also
//! after a rolled-back step and a duplicate delivery), a release lets it trade again, the parity report names
//! the risk action, and the REST API changes limits and releases locks for the run's owner only.

use backend::auth::{Role, Scope};
use backend::paper::{actions as act, actions::Owner, risk::RiskInput};
use chrono::{DateTime, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use super::api::{call, token};
use super::{
    SMA, advance, app_without_workers, new_run, series, shifted, store_candles, strategy, trader,
};
use crate::helpers::{Options, TestApp, spawn_app_with_clock};

/// (limit, mode, candle_time ms, applies_from ms, until ms) of the run's locks, oldest first.
async fn locks(app: &TestApp, run: Uuid) -> Vec<(String, String, i64, i64, Option<i64>)> {
    sqlx::query_as::<
        _,
        (
            String,
            String,
            DateTime<Utc>,
            DateTime<Utc>,
            Option<DateTime<Utc>>,
        ),
    >(
        "select limit_kind, mode, candle_time, applies_from, until from paper_risk_lock
         where paper_run_id = $1 order by candle_time, limit_kind",
    )
    .bind(run)
    .fetch_all(&app.ctx.db)
    .await
    .unwrap()
    .into_iter()
    .map(|(l, m, c, a, u)| {
        (
            l,
            m,
            c.timestamp_millis(),
            a.timestamp_millis(),
            u.map(|u| u.timestamp_millis()),
        )
    })
    .collect()
}

async fn events(app: &TestApp, run: Uuid) -> Vec<Value> {
    sqlx::query_scalar(
        "select payload from notify_event where paper_run_id = $1 and event_type = 'risk.limit_hit'
         order by created_at",
    )
    .bind(run)
    .fetch_all(&app.ctx.db)
    .await
    .unwrap()
}

/// (open time ms, gate, the decision's `risk`) of every processed candle.
async fn candles(app: &TestApp, run: Uuid) -> Vec<(i64, String, Option<Value>)> {
    sqlx::query_as::<_, (DateTime<Utc>, String, Option<Value>)>(
        "select open_time, gate, decision->'risk' from paper_candle where paper_run_id = $1 order by open_time",
    )
    .bind(run)
    .fetch_all(&app.ctx.db)
    .await
    .unwrap()
    .into_iter()
    .map(|(t, g, r)| (t.timestamp_millis(), g, r))
    .collect()
}

/// Checks what a run whose `limit` tripped must show: one lock per breach, one event per lock, the breach in
/// the decision of the candle that found it, and every candle the lock covers processed under `mode`.
async fn assert_tripped(app: &TestApp, run: Uuid, limit: &str, mode: &str) {
    let all = locks(app, run).await;
    let mine: Vec<_> = all.iter().filter(|l| l.0 == limit).collect();
    assert!(!mine.is_empty(), "{limit} did not trip: {all:?}");
    if !matches!(limit, "daily_loss" | "max_orders_per_day") {
        assert_eq!(mine.len(), 1, "{limit} locked more than once: {all:?}");
    }
    let ev = events(app, run).await;
    assert_eq!(ev.len(), all.len(), "one event per lock: {ev:?} vs {all:?}");
    assert!(
        ev.iter().any(|e| e["limit"] == limit && e["mode"] == mode),
        "{ev:?}"
    );
    let processed = candles(app, run).await;
    for (_, m, at, from, until) in &mine {
        assert_eq!(m, mode);
        let breach = processed
            .iter()
            .find(|c| c.0 == *at)
            .expect("the breach candle");
        let risk = breach.2.as_ref().expect("the breach is in the decision");
        assert!(
            risk["breaches"]
                .as_array()
                .unwrap()
                .iter()
                .any(|b| b["limit"] == limit),
            "{risk}"
        );
        let covered: Vec<_> = processed
            .iter()
            .filter(|c| c.0 >= *from && until.is_none_or(|u| c.0 < u))
            .collect();
        for c in &covered {
            assert_eq!(c.1, mode, "candle {} under the {limit} lock", c.0);
            assert!(c.2.is_some(), "the lock is named in the decision");
        }
    }
}

fn risk(f: impl FnOnce(&mut RiskInput)) -> RiskInput {
    let mut r = RiskInput::default();
    f(&mut r);
    r
}

#[tokio::test]
async fn paper_risk_each_limit_trips_into_its_mode_once_with_its_event() {
    let app = app_without_workers().await;
    let (history, live) = shifted("ETH-BTC-5m.csv", 1000);
    let inst = series(&app, &history).await;
    let ann = trader(&app, "ann@example.org").await;
    let s = strategy(&app, &ann, SMA).await;
    // Each run has one limit, set so that the strategy's trading on these candles breaches it.
    let cases: Vec<(&str, &str, RiskInput)> = vec![
        (
            "max_drawdown",
            "halt",
            risk(|r| r.max_drawdown_pct = Some(0.05)),
        ),
        (
            "daily_loss",
            "reduce_only",
            risk(|r| {
                r.daily_loss = Some(1.0);
                r.mode = Some("reduce_only".into());
            }),
        ),
        (
            "consecutive_losses",
            "flatten",
            risk(|r| {
                r.max_consecutive_losses = Some(1);
                r.mode = Some("flatten".into());
            }),
        ),
        (
            "max_position_value",
            "flatten",
            risk(|r| {
                r.max_position_value = Some(5000.0);
                r.mode = Some("flatten".into());
            }),
        ),
        (
            "max_orders_per_day",
            "halt",
            risk(|r| r.max_orders_per_day = Some(2)),
        ),
    ];
    let mut runs = Vec::new();
    for (limit, mode, r) in &cases {
        let mut new = new_run(s, inst);
        new.risk = r.clone();
        let id = act::start(&ann, &app.ctx, Owner::Me, &new)
            .await
            .unwrap()
            .run_ids[0];
        runs.push((id, *limit, *mode));
    }
    // A run without limits, on the same candles: never locked.
    let free = act::start(&ann, &app.ctx, Owner::Me, &new_run(s, inst))
        .await
        .unwrap()
        .run_ids[0];
    // Candles arrive in parts; the first step of each part is rolled back once (a worker killed before its
    // commit), then committed, then delivered again.
    let mut k = 0;
    for part in [40, 60, 100] {
        store_candles(&app, inst, &live.slice(k..k + part)).await;
        k += part;
        let mut tx = app.ctx.db.begin().await.unwrap();
        backend::paper::advance::advance(&app.ctx, &mut tx, inst, backend::market::Timeframe::M5)
            .await
            .unwrap();
        tx.rollback().await.unwrap();
        while advance(&app, inst).await.more {}
        advance(&app, inst).await;
    }
    for (id, limit, mode) in &runs {
        assert_tripped(&app, *id, limit, mode).await;
        let detail = act::get(&ann, &app.ctx, Owner::Me, *id).await.unwrap();
        assert!(
            detail.risk_locks.iter().any(|l| l.limit == *limit),
            "{limit}: {:?}",
            detail.risk_locks
        );
    }
    assert!(locks(&app, free).await.is_empty());
    assert!(events(&app, free).await.is_empty());
    assert!(
        candles(&app, free)
            .await
            .iter()
            .all(|c| c.1 == "open" && c.2.is_none())
    );
}

#[tokio::test]
async fn paper_risk_a_breach_in_a_long_catch_up_gates_the_rest_of_the_same_step() {
    let app = app_without_workers().await;
    let (history, live) = shifted("ETH-BTC-5m.csv", 1000);
    let inst = series(&app, &history).await;
    let ann = trader(&app, "ann@example.org").await;
    let s = strategy(&app, &ann, SMA).await;
    let mut new = new_run(s, inst);
    new.risk = risk(|r| r.max_position_value = Some(5000.0));
    let run = act::start(&ann, &app.ctx, Owner::Me, &new)
        .await
        .unwrap()
        .run_ids[0];
    // All candles at once: one step finds the breach and processes everything after it under halt.
    store_candles(&app, inst, &live.slice(0..200)).await;
    let out = advance(&app, inst).await;
    assert!(!out.more);
    assert_eq!(candles(&app, run).await.len(), 200);
    assert_tripped(&app, run, "max_position_value", "halt").await;
    // Halted with a position: no buy after the lock.
    let (_, _, _, from, _) = locks(&app, run).await[0].clone();
    let buys: i64 = sqlx::query_scalar(
        "select count(*) from paper_fill where paper_run_id = $1 and side = 'buy' and open_time >= $2",
    )
    .bind(run)
    .bind(backend::market::to_datetime(from))
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    assert_eq!(buys, 0);

    // Parity: the backtest trades on; every difference is attributed to the risk action.
    let report = act::parity(&ann, &app.ctx, Owner::Me, run).await.unwrap();
    assert!(!report.differences.is_empty(), "{report:?}");
    assert!(
        report.differences.iter().all(|d| d.cause == "risk action"),
        "{:?}",
        report.differences
    );
    assert!(report.summary.contains("risk action"), "{}", report.summary);

    // Released by its owner: trades again from the next candle; the limit measures again from there.
    let before = candles(&app, run).await.len();
    act::release_risk_locks(&ann, &app.ctx, Owner::Me, run, None, Some("checked"))
        .await
        .unwrap();
    store_candles(&app, inst, &live.slice(200..201)).await;
    advance(&app, inst).await;
    let after = candles(&app, run).await;
    assert_eq!(after.len(), before + 1);
    assert_eq!(after.last().unwrap().1, "open");
    let audit: i64 = sqlx::query_scalar(
        "select count(*) from audit_event where event = 'paper_risk_lock_released' and detail->>'paper_run_id' = $1",
    )
    .bind(run.to_string())
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    assert_eq!(audit, 1);
}

#[tokio::test]
async fn paper_risk_a_stale_feed_trips_without_a_candle_and_the_next_candles_are_halted() {
    let clock = backend::clock::Clock::manual(Utc::now());
    let app = spawn_app_with_clock(
        Options {
            workers: false,
            env: vec![
                ("MARKET_DATA_URL", "http://127.0.0.1:9".into()),
                ("PAPER_WARMUP_BARS", "100".into()),
                ("PAPER_TICK_SECS", "3600".into()),
                ("PAPER_RISK_STALE_FEED_SECS", "600".into()),
            ],
        },
        clock.clone(),
    )
    .await;
    let (history, live) = shifted("ETH-BTC-5m.csv", 1000);
    let inst = series(&app, &history).await;
    let ann = trader(&app, "ann@example.org").await;
    let s = strategy(&app, &ann, SMA).await;
    // The setting is the default; a start may turn it off.
    let run = act::start(&ann, &app.ctx, Owner::Me, &new_run(s, inst))
        .await
        .unwrap()
        .run_ids[0];
    let mut off = new_run(s, inst);
    off.risk = risk(|r| r.stale_feed_secs = Some(0));
    let unlimited = act::start(&ann, &app.ctx, Owner::Me, &off)
        .await
        .unwrap()
        .run_ids[0];
    store_candles(&app, inst, &live.slice(0..3)).await;
    advance(&app, inst).await;
    assert!(locks(&app, run).await.is_empty(), "candles on time");
    // Nothing arrives for an hour (the clock moves; the feed does not): the tick asks for the series.
    let mut conn = app.ctx.db.acquire().await.unwrap();
    assert!(
        backend::paper::feed::stale(&mut conn, clock.now())
            .await
            .unwrap()
            .is_empty()
    );
    clock.advance(chrono::Duration::hours(1));
    assert_eq!(
        backend::paper::feed::stale(&mut conn, clock.now())
            .await
            .unwrap(),
        vec![(inst, backend::market::Timeframe::M5)]
    );
    drop(conn);
    advance(&app, inst).await;
    advance(&app, inst).await;
    let l = locks(&app, run).await;
    assert_eq!(l.len(), 1, "{l:?}");
    assert_eq!(l[0].0, "stale_feed");
    // The tick no longer asks for this series: the lock holds the run (and the other run has no limit).
    let mut conn = app.ctx.db.acquire().await.unwrap();
    assert!(
        backend::paper::feed::stale(&mut conn, clock.now())
            .await
            .unwrap()
            .is_empty()
    );
    drop(conn);
    assert_eq!(l[0].2, live.time[2], "found at the last candle processed");
    assert_eq!(events(&app, run).await.len(), 1);
    assert!(locks(&app, unlimited).await.is_empty());
    let detail = act::get(&ann, &app.ctx, Owner::Me, run).await.unwrap();
    assert_eq!(detail.effective_gate, "halt");
    // The feed comes back: its candles are processed under the lock until the owner releases it.
    store_candles(&app, inst, &live.slice(3..6)).await;
    advance(&app, inst).await;
    let c = candles(&app, run).await;
    assert_eq!(
        c[3..].iter().map(|c| c.1.as_str()).collect::<Vec<_>>(),
        ["halt", "halt", "halt"]
    );
    assert_eq!(
        candles(&app, unlimited).await[3..]
            .iter()
            .map(|c| c.1.as_str())
            .collect::<Vec<_>>(),
        ["open", "open", "open"]
    );
}

#[tokio::test]
async fn paper_risk_rest_sets_limits_at_start_and_later_and_releases_locks_for_the_owner_only() {
    let app = app_without_workers().await;
    let (history, live) = shifted("ETH-BTC-5m.csv", 1000);
    let inst = series(&app, &history).await;
    let ann = token(&app, "ann@example.org", Role::Trader, Scope::ReadWrite).await;
    let ann_ro = token(&app, "ann@example.org", Role::Trader, Scope::Read).await;
    let bob = token(&app, "bob@example.org", Role::Trader, Scope::ReadWrite).await;
    let (st, body) = call(
        &app,
        Method::POST,
        "/api/v1/strategies",
        Some(&ann),
        Some(json!({ "name": "SMA", "source": SMA })),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    let strategy_id = body["id"].as_str().unwrap().to_owned();
    let start = |risk: Value| {
        json!({ "strategy_id": strategy_id, "instrument_ids": [inst], "timeframe": "5m", "fee": 0.001,
                "risk": risk })
    };
    // A bad limit names its field.
    let (st, body) = call(
        &app,
        Method::POST,
        "/api/v1/paper-runs",
        Some(&ann),
        Some(start(json!({ "max_drawdown_pct": 101 }))),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["field"], "risk.max_drawdown_pct", "{body}");
    let (st, body) = call(
        &app,
        Method::POST,
        "/api/v1/paper-runs",
        Some(&ann),
        Some(start(
            json!({ "max_position_value": 5000, "mode": "reduce_only" }),
        )),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    let id = body["runs"][0]["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/paper-runs/{id}");
    let (_, detail) = call(&app, Method::GET, &path, Some(&ann), None).await;
    assert_eq!(detail["risk_limits"]["max_position_value"], 5000.0);
    assert_eq!(detail["risk_limits"]["mode"], "reduce_only");
    assert_eq!(detail["risk_limits"]["max_drawdown_pct"], Value::Null);

    // PATCH: given fields change, others stay, 0 turns off.
    let risk_path = format!("{path}/risk");
    let (st, body) = call(
        &app,
        Method::PATCH,
        &risk_path,
        Some(&ann),
        Some(json!({ "max_drawdown_pct": 30, "max_position_value": 0, "mode": "halt" })),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_eq!(body["risk_limits"]["max_drawdown_pct"], 30.0);
    assert_eq!(body["risk_limits"]["max_position_value"], Value::Null);
    assert_eq!(body["risk_limits"]["mode"], "halt");
    let (st, body) = call(
        &app,
        Method::PATCH,
        &risk_path,
        Some(&ann),
        Some(json!({ "mode": "open" })),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["field"], "mode");
    for (who, want) in [
        (Some(&bob), StatusCode::NOT_FOUND),
        (Some(&ann_ro), StatusCode::FORBIDDEN),
        (None, StatusCode::UNAUTHORIZED),
    ] {
        let (st, body) = call(
            &app,
            Method::PATCH,
            &risk_path,
            who.map(String::as_str),
            Some(json!({ "max_drawdown_pct": 1 })),
        )
        .await;
        assert_eq!(st, want, "{body}");
        let (st, _) = call(
            &app,
            Method::POST,
            &format!("{risk_path}/release"),
            who.map(String::as_str),
            None,
        )
        .await;
        assert_eq!(st, want);
    }
    // Nothing to release yet.
    let (st, _) = call(
        &app,
        Method::POST,
        &format!("{risk_path}/release"),
        Some(&ann),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::CONFLICT);
    // A position over the limit locks the run; the owner releases it.
    call(
        &app,
        Method::PATCH,
        &risk_path,
        Some(&ann),
        Some(json!({ "max_position_value": 5000 })),
    )
    .await;
    let id: Uuid = id.parse().unwrap();
    store_candles(&app, inst, &live.slice(0..150)).await;
    advance(&app, inst).await;
    assert!(!locks(&app, id).await.is_empty());
    let (_, detail) = call(&app, Method::GET, &path, Some(&ann), None).await;
    assert_eq!(detail["effective_gate"], "halt", "{detail}");
    assert_eq!(detail["risk_locks"][0]["limit"], "max_position_value");
    assert_eq!(detail["risk_locks"][0]["active"], true);
    let (st, body) = call(
        &app,
        Method::POST,
        &format!("{risk_path}/release"),
        Some(&ann),
        Some(json!({ "reason": "reviewed" })),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_eq!(body["risk_locks"][0]["active"], false);
    assert_eq!(body["risk_locks"][0]["release_reason"], "reviewed");
    let (_, detail) = call(&app, Method::GET, &path, Some(&ann), None).await;
    assert_eq!(detail["effective_gate"], "open");
}

#[tokio::test]
async fn paper_risk_limits_trip_through_the_real_etl_and_workers() {
    use backend::market::{
        Pair,
        binance::BinanceClient,
        etl::{self, Mode, RunRequest},
    };
    use server::mock_exchange::MockExchange;
    use std::time::{Duration, Instant};

    let t = |s: &str| {
        chrono::DateTime::parse_from_rfc3339(s)
            .unwrap()
            .timestamp_millis()
    };
    let mock = MockExchange::load(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/market"),
    )
    .unwrap();
    let addr = mock.spawn(([127, 0, 0, 1], 0).into()).await.unwrap();
    mock.set_clock(t("2018-01-15T00:00:00Z"), 0.0);
    let app = crate::helpers::spawn_app_with(Options {
        workers: true,
        env: vec![
            ("MARKET_DATA_URL", format!("http://{addr}")),
            ("MARKET_UPDATE_INTERVAL_SECS", "1".into()),
            ("MARKET_CHUNK_CANDLES", "2000".into()),
            ("MARKET_PAGE_LIMIT", "500".into()),
            ("PAPER_WARMUP_BARS", "100".into()),
            ("PAPER_TICK_SECS", "1".into()),
        ],
    })
    .await;
    let client = BinanceClient::new(&app.ctx.settings.market).unwrap();
    let req = RunRequest {
        pair: Pair::parse("ETH/BTC").unwrap(),
        timeframe: backend::market::Timeframe::M5,
        mode: Mode::Daily,
        from: Some(t("2018-01-14T00:00:00Z")),
        to: None,
    };
    let plan = etl::plan_run(&app.ctx, &req, client.server_time().await.unwrap())
        .await
        .unwrap();
    etl::run_inline(&app.ctx, &client, &plan, true, |_| {})
        .await
        .unwrap();
    let inst = plan.instrument.instrument_id;
    let ann = trader(&app, "ann@example.org").await;
    let s = strategy(&app, &ann, SMA).await;
    let mut losses = new_run(s, inst);
    losses.risk = risk(|r| {
        r.max_consecutive_losses = Some(1);
        r.mode = Some("reduce_only".into());
    });
    let losses = act::start(&ann, &app.ctx, Owner::Me, &losses)
        .await
        .unwrap()
        .run_ids[0];
    let mut orders = new_run(s, inst);
    orders.risk = risk(|r| r.max_orders_per_day = Some(2));
    let orders = act::start(&ann, &app.ctx, Owner::Me, &orders)
        .await
        .unwrap()
        .run_ids[0];
    let free = act::start(&ann, &app.ctx, Owner::Me, &new_run(s, inst))
        .await
        .unwrap()
        .run_ids[0];

    // 150 candles close; the ETL stores them and a worker advances the runs.
    mock.advance(150 * 300_000);
    let deadline = Instant::now() + Duration::from_secs(60);
    for id in [losses, orders, free] {
        loop {
            let n: i32 = sqlx::query_scalar(
                "select candles_processed from paper_run where paper_run_id = $1",
            )
            .bind(id)
            .fetch_one(&app.ctx.db)
            .await
            .unwrap();
            if n >= 150 {
                assert_eq!(n, 150);
                break;
            }
            assert!(
                Instant::now() < deadline,
                "only {n} of 150 candles processed"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    assert_tripped(&app, losses, "consecutive_losses", "reduce_only").await;
    assert_tripped(&app, orders, "max_orders_per_day", "halt").await;
    assert!(locks(&app, free).await.is_empty());
    // The run without limits matches its backtest; the limited ones differ by the risk action only.
    let report = act::parity(&ann, &app.ctx, Owner::Me, free).await.unwrap();
    assert!(report.differences.is_empty(), "{:#?}", report.differences);
    let report = act::parity(&ann, &app.ctx, Owner::Me, orders)
        .await
        .unwrap();
    assert!(!report.differences.is_empty());
    assert!(
        report.differences.iter().all(|d| d.cause == "risk action"),
        "{:#?}",
        report.differences
    );
}

#[tokio::test]
async fn paper_risk_the_cli_sets_limits_at_start_and_later_and_releases_locks() {
    use clap::Parser;
    use server::commands::paper::{PaperCommand, run};

    #[derive(Parser)]
    struct Cli {
        #[command(subcommand)]
        command: PaperCommand,
    }
    let cli = |args: &[&str]| {
        Cli::try_parse_from(std::iter::once("paper").chain(args.iter().copied()))
            .unwrap()
            .command
    };
    let app = app_without_workers().await;
    let (history, _) = shifted("ETH-BTC-5m.csv", 1000);
    series(&app, &history).await;
    let ann = trader(&app, "ann@example.org").await;
    let s = strategy(&app, &ann, SMA).await;
    let sid = s.to_string();
    let code = run(
        app.ctx.clone(),
        cli(&[
            "start",
            "--email",
            "ann@example.org",
            "--strategy",
            &sid,
            "--instrument",
            "ETHBTC",
            "--timeframe",
            "5m",
            "--fee",
            "0.001",
            "--max-drawdown-pct",
            "12",
            "--risk-mode",
            "flatten",
        ]),
    )
    .await
    .unwrap();
    assert_eq!(code, std::process::ExitCode::SUCCESS);
    let (id, limits): (Uuid, Value) =
        sqlx::query_as("select paper_run_id, risk_limits from paper_run")
            .fetch_one(&app.ctx.db)
            .await
            .unwrap();
    assert_eq!(limits["max_drawdown_pct"], 12.0);
    assert_eq!(limits["mode"], "flatten");
    let idt = id.to_string();
    let code = run(
        app.ctx.clone(),
        cli(&[
            "risk",
            "--email",
            "ann@example.org",
            &idt,
            "--max-drawdown-pct",
            "0",
            "--max-orders-per-day",
            "3",
        ]),
    )
    .await
    .unwrap();
    assert_eq!(code, std::process::ExitCode::SUCCESS);
    let limits: Value = sqlx::query_scalar("select risk_limits from paper_run")
        .fetch_one(&app.ctx.db)
        .await
        .unwrap();
    assert_eq!(limits["max_drawdown_pct"], Value::Null);
    assert_eq!(limits["max_orders_per_day"], 3);
    assert_eq!(limits["mode"], "flatten");
    // A refused change (a bad value; nothing to release) exits 1 and changes nothing.
    for args in [
        vec![
            "risk",
            "--email",
            "ann@example.org",
            &idt,
            "--risk-mode",
            "open",
        ],
        vec!["risk", "--email", "ann@example.org", &idt, "--release"],
    ] {
        let code = run(app.ctx.clone(), cli(&args)).await.unwrap();
        assert_eq!(code, std::process::ExitCode::FAILURE, "{args:?}");
    }
    let audited: i64 = sqlx::query_scalar(
        "select count(*) from audit_event where event = 'paper_risk_limits_changed'",
    )
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    assert_eq!(audited, 1);
}
