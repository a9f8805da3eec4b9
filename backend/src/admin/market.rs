//! The market-data page of the admin console (docs/admin.md#market-data): which series are kept updated from
//! the configured source (the ETL schedule), their coverage and lag, the newest ETL runs and the scheduled
//! update's last outcome; and the actions: track or stop tracking a series, run the update now, backfill a
//! range. Reads need [`Actor::admin`], changes [`Actor::admin_writer`]; each change is audited
//! (`market_series_tracked`, `market_update_requested`, `market_backfill_requested`).
//!
//! Postgres stays the truth: tracking only flags a series for the scheduled `market_update` job; a backfill
//! plans an ETL run and queues its `market_chunk` jobs like `vortex run-etl --mode backfill` does.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use crate::{
    Actor, Ctx,
    error::{Error, Result},
    market::{
        Pair, Timeframe,
        coverage::{self, SeriesSummary},
        etl::{self, Mode, RunRequest},
        job_update, parse_time, store,
    },
};

/// Most chunks (jobs) one backfill may queue: a longer range is refused with a message (split it).
pub const MAX_BACKFILL_CHUNKS: i64 = 2_000;
/// ETL runs the page lists.
const RECENT_RUNS: i64 = 20;
/// Most series the schedule keeps updated (each is a run of chunk jobs per update).
pub const MAX_TRACKED: i64 = 200;

/// Audit events.
pub const SERIES_TRACKED: &str = "market_series_tracked";
pub const UPDATE_REQUESTED: &str = "market_update_requested";
pub const BACKFILL_REQUESTED: &str = "market_backfill_requested";

/// One stored series with how far behind it is.
#[derive(Debug, Clone, Serialize)]
pub struct SeriesRow {
    pub instrument_id: i32,
    pub exchange: String,
    pub symbol: String,
    /// `BASE/QUOTE`.
    pub pair: String,
    pub timeframe: String,
    pub tracked: bool,
    /// Open time of the first and last candle.
    pub first: Option<DateTime<Utc>>,
    pub last: Option<DateTime<Utc>>,
    pub candles: i64,
    /// Seconds since the newest candle closed (`None` without candles).
    pub lag_secs: Option<i64>,
    pub last_update: Option<DateTime<Utc>>,
    /// On the configured exchange: the scheduled update and backfills can fetch it.
    pub fetchable: bool,
}

/// One ETL run.
#[derive(Debug, Clone, Serialize)]
pub struct EtlRun {
    pub run_id: Uuid,
    pub symbol: String,
    pub timeframe: String,
    pub mode: String,
    pub range_from: DateTime<Utc>,
    pub range_to: DateTime<Utc>,
    pub chunks_done: i32,
    pub chunks_total: i32,
    pub candles_fetched: i64,
    pub status: String,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// The last scheduled (or requested) update job.
#[derive(Debug, Clone, Serialize)]
pub struct UpdateJob {
    pub job_id: Uuid,
    pub status: String,
    pub run_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
}

/// Everything the page shows.
#[derive(Debug, Clone, Serialize)]
pub struct Overview {
    /// The exchange name fetched candles are stored under (`MARKET_DATA_EXCHANGE`).
    pub exchange: String,
    /// The source's host (no credentials or path).
    pub source: String,
    /// `MARKET_UPDATE_INTERVAL_SECS` (0: the schedule is off).
    pub update_every_secs: u64,
    pub series: Vec<SeriesRow>,
    pub runs: Vec<EtlRun>,
    pub last_update: Option<UpdateJob>,
    /// `market_chunk` jobs waiting or running.
    pub chunks_pending: i64,
}

/// The page's data (admins only).
///
/// # Errors
/// [`Error::Unauthenticated`], [`Error::Forbidden`], database.
pub async fn overview(actor: &Actor, ctx: &Ctx) -> Result<Overview> {
    actor.admin()?;
    let market = &ctx.settings.market;
    let now = Utc::now();
    let series = coverage::series(&ctx.db, None)
        .await?
        .into_iter()
        .map(|s| row(s, &market.exchange, now))
        .collect();
    // With the derived status: a run whose chunk job failed for good shows as failed, with its error.
    let runs = store::recent_runs(&ctx.db, RECENT_RUNS)
        .await?
        .into_iter()
        .map(|r| EtlRun {
            run_id: r.market_etl_run_id,
            symbol: r.symbol,
            timeframe: r.timeframe,
            mode: r.mode,
            range_from: r.range_from,
            range_to: r.range_to,
            chunks_done: r.chunks_done,
            chunks_total: r.chunks_total,
            candles_fetched: r.candles_fetched,
            status: r.status,
            error: r.error,
            created_at: r.created_at,
        })
        .collect();
    let last_update = sqlx::query_as!(
        UpdateJob,
        r#"select job_id, status, run_at, finished_at, last_error from job
           where kind = $1 order by enqueued_at desc limit 1"#,
        job_update::KIND,
    )
    .fetch_optional(&ctx.db)
    .await?;
    let chunks_pending = sqlx::query_scalar!(
        r#"select count(*) as "n!" from job where kind = $1 and status in ('queued', 'running')"#,
        crate::market::job_chunk::KIND,
    )
    .fetch_one(&ctx.db)
    .await?;
    Ok(Overview {
        exchange: market.exchange.clone(),
        source: market.data_url.host_str().unwrap_or_default().to_owned(),
        update_every_secs: market.update_interval.as_secs(),
        series,
        runs,
        last_update,
        chunks_pending,
    })
}

fn row(s: SeriesSummary, exchange: &str, now: DateTime<Utc>) -> SeriesRow {
    let time = |ms: i64| DateTime::<Utc>::from_timestamp_millis(ms);
    let lag_secs = s
        .last
        .map(|open| (now.timestamp_millis() - (open + s.timeframe.millis())).max(0) / 1000);
    SeriesRow {
        instrument_id: s.instrument_id,
        fetchable: s.exchange == exchange,
        exchange: s.exchange,
        symbol: s.symbol,
        pair: format!("{}/{}", s.base, s.quote),
        timeframe: s.timeframe.as_str().to_owned(),
        tracked: s.tracked,
        first: s.first.and_then(time),
        last: s.last.and_then(time),
        candles: s.count,
        lag_secs,
        last_update: s.last_update,
    }
}

fn pair(text: &str) -> Result<Pair> {
    Pair::parse(text).map_err(|e| Error::invalid("pair", e))
}

fn timeframe(text: &str) -> Result<Timeframe> {
    Timeframe::parse(text).map_err(|e| Error::invalid("timeframe", e.to_string()))
}

/// Starts or stops keeping a series of the configured exchange updated by the schedule (a new pair is added
/// as an instrument; the next update fetches its last day, a backfill fetches more). Audited as
/// `market_series_tracked` with the pair, timeframe and the new state.
///
/// # Errors
/// [`Error::Unauthenticated`], [`Error::Forbidden`], [`Error::Invalid`] (`pair`, `timeframe`),
/// [`Error::NotFound`] (stopping a series that does not exist), database.
pub async fn set_tracked(
    actor: &Actor,
    ctx: &Ctx,
    pair_text: &str,
    timeframe_text: &str,
    tracked: bool,
) -> Result<()> {
    actor.admin_writer()?;
    let pair = pair(pair_text)?;
    let timeframe = timeframe(timeframe_text)?;
    let exchange = &ctx.settings.market.exchange;
    let mut tx = ctx.db.begin().await?;
    let instrument_id = if tracked {
        let tracked_now = sqlx::query_scalar!(
            r#"select count(*) as "n!" from market_series s join instrument i using (instrument_id)
               where s.tracked and i.exchange = $1"#,
            exchange,
        )
        .fetch_one(&mut *tx)
        .await?;
        if tracked_now >= MAX_TRACKED {
            return Err(Error::Conflict(format!(
                "{MAX_TRACKED} series are kept updated already; stop one first"
            )));
        }
        let instrument = store::ensure_instrument(&mut tx, exchange, &pair).await?;
        if instrument.base != pair.base.as_str() || instrument.quote != pair.quote.as_str() {
            return Err(Error::invalid(
                "pair",
                format!(
                    "the symbol {} is {}/{} on {exchange}",
                    instrument.symbol, instrument.base, instrument.quote
                ),
            ));
        }
        instrument.instrument_id
    } else {
        sqlx::query_scalar!(
            r#"select s.instrument_id from market_series s join instrument i using (instrument_id)
               where i.exchange = $1 and i.symbol = $2 and s.timeframe = $3"#,
            exchange,
            pair.symbol(),
            timeframe.as_str(),
        )
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(Error::NotFound)?
    };
    store::touch_series(&mut tx, instrument_id, timeframe, Some(tracked), false).await?;
    actor
        .audit(
            &mut tx,
            SERIES_TRACKED,
            None,
            json!({ "exchange": exchange, "pair": pair.to_string(), "timeframe": timeframe.as_str(), "tracked": tracked }),
        )
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Queues the update of every tracked series now (the job the schedule runs). Audited as
/// `market_update_requested`. Returns the job id.
///
/// # Errors
/// [`Error::Unauthenticated`], [`Error::Forbidden`], [`Error::Conflict`] (an update is queued or running),
/// database.
pub async fn update_now(actor: &Actor, ctx: &Ctx) -> Result<Uuid> {
    actor.admin_writer()?;
    let id = job_update::enqueue(ctx, true).await?.ok_or_else(|| {
        Error::Conflict(
            "an update is already queued or running; it covers every tracked series".into(),
        )
    })?;
    let mut conn = ctx.db.acquire().await?;
    actor
        .audit(&mut conn, UPDATE_REQUESTED, None, json!({ "job_id": id }))
        .await?;
    drop(conn);
    Ok(id)
}

/// A queued backfill.
#[derive(Debug, Clone, Serialize)]
pub struct Backfill {
    pub run_id: Uuid,
    /// Chunk jobs queued.
    pub chunks: usize,
    /// Chunks of the range fetched completely before (not fetched again).
    pub skipped: usize,
}

/// Plans an ETL run fetching `[from, to)` of a series of the configured exchange from the source and queues its
/// chunk jobs (chunks fetched completely before are skipped; the same chunk is never fetched twice at once).
/// Whether the series is tracked does not change.
/// `from` and `to` are `YYYY-MM-DD` or ISO 8601 (UTC). Audited as `market_backfill_requested`.
///
/// # Errors
/// [`Error::Unauthenticated`], [`Error::Forbidden`], [`Error::Invalid`] (`pair`, `timeframe`, `from`, `to`,
/// a range of more than [`MAX_BACKFILL_CHUNKS`] chunks), database.
pub async fn backfill(
    actor: &Actor,
    ctx: &Ctx,
    pair_text: &str,
    timeframe_text: &str,
    from: &str,
    to: &str,
) -> Result<Backfill> {
    actor.admin_writer()?;
    let pair = pair(pair_text)?;
    let timeframe = timeframe(timeframe_text)?;
    let from_ms = parse_time(from).map_err(|e| Error::invalid("from", e))?;
    let to_ms = parse_time(to).map_err(|e| Error::invalid("to", e))?;
    let now = Utc::now().timestamp_millis();
    if from_ms < 0 {
        return Err(Error::invalid("from", "must be after 1970-01-01"));
    }
    if to_ms <= from_ms {
        return Err(Error::invalid("to", "must be later than from"));
    }
    if from_ms >= now {
        return Err(Error::invalid("from", "must be in the past"));
    }
    // The range as `plan_run` cuts it (the end at most one candle past now), counted before any query.
    let chunk = ctx.settings.market.chunk_candles.max(1);
    let end = to_ms.min(now + timeframe.millis());
    let candles = (end - from_ms) / timeframe.millis();
    // A cheap estimate first (no list of millions of chunks for a range that is far too long), then the count.
    let chunks = if candles / i64::from(chunk) > MAX_BACKFILL_CHUNKS {
        candles / i64::from(chunk)
    } else {
        i64::try_from(etl::plan_chunks(timeframe, from_ms, end, chunk).len()).unwrap_or(i64::MAX)
    };
    if chunks > MAX_BACKFILL_CHUNKS {
        return Err(Error::invalid(
            "from",
            format!(
                "this range is about {candles} candles ({chunks} chunks of {chunk}); one backfill fetches at most {MAX_BACKFILL_CHUNKS} chunks: split the range"
            ),
        ));
    }
    let run = etl::plan_run(
        ctx,
        &RunRequest {
            pair: pair.clone(),
            timeframe,
            mode: Mode::Backfill,
            from: Some(from_ms),
            to: Some(to_ms),
        },
        now,
    )
    .await
    .map_err(|e| match e {
        etl::EtlError::Invalid(m) => Error::invalid("to", m),
        other => Error::Internal(anyhow::Error::new(other)),
    })?;
    let mut conn = ctx.db.acquire().await?;
    store::touch_series(
        &mut conn,
        run.instrument.instrument_id,
        timeframe,
        None,
        false,
    )
    .await?;
    actor
        .audit(
            &mut conn,
            BACKFILL_REQUESTED,
            None,
            json!({
                "pair": pair.to_string(), "timeframe": timeframe.as_str(), "run_id": run.run_id,
                "from": crate::market::iso(run.from), "to": crate::market::iso(run.to),
                "chunks": run.chunks.len(), "skipped": run.skipped,
            }),
        )
        .await?;
    drop(conn);
    // A backfill leaves tracking as it is (the same page starts and stops it).
    if let Err(e) = etl::enqueue_run(ctx, &run, false).await {
        let _ = store::fail_run(&ctx.db, run.run_id, &format!("{e:#}")).await;
        return Err(Error::Internal(e));
    }
    Ok(Backfill {
        run_id: run.run_id,
        chunks: run.chunks.len(),
        skipped: run.skipped,
    })
}
