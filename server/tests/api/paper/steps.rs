//! The `paper_advance` step, called directly on a series fed by the test.

use backend::paper::{
    actions::{self as act, Owner},
    control::Command,
};
use chrono::{DateTime, Utc};

use super::{
    SMA, advance, app_without_workers, fills, new_run, series, shifted, start, state,
    store_candles, strategy, trader,
};

async fn live_from(app: &crate::helpers::TestApp, run: uuid::Uuid) -> i64 {
    let t: DateTime<Utc> =
        sqlx::query_scalar("select live_from from paper_run where paper_run_id = $1")
            .bind(run)
            .fetch_one(&app.ctx.db)
            .await
            .unwrap();
    t.timestamp_millis()
}

#[tokio::test]
async fn paper_each_candle_is_processed_once_in_order_and_the_run_equals_a_backtest_of_its_window()
{
    let app = app_without_workers().await;
    let (history, live) = shifted("ETH-BTC-5m.csv", 1000);
    let inst = series(&app, &history).await;
    let ann = trader(&app, "ann@example.org").await;
    let sid = strategy(&app, &ann, SMA).await;
    let run = start(&app, &ann, &new_run(sid, inst)).await;
    let from = live_from(&app, run).await;
    // Nothing new yet: the step does nothing.
    assert_eq!(advance(&app, inst).await.candles, 0);

    let live = live.slice(0..400);
    let mut expected = 0;
    for chunk in (0..live.len()).step_by(50) {
        let part = live.slice(chunk..(chunk + 50).min(live.len()));
        store_candles(&app, inst, &part).await;
        let n = part.time.iter().filter(|&&t| t >= from).count();
        expected += n;
        let out = advance(&app, inst).await;
        assert_eq!(out.candles, n, "every new candle once");
        // A second delivery of the same job finds nothing to do.
        let again = advance(&app, inst).await;
        assert_eq!((again.candles, again.fills), (0, 0));
    }
    let (rows, last, trades, _) = state(&app, run).await;
    assert_eq!(rows, expected as i64);
    assert_eq!(last, live.time.last().copied());
    assert!(
        trades >= 3,
        "the strategy should trade in 400 candles, got {trades}"
    );
    let f = fills(&app, run).await;
    let detail = act::get(&ann, &app.ctx, Owner::Me, run).await.unwrap();
    let open = usize::from(detail.position.is_some());
    assert_eq!(f.len(), 2 * trades as usize + open);
    // Fills alternate buy, sell in time order.
    for (i, row) in f.iter().enumerate() {
        assert_eq!(row.1, if i % 2 == 0 { "buy" } else { "sell" }, "{f:?}");
    }

    // The parity report: a backtest of the same window with the same settings finds every trade.
    let report = act::parity(&ann, &app.ctx, Owner::Me, run).await.unwrap();
    assert!(report.differences.is_empty(), "{:#?}", report.differences);
    assert_eq!(report.matched, trades as usize);
    assert!(
        report.summary.starts_with("No differences"),
        "{}",
        report.summary
    );
    if open == 1 {
        assert_eq!(report.open_position_matches, Some(true));
    }
    // Every processed candle carries its decision (the engine's trace of that bar).
    let decisions: Vec<serde_json::Value> = sqlx::query_scalar(
        "select decision from paper_candle where paper_run_id = $1 order by open_time",
    )
    .bind(run)
    .fetch_all(&app.ctx.db)
    .await
    .unwrap();
    assert!(
        decisions
            .iter()
            .all(|d| d["entry_rules"].is_array() && d["values"].is_array())
    );
    assert!(decisions.iter().any(|d| {
        d["actions"]
            .to_string()
            .contains("buy at the next bar's open")
    }));
}

#[tokio::test]
async fn paper_a_step_rolled_back_at_any_point_leaves_nothing_and_the_retry_takes_effect_once() {
    let app = app_without_workers().await;
    let (history, live) = shifted("ETH-BTC-5m.csv", 1000);
    let inst = series(&app, &history).await;
    let ann = trader(&app, "ann@example.org").await;
    let sid = strategy(&app, &ann, SMA).await;
    let run = start(&app, &ann, &new_run(sid, inst)).await;
    let live = live.slice(0..240);
    for chunk in (0..live.len()).step_by(40) {
        store_candles(&app, inst, &live.slice(chunk..chunk + 40)).await;
        let before = (state(&app, run).await, fills(&app, run).await);
        // The worker "dies" before its commit: three times, nothing of the step is visible.
        for _ in 0..3 {
            let mut tx = app.ctx.db.begin().await.unwrap();
            let out = backend::paper::advance::advance(
                &app.ctx,
                &mut tx,
                inst,
                backend::market::Timeframe::M5,
            )
            .await
            .unwrap();
            assert!(out.candles > 0);
            tx.rollback().await.unwrap();
            assert_eq!((state(&app, run).await, fills(&app, run).await), before);
        }
        advance(&app, inst).await;
        assert_ne!(state(&app, run).await, before.0);
    }
    let report = act::parity(&ann, &app.ctx, Owner::Me, run).await.unwrap();
    assert!(report.differences.is_empty(), "{:#?}", report.differences);
    // No event twice: each fill's event has its own dedupe key.
    let (events, distinct): (i64, i64) = sqlx::query_as(
        "select count(*), count(distinct dedupe_key) from notify_event where paper_run_id = $1 and event_type = 'paper.fill'",
    )
    .bind(run)
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    assert_eq!(events, distinct);
    assert_eq!(events as usize, fills(&app, run).await.len());
}

#[tokio::test]
async fn paper_a_gap_in_the_feed_is_recorded_and_raised_never_filled() {
    let app = app_without_workers().await;
    let (history, live) = shifted("ETH-BTC-5m.csv", 1000);
    let inst = series(&app, &history).await;
    let ann = trader(&app, "ann@example.org").await;
    let sid = strategy(&app, &ann, SMA).await;
    let run = start(&app, &ann, &new_run(sid, inst)).await;
    store_candles(&app, inst, &live.slice(0..10)).await;
    store_candles(&app, inst, &live.slice(13..20)).await;
    advance(&app, inst).await;
    let gaps: Vec<(DateTime<Utc>, DateTime<Utc>, i32)> =
        sqlx::query_as("select gap_from, gap_to, candles from paper_gap where paper_run_id = $1")
            .bind(run)
            .fetch_all(&app.ctx.db)
            .await
            .unwrap();
    assert_eq!(gaps.len(), 1);
    assert_eq!(gaps[0].0.timestamp_millis(), live.time[10]);
    assert_eq!(gaps[0].1.timestamp_millis(), live.time[13]);
    assert_eq!(gaps[0].2, 3);
    let raised: i64 = sqlx::query_scalar(
        "select count(*) from notify_event where paper_run_id = $1 and event_type = 'paper.data_gap'",
    )
    .bind(run)
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    assert_eq!(raised, 1);
    // The missing candles arrive late: they are not processed (the run went past them), nothing changes.
    let before = state(&app, run).await;
    store_candles(&app, inst, &live.slice(10..13)).await;
    assert_eq!(advance(&app, inst).await.candles, 0);
    assert_eq!(state(&app, run).await, before);
    let detail = act::get(&ann, &app.ctx, Owner::Me, run).await.unwrap();
    assert_eq!(detail.gaps.len(), 1);
    assert!(detail.notice.is_none());
}

#[tokio::test]
async fn paper_pause_halts_orders_resume_trades_again_and_stop_with_flatten_sells_at_the_next_open()
{
    let app = app_without_workers().await;
    let (history, live) = shifted("ETH-BTC-5m.csv", 1000);
    let inst = series(&app, &history).await;
    let ann = trader(&app, "ann@example.org").await;
    let sid = strategy(&app, &ann, SMA).await;
    let run = start(&app, &ann, &new_run(sid, inst)).await;
    let mut k = 0;
    // Feed until the run holds a position.
    loop {
        store_candles(&app, inst, &live.slice(k..k + 1)).await;
        advance(&app, inst).await;
        k += 1;
        if act::get(&ann, &app.ctx, Owner::Me, run)
            .await
            .unwrap()
            .position
            .is_some()
        {
            break;
        }
        assert!(k < 300, "no entry in 300 candles");
    }
    // Pause: candles keep coming and are processed under `halt`; no buy happens while paused.
    let c = act::control(&ann, &app.ctx, Owner::Me, run, Command::Pause)
        .await
        .unwrap();
    assert_eq!(c.status.as_str(), "paused");
    assert!(
        act::control(&ann, &app.ctx, Owner::Me, run, Command::Pause)
            .await
            .is_err()
    );
    let paused_from = live.time[k];
    store_candles(&app, inst, &live.slice(k..k + 60)).await;
    advance(&app, inst).await;
    k += 60;
    let gates: Vec<String> = sqlx::query_scalar(
        "select gate from paper_candle where paper_run_id = $1 and open_time >= $2 order by open_time",
    )
    .bind(run)
    .bind(backend::market::to_datetime(paused_from))
    .fetch_all(&app.ctx.db)
    .await
    .unwrap();
    assert_eq!(gates.len(), 60);
    assert!(gates.iter().all(|g| g == "halt"));
    let buys_while_paused: i64 = sqlx::query_scalar(
        "select count(*) from paper_fill where paper_run_id = $1 and side = 'buy' and open_time > $2",
    )
    .bind(run)
    .bind(backend::market::to_datetime(paused_from))
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    assert_eq!(buys_while_paused, 0);
    // Resume, then feed until it holds a position again.
    act::control(&ann, &app.ctx, Owner::Me, run, Command::Resume)
        .await
        .unwrap();
    loop {
        store_candles(&app, inst, &live.slice(k..k + 1)).await;
        advance(&app, inst).await;
        k += 1;
        if act::get(&ann, &app.ctx, Owner::Me, run)
            .await
            .unwrap()
            .position
            .is_some()
        {
            break;
        }
        assert!(k < 800, "no entry after resuming");
    }
    // Stop with flatten: `stopping`; the next candle's close submits the sell, which fills at the open after
    // it (the fill model: decisions at a close, fills at the next open); then the run stops.
    let c = act::control(
        &ann,
        &app.ctx,
        Owner::Me,
        run,
        Command::Stop { flatten: true },
    )
    .await
    .unwrap();
    assert_eq!(c.status.as_str(), "stopping");
    store_candles(&app, inst, &live.slice(k..k + 5)).await;
    advance(&app, inst).await;
    let d = act::get(&ann, &app.ctx, Owner::Me, run).await.unwrap();
    assert_eq!(d.summary.status.as_str(), "stopped");
    assert!(d.position.is_none());
    let last_sell: (DateTime<Utc>, String, f64) = sqlx::query_as(
        "select open_time, reason, price from paper_fill where paper_run_id = $1 and side = 'sell' order by open_time desc limit 1",
    )
    .bind(run)
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    assert_eq!(last_sell.1, "flatten");
    assert_eq!(last_sell.0.timestamp_millis(), live.time[k + 1]);
    // Sold at that candle's open, less the slippage (2 bps).
    assert!((last_sell.2 - live.open[k + 1] * (1.0 - 0.0002)).abs() < 1e-12);
    let processed: i64 = sqlx::query_scalar(
        "select count(*) from paper_candle where paper_run_id = $1 and open_time > $2",
    )
    .bind(run)
    .bind(backend::market::to_datetime(live.time[k + 1]))
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    assert_eq!(processed, 0, "nothing after the flattening fill");
    // A stopped run processes nothing more.
    let before = state(&app, run).await;
    store_candles(&app, inst, &live.slice(k + 5..k + 20)).await;
    assert_eq!(advance(&app, inst).await.candles, 0);
    assert_eq!(state(&app, run).await, before);
    // Every change is audited.
    let audited: i64 = sqlx::query_scalar(
        "select count(*) from audit_event where event in ('paper_paused', 'paper_resumed', 'paper_stopped')",
    )
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    assert_eq!(audited, 3);
}

#[tokio::test]
async fn paper_a_revised_candle_under_the_run_is_noticed_and_the_parity_report_names_it() {
    let app = app_without_workers().await;
    let (history, live) = shifted("ETH-BTC-5m.csv", 1000);
    let inst = series(&app, &history).await;
    let ann = trader(&app, "ann@example.org").await;
    let sid = strategy(&app, &ann, SMA).await;
    let run = start(&app, &ann, &new_run(sid, inst)).await;
    store_candles(&app, inst, &live.slice(0..200)).await;
    advance(&app, inst).await;
    let trades = state(&app, run).await.2;
    assert!(trades > 0);
    // The exchange "revises" every processed candle's close (a re-import): history changed under the run.
    sqlx::query("update candle set close = close * 1.01, high = greatest(high, close * 1.01) where instrument_id = $1 and open_time >= $2")
        .bind(inst)
        .bind(backend::market::to_datetime(live.time[0]))
        .execute(&app.ctx.db)
        .await
        .unwrap();
    store_candles(&app, inst, &live.slice(200..201)).await;
    advance(&app, inst).await;
    let d = act::get(&ann, &app.ctx, Owner::Me, run).await.unwrap();
    assert!(
        d.notice.as_deref().is_some_and(|n| n.contains("changed")),
        "{:?}",
        d.notice
    );
    let report = act::parity(&ann, &app.ctx, Owner::Me, run).await.unwrap();
    assert!(!report.differences.is_empty());
    assert!(
        report
            .differences
            .iter()
            .all(|x| x.cause == "revised candle"),
        "{:#?}",
        report.differences
    );
}

#[tokio::test]
async fn paper_the_plan_limits_active_runs_and_a_stopped_run_frees_its_place() {
    let app = crate::helpers::spawn_app_with(crate::helpers::Options {
        workers: false,
        env: vec![
            ("MARKET_DATA_URL", "http://127.0.0.1:9".into()),
            ("PAPER_MAX_ACTIVE_RUNS", "2".into()),
        ],
    })
    .await;
    let (history, _) = shifted("ETH-BTC-5m.csv", 1000);
    let inst = series(&app, &history).await;
    let ann = trader(&app, "ann@example.org").await;
    let sid = strategy(&app, &ann, SMA).await;
    let a = start(&app, &ann, &new_run(sid, inst)).await;
    start(&app, &ann, &new_run(sid, inst)).await;
    let e = act::start(&ann, &app.ctx, Owner::Me, &new_run(sid, inst))
        .await
        .unwrap_err();
    assert_eq!(e.code(), "plan_limit", "{e}");
    assert!(e.to_string().contains('2'), "{e}");
    // Another trader is not affected; stopping one run frees a place.
    let bob = trader(&app, "bob@example.org").await;
    let bob_sid = strategy(&app, &bob, SMA).await;
    start(&app, &bob, &new_run(bob_sid, inst)).await;
    act::control(
        &ann,
        &app.ctx,
        Owner::Me,
        a,
        Command::Stop { flatten: false },
    )
    .await
    .unwrap();
    start(&app, &ann, &new_run(sid, inst)).await;
    let runs: i64 = sqlx::query_scalar("select count(*) from paper_run")
        .fetch_one(&app.ctx.db)
        .await
        .unwrap();
    assert_eq!(runs, 4);
}
