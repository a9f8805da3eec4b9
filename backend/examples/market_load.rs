//! Benchmark helper (see bench/market.sh and bench/backtest.sh): loads one series from Postgres and prints, as
//! medians of ROUNDS interleaved rounds:
//! - `copy`: `COPY (…) TO STDOUT (FORMAT binary)` of the same rows, bytes received and dropped (the floor);
//! - `load_candles`: the loader the product uses (binary COPY decoded into engine columns);
//! - `rows`: the same rows through sqlx's row protocol into the columns (how candles were loaded before);
//!
//! and the ratio `load_candles / copy`.
//!
//! `DATABASE_URL=… cargo run --release -p backend --example market_load -- INSTRUMENT_ID TIMEFRAME [ROUNDS]`
#![allow(clippy::disallowed_methods)] // timing is the point of this binary

use std::time::Instant;

use backend::market::{Candles, Timeframe, store};
use futures::TryStreamExt;
use sqlx::postgres::PgPoolCopyExt;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

async fn rows(pool: &sqlx::PgPool, id: i32, tf: Timeframe) -> anyhow::Result<Candles> {
    use sqlx::Row;
    let mut out = Candles::with_capacity(tf, 1024);
    let mut rows = sqlx::query(
        "select open_time, open, high, low, close, volume from candle
         where instrument_id = $1 and timeframe = $2 order by open_time",
    )
    .bind(id)
    .bind(tf.as_str())
    .fetch(pool);
    while let Some(r) = rows.try_next().await? {
        let t: chrono::DateTime<chrono::Utc> = r.try_get(0)?;
        out.push(
            t.timestamp_millis(),
            r.try_get(1)?,
            r.try_get(2)?,
            r.try_get(3)?,
            r.try_get(4)?,
            r.try_get(5)?,
        );
    }
    Ok(out)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let id: i32 = args.next().unwrap_or_default().parse()?;
    let tf = Timeframe::parse(&args.next().unwrap_or_default())?;
    let rounds: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(7);
    let url = std::env::var("DATABASE_URL")?;
    let pool = sqlx::PgPool::connect(&url).await?;
    // Warm-up (connection, caches).
    store::load_candles(&pool, id, tf, None, None, Some(1)).await?;
    let copy_sql = format!(
        "copy (select open_time, open, high, low, close, volume from candle
               where instrument_id = {id} and timeframe = '{}' order by open_time) to stdout (format binary)",
        tf.as_str()
    );
    let (mut copy_s, mut load_s, mut rows_s) = (Vec::new(), Vec::new(), Vec::new());
    let (mut n, mut bytes) = (0, 0);
    for _ in 0..rounds {
        let t = Instant::now();
        let mut s = pool.copy_out_raw(&copy_sql).await?;
        bytes = 0;
        while let Some(chunk) = s.try_next().await? {
            bytes += chunk.len();
        }
        copy_s.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        let candles = store::load_candles(&pool, id, tf, None, None, None).await?;
        load_s.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        let via_rows = rows(&pool, id, tf).await?;
        rows_s.push(t.elapsed().as_secs_f64());
        anyhow::ensure!(candles == via_rows, "the two loaders disagree");
        n = candles.len();
    }
    let (c, l, r) = (median(copy_s), median(load_s), median(rows_s));
    println!(
        "{n} rows ({:.1} MB binary), median of {rounds}: copy {:.1} ms, load_candles {:.1} ms ({:.0} rows/s), rows {:.1} ms; load_candles / copy = {:.2}, rows / copy = {:.2}",
        bytes as f64 / 1e6,
        c * 1e3,
        l * 1e3,
        n as f64 / l,
        r * 1e3,
        l / c,
        r / c
    );
    Ok(())
}
