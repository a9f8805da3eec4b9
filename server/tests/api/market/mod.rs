//! Market data end to end: the ETL against the in-process mock exchange over real HTTP (pagination, faults,
//! open candles, resume, time replay and the scheduled update), CSV import, coverage on the real files, the
//! Market data page and the JSON endpoints.

use std::path::{Path, PathBuf};

use backend::market::{Pair, Timeframe, csv_import::ImportOptions, parse_time, store};
use server::mock_exchange::MockExchange;

use crate::helpers::{Options, TestApp, spawn_app_with};

mod blocks;
mod etl_runs;
mod import;
mod loading;
mod page;

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/market")
}

fn csv(name: &str) -> engine::candles::Candles {
    let text = std::fs::read_to_string(data_dir().join(name)).unwrap();
    engine::csv::parse_candles(&text, None).unwrap().0
}

fn t(s: &str) -> i64 {
    parse_time(s).unwrap()
}

/// The mock exchange on a free port, and an app whose market source is that mock.
async fn app_with_mock(workers: bool, env: Vec<(&'static str, String)>) -> (TestApp, MockExchange) {
    let mock = MockExchange::load(&data_dir()).unwrap();
    let addr = mock.spawn(([127, 0, 0, 1], 0).into()).await.unwrap();
    let mut all = vec![
        ("MARKET_DATA_URL", format!("http://{addr}")),
        ("MARKET_CHUNK_CANDLES", "2000".into()),
        ("MARKET_PAGE_LIMIT", "500".into()),
        ("MARKET_UPDATE_INTERVAL_SECS", "0".into()),
        ("MARKET_HTTP_TIMEOUT_SECS", "5".into()),
    ];
    all.extend(env);
    let app = spawn_app_with(Options { workers, env: all }).await;
    (app, mock)
}

async fn count(app: &TestApp) -> i64 {
    sqlx::query_scalar("select count(*) from candle")
        .fetch_one(&app.ctx.db)
        .await
        .unwrap()
}

async fn stored(app: &TestApp, instrument_id: i32, tf: Timeframe) -> engine::candles::Candles {
    store::load_candles(&app.ctx.db, instrument_id, tf, None, None, None)
        .await
        .unwrap()
}

fn import_opts(pair: &str, skip_bad_rows: bool) -> ImportOptions {
    ImportOptions {
        exchange: "demo".into(),
        pair: Pair::parse(pair).unwrap(),
        timeframe: None,
        skip_bad_rows,
    }
}
