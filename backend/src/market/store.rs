//! Market-data tables. Every write is an idempotent upsert keyed on the table's natural key, so a chunk that is
//! stored twice (a re-run, a duplicate delivery) changes nothing the second time and counts nothing twice.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};

use super::{Candles, Pair, Timeframe, to_datetime, to_millis};

/// Rows per `insert … select from unnest(…)` statement: large enough to amortise the round trip, small enough
/// to keep one statement's parameters (6 arrays) well below a few MB.
const UPSERT_BATCH: usize = 20_000;

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

/// Creates the series' coverage row if needed and locks it until the transaction ends.
async fn lock_coverage(
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
async fn count_range(
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
async fn update_coverage(
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

/// Whether the chunk starting at `chunk_start` was fetched completely before.
///
/// # Errors
/// Database errors.
pub async fn chunk_done(
    pool: &PgPool,
    instrument_id: i32,
    timeframe: Timeframe,
    chunk_start: i64,
    chunk_end: i64,
) -> sqlx::Result<bool> {
    sqlx::query_scalar!(
        r#"select exists(select 1 from market_chunk
                         where instrument_id = $1 and timeframe = $2 and chunk_start = $3 and chunk_end >= $4)
                  as "done!""#,
        instrument_id,
        timeframe.as_str(),
        to_datetime(chunk_start),
        to_datetime(chunk_end),
    )
    .fetch_one(pool)
    .await
}

/// Records a completely fetched chunk (inside the transaction that stored its candles).
///
/// # Errors
/// Database errors.
pub async fn record_chunk(
    conn: &mut PgConnection,
    instrument_id: i32,
    timeframe: Timeframe,
    chunk_start: i64,
    chunk_end: i64,
    candles: usize,
) -> sqlx::Result<()> {
    sqlx::query!(
        r#"insert into market_chunk (instrument_id, timeframe, chunk_start, chunk_end, candles)
           values ($1, $2, $3, $4, $5)
           on conflict (instrument_id, timeframe, chunk_start) do update
             set chunk_end = excluded.chunk_end, candles = excluded.candles, fetched_at = now()"#,
        instrument_id,
        timeframe.as_str(),
        to_datetime(chunk_start),
        to_datetime(chunk_end),
        i32::try_from(candles).unwrap_or(i32::MAX),
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// A new ETL run's description.
#[derive(Debug, Clone)]
pub struct NewRun<'a> {
    pub run_id: uuid::Uuid,
    pub instrument_id: i32,
    pub timeframe: Timeframe,
    pub mode: &'a str,
    pub source: &'a str,
    pub from: i64,
    pub to: i64,
    pub chunks_total: usize,
    pub candles_expected: i64,
}

/// Inserts an ETL run row.
///
/// # Errors
/// Database errors.
pub async fn insert_run(conn: &mut PgConnection, run: &NewRun<'_>) -> sqlx::Result<()> {
    let done = run.chunks_total == 0;
    sqlx::query!(
        r#"insert into market_etl_run (market_etl_run_id, instrument_id, timeframe, mode, source, range_from,
                                       range_to, chunks_total, candles_expected, status)
           values ($1, $2, $3, $4, $5, $6, $7, $8, $9, case when $10 then 'done' else 'running' end)"#,
        run.run_id,
        run.instrument_id,
        run.timeframe.as_str(),
        run.mode,
        run.source,
        to_datetime(run.from),
        to_datetime(run.to),
        i32::try_from(run.chunks_total).unwrap_or(i32::MAX),
        run.candles_expected,
        done,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Adds one finished chunk's candles to a run's progress (inside the chunk's transaction); the run is `done`
/// when its last chunk is.
///
/// # Errors
/// Database errors.
pub async fn add_progress(
    conn: &mut PgConnection,
    run_id: uuid::Uuid,
    fetched: usize,
) -> sqlx::Result<()> {
    sqlx::query!(
        r#"update market_etl_run
           set chunks_done = chunks_done + 1,
               candles_fetched = candles_fetched + $2,
               status = case when chunks_done + 1 >= chunks_total then 'done' else status end,
               error = case when chunks_done + 1 >= chunks_total then null else error end
           where market_etl_run_id = $1"#,
        run_id,
        i64::try_from(fetched).unwrap_or(i64::MAX),
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Marks a run failed with its error.
///
/// # Errors
/// Database errors.
pub async fn fail_run(pool: &PgPool, run_id: uuid::Uuid, error: &str) -> sqlx::Result<()> {
    sqlx::query!(
        "update market_etl_run set status = 'failed', error = left($2, 4000) where market_etl_run_id = $1",
        run_id,
        error,
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// An ETL run as the CLI and the Market data page show it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RunRow {
    pub market_etl_run_id: uuid::Uuid,
    pub exchange: String,
    pub symbol: String,
    pub base: String,
    pub quote: String,
    pub timeframe: String,
    pub mode: String,
    pub source: String,
    pub range_from: DateTime<Utc>,
    pub range_to: DateTime<Utc>,
    pub chunks_total: i32,
    pub chunks_done: i32,
    pub candles_expected: i64,
    pub candles_fetched: i64,
    /// `running`, `done` or `failed`; a run whose chunk job failed permanently is `failed`, with that job's error.
    pub status: String,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One run with its derived status.
///
/// # Errors
/// Database errors.
pub async fn run(pool: &PgPool, run_id: uuid::Uuid) -> sqlx::Result<Option<RunRow>> {
    // The select is the same in [`recent_runs`] (the macros take a literal, not a shared constant).
    sqlx::query_as!(
        RunRow,
        r#"select r.market_etl_run_id, i.exchange, i.symbol, i.base, i.quote, r.timeframe, r.mode, r.source,
                  r.range_from, r.range_to, r.chunks_total, r.chunks_done, r.candles_expected, r.candles_fetched,
                  case when r.status = 'running' and f.last_error is not null then 'failed' else r.status end
                    as "status!",
                  coalesce(r.error, f.last_error) as error, r.created_at, r.updated_at
           from market_etl_run r
           join instrument i using (instrument_id)
           left join lateral (
               select j.last_error from job j
               where j.kind = 'market_chunk' and j.status = 'failed'
                 and j.payload ->> 'run_id' = r.market_etl_run_id::text
               order by j.finished_at desc limit 1) f on true
           where r.market_etl_run_id = $1"#,
        run_id,
    )
    .fetch_optional(pool)
    .await
}

/// The most recent runs.
///
/// # Errors
/// Database errors.
pub async fn recent_runs(pool: &PgPool, limit: i64) -> sqlx::Result<Vec<RunRow>> {
    // The select is the same in [`run`].
    sqlx::query_as!(
        RunRow,
        r#"select r.market_etl_run_id, i.exchange, i.symbol, i.base, i.quote, r.timeframe, r.mode, r.source,
                  r.range_from, r.range_to, r.chunks_total, r.chunks_done, r.candles_expected, r.candles_fetched,
                  case when r.status = 'running' and f.last_error is not null then 'failed' else r.status end
                    as "status!",
                  coalesce(r.error, f.last_error) as error, r.created_at, r.updated_at
           from market_etl_run r
           join instrument i using (instrument_id)
           left join lateral (
               select j.last_error from job j
               where j.kind = 'market_chunk' and j.status = 'failed'
                 and j.payload ->> 'run_id' = r.market_etl_run_id::text
               order by j.finished_at desc limit 1) f on true
           order by r.created_at desc limit $1"#,
        limit,
    )
    .fetch_all(pool)
    .await
}
