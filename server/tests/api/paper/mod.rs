//! Paper trading against real parts: Postgres, Redis, workers, the mock exchange's time replay.
//!
//! * [`steps`]: the `paper_advance` step called directly: exactly once per candle under duplicates and
//!   rollbacks at every point, catch-up, gaps, pause/resume/stop and flatten, parity.
//! * [`live`]: the whole path: mock exchange clock → scheduled ETL → hook → worker → fills, equal to a backtest.
//! * [`api`]: the REST API and CLI, authorization of every route.
//! * [`signals`]: inbound signals over HTTP (authentication, verdicts, the gate's effect on fills).

mod api;
mod bench;
mod cli;
mod crash;
mod kill;
mod live;
mod risk;
mod signals;
mod steps;

use std::path::Path;

use backend::{
    Actor,
    auth::{Role, Scope},
    backtest::{actions::strategies, strategies::NewStrategy},
    market::{Pair, Timeframe, store},
    paper::{
        NewPaperRun,
        actions::{self as act, Owner},
    },
};
use engine::candles::Candles;
use uuid::Uuid;

use crate::helpers::{Options, TestApp, spawn_app_with};

/// An app without workers (tests drive the steps), whose market source does not answer (a run's start is
/// the local clock).
pub async fn app_without_workers() -> TestApp {
    spawn_app_with(Options {
        workers: false,
        env: vec![
            ("MARKET_DATA_URL", "http://127.0.0.1:9".into()),
            ("PAPER_WARMUP_BARS", "100".into()),
            ("PAPER_TICK_SECS", "3600".into()),
        ],
    })
    .await
}

pub fn csv(name: &str) -> Candles {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../data/market")
        .join(name);
    let text = std::fs::read_to_string(path).unwrap();
    engine::csv::parse_candles(&text, None).unwrap().0
}

/// The candles of `name` moved in time so that candle `split` opens at the current 5-minute candle: the ones
/// before are history (warm-up), the rest arrive "live" as the test stores them.
pub fn shifted(name: &str, split: usize) -> (Candles, Candles) {
    let c = csv(name);
    let now = chrono::Utc::now().timestamp_millis();
    let shift = Timeframe::M5.floor(now) - c.time[split];
    let mut all = c.clone();
    for t in &mut all.time {
        *t += shift;
    }
    (all.slice(0..split), all.slice(split..all.len()))
}

/// A tracked ETHBTC 5m series with `history` stored; its instrument id.
pub async fn series(app: &TestApp, history: &Candles) -> i32 {
    let mut tx = app.ctx.db.begin().await.unwrap();
    let inst = store::ensure_instrument(
        &mut tx,
        &app.ctx.settings.market.exchange,
        &Pair::parse("ETH/BTC").unwrap(),
    )
    .await
    .unwrap();
    store::upsert_candles(&mut tx, inst.instrument_id, history)
        .await
        .unwrap();
    store::touch_series(&mut tx, inst.instrument_id, Timeframe::M5, Some(true), true)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    inst.instrument_id
}

/// Stores candles (as the ETL would).
pub async fn store_candles(app: &TestApp, instrument_id: i32, candles: &Candles) {
    let mut tx = app.ctx.db.begin().await.unwrap();
    store::upsert_candles(&mut tx, instrument_id, candles)
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

/// A confirmed trader acting through a read-write token.
pub async fn trader(app: &TestApp, email: &str) -> Actor {
    crate::helpers::api_actor(&app.ctx, email, Role::Trader, true, Scope::ReadWrite).await
}

/// A strategy of `actor`'s with `source`.
pub async fn strategy(app: &TestApp, actor: &Actor, source: &str) -> Uuid {
    strategies::create(
        actor,
        &app.ctx,
        NewStrategy {
            name: Some("SMA 3/8".into()),
            description: None,
            template: None,
            source: Some(source.into()),
        },
    )
    .await
    .unwrap()
}

/// A fast SMA cross that trades often on 5-minute candles.
pub const SMA: &str = "let fast = sma(close, 3)\nlet slow = sma(close, 8)\nentry long when crosses_above(fast, slow)\nexit long when crosses_below(fast, slow)\n";

pub fn new_run(strategy_id: Uuid, instrument_id: i32) -> NewPaperRun {
    NewPaperRun {
        strategy_id,
        version: None,
        params: vec![],
        instrument_ids: vec![instrument_id],
        timeframe: "5m".into(),
        initial_cash: 10_000.0,
        fee: Some(0.001),
        slippage_bps: 2.0,
        fill: "next_open".into(),
        warmup_bars: None,
        risk: Default::default(),
    }
}

/// Starts one run for `actor`; its id.
pub async fn start(app: &TestApp, actor: &Actor, new: &NewPaperRun) -> Uuid {
    act::start(actor, &app.ctx, Owner::Me, new)
        .await
        .unwrap()
        .run_ids[0]
}

/// One `paper_advance` step for the series, committed.
pub async fn advance(app: &TestApp, instrument_id: i32) -> backend::paper::advance::Advanced {
    let mut tx = app.ctx.db.begin().await.unwrap();
    let out = backend::paper::advance::advance(&app.ctx, &mut tx, instrument_id, Timeframe::M5)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    out
}

/// The run's fills as comparable rows (time ms, side, price bits, units bits, fee bits).
pub async fn fills(app: &TestApp, run: Uuid) -> Vec<(i64, String, u64, u64, u64)> {
    sqlx::query_as::<_, (chrono::DateTime<chrono::Utc>, String, f64, f64, f64)>(
        "select open_time, side, price, units, fee from paper_fill where paper_run_id = $1 order by open_time, side",
    )
    .bind(run)
    .fetch_all(&app.ctx.db)
    .await
    .unwrap()
    .into_iter()
    .map(|(t, s, p, u, f)| (t.timestamp_millis(), s, p.to_bits(), u.to_bits(), f.to_bits()))
    .collect()
}

/// (candles processed rows, last open time ms, trade_count, equity bits) of a run.
pub async fn state(app: &TestApp, run: Uuid) -> (i64, Option<i64>, i32, u64) {
    let rows: i64 = sqlx::query_scalar("select count(*) from paper_candle where paper_run_id = $1")
        .bind(run)
        .fetch_one(&app.ctx.db)
        .await
        .unwrap();
    let (last, trades, equity): (Option<chrono::DateTime<chrono::Utc>>, i32, f64) = sqlx::query_as(
        "select last_open_time, trade_count, equity from paper_run where paper_run_id = $1",
    )
    .bind(run)
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    (
        rows,
        last.map(|t| t.timestamp_millis()),
        trades,
        equity.to_bits(),
    )
}
