//! Market-data tables. Every write is an idempotent upsert keyed on the table's natural key, so a chunk that is
//! stored twice (a re-run, a duplicate delivery) changes nothing the second time and counts nothing twice.

pub mod blocks;
mod candles;
mod coverage_upkeep;
mod runs;

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};

use super::{Pair, Timeframe, to_millis};

pub use candles::{count_candles, load_candles, upsert_candles};
pub use runs::{
    NewRun, RunRow, add_progress, chunk_done, fail_run, insert_run, recent_runs, record_chunk, run,
};

/// An instrument row.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Instrument {
    pub instrument_id: i32,
    pub exchange: String,
    pub symbol: String,
    pub base: String,
    pub quote: String,
    pub price_tick: Option<f64>,
    pub quantity_step: Option<f64>,
    pub active: bool,
}

impl Instrument {
    /// `BASE/QUOTE`.
    pub fn pair_label(&self) -> String {
        format!("{}/{}", self.base, self.quote)
    }
}

/// Finds or creates the instrument `pair` on `exchange`. Returns it.
///
/// # Errors
/// Database errors.
pub async fn ensure_instrument(
    conn: &mut PgConnection,
    exchange: &str,
    pair: &Pair,
) -> sqlx::Result<Instrument> {
    // `do update` (a no-op) rather than `do nothing`, so `returning` yields the existing row too.
    sqlx::query_as!(
        Instrument,
        r#"insert into instrument (exchange, symbol, base, quote)
           values ($1, $2, $3, $4)
           on conflict (exchange, symbol) do update set exchange = excluded.exchange
           returning instrument_id, exchange, symbol, base, quote, price_tick, quantity_step, active"#,
        exchange,
        pair.symbol(),
        pair.base.as_str(),
        pair.quote.as_str(),
    )
    .fetch_one(conn)
    .await
}

/// One instrument by id.
///
/// # Errors
/// Database errors.
pub async fn instrument(pool: &PgPool, instrument_id: i32) -> sqlx::Result<Option<Instrument>> {
    sqlx::query_as!(
        Instrument,
        r#"select instrument_id, exchange, symbol, base, quote, price_tick, quantity_step, active
           from instrument where instrument_id = $1"#,
        instrument_id,
    )
    .fetch_optional(pool)
    .await
}

/// Every instrument, by exchange and symbol.
///
/// # Errors
/// Database errors.
pub async fn instruments(pool: &PgPool) -> sqlx::Result<Vec<Instrument>> {
    sqlx::query_as!(
        Instrument,
        r#"select instrument_id, exchange, symbol, base, quote, price_tick, quantity_step, active
           from instrument order by exchange, symbol"#,
    )
    .fetch_all(pool)
    .await
}

/// Records that the series exists (and optionally whether it is tracked) and, when `updated`, that candles were
/// written to it now.
///
/// # Errors
/// Database errors.
pub async fn touch_series(
    conn: &mut PgConnection,
    instrument_id: i32,
    timeframe: Timeframe,
    tracked: Option<bool>,
    updated: bool,
) -> sqlx::Result<()> {
    sqlx::query!(
        r#"insert into market_series (instrument_id, timeframe, tracked, last_update_at)
           values ($1, $2, coalesce($3, false), case when $4 then now() end)
           on conflict (instrument_id, timeframe) do update
             set tracked = coalesce($3, market_series.tracked),
                 last_update_at = case when $4 then now() else market_series.last_update_at end"#,
        instrument_id,
        timeframe.as_str(),
        tracked,
        updated,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// A tracked series, for the scheduled update.
#[derive(Debug, Clone)]
pub struct TrackedSeries {
    pub instrument: Instrument,
    pub timeframe: Timeframe,
}

/// Every tracked series of active instruments on `exchange`.
///
/// # Errors
/// Database errors.
pub async fn tracked_series(pool: &PgPool, exchange: &str) -> sqlx::Result<Vec<TrackedSeries>> {
    let rows = sqlx::query!(
        r#"select i.instrument_id, i.exchange, i.symbol, i.base, i.quote, i.price_tick, i.quantity_step,
                  i.active, s.timeframe
           from market_series s join instrument i using (instrument_id)
           where s.tracked and i.active and i.exchange = $1
           order by i.symbol, s.timeframe"#,
        exchange,
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|r| {
            Some(TrackedSeries {
                timeframe: Timeframe::parse(&r.timeframe).ok()?,
                instrument: Instrument {
                    instrument_id: r.instrument_id,
                    exchange: r.exchange,
                    symbol: r.symbol,
                    base: r.base,
                    quote: r.quote,
                    price_tick: r.price_tick,
                    quantity_step: r.quantity_step,
                    active: r.active,
                },
            })
        })
        .collect())
}

/// Open time of the newest stored candle of a series.
///
/// # Errors
/// Database errors.
pub async fn last_open_time(
    pool: &PgPool,
    instrument_id: i32,
    timeframe: Timeframe,
) -> sqlx::Result<Option<i64>> {
    let t: Option<DateTime<Utc>> = sqlx::query_scalar!(
        "select max(open_time) from candle where instrument_id = $1 and timeframe = $2",
        instrument_id,
        timeframe.as_str(),
    )
    .fetch_one(pool)
    .await?;
    Ok(t.map(to_millis))
}
