//! Benchmark helper (see bench/market.sh): loads one series from Postgres into engine columns and prints the
//! rows and the time taken.
//!
//! `DATABASE_URL=… cargo run --release -p backend --example market_load -- INSTRUMENT_ID TIMEFRAME`

use std::time::Instant;

use backend::market::{Timeframe, store};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let id: i32 = args.next().unwrap_or_default().parse()?;
    let tf = Timeframe::parse(&args.next().unwrap_or_default())?;
    let url = std::env::var("DATABASE_URL")?;
    let pool = sqlx::PgPool::connect(&url).await?;
    // Warm-up (connection, caches), then the measured load.
    store::load_candles(&pool, id, tf, None, None, Some(1)).await?;
    let started = Instant::now();
    let candles = store::load_candles(&pool, id, tf, None, None, None).await?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{} rows in {secs:.3} s ({:.0} rows/s)",
        candles.len(),
        candles.len() as f64 / secs
    );
    Ok(())
}
