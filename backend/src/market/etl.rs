//! The ETL: exchange candles into Postgres, one chunk at a time.
//!
//! A range is split into chunks on a fixed grid (`MARKET_CHUNK_CANDLES` candles each, aligned to the epoch), so
//! two runs over overlapping ranges produce the same chunks. A chunk is fetched completely (all its pages) and
//! then stored in **one transaction** together with its progress (and, as a job, its `done` mark): a failure
//! leaves nothing of that chunk behind, and a chunk is never half stored. A chunk whose end was in the past
//! when fetched is recorded in `market_chunk`, and later runs skip it: that is how an interrupted backfill
//! resumes where it stopped. Candles are upserted, so running anything twice stores each candle once.
//!
//! Runs execute inline ([`run_inline`], the CLI without `--enqueue`) or as one `market_chunk` job per chunk
//! ([`enqueue_run`]); the scheduled update ([`super::job_update`]) enqueues a `daily` run per tracked
//! series.

use std::time::Duration;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

use super::{
    Pair, Timeframe,
    binance::{BinanceClient, SourceError},
    iso,
    store::{self, Instrument},
};
use crate::{Ctx, jobs::NewJob};

/// What a run does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// The given range (default: the last 30 days), skipping chunks fetched completely before.
    Backfill,
    /// From the newest stored candle (or a day ago for a new series) up to now.
    Daily,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Backfill => "backfill",
            Self::Daily => "daily",
        }
    }
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "backfill" => Ok(Self::Backfill),
            "daily" => Ok(Self::Daily),
            other => Err(format!(
                "unknown mode `{other}` (expected daily or backfill)"
            )),
        }
    }
}

/// How far back a backfill goes when no `--from` is given.
pub const DEFAULT_BACKFILL_DAYS: i64 = 30;
/// How far back a daily update of a series without candles goes.
pub const DEFAULT_DAILY_LOOKBACK_MS: i64 = 86_400_000;

/// One chunk: `start <= open_time < end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chunk {
    pub start: i64,
    pub end: i64,
}

/// Splits `from..to` into chunks of `chunk_candles` candles on the epoch-aligned grid (the first and last chunk
/// are clipped to the range).
pub fn plan_chunks(timeframe: Timeframe, from: i64, to: i64, chunk_candles: u32) -> Vec<Chunk> {
    let span = timeframe.millis() * i64::from(chunk_candles.max(1));
    let from = timeframe.floor(from);
    let mut out = Vec::new();
    let mut start = from;
    while start < to {
        let grid_end = (start.div_euclid(span) + 1) * span;
        let end = grid_end.min(to);
        out.push(Chunk { start, end });
        start = end;
    }
    out
}

/// Candles a chunk can hold at most.
pub fn expected_candles(timeframe: Timeframe, chunk: Chunk) -> i64 {
    let step = timeframe.millis();
    (chunk.end - chunk.start + step - 1).div_euclid(step).max(0)
}

/// The payload of a `market_chunk` job.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChunkJob {
    pub run_id: Uuid,
    pub instrument_id: i32,
    pub timeframe: Timeframe,
    pub start: i64,
    pub end: i64,
}

/// What one stored chunk changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChunkOutcome {
    /// Closed, valid candles received.
    pub fetched: usize,
    /// Rows written (new or changed).
    pub written: u64,
    pub open_dropped: usize,
    pub invalid_dropped: usize,
    pub requests: u32,
}

/// Why a run or chunk failed.
#[derive(Debug, thiserror::Error)]
pub enum EtlError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error("{0}")]
    Invalid(String),
}

impl EtlError {
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Source(e) => e.is_transient(),
            Self::Database(_) => true,
            Self::Invalid(_) => false,
        }
    }
}

/// Fetches one chunk and stores it in a new transaction, which is returned **uncommitted**: the caller commits
/// it (inline) or hands it to `JobCtx::complete` (as a job), so the candles, the chunk record, the run's
/// progress and the job's `done` mark become visible together or not at all.
///
/// # Errors
/// Source or database errors; nothing is written then.
pub async fn fetch_and_store_chunk(
    db: &PgPool,
    client: &BinanceClient,
    instrument: &Instrument,
    timeframe: Timeframe,
    chunk: Chunk,
    run_id: Option<Uuid>,
    track: bool,
) -> Result<(Transaction<'static, Postgres>, ChunkOutcome), EtlError> {
    let server_now = client.server_time().await?;
    let fetched = client
        .fetch_range(
            &instrument.symbol,
            timeframe,
            chunk.start,
            chunk.end,
            server_now,
        )
        .await?;
    let mut tx = db.begin().await?;
    let written =
        store::upsert_candles(&mut tx, instrument.instrument_id, &fetched.candles).await?;
    store::touch_series(
        &mut tx,
        instrument.instrument_id,
        timeframe,
        track.then_some(true),
        written > 0,
    )
    .await?;
    // Complete only if its last candle had closed: then no later fetch can add to it.
    if timeframe.floor(chunk.end - 1) + timeframe.millis() <= server_now {
        store::record_chunk(
            &mut tx,
            instrument.instrument_id,
            timeframe,
            chunk.start,
            chunk.end,
            fetched.candles.len(),
        )
        .await?;
    }
    if let Some(run_id) = run_id {
        store::add_progress(&mut tx, run_id, fetched.candles.len()).await?;
    }
    // The series' newest stored candle (this chunk's included) for the ETL-lag metric.
    let newest: Option<chrono::DateTime<chrono::Utc>> = sqlx::query_scalar!(
        "select max(open_time) from candle where instrument_id = $1 and timeframe = $2",
        instrument.instrument_id,
        timeframe.as_str(),
    )
    .fetch_one(&mut *tx)
    .await?;
    if let Some(t) = newest {
        super::lag::record(&instrument.symbol, timeframe, t.timestamp_millis());
    }
    tracing::info!(
        symbol = %instrument.symbol,
        timeframe = %timeframe,
        from = %iso(chunk.start),
        to = %iso(chunk.end),
        fetched = fetched.candles.len(),
        written,
        open_dropped = fetched.open_dropped,
        invalid_dropped = fetched.invalid_dropped,
        requests = fetched.requests,
        "market chunk fetched"
    );
    Ok((
        tx,
        ChunkOutcome {
            fetched: fetched.candles.len(),
            written,
            open_dropped: fetched.open_dropped,
            invalid_dropped: fetched.invalid_dropped,
            requests: fetched.requests,
        },
    ))
}

/// What to run: one series over one range.
#[derive(Debug, Clone)]
pub struct RunRequest {
    pub pair: Pair,
    pub timeframe: Timeframe,
    pub mode: Mode,
    pub from: Option<i64>,
    pub to: Option<i64>,
}

/// A planned run: the instrument, the run row, and the chunks still to fetch.
#[derive(Debug, Clone)]
pub struct PlannedRun {
    pub run_id: Uuid,
    pub instrument: Instrument,
    pub timeframe: Timeframe,
    pub from: i64,
    pub to: i64,
    pub chunks: Vec<Chunk>,
    /// Chunks of the range skipped because they were fetched completely before.
    pub skipped: usize,
    pub candles_expected: i64,
}

/// Resolves the range against `now` (the source's clock, see `BinanceClient::server_time`), plans the chunks
/// (skipping complete ones) and inserts the run row.
///
/// # Errors
/// Database errors; an empty or inverted range.
pub async fn plan_run(ctx: &Ctx, req: &RunRequest, now: i64) -> Result<PlannedRun, EtlError> {
    let market = &ctx.settings.market;
    let mut conn = ctx.db.acquire().await?;
    let instrument = store::ensure_instrument(&mut conn, &market.exchange, &req.pair).await?;
    drop(conn);
    let to = req.to.unwrap_or(now).min(now + req.timeframe.millis());
    let from = match (req.mode, req.from) {
        (_, Some(f)) => f,
        (Mode::Backfill, None) => to - DEFAULT_BACKFILL_DAYS * 86_400_000,
        (Mode::Daily, None) => {
            match store::last_open_time(&ctx.db, instrument.instrument_id, req.timeframe).await? {
                Some(last) => last + req.timeframe.millis(),
                None => to - DEFAULT_DAILY_LOOKBACK_MS,
            }
        }
    };
    if req.from.is_some() && req.to.is_some() && from >= to {
        return Err(EtlError::Invalid(format!(
            "--from {} is not before --to {}",
            iso(from),
            iso(to)
        )));
    }
    let all = plan_chunks(req.timeframe, from, to, market.chunk_candles);
    let mut chunks = Vec::with_capacity(all.len());
    for c in &all {
        if !store::chunk_done(
            &ctx.db,
            instrument.instrument_id,
            req.timeframe,
            c.start,
            c.end,
        )
        .await?
        {
            chunks.push(*c);
        }
    }
    let candles_expected = chunks
        .iter()
        .map(|c| expected_candles(req.timeframe, *c))
        .sum();
    let run_id = Uuid::new_v4();
    let mut conn = ctx.db.acquire().await?;
    store::insert_run(
        &mut conn,
        &store::NewRun {
            run_id,
            instrument_id: instrument.instrument_id,
            timeframe: req.timeframe,
            mode: req.mode.as_str(),
            source: market.data_url.as_str(),
            from,
            to,
            chunks_total: chunks.len(),
            candles_expected,
        },
    )
    .await?;
    Ok(PlannedRun {
        run_id,
        skipped: all.len() - chunks.len(),
        instrument,
        timeframe: req.timeframe,
        from,
        to,
        chunks,
        candles_expected,
    })
}

/// Progress of an inline run, reported after every chunk.
#[derive(Debug, Clone, Copy, Default)]
pub struct Progress {
    pub chunks_done: usize,
    pub chunks_total: usize,
    pub fetched: usize,
    pub expected: i64,
    pub written: u64,
}

/// Runs a planned run in this process, chunk after chunk. A failed chunk is retried (the job attempt budget,
/// with back-off) before the run fails; chunks stored before the failure stay stored and are skipped by the
/// next run.
///
/// # Errors
/// The first chunk that failed for good (the run row records it).
pub async fn run_inline(
    ctx: &Ctx,
    client: &BinanceClient,
    run: &PlannedRun,
    track: bool,
    mut on_progress: impl FnMut(Progress),
) -> Result<Progress, EtlError> {
    let mut p = Progress {
        chunks_total: run.chunks.len(),
        expected: run.candles_expected,
        ..Progress::default()
    };
    on_progress(p);
    let attempts = ctx
        .settings
        .jobs
        .retry
        .for_kind(super::job_chunk::KIND)
        .max_attempts
        .max(1);
    for chunk in &run.chunks {
        let mut attempt = 0;
        let outcome = loop {
            attempt += 1;
            let result = fetch_and_store_chunk(
                &ctx.db,
                client,
                &run.instrument,
                run.timeframe,
                *chunk,
                Some(run.run_id),
                track,
            )
            .await;
            match result {
                Ok((mut tx, outcome)) => {
                    let advance = if outcome.written > 0 {
                        crate::paper::feed::candles_stored(
                            &ctx.jobs,
                            &mut tx,
                            run.instrument.instrument_id,
                            run.timeframe,
                        )
                        .await?
                    } else {
                        None
                    };
                    tx.commit().await?;
                    if let Some(id) = advance {
                        ctx.jobs.push(crate::jobs::PAPER_QUEUE, id).await;
                    }
                    break outcome;
                }
                Err(e) if e.is_transient() && attempt < attempts => {
                    let wait = Duration::from_secs(1 << attempt.min(5));
                    tracing::warn!(error = %e, attempt, retry_in_s = wait.as_secs(), "chunk failed; retrying");
                    tokio::time::sleep(wait).await;
                }
                Err(e) => {
                    let message = format!(
                        "chunk {}..{} failed after {attempt} attempt(s): {e}",
                        iso(chunk.start),
                        iso(chunk.end)
                    );
                    let _ = store::fail_run(&ctx.db, run.run_id, &message).await;
                    return Err(e);
                }
            }
        };
        p.chunks_done += 1;
        p.fetched += outcome.fetched;
        p.written += outcome.written;
        on_progress(p);
    }
    Ok(p)
}

/// Enqueues one `market_chunk` job per chunk of a planned run (deduplicated per series and chunk, so two runs
/// never fetch the same chunk at the same time); with `track`, the series is marked tracked first. Returns the
/// job ids.
///
/// # Errors
/// Database errors.
pub async fn enqueue_run(ctx: &Ctx, run: &PlannedRun, track: bool) -> anyhow::Result<Vec<Uuid>> {
    if track {
        // Tracking is decided here, once: the chunk jobs never change it (an administrator's "stop tracking"
        // must hold while chunks queued before it still run).
        let mut conn = ctx.db.acquire().await?;
        store::touch_series(
            &mut conn,
            run.instrument.instrument_id,
            run.timeframe,
            Some(true),
            false,
        )
        .await?;
    }
    let mut ids = Vec::new();
    for chunk in &run.chunks {
        let payload = ChunkJob {
            run_id: run.run_id,
            instrument_id: run.instrument.instrument_id,
            timeframe: run.timeframe,
            start: chunk.start,
            end: chunk.end,
        };
        let mut job: NewJob = ctx.jobs.new_job(
            crate::jobs::MARKET_QUEUE,
            super::job_chunk::KIND,
            serde_json::to_value(&payload).context("chunk payload")?,
        );
        // Start and end: the last chunk of a range is cut at its end, so two runs may share a start with
        // different ends (the longer one must still be fetched).
        job.dedupe_key = Some(format!(
            "market_chunk:{}:{}:{}:{}",
            run.instrument.instrument_id, run.timeframe, chunk.start, chunk.end
        ));
        match ctx.jobs.enqueue(&job).await? {
            Some(id) => ids.push(id),
            None => {
                // The same chunk is already queued by another run: count it as done for this run's progress.
                let mut conn = ctx.db.acquire().await?;
                store::add_progress(&mut conn, run.run_id, 0).await?;
            }
        }
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_sit_on_a_fixed_grid_and_cover_the_range_exactly() {
        let tf = Timeframe::M5;
        let step = tf.millis();
        let chunks = plan_chunks(tf, 7 * step + 1, 25 * step, 10);
        assert_eq!(
            chunks,
            vec![
                Chunk {
                    start: 7 * step,
                    end: 10 * step
                },
                Chunk {
                    start: 10 * step,
                    end: 20 * step
                },
                Chunk {
                    start: 20 * step,
                    end: 25 * step
                },
            ]
        );
        // An overlapping range produces the same inner chunk, so completed chunks are recognised.
        assert!(plan_chunks(tf, 0, 40 * step, 10).contains(&chunks[1]));
        assert_eq!(expected_candles(tf, chunks[0]), 3);
        assert!(plan_chunks(tf, 10 * step, 10 * step, 10).is_empty());
        assert_eq!("Daily".parse::<Mode>().unwrap(), Mode::Daily);
        assert!("weekly".parse::<Mode>().is_err());
    }
}
