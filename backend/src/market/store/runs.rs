//! Fetched chunks and ETL runs (`market_chunk`, `market_etl_run`).

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};

use crate::market::{Timeframe, to_datetime};

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
