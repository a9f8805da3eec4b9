//! Keeps `market_coverage` and `market_gap` describing the stored candles, inside the transaction of the write
//! ([`super::upsert_candles`]).

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use crate::market::{Timeframe, to_datetime};

/// Creates the series' coverage row if needed and locks it until the transaction ends.
pub(super) async fn lock_coverage(
    conn: &mut PgConnection,
    instrument_id: i32,
    timeframe: Timeframe,
) -> sqlx::Result<()> {
    sqlx::query!(
        r#"insert into market_coverage (instrument_id, timeframe) values ($1, $2)
           on conflict (instrument_id, timeframe) do nothing"#,
        instrument_id,
        timeframe.as_str(),
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!(
        "select 1 as one from market_coverage where instrument_id = $1 and timeframe = $2 for update",
        instrument_id,
        timeframe.as_str(),
    )
    .fetch_one(&mut *conn) // the row exists: inserted just above if it was missing
    .await?;
    Ok(())
}

/// Stored candles of a series with `first <= open_time <= last` (an index-only range scan).
pub(super) async fn count_range(
    conn: &mut PgConnection,
    instrument_id: i32,
    timeframe: Timeframe,
    first: i64,
    last: i64,
) -> sqlx::Result<i64> {
    sqlx::query_scalar!(
        r#"select count(*) as "n!" from candle
           where instrument_id = $1 and timeframe = $2 and open_time between $3 and $4"#,
        instrument_id,
        timeframe.as_str(),
        to_datetime(first),
        to_datetime(last),
    )
    .fetch_one(conn)
    .await
}

/// Brings a series' coverage up to date after candles were written between `first` and `last` (open times):
/// first/last/count from the write, and the gaps recomputed only between the stored candle just before
/// `first` and the one just after `last` (the only place a write can open or close gaps). The caller holds
/// the coverage row's lock ([`lock_coverage`]).
pub(super) async fn update_coverage(
    conn: &mut PgConnection,
    instrument_id: i32,
    timeframe: Timeframe,
    first: i64,
    last: i64,
    added: i64,
) -> sqlx::Result<()> {
    let tf = timeframe.as_str();
    let step = timeframe.millis();
    // `coalesce(…, $3)` with `$3` bound: never null.
    let window = sqlx::query!(
        r#"select coalesce((select max(open_time) from candle
                            where instrument_id = $1 and timeframe = $2 and open_time < $3), $3) as "lo!",
                  coalesce((select min(open_time) from candle
                            where instrument_id = $1 and timeframe = $2 and open_time > $4), $4) as "hi!""#,
        instrument_id,
        tf,
        to_datetime(first),
        to_datetime(last),
    )
    .fetch_one(&mut *conn)
    .await?;
    let (lo, hi): (DateTime<Utc>, DateTime<Utc>) = (window.lo, window.hi);
    let dropped = sqlx::query!(
        r#"with d as (
               delete from market_gap
               where instrument_id = $1 and timeframe = $2 and prev_open >= $3 and prev_open < $4
               returning missing)
           select count(*) as "gaps!", coalesce(sum(missing), 0)::bigint as "missing!" from d"#,
        instrument_id,
        tf,
        lo,
        hi,
    )
    .fetch_one(&mut *conn)
    .await?;
    let found = sqlx::query!(
        r#"with steps as (
               select lag(open_time) over (order by open_time) as prev, open_time
               from candle
               where instrument_id = $1 and timeframe = $2 and open_time between $3 and $4),
           ins as (
               insert into market_gap (instrument_id, timeframe, prev_open, next_open, missing)
               select $1, $2, prev, open_time,
                      (extract(epoch from open_time - prev) * 1000)::bigint / $5 - 1
               from steps
               where prev is not null and open_time - prev > make_interval(secs => $5 / 1000.0)
               returning missing)
           select count(*) as "gaps!", coalesce(sum(missing), 0)::bigint as "missing!" from ins"#,
        instrument_id,
        tf,
        lo,
        hi,
        step,
    )
    .fetch_one(&mut *conn)
    .await?;
    sqlx::query!(
        r#"update market_coverage
           set first_open = least(first_open, $3), last_open = greatest(last_open, $4),
               candles = candles + $5, gap_count = gap_count + $6, missing = missing + $7,
               updated_at = now()
           where instrument_id = $1 and timeframe = $2"#,
        instrument_id,
        tf,
        to_datetime(first),
        to_datetime(last),
        added,
        found.gaps - dropped.gaps,
        found.missing - dropped.missing,
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}
