//! The `backtest` job: loads a run's candles, runs the engine on a blocking thread (progress and cancellation
//! through shared atomics that a small task syncs with the run row), and stores the result, its trades and
//! the run's final status in the transaction that marks the job done. A worker killed mid-run leaves the run
//! `running`; the job is re-run after its lease expires and the result is stored exactly once.
//!
//! Outcomes a trader can act on (no candles, a strategy that no longer compiles, cancellation) are recorded on
//! the run and finish the job; infrastructure errors (database) retry the job.

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU32, Ordering},
    },
    time::{Duration, Instant},
};

use chrono::Utc;
use engine::backtest::{BacktestConfig, BacktestError, BacktestResult};
use engine::candles::Timeframe;
use serde::{Deserialize, Serialize};
use sqlx::types::Json;
use uuid::Uuid;

use crate::Ctx;
use crate::backtest::runs::thin_equity;
use crate::jobs::{JobCtx, JobError, JobKind};
use crate::market::{store, to_millis};
use crate::notify::{
    self,
    event::{BacktestFailed, BacktestFinished, Event},
};

pub const KIND: &str = "backtest";
/// Backtests have their own queue so a burst of long runs never delays mail or housekeeping.
pub const QUEUE: &str = crate::jobs::BACKTEST_QUEUE;

/// The backtest job, with the hooks that fail the run when its job gives up.
pub const JOB: JobKind = JobKind {
    on_gave_up: Some(|ctx, job_id| Box::pin(fail_runs_of(ctx, job_id))),
    sweep: Some(|ctx, conn| Box::pin(sweep_orphaned_runs(ctx, conn))),
    ..JobKind::new(KIND, QUEUE, |job| Box::pin(run(job)))
};

/// The decision-trace job ([`super::trace`]): no dependents, nothing to sweep.
pub const TRACE_JOB: JobKind = JobKind::new(super::trace::KIND, QUEUE, |job| {
    Box::pin(super::trace::run_job(job))
});

/// What a trader sees when a job behind their run ran out of attempts (the cause is in the logs and on the
/// job row for operators, never shown to traders).
pub const FAILED_FOR_TRADER: &str = "the worker could not finish this run: an infrastructure error repeated on every \
     attempt (it has been logged). Run it again; if it keeps failing, tell your operator.";

/// Marks the runs that wait on `job_id` failed once the job itself is `failed` (attempts spent), so they do
/// not stay `queued`/`running` forever, and tells their owners (`backtest.failed`) in the same transaction.
/// Errors are logged; housekeeping's sweep repeats the work.
async fn fail_runs_of(ctx: &Ctx, job_id: Uuid) {
    let r = async {
        let mut tx = ctx.db.begin().await?;
        let runs = sqlx::query_scalar!(
            r#"update backtest_run set status = 'failed', error = $2, finished_at = now()
               where job_id = $1 and status in ('queued', 'running')
               returning backtest_run_id"#,
            job_id,
            FAILED_FOR_TRADER,
        )
        .fetch_all(&mut *tx)
        .await?;
        let mut emitted = Vec::new();
        for run_id in runs {
            emitted.extend(notify_run(&mut tx, ctx, run_id, Vec::new()).await?);
        }
        tx.commit().await?;
        notify::push(&ctx.jobs, &emitted).await;
        Ok::<_, sqlx::Error>(())
    }
    .await;
    if let Err(e) = r {
        tracing::warn!(error = %e, %job_id, "could not mark the job's runs failed; housekeeping will");
    }
}

/// Runs whose job failed (or vanished) before they were marked: failed, with their `backtest.failed` events
/// (run by housekeeping before it prunes job rows; the reconciler pushes the fan-out jobs).
async fn sweep_orphaned_runs(ctx: &Ctx, conn: &mut sqlx::PgConnection) -> sqlx::Result<u64> {
    let runs = sqlx::query_scalar!(
        r#"update backtest_run r set status = 'failed', error = $1, finished_at = now()
           where r.status in ('queued', 'running')
             and not exists (select 1 from job j where j.job_id = r.job_id and j.status in ('queued', 'running', 'done'))
           returning r.backtest_run_id"#,
        FAILED_FOR_TRADER,
    )
    .fetch_all(&mut *conn)
    .await?;
    for &run_id in &runs {
        notify_run(conn, ctx, run_id, Vec::new()).await?;
    }
    Ok(runs.len() as u64)
}

/// Emits the notification of a run that just reached a final status, in the caller's transaction (so the
/// event exists if and only if the status committed): `backtest.finished` for `done`, `backtest.failed` for
/// `failed`, nothing for `cancelled` (the trader did that). `sparkline` is the equity curve, if stored.
async fn notify_run(
    conn: &mut sqlx::PgConnection,
    ctx: &Ctx,
    run_id: Uuid,
    sparkline: Vec<f32>,
) -> sqlx::Result<Option<notify::Emitted>> {
    let Some(r) = sqlx::query!(
        r#"select r.user_id, r.batch_id, r.strategy_id, s.name as strategy_name, i.symbol, r.timeframe,
                  r.range_from, r.range_to, r.status, r.error, r.total_return, r.sharpe, r.max_drawdown,
                  r.trade_count, r.final_equity
           from backtest_run r
           join strategy s on s.strategy_id = r.strategy_id
           join instrument i on i.instrument_id = r.instrument_id
           where r.backtest_run_id = $1"#,
        run_id,
    )
    .fetch_optional(&mut *conn)
    .await?
    else {
        return Ok(None);
    };
    let event = match r.status.as_str() {
        "done" => Event::BacktestFinished(BacktestFinished {
            user_id: r.user_id,
            run_id,
            batch_id: r.batch_id,
            strategy_id: r.strategy_id,
            strategy_name: r.strategy_name,
            symbol: r.symbol,
            timeframe: r.timeframe,
            range_from: r.range_from,
            range_to: r.range_to,
            total_return: r.total_return.filter(|x| x.is_finite()),
            sharpe: r.sharpe.filter(|x| x.is_finite()),
            max_drawdown: r.max_drawdown.filter(|x| x.is_finite()),
            trade_count: r.trade_count.unwrap_or(0),
            final_equity: r.final_equity.filter(|x| x.is_finite()),
            sparkline,
        }),
        "failed" => Event::BacktestFailed(BacktestFailed {
            user_id: r.user_id,
            run_id,
            batch_id: r.batch_id,
            strategy_name: r.strategy_name,
            symbol: r.symbol,
            timeframe: r.timeframe,
            error: r.error.unwrap_or_default(),
        }),
        _ => return Ok(None),
    };
    notify::emit(conn, &ctx.jobs, &ctx.clock, &event)
        .await
        .map(Some)
}

/// How often the run row's progress and cancel flag are synced while the engine runs.
const SYNC_EVERY: Duration = Duration::from_millis(250);

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Payload {
    pub backtest_run_id: Uuid,
}

struct Watch {
    progress: Arc<AtomicU32>,
    cancel: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Watch {
    fn start(db: sqlx::PgPool, run_id: Uuid) -> Self {
        let progress = Arc::new(AtomicU32::new(0.02f32.to_bits()));
        let cancel = Arc::new(AtomicBool::new(false));
        let (p, c) = (progress.clone(), cancel.clone());
        let task = tokio::spawn(async move {
            let mut written = f32::NAN;
            loop {
                tokio::time::sleep(SYNC_EVERY).await;
                let now = f32::from_bits(p.load(Ordering::Relaxed));
                let changed = (now - written).abs() >= 0.01 || written.is_nan();
                let q = if changed {
                    sqlx::query_scalar!(
                        r#"update backtest_run set progress = greatest(progress, $2)
                           where backtest_run_id = $1 returning cancel_requested"#,
                        run_id,
                        now.clamp(0.0, 1.0),
                    )
                    .fetch_optional(&db)
                    .await
                } else {
                    sqlx::query_scalar!(
                        "select cancel_requested from backtest_run where backtest_run_id = $1",
                        run_id,
                    )
                    .fetch_optional(&db)
                    .await
                };
                match q {
                    Ok(Some(flag)) => {
                        if changed {
                            written = now;
                        }
                        if flag {
                            c.store(true, Ordering::SeqCst);
                        }
                    }
                    // The run row is gone (user deleted): stop the engine.
                    Ok(None) => c.store(true, Ordering::SeqCst),
                    Err(e) => tracing::debug!(error = %e, "backtest progress sync skipped"),
                }
            }
        });
        Self {
            progress,
            cancel,
            task,
        }
    }

    fn set(&self, p: f32) {
        self.progress.store(p.to_bits(), Ordering::Relaxed);
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub(crate) async fn run(job: &JobCtx) -> Result<(), JobError> {
    let p: Payload = job.payload()?;
    let run_id = p.backtest_run_id;
    let db = &job.ctx.db;
    let Some(row) = sqlx::query!(
        r#"select r.status, r.cancel_requested, r.instrument_id, r.timeframe, r.range_from, r.range_to,
                  r.params as "params: Json<Vec<(String, String)>>", r.config as "config: Json<BacktestConfig>",
                  r.created_at, v.source
           from backtest_run r join strategy_version v using (strategy_version_id)
           where r.backtest_run_id = $1"#,
        run_id,
    )
    .fetch_optional(db)
    .await?
    else {
        // The run was deleted with its owner: nothing to do.
        return job.complete(db.begin().await?).await;
    };
    if !matches!(row.status.as_str(), "queued" | "running") {
        return job.complete(db.begin().await?).await;
    }
    if row.cancel_requested {
        return finish(job, run_id, "cancelled", None).await;
    }
    let started = sqlx::query!(
        r#"update backtest_run set status = 'running', started_at = coalesce(started_at, now()), error = null
           where backtest_run_id = $1 and status in ('queued', 'running')"#,
        run_id,
    )
    .execute(db)
    .await?;
    if started.rows_affected() == 0 {
        return job.complete(db.begin().await?).await;
    }
    let queue_ms = (Utc::now() - row.created_at).num_milliseconds().max(0);
    let instrument_id = row.instrument_id;
    let timeframe = row.timeframe;
    let (range_from, range_to) = (row.range_from, row.range_to);
    let (params, config, source) = (row.params, row.config, row.source);
    let Ok(tf) = Timeframe::parse(&timeframe) else {
        return finish(
            job,
            run_id,
            "failed",
            Some(format!("unknown timeframe `{timeframe}`")),
        )
        .await;
    };

    let compiled = match engine::strategy::compile(&source, &params.0) {
        Ok(c) => c,
        Err(d) => {
            let msg = d
                .iter()
                .map(|d| d.render(&source))
                .collect::<Vec<_>>()
                .join("\n");
            return finish(job, run_id, "failed", Some(msg)).await;
        }
    };
    // The memory budget, before anything is loaded: the bars in the range (the count the submission checked
    // may have grown since) and the compiled strategy's columns. The range holds at most its length over the
    // timeframe; when that fits, it stands in for the count (which scans the range: ~80 ms for a year of
    // 1-minute candles) and the limits are computed again on what was loaded.
    let settings = &job.ctx.settings.backtest;
    let span = u64::try_from((range_to - range_from).num_milliseconds()).unwrap_or(0);
    let at_most = usize::try_from(span.div_ceil(tf.millis().max(1) as u64)).unwrap_or(usize::MAX);
    let bounded = (at_most as i64) <= job.ctx.settings.backtest.max_bars;
    let estimate = match crate::backtest::budget::check(settings, &compiled, at_most, false) {
        Ok((estimate, _)) if bounded => estimate,
        _ => {
            let bars = sqlx::query_scalar!(
                r#"select count(*) as "n!" from candle
                   where instrument_id = $1 and timeframe = $2 and open_time >= $3 and open_time < $4"#,
                instrument_id,
                tf.as_str(),
                range_from,
                range_to,
            )
            .fetch_one(db)
            .await?;
            match crate::backtest::budget::check(
                settings,
                &compiled,
                usize::try_from(bars).unwrap_or(usize::MAX),
                false,
            ) {
                Ok((estimate, _)) => estimate,
                Err(msg) => return finish(job, run_id, "failed", Some(msg)).await,
            }
        }
    };
    let _admission = admit(job, &estimate).await?;

    let watch = Watch::start(db.clone(), run_id);
    let t_load = Instant::now();
    let candles = store::load_candles(
        db,
        instrument_id,
        tf,
        Some(to_millis(range_from)),
        Some(to_millis(range_to)),
        None,
    )
    .await?;
    let load_ms = t_load.elapsed().as_millis() as u64;
    metrics::histogram!("backtest_phase_seconds", "phase" => "load")
        .record(t_load.elapsed().as_secs_f64());
    watch.set(0.3);
    // Cancelled while the candles loaded: stop before the engine.
    let cancelled = sqlx::query_scalar!(
        "select cancel_requested from backtest_run where backtest_run_id = $1",
        run_id,
    )
    .fetch_optional(db)
    .await?
    .unwrap_or(true);
    if cancelled {
        drop(watch);
        return finish(job, run_id, "cancelled", None).await;
    }
    if candles.len() < 2 {
        return finish(
            job,
            run_id,
            "failed",
            Some(format!(
                "only {} candle(s) are stored for this range now; load market data for it and run again",
                candles.len()
            )),
        )
        .await;
    }
    let max_bars = job.ctx.settings.backtest.max_bars;
    if candles.len() as i64 > max_bars {
        return finish(
            job,
            run_id,
            "failed",
            Some(format!(
                "{} candles exceed the limit of {max_bars}; shorten the range",
                candles.len()
            )),
        )
        .await;
    }
    // The limits of what was loaded (candles written since the count, or fewer than the bound).
    let limits = match crate::backtest::budget::check(settings, &compiled, candles.len(), false) {
        Ok((_, l)) => l,
        Err(msg) => return finish(job, run_id, "failed", Some(msg)).await,
    };
    let t_engine = Instant::now();
    let (progress, cancel) = (watch.progress.clone(), watch.cancel.clone());
    let config = config.0;
    let outcome = tokio::task::spawn_blocking(move || {
        let r = engine::backtest::run_limited(
            &candles,
            &compiled,
            &config,
            limits,
            &mut |done, total| {
                let f = 0.3 + 0.6 * (done as f32 / total.max(1) as f32);
                progress.store(f.to_bits(), Ordering::Relaxed);
                !cancel.load(Ordering::SeqCst)
            },
        );
        (r, candles)
    })
    .await
    .map_err(|e| JobError::Retry(anyhow::anyhow!("engine task: {e}")))?;
    let engine_ms = t_engine.elapsed().as_millis() as u64;
    metrics::histogram!("backtest_phase_seconds", "phase" => "engine")
        .record(t_engine.elapsed().as_secs_f64());
    let (result, candles) = outcome;
    let result = match result {
        Ok(r) => r,
        Err(BacktestError::Cancelled) => return finish(job, run_id, "cancelled", None).await,
        Err(e) => return finish(job, run_id, "failed", Some(e.to_string())).await,
    };
    watch.set(0.95);
    drop(watch);

    let t_store = Instant::now();
    let equity = thin_equity(
        &candles.time,
        &result.equity,
        job.ctx.settings.backtest.equity_points,
    );
    let chart = crate::backtest::runs::chart_candles(&candles);
    let prepare_ms = t_store.elapsed().as_millis() as u64;
    let mut tx = db.begin().await?;
    store_result(&mut tx, job.job.job_id, run_id, &result, &equity, &chart).await?;
    let store_ms = t_store.elapsed().as_millis() as u64;
    let m = &result.metrics;
    sqlx::query!(
        r#"update backtest_run set status = 'done', progress = 1, finished_at = now(), error = null,
               total_return = $2, sharpe = $3, max_drawdown = $4, trade_count = $5, final_equity = $6, timing = $7
           where backtest_run_id = $1"#,
        run_id,
        m.total_return.value,
        m.sharpe.value,
        m.max_drawdown.value,
        i32::try_from(result.trades.len()).unwrap_or(i32::MAX),
        m.final_equity.value,
        serde_json::json!({
            "queue_ms": queue_ms,
            "load_ms": load_ms,
            "engine_ms": engine_ms,
            "store_ms": store_ms,
            "bars": candles.len(),
        }),
    )
    .execute(&mut *tx)
    .await?;
    let emitted = notify_run(
        &mut tx,
        &job.ctx,
        run_id,
        notify::event::sparkline(&equity.equity),
    )
    .await?;
    job.complete(tx).await?;
    notify::push(&job.ctx.jobs, emitted.as_slice()).await;
    metrics::histogram!("backtest_phase_seconds", "phase" => "store")
        .record(t_store.elapsed().as_secs_f64());
    tracing::info!(
        backtest_run_id = %run_id,
        bars = candles.len(),
        trades = result.trades.len(),
        queue_ms,
        load_ms,
        engine_ms,
        store_ms,
        prepare_ms,
        "backtest done"
    );
    Ok(())
}

/// Reserves the run's estimated memory in this process ([`crate::backtest::budget::admit`]). A run that has
/// to wait for the runs admitted before it gives its attempt back while it waits and takes it again once
/// admitted: if the process is killed meanwhile (say, out of memory because of another run), the runs that were
/// only waiting here have not spent an attempt, so one run's crash never uses up other runs' attempts.
async fn admit(
    job: &JobCtx,
    estimate: &crate::backtest::budget::Estimate,
) -> Result<crate::backtest::budget::Admission, JobError> {
    let settings = &job.ctx.settings.backtest;
    if let Some(a) = crate::backtest::budget::try_admit(settings, estimate) {
        return Ok(a);
    }
    let db = &job.ctx.db;
    let attempt = |delta: i32| {
        sqlx::query!(
            r#"update job set attempts = greatest(attempts + $3, 0)
               where job_id = $1 and worker = $2 and status = 'running'"#,
            job.job.job_id,
            job.worker,
            delta,
        )
    };
    attempt(-1).execute(db).await?;
    tracing::info!(
        estimate_mb = estimate.mb(),
        "backtest waits for memory held by other runs in this worker"
    );
    let admission = crate::backtest::budget::admit(settings, estimate).await;
    attempt(1).execute(db).await?;
    Ok(admission)
}

/// Records a final status other than done (with the error a trader can act on) and finishes the job.
async fn finish(
    job: &JobCtx,
    run_id: Uuid,
    status: &str,
    error: Option<String>,
) -> Result<(), JobError> {
    let mut tx = job.ctx.db.begin().await?;
    let changed = sqlx::query!(
        r#"update backtest_run set status = $2, error = $3, finished_at = now()
           where backtest_run_id = $1 and status in ('queued', 'running')"#,
        run_id,
        status,
        error,
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    let emitted = if changed > 0 {
        notify_run(&mut tx, &job.ctx, run_id, Vec::new()).await?
    } else {
        None
    };
    tracing::info!(backtest_run_id = %run_id, status, error = error.as_deref().unwrap_or(""), "backtest finished");
    job.complete(tx).await?;
    notify::push(&job.ctx.jobs, emitted.as_slice()).await;
    Ok(())
}

async fn store_result(
    tx: &mut sqlx::PgConnection,
    job_id: Uuid,
    run_id: Uuid,
    r: &BacktestResult,
    equity: &crate::backtest::runs::EquitySeries,
    chart: &crate::backtest::runs::ChartCandles,
) -> Result<(), JobError> {
    sqlx::query!(
        r#"insert into backtest_result (backtest_run_id, job_id, metrics, provenance, equity, bars, skipped_entries,
               chart_candles, value_names)
           values ($1, $2, $3, $4, $5, $6, $7, $8, $9)"#,
        run_id,
        job_id,
        Json(&r.metrics) as _,
        Json(&r.provenance) as _,
        Json(equity) as _,
        i32::try_from(r.provenance.bars).unwrap_or(i32::MAX),
        i32::try_from(r.skipped_entries).unwrap_or(i32::MAX),
        Json(chart) as _,
        Json(value_names(r)) as _,
    )
    .execute(&mut *tx)
    .await?;
    // The trades as columnar chunks by binary COPY (numbers, times and arrays go in as stored).
    crate::backtest::trade_chunks::write(tx, run_id, &r.trades).await?;
    Ok(())
}

/// The names of each rule's values, once per run (`backtest_result.value_names`): every trade of a rule has the
/// same names, so the trades store only the values.
fn value_names(r: &BacktestResult) -> BTreeMap<&str, Vec<&str>> {
    let mut names = BTreeMap::new();
    for t in &r.trades {
        let sides = [
            (Some(&t.entry_rule), &t.entry_values),
            (t.exit_rule.as_ref(), &t.exit_values),
        ];
        for (rule, values) in sides {
            if let Some(rule) = rule {
                names
                    .entry(rule.as_ref())
                    .or_insert_with(|| values.iter().map(|(k, _)| k.as_ref()).collect());
            }
        }
    }
    names
}
