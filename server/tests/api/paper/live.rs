//! The whole path with real workers: the mock exchange's clock moves, the scheduled ETL stores the candles
//! that closed, the ETL's hook enqueues `paper_advance`, a worker advances the run; the result equals a
//! backtest of the same window.

use std::path::Path;
use std::time::{Duration, Instant};

use backend::{
    market::{
        Pair, Timeframe,
        binance::BinanceClient,
        etl::{self, Mode, RunRequest},
    },
    paper::actions::{self as act, Owner},
};
use server::mock_exchange::MockExchange;

use super::{SMA, new_run, strategy, trader};
use crate::helpers::{Options, TestApp, spawn_app_with};

fn t(s: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(s)
        .unwrap()
        .timestamp_millis()
}

async fn processed(app: &TestApp, run: uuid::Uuid) -> i32 {
    sqlx::query_scalar("select candles_processed from paper_run where paper_run_id = $1")
        .bind(run)
        .fetch_one(&app.ctx.db)
        .await
        .unwrap()
}

async fn wait_processed(app: &TestApp, run: uuid::Uuid, n: i32) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got = processed(app, run).await;
        if got >= n {
            assert_eq!(got, n, "processed more candles than have closed");
            return;
        }
        assert!(
            Instant::now() < deadline,
            "only {got} of {n} candles processed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn paper_the_mock_exchange_clock_drives_a_run_through_the_real_etl_and_workers() {
    let mock =
        MockExchange::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/market")).unwrap();
    let addr = mock.spawn(([127, 0, 0, 1], 0).into()).await.unwrap();
    mock.set_clock(t("2018-01-15T00:00:00Z"), 0.0);
    let app = spawn_app_with(Options {
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
    // History for the warm-up (the series becomes tracked).
    let client = BinanceClient::new(&app.ctx.settings.market).unwrap();
    let req = RunRequest {
        pair: Pair::parse("ETH/BTC").unwrap(),
        timeframe: Timeframe::M5,
        mode: Mode::Daily,
        from: Some(t("2018-01-14T00:00:00Z")),
        to: None,
    };
    let run = etl::plan_run(&app.ctx, &req, client.server_time().await.unwrap())
        .await
        .unwrap();
    etl::run_inline(&app.ctx, &client, &run, true, |_| {})
        .await
        .unwrap();
    let inst = run.instrument.instrument_id;

    let ann = trader(&app, "ann@example.org").await;
    let sid = strategy(&app, &ann, SMA).await;
    let id = act::start(&ann, &app.ctx, Owner::Me, &new_run(sid, inst))
        .await
        .unwrap()
        .run_ids[0];
    let d = act::get(&ann, &app.ctx, Owner::Me, id).await.unwrap();
    // The run starts on the exchange's clock: its first decision is on the candle open now.
    assert_eq!(
        d.summary.live_from.timestamp_millis(),
        t("2018-01-15T00:00:00Z")
    );

    // Downtime-sized jump: 150 candles close at once and are caught up in order.
    mock.advance(150 * 300_000);
    wait_processed(&app, id, 150).await;
    // Then one candle at a time, as live.
    for k in 1..=3 {
        mock.advance(300_000);
        wait_processed(&app, id, 150 + k).await;
    }
    let d = act::get(&ann, &app.ctx, Owner::Me, id).await.unwrap();
    assert_eq!(
        d.summary.last_candle.unwrap().timestamp_millis(),
        t("2018-01-15T12:40:00Z")
    );
    assert!(d.summary.trade_count >= 2, "{}", d.summary.trade_count);
    let report = act::parity(&ann, &app.ctx, Owner::Me, id).await.unwrap();
    assert!(report.differences.is_empty(), "{:#?}", report.differences);
    assert_eq!(report.matched, d.summary.trade_count as usize);
    // The fills reached the notification stream.
    let fills: i64 = sqlx::query_scalar(
        "select count(*) from notify_event where paper_run_id = $1 and event_type = 'paper.fill'",
    )
    .bind(id)
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    assert!(fills >= 2 * i64::from(d.summary.trade_count));
}
