//! Writing and reading candles. [`upsert_candles`] is the one writer of the `candle` table.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};

use super::coverage_upkeep::{count_range, lock_coverage, update_coverage};
use crate::market::{Candles, Timeframe, to_datetime, to_millis};

/// Rows per `insert … select from unnest(…)` statement: large enough to amortise the round trip, small enough
/// to keep one statement's parameters (6 arrays) well below a few MB.
const UPSERT_BATCH: usize = 20_000;

/// Upserts `candles` (already validated) of one series. Returns the number of rows written: new candles plus
/// candles whose values changed; re-storing identical candles writes (and counts) nothing. The series'
/// coverage (`market_coverage`, `market_gap`) is brought up to date in the same transaction: this is the one
/// writer of candles, so the coverage tables always describe them.
///
/// # Errors
/// Database errors.
pub async fn upsert_candles(
    conn: &mut PgConnection,
    instrument_id: i32,
    candles: &Candles,
) -> sqlx::Result<u64> {
    if candles.is_empty() {
        return Ok(0);
    }
    let (first, last) = (candles.time[0], candles.time[candles.len() - 1]);
    // Writers of one series take turns (the coverage row is the lock), so each sees the others' candles when
    // it brings the coverage up to date.
    lock_coverage(conn, instrument_id, candles.timeframe).await?;
    let before = count_range(conn, instrument_id, candles.timeframe, first, last).await?;
    let written = if candles.len() > COPY_THRESHOLD {
        upsert_candles_via_copy(conn, instrument_id, candles).await?
    } else {
        upsert_candles_batched(conn, instrument_id, candles).await?
    };
    let after = count_range(conn, instrument_id, candles.timeframe, first, last).await?;
    update_coverage(
        conn,
        instrument_id,
        candles.timeframe,
        first,
        last,
        after - before,
    )
    .await?;
    Ok(written)
}

async fn upsert_candles_batched(
    conn: &mut PgConnection,
    instrument_id: i32,
    candles: &Candles,
) -> sqlx::Result<u64> {
    let tf = candles.timeframe.as_str();
    let mut written = 0;
    let mut start = 0;
    while start < candles.len() {
        let end = (start + UPSERT_BATCH).min(candles.len());
        let times: Vec<DateTime<Utc>> = candles.time[start..end]
            .iter()
            .map(|&t| to_datetime(t))
            .collect();
        let done = sqlx::query!(
            r#"insert into candle (instrument_id, timeframe, open_time, open, high, low, close, volume)
               select $1, $2, t.* from unnest($3::timestamptz[], $4::float8[], $5::float8[], $6::float8[],
                                              $7::float8[], $8::float8[]) as t
               on conflict (instrument_id, timeframe, open_time) do update
                 set open = excluded.open, high = excluded.high, low = excluded.low,
                     close = excluded.close, volume = excluded.volume
                 where (candle.open, candle.high, candle.low, candle.close, candle.volume)
                       is distinct from
                       (excluded.open, excluded.high, excluded.low, excluded.close, excluded.volume)"#,
            instrument_id,
            tf,
            &times,
            &candles.open[start..end],
            &candles.high[start..end],
            &candles.low[start..end],
            &candles.close[start..end],
            &candles.volume[start..end],
        )
        .execute(&mut *conn)
        .await?;
        written += done.rows_affected();
        start = end;
    }
    Ok(written)
}

/// Above this many candles, [`upsert_candles`] streams them with `COPY` into a temporary table and upserts from
/// there; into an empty range it inserts without `on conflict` (see the bench in docs/market-data.md).
const COPY_THRESHOLD: usize = 50_000;

async fn upsert_candles_via_copy(
    conn: &mut PgConnection,
    instrument_id: i32,
    candles: &Candles,
) -> sqlx::Result<u64> {
    use std::fmt::Write as _;
    // Runtime SQL in this function: the temporary table `candle_stage` does not exist when the macros check.
    sqlx::query(
        r#"create temp table if not exists candle_stage (
               open_ms bigint, open float8, high float8, low float8, close float8, volume float8)"#,
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query("truncate candle_stage")
        .execute(&mut *conn)
        .await?;
    let mut copy = conn
        .copy_in_raw("copy candle_stage from stdin (format text)")
        .await?;
    let mut buf = String::with_capacity(1 << 20);
    for i in 0..candles.len() {
        // f64's Display is the shortest text that parses back to the same value.
        let _ = writeln!(
            buf,
            "{}\t{}\t{}\t{}\t{}\t{}",
            candles.time[i],
            candles.open[i],
            candles.high[i],
            candles.low[i],
            candles.close[i],
            candles.volume[i]
        );
        if buf.len() >= 1 << 20 {
            copy.send(buf.as_bytes()).await?;
            buf.clear();
        }
    }
    if !buf.is_empty() {
        copy.send(buf.as_bytes()).await?;
    }
    copy.finish().await?;
    // Nothing stored yet in this range (the usual first import): a plain insert, about twice as fast as the
    // upsert. Should another writer insert the same candles meanwhile, the primary key fails this transaction
    // and nothing is stored; a retry takes the upsert path.
    let (first, last) = (candles.time[0], candles.time[candles.len() - 1]);
    let overlap = sqlx::query_scalar!(
        r#"select exists(select 1 from candle where instrument_id = $1 and timeframe = $2
                                                   and open_time between $3 and $4) as "overlap!""#,
        instrument_id,
        candles.timeframe.as_str(),
        to_datetime(first),
        to_datetime(last),
    )
    .fetch_one(&mut *conn)
    .await?;
    let conflict = if overlap {
        r#"on conflict (instrument_id, timeframe, open_time) do update
             set open = excluded.open, high = excluded.high, low = excluded.low,
                 close = excluded.close, volume = excluded.volume
             where (candle.open, candle.high, candle.low, candle.close, candle.volume)
                   is distinct from
                   (excluded.open, excluded.high, excluded.low, excluded.close, excluded.volume)"#
    } else {
        ""
    };
    let done = sqlx::query(&format!(
        r#"insert into candle (instrument_id, timeframe, open_time, open, high, low, close, volume)
           select $1, $2, timestamptz 'epoch' + open_ms * interval '1 millisecond', open, high, low, close, volume
           from candle_stage {conflict}"#
    ))
    .bind(instrument_id)
    .bind(candles.timeframe.as_str())
    .execute(&mut *conn)
    .await?;
    sqlx::query("truncate candle_stage")
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected())
}

/// Loads the candles of one series with `from <= open_time < to` (either bound optional) into engine columns,
/// in one scan of the primary-key index. With `last`, only the newest `last` candles of that range.
///
/// # Errors
/// Database errors.
pub async fn load_candles(
    pool: &PgPool,
    instrument_id: i32,
    timeframe: Timeframe,
    from: Option<i64>,
    to: Option<i64>,
    last: Option<i64>,
) -> sqlx::Result<Candles> {
    use futures::TryStreamExt;
    let (from, to) = (from.map(to_datetime), to.map(to_datetime));
    // Two statements: with `last`, the newest candles are taken by a backward index scan, then re-ordered.
    let mut rows = if let Some(last) = last {
        sqlx::query_as!(
            CandleRow,
            r#"select open_time as "open_time!", open as "open!", high as "high!", low as "low!",
                      close as "close!", volume as "volume!"
               from (
                 select open_time, open, high, low, close, volume from candle
                 where instrument_id = $1 and timeframe = $2
                   and ($3::timestamptz is null or open_time >= $3)
                   and ($4::timestamptz is null or open_time < $4)
                 order by open_time desc limit $5) t
               order by open_time"#,
            instrument_id,
            timeframe.as_str(),
            from,
            to,
            last,
        )
        .fetch(pool)
    } else {
        sqlx::query_as!(
            CandleRow,
            r#"select open_time, open, high, low, close, volume from candle
               where instrument_id = $1 and timeframe = $2
                 and ($3::timestamptz is null or open_time >= $3)
                 and ($4::timestamptz is null or open_time < $4)
               order by open_time"#,
            instrument_id,
            timeframe.as_str(),
            from,
            to,
        )
        .fetch(pool)
    };
    let mut candles = Candles::with_capacity(timeframe, 1024);
    while let Some(r) = rows.try_next().await? {
        candles.push(
            to_millis(r.open_time),
            r.open,
            r.high,
            r.low,
            r.close,
            r.volume,
        );
    }
    Ok(candles)
}

/// One stored candle as [`load_candles`] reads it.
struct CandleRow {
    open_time: DateTime<Utc>,
    open: f64,
    high: f64,
    low: f64,
    close: f64,
    volume: f64,
}
