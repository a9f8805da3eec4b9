//! "Why here?": the decision trace of a finished run around a time.
//!
//! The trace re-runs the run's strategy version over the run's candles from the first bar (position state and
//! EMA-like indicators depend on all history, so the values are exactly those the backtest used), which costs
//! as much memory as the run itself. So it is not computed in the web process: a request asks a backtest
//! worker for it (a `backtest_trace` job on the backtest queue, admitted by the same memory budget as runs,
//! [`super::budget`]), the worker stores the answer in `backtest_trace`, and the request reads it from there.
//! Asking again for the same bar reads the stored answer without any work.

use std::time::{Duration, Instant};

use engine::candles::Timeframe;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use sqlx::types::Json;
use uuid::Uuid;

use super::runs::{TRACE_MAX_BARS, TRACE_MAX_SPAN_BARS, Trace, TraceBar, get};
use super::{Error, compile, finite};
use crate::Ctx;
use crate::market::{iso, store};

/// The job kind that computes a trace (on the backtest queue).
pub const KIND: &str = "backtest_trace";
/// How long a request waits for a worker to compute its trace before it is told to try again.
const WAIT: Duration = Duration::from_secs(25);
/// Stored answers kept per run.
const KEEP_PER_RUN: i64 = 200;
/// How often a waiting request looks for the answer.
const POLL: Duration = Duration::from_millis(100);

/// What the job needs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Payload {
    pub backtest_run_id: Uuid,
    pub time: i64,
    pub span: i64,
}

/// Why a trace was refused, as stored (so a repeated request gets the same answer without work).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Refusal {
    kind: String,
    field: Option<String>,
    message: String,
}

impl Refusal {
    fn of(e: &Error) -> Option<Self> {
        let (kind, field, message) = match e {
            Error::Invalid { field, message } => ("invalid", Some(field.clone()), message.clone()),
            Error::Conflict(m) => ("conflict", None, m.clone()),
            Error::Limit(m) => ("limit", None, m.clone()),
            _ => return None,
        };
        Some(Self {
            kind: kind.into(),
            field,
            message,
        })
    }

    fn into_error(self) -> Error {
        match self.kind.as_str() {
            "invalid" => Error::Invalid {
                field: self.field.unwrap_or_else(|| "time".into()),
                message: self.message,
            },
            "conflict" => Error::Conflict(self.message),
            _ => Error::Limit(self.message),
        }
    }
}

/// The stored answer for `(run, time, span)`, if computed.
async fn stored(
    db: &PgPool,
    id: Uuid,
    time: i64,
    span: i64,
) -> Result<Option<Result<Trace, Error>>, Error> {
    let row = sqlx::query!(
        r#"select result as "result: Json<Trace>", error as "error: Json<Refusal>"
           from backtest_trace where backtest_run_id = $1 and time_ms = $2 and span_ms = $3"#,
        id,
        time,
        span,
    )
    .fetch_optional(db)
    .await?;
    Ok(match row.map(|r| (r.result, r.error)) {
        Some((Some(t), _)) => Some(Ok(t.0)),
        Some((None, Some(r))) => Some(Err(r.0.into_error())),
        _ => None,
    })
}

/// "Why here?" for the user's finished run `id`: the bars in `[time, time + span)` (span 0 = the one bar at or
/// before `time`). Of a longer span (a clicked candle of a resampled chart), the bars where something happened
/// are listed, or else its last bar. Computed by a backtest worker the first time, read from storage after.
///
/// # Errors
/// [`Error::NotFound`], [`Error::NotFinished`] (run not done), [`Error::Invalid`] (time outside the run, span
/// too long, run too large to trace within the memory budget), [`Error::Limit`] (the workers are busy), database
/// errors.
pub async fn trace(ctx: &Ctx, user: Uuid, id: Uuid, time: i64, span: i64) -> Result<Trace, Error> {
    let db = &ctx.db;
    let run = get(db, user, id).await?;
    let bounds = sqlx::query!(
        r#"select (provenance->>'first_time')::bigint as first, (provenance->>'last_time')::bigint as last,
                  provenance->>'timeframe' as tf
           from backtest_result where backtest_run_id = $1"#,
        id,
    )
    .fetch_optional(db)
    .await?;
    let Some((first, last, tf)) = bounds.map(|b| (b.first, b.last, b.tf)) else {
        return Err(Error::NotFinished(format!(
            "the decision trace is available once the run is done (it is {})",
            run.summary.status
        )));
    };
    // Times outside the run are answered here, without a worker.
    if let (Some(first), Some(last)) = (first, last) {
        let bar = tf
            .as_deref()
            .and_then(|t| Timeframe::parse(t).ok())
            .map_or(0, Timeframe::millis);
        if time < first || time > last.saturating_add(bar) {
            return Err(Error::invalid(
                "time",
                format!(
                    "{} is outside this run ({} to {})",
                    iso(time),
                    iso(first),
                    iso(last)
                ),
            ));
        }
    }
    if let Some(answer) = stored(db, id, time, span).await? {
        return answer;
    }
    let key = format!("trace:{id}:{time}:{span}");
    let mut nj = ctx.jobs.new_job(
        super::job::QUEUE,
        KIND,
        serde_json::to_value(Payload {
            backtest_run_id: id,
            time,
            span,
        })
        .map_err(|e| Error::Db(sqlx::Error::Protocol(e.to_string())))?,
    );
    nj.dedupe_key = Some(key.clone());
    nj.max_attempts = nj.max_attempts.min(2);
    // Deduplicated when the same trace is already being computed: then wait for that one.
    ctx.jobs.enqueue(&nj).await?;
    let deadline = Instant::now() + WAIT;
    loop {
        tokio::time::sleep(POLL).await;
        if let Some(answer) = stored(db, id, time, span).await? {
            return answer;
        }
        let job = sqlx::query_scalar!(
            "select status from job where dedupe_key = $1 order by enqueued_at desc limit 1",
            key,
        )
        .fetch_optional(db)
        .await?;
        if matches!(job.as_deref(), Some("failed" | "cancelled")) {
            return Err(Error::Limit(
                "the trace could not be computed (it has been logged); try again in a minute"
                    .into(),
            ));
        }
        if Instant::now() >= deadline {
            return Err(Error::Limit(
                "the trace is still being computed (the workers are busy); try again in a few seconds".into(),
            ));
        }
    }
}

/// The job: computes the trace and stores it (or why it was refused) with the job's completion.
pub(crate) async fn run_job(job: &crate::jobs::JobCtx) -> Result<(), crate::jobs::JobError> {
    let p: Payload = job.payload()?;
    let outcome = compute(job, p.backtest_run_id, p.time, p.span).await;
    let (result, error) = match outcome {
        Ok(t) => (Some(Json(t)), None),
        Err(Error::Db(e)) => return Err(e.into()),
        Err(Error::NotFound) => return job.complete(job.ctx.db.begin().await?).await,
        Err(e) => match Refusal::of(&e) {
            Some(r) => (None, Some(Json(r))),
            None => return Err(crate::jobs::JobError::Permanent(e.to_string())),
        },
    };
    let mut tx = job.ctx.db.begin().await?;
    sqlx::query!(
        r#"insert into backtest_trace (backtest_run_id, time_ms, span_ms, result, error)
           select $1, $2, $3, $4, $5 where exists (select 1 from backtest_run where backtest_run_id = $1)
           on conflict (backtest_run_id, time_ms, span_ms) do update set result = excluded.result,
               error = excluded.error, created_at = now()"#,
        p.backtest_run_id,
        p.time,
        p.span,
        result as _,
        error as _,
    )
    .execute(&mut *tx)
    .await?;
    // Bounded storage: the most recent answers per run are kept (older ones are recomputed when asked again).
    sqlx::query!(
        r#"delete from backtest_trace t where t.backtest_run_id = $1 and t.created_at < (
               select created_at from backtest_trace where backtest_run_id = $1
               order by created_at desc offset $2 limit 1)"#,
        p.backtest_run_id,
        KEEP_PER_RUN - 1,
    )
    .execute(&mut *tx)
    .await?;
    job.complete(tx).await
}

/// Re-runs the strategy version on the run's candles (from the first bar) and explains the bars asked for,
/// within the memory budget.
async fn compute(
    job: &crate::jobs::JobCtx,
    id: Uuid,
    time: i64,
    span_ms: i64,
) -> Result<Trace, Error> {
    let db = &job.ctx.db;
    let settings = &job.ctx.settings.backtest;
    let user = sqlx::query_scalar!(
        "select user_id from backtest_run where backtest_run_id = $1",
        id,
    )
    .fetch_optional(db)
    .await?;
    let run = get(db, user.ok_or(Error::NotFound)?, id).await?;
    let version = sqlx::query_scalar!(
        "select source from strategy_version where strategy_version_id = $1",
        run.strategy_version_id,
    )
    .fetch_one(db)
    .await?;
    let Some(stored_hash) = sqlx::query_scalar!(
        "select provenance->>'candles_hash' as candles_hash from backtest_result where backtest_run_id = $1",
        id,
    )
    .fetch_optional(db)
    .await?
    else {
        return Err(Error::NotFinished(format!(
            "the decision trace is available once the run is done (it is {})",
            run.summary.status
        )));
    };
    let tf = Timeframe::parse(&run.summary.timeframe)
        .map_err(|e| Error::invalid("timeframe", e.to_string()))?;
    let compiled = compile(&version, &run.params)?;
    // The memory budget, before the candles are loaded (the trace holds the run's columns, the equity curve and
    // the position at every bar).
    let bars = sqlx::query_scalar!(
        r#"select count(*) as "n!" from candle
           where instrument_id = $1 and timeframe = $2 and open_time >= $3 and open_time < $4"#,
        run.summary.instrument_id,
        tf.as_str(),
        run.summary.range_from,
        run.summary.range_to,
    )
    .fetch_one(db)
    .await?;
    let (estimate, limits) = super::budget::check(
        settings,
        &compiled,
        usize::try_from(bars).unwrap_or(0),
        true,
    )
    .map_err(|m| Error::invalid("time", m))?;
    let _admission = match super::budget::try_admit(settings, &estimate) {
        Some(a) => a,
        None => super::budget::admit(settings, &estimate).await,
    };
    let candles = store::load_candles(
        db,
        run.summary.instrument_id,
        tf,
        Some(crate::market::to_millis(run.summary.range_from)),
        Some(crate::market::to_millis(run.summary.range_to)),
        None,
    )
    .await?;
    if candles.is_empty() {
        return Err(Error::invalid(
            "time",
            "the candles of this run are no longer stored",
        ));
    }
    let first = candles.time[0];
    let last = candles.time[candles.len() - 1];
    if time < first || time > last + candles.timeframe.millis() {
        return Err(Error::invalid(
            "time",
            format!(
                "{} is outside this run ({} to {})",
                iso(time),
                iso(first),
                iso(last)
            ),
        ));
    }
    let start = candles
        .time
        .partition_point(|&t| t <= time)
        .saturating_sub(1);
    let end = if span_ms > 0 {
        candles
            .time
            .partition_point(|&t| t < time.saturating_add(span_ms))
            .max(start + 1)
    } else {
        start + 1
    };
    if end - start > TRACE_MAX_SPAN_BARS {
        return Err(Error::invalid(
            "span",
            format!("at most {TRACE_MAX_SPAN_BARS} bars per trace; click a single candle"),
        ));
    }
    let config = run.config.clone();
    let hash_now = candles.content_hash();
    let bars = tokio::task::spawn_blocking(move || {
        // No look-ahead: the state at bar t depends only on bars <= t, so the bars after the traced range (but
        // one, so the last traced bar is not the data's last) need not be simulated. The bars before it are all
        // simulated: indicators and the position depend on the whole history.
        let upto = (end + 1).min(candles.len());
        let candles = if upto < candles.len() {
            candles.slice(0..upto)
        } else {
            candles
        };
        engine::backtest::trace_limited(&candles, &compiled, &config, start..end, limits)
    })
    .await
    .map_err(|e| Error::Db(sqlx::Error::Protocol(format!("trace task: {e}"))))?
    .map_err(|e| Error::invalid("time", e.to_string()))?;
    let mut bars: Vec<TraceBar> = bars
        .into_iter()
        .map(|b| TraceBar {
            index: b.index,
            time: b.time,
            open: b.open,
            high: b.high,
            low: b.low,
            close: b.close,
            in_position: b.in_position,
            entry_rules: b.entry_rules,
            exit_rules: b.exit_rules,
            values: b.values.into_iter().map(|(k, v)| (k, finite(v))).collect(),
            actions: b.actions,
        })
        .collect();
    let mut note = None;
    if bars.len() > 1 {
        let total = bars.len();
        let eventful: Vec<TraceBar> = bars
            .iter()
            .filter(|b| {
                b.actions
                    .iter()
                    .any(|a| !a.starts_with("some series are still warming up"))
            })
            .take(TRACE_MAX_BARS)
            .cloned()
            .collect();
        bars = if eventful.is_empty() {
            note = Some(format!(
                "nothing happened in the {total} bars of this candle; showing its last bar"
            ));
            bars.split_off(total - 1)
        } else {
            note = Some(format!(
                "{} of the {total} bars of this candle had a signal or a fill",
                eventful.len()
            ));
            eventful
        };
    }
    if stored_hash.is_some_and(|h| h != hash_now) {
        note = Some(
            "the stored candles changed since this run (their hash differs): this trace uses today's data"
                .into(),
        );
    }
    Ok(Trace { bars, note })
}
