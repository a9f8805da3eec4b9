//! Backtest runs: create (validated, limited per user, one run per instrument), list, status, cancel, and the
//! stored result with its trades, chart data and decision trace.

use chrono::{DateTime, Utc};
use engine::backtest::{BacktestConfig, Fill, Metrics, Provenance};
use engine::candles::{Candles, Timeframe};
use serde::{Deserialize, Serialize};
use sqlx::{PgPool, Row};
use uuid::Uuid;

use super::job;
use super::{Error, compile};
use crate::Ctx;
use crate::market::{iso, parse_time, store, to_datetime};

/// Most instruments one form submission may start runs for.
pub const MAX_INSTRUMENTS: usize = 10;

/// What the trader asks for. `fee` is a fraction per side (0.001 = 0.1 %).
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct NewRun {
    pub strategy_id: Uuid,
    /// `None` = the newest version.
    #[serde(default)]
    pub version: Option<i32>,
    /// Parameter overrides `(name, value)`, values as typed.
    #[serde(default)]
    pub params: Vec<(String, String)>,
    pub instrument_ids: Vec<i32>,
    pub timeframe: String,
    /// Start: `YYYY-MM-DD` (00:00 UTC) or an RFC 3339 timestamp.
    pub from: String,
    /// End: `YYYY-MM-DD` (inclusive: up to the end of that day) or an RFC 3339 timestamp (exclusive).
    pub to: String,
    pub initial_cash: f64,
    pub fee: f64,
    pub slippage_bps: f64,
    /// `next_open` (default) or `same_close`.
    pub fill: String,
}

/// The runs a submission created (one per instrument).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Created {
    pub batch_id: Uuid,
    pub run_ids: Vec<Uuid>,
}

/// A run as lists show it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RunSummary {
    pub backtest_run_id: Uuid,
    pub batch_id: Uuid,
    pub strategy_id: Uuid,
    pub strategy_name: String,
    pub version: i32,
    pub instrument_id: i32,
    /// e.g. `BTC/USDT · binance`
    pub instrument: String,
    pub timeframe: String,
    pub range_from: DateTime<Utc>,
    pub range_to: DateTime<Utc>,
    /// `queued`, `running`, `done`, `failed` or `cancelled`.
    pub status: String,
    /// 0–1.
    pub progress: f32,
    pub cancel_requested: bool,
    pub error: Option<String>,
    pub total_return: Option<f64>,
    pub sharpe: Option<f64>,
    pub max_drawdown: Option<f64>,
    pub trade_count: Option<i32>,
    pub final_equity: Option<f64>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl RunSummary {
    /// e.g. `MACD v2 · BTC/USDT 1h`
    pub fn label(&self) -> String {
        let pair = self.instrument.split(" · ").next().unwrap_or("");
        format!(
            "{} v{} · {} {}",
            self.strategy_name, self.version, pair, self.timeframe
        )
    }

    pub fn is_active(&self) -> bool {
        matches!(self.status.as_str(), "queued" | "running")
    }
}

/// Everything about a run except its result.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RunDetail {
    pub summary: RunSummary,
    pub strategy_version_id: Uuid,
    pub params: Vec<(String, String)>,
    pub config: BacktestConfig,
    /// `{queue_ms, load_ms, engine_ms, store_ms, bars}` once done.
    pub timing: Option<serde_json::Value>,
    pub started_at: Option<DateTime<Utc>>,
}

/// Live status, for polling.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RunStatus {
    pub status: String,
    pub progress: f32,
    pub error: Option<String>,
    /// A sentence for the page, e.g. "running · 42 %".
    pub message: String,
}

impl From<&RunSummary> for RunStatus {
    fn from(r: &RunSummary) -> Self {
        let message = match r.status.as_str() {
            "queued" if r.cancel_requested => "cancelling…".to_owned(),
            "queued" => "queued: waiting for a worker".to_owned(),
            "running" if r.cancel_requested => "cancelling…".to_owned(),
            "running" => format!("running · {:.0} %", r.progress * 100.0),
            "done" => "done".to_owned(),
            "cancelled" => "cancelled".to_owned(),
            _ => format!("failed: {}", r.error.as_deref().unwrap_or("unknown error")),
        };
        Self {
            status: r.status.clone(),
            progress: r.progress,
            error: r.error.clone(),
            message,
        }
    }
}

/// The equity curve as stored (thinned to `BACKTEST_EQUITY_POINTS`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct EquitySeries {
    pub time: Vec<i64>,
    pub equity: Vec<f64>,
}

/// A finished run's result.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RunResult {
    pub metrics: Metrics,
    pub provenance: Provenance,
    pub equity: EquitySeries,
    pub bars: i32,
    pub skipped_entries: i32,
}

/// One stored trade.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TradeRow {
    pub seq: i32,
    pub entry_time: DateTime<Utc>,
    pub exit_time: DateTime<Utc>,
    pub entry_price: f64,
    pub exit_price: f64,
    pub units: f64,
    pub fees: f64,
    pub pnl: f64,
    pub return_pct: f64,
    pub bars_held: i32,
    pub exit_reason: String,
    pub entry_rule: String,
    /// Indicator values at the entry signal (`None` = NaN, warming up).
    pub entry_values: Vec<(String, Option<f64>)>,
    pub exit_rule: Option<String>,
    pub exit_values: Vec<(String, Option<f64>)>,
}

/// List filters and order.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct RunFilter {
    pub strategy_id: Option<Uuid>,
    pub instrument_id: Option<i32>,
    pub status: Option<String>,
    pub batch_id: Option<Uuid>,
    /// `created_at` (default), `total_return`, `sharpe`, `max_drawdown`, `trade_count`, `final_equity`.
    pub sort: Option<String>,
    /// `desc` (default) or `asc`.
    pub dir: Option<String>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

/// The statuses a run can have.
pub const STATUSES: &[&str] = &["queued", "running", "done", "failed", "cancelled"];
/// Sortable run columns.
pub const RUN_SORTS: &[&str] = &[
    "created_at",
    "total_return",
    "sharpe",
    "max_drawdown",
    "trade_count",
    "final_equity",
];
/// Sortable trade columns.
pub const TRADE_SORTS: &[&str] = &[
    "seq",
    "entry_time",
    "exit_time",
    "pnl",
    "return_pct",
    "bars_held",
    "exit_reason",
];

fn parse_dir(dir: Option<&str>, default_desc: bool) -> Result<&'static str, Error> {
    match dir.map(str::trim) {
        None | Some("") => Ok(if default_desc { "desc" } else { "asc" }),
        Some("asc") => Ok("asc"),
        Some("desc") => Ok("desc"),
        Some(other) => Err(Error::invalid(
            "dir",
            format!("`{other}` is not a direction; use asc or desc"),
        )),
    }
}

/// Parses a range bound: a date (`YYYY-MM-DD`, 00:00 UTC; with `end`, the following midnight) or a timestamp.
fn parse_bound(field: &str, text: &str, end: bool) -> Result<i64, Error> {
    let t = text.trim();
    if t.is_empty() {
        return Err(Error::invalid(
            field,
            format!("give {} date", if end { "an end" } else { "a start" }),
        ));
    }
    let ms = parse_time(t).map_err(|e| Error::invalid(field, e))?;
    let date_only = t.len() == 10 && t.as_bytes().get(4) == Some(&b'-');
    Ok(if end && date_only {
        ms + engine::time::DAY_MS
    } else {
        ms
    })
}

/// Checks the trading options and turns them into the engine's configuration.
///
/// # Errors
/// [`Error::Invalid`] naming the field.
pub fn config(
    initial_cash: f64,
    fee: f64,
    slippage_bps: f64,
    fill: &str,
) -> Result<BacktestConfig, Error> {
    if !initial_cash.is_finite() || initial_cash <= 0.0 || initial_cash > 1e12 {
        return Err(Error::invalid(
            "initial_cash",
            "must be a positive amount up to 1,000,000,000,000",
        ));
    }
    if !fee.is_finite() || !(0.0..0.1).contains(&fee) {
        return Err(Error::invalid(
            "fee",
            "must be at least 0 and below 10 % per side",
        ));
    }
    if !slippage_bps.is_finite() || !(0.0..=1000.0).contains(&slippage_bps) {
        return Err(Error::invalid(
            "slippage_bps",
            "must be between 0 and 1000 basis points",
        ));
    }
    let fill = Fill::parse(fill).ok_or_else(|| {
        Error::invalid(
            "fill",
            format!("`{fill}` is not a fill model; use next_open or same_close"),
        )
    })?;
    Ok(BacktestConfig {
        initial_cash,
        fee,
        slippage_bps,
        fill,
        ..BacktestConfig::default()
    })
}

/// Validates a submission and queues one run per instrument, all or none.
///
/// # Errors
/// [`Error::NotFound`] (strategy), [`Error::Invalid`] naming the field, [`Error::Strategy`] (bad parameter
/// values), [`Error::Limit`] (too many runs in flight), database errors.
pub async fn create(
    ctx: &Ctx,
    user: Uuid,
    new: &NewRun,
    request_id: Option<String>,
) -> Result<Created, Error> {
    let db = &ctx.db;
    // The strategy first: one that is not the user's is "not found", never "has no version N".
    let archived: bool = sqlx::query_scalar(
        "select archived_at is not null from strategy where strategy_id = $1 and user_id = $2",
    )
    .bind(new.strategy_id)
    .bind(user)
    .fetch_optional(db)
    .await?
    .ok_or(Error::NotFound)?;
    let version = super::strategies::version(db, user, new.strategy_id, new.version)
        .await
        .map_err(|e| match (e, new.version) {
            (Error::NotFound, Some(v)) => {
                Error::invalid("version", format!("this strategy has no version {v}"))
            }
            (e, _) => e,
        })?;
    if archived {
        return Err(Error::invalid(
            "strategy",
            "this strategy is archived; restore it to run it",
        ));
    }
    // Parameter values are checked against the declared types and ranges; more values than declared
    // parameters is refused at once (each name appears once in `new.params`).
    if new.params.len() > version.params.len() {
        return Err(Error::invalid(
            "params",
            format!(
                "{} parameter values were sent but this strategy declares {}",
                new.params.len(),
                version.params.len()
            ),
        ));
    }
    let mut params: Vec<(String, String)> = Vec::new();
    for (k, v) in &new.params {
        let k = k.trim();
        if !version.params.iter().any(|p| p.name == k) {
            let names: Vec<&str> = version.params.iter().map(|p| p.name.as_str()).collect();
            return Err(Error::invalid(
                "params",
                format!(
                    "this strategy has no parameter `{k}` (it has: {})",
                    if names.is_empty() {
                        "none".to_owned()
                    } else {
                        names.join(", ")
                    }
                ),
            ));
        }
        if !v.trim().is_empty() {
            params.push((k.to_owned(), v.trim().to_owned()));
        }
    }
    let compiled = compile(&version.source, &params)?;
    let timeframe = Timeframe::parse(new.timeframe.trim())
        .map_err(|e| Error::invalid("timeframe", e.to_string()))?;
    let from = parse_bound("from", &new.from, false)?;
    let to = parse_bound("to", &new.to, true)?;
    if to <= from {
        return Err(Error::invalid("to", "the end must be after the start"));
    }
    let config = config(new.initial_cash, new.fee, new.slippage_bps, &new.fill)?;
    if new.instrument_ids.is_empty() {
        return Err(Error::invalid(
            "instrument",
            "choose at least one instrument",
        ));
    }
    if new.instrument_ids.len() > MAX_INSTRUMENTS {
        return Err(Error::invalid(
            "instrument",
            format!("at most {MAX_INSTRUMENTS} instruments per submission"),
        ));
    }
    let mut ids = new.instrument_ids.clone();
    ids.sort_unstable();
    ids.dedup();
    for &instrument_id in &ids {
        let inst = store::instrument(db, instrument_id).await?.ok_or_else(|| {
            Error::invalid(
                "instrument",
                format!("there is no instrument {instrument_id}"),
            )
        })?;
        let (count, first, last): (i64, Option<DateTime<Utc>>, Option<DateTime<Utc>>) =
            sqlx::query_as(
                r#"select count(*), min(open_time), max(open_time) from candle
                   where instrument_id = $1 and timeframe = $2 and open_time >= $3 and open_time < $4"#,
            )
            .bind(instrument_id)
            .bind(timeframe.as_str())
            .bind(to_datetime(from))
            .bind(to_datetime(to))
            .fetch_one(db)
            .await?;
        let label = format!("{} {}", inst.pair_label(), timeframe.as_str());
        if count == 0 {
            let stored: (Option<DateTime<Utc>>, Option<DateTime<Utc>>) = sqlx::query_as(
                "select min(open_time), max(open_time) from candle where instrument_id = $1 and timeframe = $2",
            )
            .bind(instrument_id)
            .bind(timeframe.as_str())
            .fetch_one(db)
            .await?;
            let have = match stored {
                (Some(a), Some(b)) => format!(
                    "stored candles run from {} to {}",
                    a.format("%Y-%m-%d"),
                    b.format("%Y-%m-%d")
                ),
                _ => "no candles of this timeframe are stored".to_owned(),
            };
            return Err(Error::invalid(
                "range",
                format!(
                    "there are no {label} candles between {} and {}; {have}",
                    iso(from),
                    iso(to)
                ),
            ));
        }
        if count < 2 {
            return Err(Error::invalid(
                "range",
                format!("only one {label} candle in this range; a backtest needs at least two"),
            ));
        }
        if count > ctx.settings.backtest.max_bars {
            return Err(Error::invalid(
                "range",
                format!(
                    "{count} {label} candles in this range; the limit is {} — shorten the range or use a longer timeframe",
                    ctx.settings.backtest.max_bars
                ),
            ));
        }
        let _ = (first, last);
        // The memory the run will need, from the compiled strategy and the bars (checked again by the worker).
        super::budget::check(
            &ctx.settings.backtest,
            &compiled,
            usize::try_from(count).unwrap_or(usize::MAX),
            false,
        )
        .map_err(|m| Error::invalid("range", format!("{label}: {m}")))?;
    }

    let batch_id = Uuid::new_v4();
    let mut tx = db.begin().await?;
    // One submission at a time per user, so two concurrent submissions cannot both pass the limit.
    sqlx::query("select pg_advisory_xact_lock(hashtextextended('backtest:' || $1::text, 0))")
        .bind(user)
        .execute(&mut *tx)
        .await?;
    let active: i64 = sqlx::query_scalar(
        r#"select count(*) from backtest_run r left join job j on j.job_id = r.job_id
           where r.user_id = $1 and r.status in ('queued', 'running') and j.status in ('queued', 'running')"#,
    )
    .bind(user)
    .fetch_one(&mut *tx)
    .await?;
    let limit = ctx.settings.backtest.max_concurrent;
    if active + ids.len() as i64 > limit {
        return Err(Error::Limit(format!(
            "you have {active} backtest(s) queued or running and this would start {} more; the limit is {limit} at a time. Wait for one to finish or cancel one.",
            ids.len()
        )));
    }
    let mut run_ids = Vec::with_capacity(ids.len());
    let mut jobs = Vec::with_capacity(ids.len());
    for &instrument_id in &ids {
        let run_id = Uuid::new_v4();
        let mut nj = ctx.jobs.new_job(
            job::QUEUE,
            job::KIND,
            serde_json::json!({ "backtest_run_id": run_id }),
        );
        nj.request_id = request_id.clone();
        // A backtest is deterministic: a failure is either permanent (reported on the run) or
        // infrastructure, worth a few retries.
        nj.max_attempts = nj.max_attempts.min(3);
        let job_id = ctx
            .jobs
            .insert(&mut tx, &nj)
            .await?
            .ok_or_else(|| Error::Conflict("duplicate job".into()))?;
        sqlx::query(
            r#"insert into backtest_run (backtest_run_id, user_id, strategy_id, strategy_version_id, batch_id, job_id,
                   instrument_id, timeframe, range_from, range_to, params, config, request_id)
               values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"#,
        )
        .bind(run_id)
        .bind(user)
        .bind(new.strategy_id)
        .bind(version.strategy_version_id)
        .bind(batch_id)
        .bind(job_id)
        .bind(instrument_id)
        .bind(timeframe.as_str())
        .bind(to_datetime(from))
        .bind(to_datetime(to))
        .bind(sqlx::types::Json(&params))
        .bind(sqlx::types::Json(&config))
        .bind(&request_id)
        .execute(&mut *tx)
        .await?;
        run_ids.push(run_id);
        jobs.push(job_id);
    }
    tx.commit().await?;
    for job_id in jobs {
        metrics::counter!("jobs_enqueued_total", "queue" => job::QUEUE, "kind" => job::KIND)
            .increment(1);
        ctx.jobs.push(job::QUEUE, job_id).await;
    }
    Ok(Created { batch_id, run_ids })
}

/// The effective status: a run whose job ran out of attempts (or is gone) is failed, with a message for the
/// trader (the job's own error is for operators: logs, `vortex jobs show`).
const RUN_SQL: &str = r#"
    select r.backtest_run_id, r.batch_id, r.strategy_id, s.name as strategy_name, v.version, r.instrument_id,
           i.base || '/' || i.quote || ' · ' || i.exchange as instrument, r.timeframe, r.range_from, r.range_to,
           case when r.status in ('queued', 'running') and (j.job_id is null or j.status in ('failed', 'cancelled'))
                then 'failed' else r.status end as status,
           r.progress, r.cancel_requested,
           case when r.status in ('queued', 'running') and (j.job_id is null or j.status in ('failed', 'cancelled'))
                then $99 else r.error end as error,
           r.total_return, r.sharpe, r.max_drawdown, r.trade_count, r.final_equity, r.created_at, r.finished_at,
           r.strategy_version_id, r.params, r.config, r.timing, r.started_at
    from backtest_run r
    join strategy s on s.strategy_id = r.strategy_id
    join strategy_version v on v.strategy_version_id = r.strategy_version_id
    join instrument i on i.instrument_id = r.instrument_id
    left join job j on j.job_id = r.job_id"#;

/// [`RUN_SQL`] with the trader's message for failed jobs filled in.
fn run_sql() -> String {
    RUN_SQL.replace(
        "$99",
        &format!("'{}'", job::FAILED_FOR_TRADER.replace('\'', "''")),
    )
}

fn run_summary(r: &sqlx::postgres::PgRow) -> Result<RunSummary, sqlx::Error> {
    Ok(RunSummary {
        backtest_run_id: r.try_get("backtest_run_id")?,
        batch_id: r.try_get("batch_id")?,
        strategy_id: r.try_get("strategy_id")?,
        strategy_name: r.try_get("strategy_name")?,
        version: r.try_get("version")?,
        instrument_id: r.try_get("instrument_id")?,
        instrument: r.try_get("instrument")?,
        timeframe: r.try_get("timeframe")?,
        range_from: r.try_get("range_from")?,
        range_to: r.try_get("range_to")?,
        status: r.try_get("status")?,
        progress: r.try_get("progress")?,
        cancel_requested: r.try_get("cancel_requested")?,
        error: r.try_get("error")?,
        total_return: r.try_get("total_return")?,
        sharpe: r.try_get("sharpe")?,
        max_drawdown: r.try_get("max_drawdown")?,
        trade_count: r.try_get("trade_count")?,
        final_equity: r.try_get("final_equity")?,
        created_at: r.try_get("created_at")?,
        finished_at: r.try_get("finished_at")?,
    })
}

/// The user's runs, filtered and sorted (nulls last).
///
/// # Errors
/// [`Error::Invalid`] for an unknown status, sort or direction; database errors.
pub async fn list(db: &PgPool, user: Uuid, f: &RunFilter) -> Result<Vec<RunSummary>, Error> {
    let sort = f.sort.as_deref().map(str::trim).filter(|s| !s.is_empty());
    let sort = match sort {
        None => "created_at",
        Some(s) => RUN_SORTS.iter().find(|k| **k == s).ok_or_else(|| {
            Error::invalid(
                "sort",
                format!("cannot sort by `{s}`; use one of {}", RUN_SORTS.join(", ")),
            )
        })?,
    };
    let dir = parse_dir(f.dir.as_deref(), true)?;
    if let Some(s) = f.status.as_deref().filter(|s| !s.is_empty())
        && !STATUSES.contains(&s)
    {
        return Err(Error::invalid(
            "status",
            format!("`{s}` is not a status; use one of {}", STATUSES.join(", ")),
        ));
    }
    let limit = f.limit.unwrap_or(100).clamp(1, 500);
    let offset = f.offset.unwrap_or(0).max(0);
    let sql = format!(
        r#"select * from ({} where r.user_id = $1) t
           where ($2::uuid is null or strategy_id = $2) and ($3::int is null or instrument_id = $3)
             and ($4::text is null or status = $4) and ($5::uuid is null or batch_id = $5)
           order by {sort} {dir} nulls last, created_at desc
           limit $6 offset $7"#,
        run_sql()
    );
    let rows = sqlx::query(&sql)
        .bind(user)
        .bind(f.strategy_id)
        .bind(f.instrument_id)
        .bind(f.status.as_deref().filter(|s| !s.is_empty()))
        .bind(f.batch_id)
        .bind(limit)
        .bind(offset)
        .fetch_all(db)
        .await?;
    Ok(rows.iter().map(run_summary).collect::<Result<_, _>>()?)
}

/// One of the user's runs.
///
/// # Errors
/// [`Error::NotFound`], database errors.
pub async fn get(db: &PgPool, user: Uuid, id: Uuid) -> Result<RunDetail, Error> {
    let r = sqlx::query(&format!(
        "{} where r.user_id = $1 and r.backtest_run_id = $2",
        run_sql()
    ))
    .bind(user)
    .bind(id)
    .fetch_optional(db)
    .await?
    .ok_or(Error::NotFound)?;
    let params: sqlx::types::Json<Vec<(String, String)>> = r.try_get("params")?;
    let config: sqlx::types::Json<BacktestConfig> = r.try_get("config")?;
    Ok(RunDetail {
        summary: run_summary(&r)?,
        strategy_version_id: r.try_get("strategy_version_id")?,
        params: params.0,
        config: config.0,
        timing: r.try_get("timing")?,
        started_at: r.try_get("started_at")?,
    })
}

/// The live status of one of the user's runs.
///
/// # Errors
/// [`Error::NotFound`], database errors.
pub async fn status(db: &PgPool, user: Uuid, id: Uuid) -> Result<RunStatus, Error> {
    Ok(RunStatus::from(&get(db, user, id).await?.summary))
}

/// Cancels a queued run at once, or asks the worker running it to stop (it stops within a fraction of a
/// second and marks the run cancelled).
///
/// # Errors
/// [`Error::NotFound`], [`Error::Conflict`] when the run has already finished; database errors.
pub async fn cancel(db: &PgPool, user: Uuid, id: Uuid) -> Result<RunStatus, Error> {
    let current = get(db, user, id).await?;
    if !current.summary.is_active() {
        return Err(Error::Conflict(format!(
            "this backtest has already finished ({})",
            current.summary.status
        )));
    }
    let mut tx = db.begin().await?;
    let (status, job_id): (String, Option<Uuid>) = sqlx::query_as(
        "select status, job_id from backtest_run where backtest_run_id = $1 and user_id = $2 for update",
    )
    .bind(id)
    .bind(user)
    .fetch_one(&mut *tx)
    .await?;
    match status.as_str() {
        "queued" => {
            sqlx::query(
                r#"update backtest_run set status = 'cancelled', cancel_requested = true, finished_at = now()
                   where backtest_run_id = $1"#,
            )
            .bind(id)
            .execute(&mut *tx)
            .await?;
            // A worker that already claimed the job sees the run cancelled and stops.
            sqlx::query(
                "update job set status = 'cancelled', finished_at = now() where job_id = $1 and status = 'queued'",
            )
            .bind(job_id)
            .execute(&mut *tx)
            .await?;
        }
        "running" => {
            sqlx::query(
                "update backtest_run set cancel_requested = true where backtest_run_id = $1",
            )
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        other => {
            return Err(Error::Conflict(format!(
                "this backtest has already finished ({other})"
            )));
        }
    }
    tx.commit().await?;
    status_of(db, user, id).await
}

async fn status_of(db: &PgPool, user: Uuid, id: Uuid) -> Result<RunStatus, Error> {
    status(db, user, id).await
}

/// The stored result of one of the user's runs.
///
/// # Errors
/// [`Error::NotFound`] (no run, or not finished), database errors.
pub async fn result(db: &PgPool, user: Uuid, id: Uuid) -> Result<RunResult, Error> {
    let r = sqlx::query(
        r#"select res.metrics, res.provenance, res.equity, res.bars, res.skipped_entries
           from backtest_result res join backtest_run r using (backtest_run_id)
           where r.user_id = $1 and r.backtest_run_id = $2"#,
    )
    .bind(user)
    .bind(id)
    .fetch_optional(db)
    .await?
    .ok_or(Error::NotFound)?;
    let metrics: sqlx::types::Json<Metrics> = r.try_get("metrics")?;
    let provenance: sqlx::types::Json<Provenance> = r.try_get("provenance")?;
    let equity: sqlx::types::Json<EquitySeries> = r.try_get("equity")?;
    Ok(RunResult {
        metrics: metrics.0,
        provenance: provenance.0,
        equity: equity.0,
        bars: r.try_get("bars")?,
        skipped_entries: r.try_get("skipped_entries")?,
    })
}

/// A page of a run's trades, sorted; and the total count.
///
/// # Errors
/// [`Error::NotFound`], [`Error::Invalid`] for an unknown sort or direction; database errors.
pub async fn trades(
    db: &PgPool,
    user: Uuid,
    id: Uuid,
    sort: Option<&str>,
    dir: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<(Vec<TradeRow>, i64), Error> {
    let sort = match sort.map(str::trim).filter(|s| !s.is_empty()) {
        None => "seq",
        Some(s) => TRADE_SORTS.iter().find(|k| **k == s).ok_or_else(|| {
            Error::invalid(
                "sort",
                format!(
                    "cannot sort trades by `{s}`; use one of {}",
                    TRADE_SORTS.join(", ")
                ),
            )
        })?,
    };
    let dir = parse_dir(dir, false)?;
    let owner: Option<i64> = sqlx::query_scalar(
        r#"select (select count(*) from backtest_trade t where t.backtest_run_id = r.backtest_run_id)
           from backtest_run r where r.user_id = $1 and r.backtest_run_id = $2"#,
    )
    .bind(user)
    .bind(id)
    .fetch_optional(db)
    .await?;
    let total = owner.ok_or(Error::NotFound)?;
    let rows = sqlx::query(&format!(
        r#"select {TRADE_COLUMNS}
           from backtest_trade where backtest_run_id = $1
           order by {sort} {dir}, seq limit $2 offset $3"#
    ))
    .bind(id)
    .bind(limit.max(1))
    .bind(offset.max(0))
    .fetch_all(db)
    .await?;
    let trades = rows
        .iter()
        .map(trade_row)
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    Ok((trades, total))
}

/// The `backtest_trade` columns [`trade_row`] reads.
pub(crate) const TRADE_COLUMNS: &str = "seq, entry_time, exit_time, entry_price, exit_price, units, fees, pnl, \
     return_pct, bars_held, exit_reason, entry_rule, entry_values, exit_rule, exit_values";

/// One trade from a row of [`TRADE_COLUMNS`].
pub(crate) fn trade_row(r: &sqlx::postgres::PgRow) -> Result<TradeRow, sqlx::Error> {
    let ev: sqlx::types::Json<Vec<(String, Option<f64>)>> = r.try_get("entry_values")?;
    let xv: sqlx::types::Json<Vec<(String, Option<f64>)>> = r.try_get("exit_values")?;
    Ok(TradeRow {
        seq: r.try_get("seq")?,
        entry_time: r.try_get("entry_time")?,
        exit_time: r.try_get("exit_time")?,
        entry_price: r.try_get("entry_price")?,
        exit_price: r.try_get("exit_price")?,
        units: r.try_get("units")?,
        fees: r.try_get("fees")?,
        pnl: r.try_get("pnl")?,
        return_pct: r.try_get("return_pct")?,
        bars_held: r.try_get("bars_held")?,
        exit_reason: r.try_get("exit_reason")?,
        entry_rule: r.try_get("entry_rule")?,
        entry_values: ev.0,
        exit_rule: r.try_get("exit_rule")?,
        exit_values: xv.0,
    })
}

/// Every trade of a run, in order.
///
/// # Errors
/// As [`trades`].
pub async fn all_trades(db: &PgPool, user: Uuid, id: Uuid) -> Result<Vec<TradeRow>, Error> {
    Ok(trades(db, user, id, None, None, i64::MAX, 0).await?.0)
}

/// The trades as CSV (one row per trade; times in RFC 3339 UTC).
pub fn trades_csv(trades: &[TradeRow]) -> String {
    let mut out = String::from(TRADES_CSV_HEADER);
    for t in trades {
        out.push_str(&trade_csv_line(t));
    }
    out
}

/// The first line of [`trades_csv`].
pub const TRADES_CSV_HEADER: &str = "seq,entry_time,exit_time,entry_price,exit_price,units,fees,pnl,return_pct,bars_held,exit_reason,entry_rule,exit_rule\n";

/// One trade's line of [`trades_csv`] (with its newline).
pub fn trade_csv_line(t: &TradeRow) -> String {
    let row = [
        t.seq.to_string(),
        t.entry_time.to_rfc3339(),
        t.exit_time.to_rfc3339(),
        t.entry_price.to_string(),
        t.exit_price.to_string(),
        t.units.to_string(),
        t.fees.to_string(),
        t.pnl.to_string(),
        t.return_pct.to_string(),
        t.bars_held.to_string(),
        t.exit_reason.clone(),
        t.entry_rule.clone(),
        t.exit_rule.clone().unwrap_or_default(),
    ];
    let cells: Vec<String> = row.iter().map(|c| csv_cell(c)).collect();
    let mut out = cells.join(",");
    out.push('\n');
    out
}

/// Quotes a CSV cell when needed, and defuses spreadsheet formulas (a cell starting with `=`, `+`, `-`, `@`
/// that is not a number gets a leading `'`).
fn csv_cell(c: &str) -> String {
    let mut c = c.to_owned();
    if c.starts_with(['=', '+', '-', '@', '\t', '\r']) && c.parse::<f64>().is_err() {
        c.insert(0, '\'');
    }
    if c.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", c.replace('"', "\"\""))
    } else {
        c
    }
}

/// Candles for a chart, thinned to at most this many bars by resampling to a longer timeframe.
pub const CHART_MAX_BARS: usize = 5000;

/// What the results page's charts draw.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChartData {
    pub candles: ChartCandles,
    pub equity: EquitySeries,
    pub initial_cash: f64,
    /// The first [`CHART_MAX_TRADES`] trades (markers beyond that are unreadable anyway).
    pub trades: Vec<ChartTrade>,
    /// All trades of the run (more than `trades.len()` when the markers were capped).
    pub trade_count: usize,
}

/// Most trades drawn as chart markers.
pub const CHART_MAX_TRADES: i64 = 20_000;

/// Candles as columns.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChartCandles {
    pub timeframe: String,
    pub time: Vec<i64>,
    pub open: Vec<f64>,
    pub high: Vec<f64>,
    pub low: Vec<f64>,
    pub close: Vec<f64>,
}

/// A trade for chart markers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChartTrade {
    pub seq: i32,
    pub entry_time: i64,
    pub exit_time: i64,
    pub entry_price: f64,
    pub exit_price: f64,
    pub pnl: f64,
    pub return_pct: f64,
    pub exit_reason: String,
}

/// Resamples candles to the shortest timeframe that keeps at most [`CHART_MAX_BARS`] bars.
pub fn chart_candles(c: &Candles) -> ChartCandles {
    let mut shown = None;
    if c.len() > CHART_MAX_BARS {
        for tf in [
            Timeframe::M5,
            Timeframe::M15,
            Timeframe::M30,
            Timeframe::H1,
            Timeframe::H4,
            Timeframe::D1,
            Timeframe::W1,
        ] {
            if tf.millis() <= c.timeframe.millis() {
                continue;
            }
            if let Ok(r) = c.resample(tf)
                && (r.len() <= CHART_MAX_BARS || tf == Timeframe::W1)
            {
                shown = Some(r);
                break;
            }
        }
    }
    let c = shown.as_ref().unwrap_or(c);
    ChartCandles {
        timeframe: c.timeframe.as_str().to_owned(),
        time: c.time.clone(),
        open: c.open.clone(),
        high: c.high.clone(),
        low: c.low.clone(),
        close: c.close.clone(),
    }
}

async fn run_candles(db: &PgPool, run: &RunDetail) -> Result<Candles, Error> {
    let tf = Timeframe::parse(&run.summary.timeframe)
        .map_err(|e| Error::invalid("timeframe", e.to_string()))?;
    Ok(store::load_candles(
        db,
        run.summary.instrument_id,
        tf,
        Some(crate::market::to_millis(run.summary.range_from)),
        Some(crate::market::to_millis(run.summary.range_to)),
        None,
    )
    .await?)
}

/// The data for a finished run's charts.
///
/// # Errors
/// [`Error::NotFound`], database errors.
pub async fn chart(db: &PgPool, user: Uuid, id: Uuid) -> Result<ChartData, Error> {
    let run = get(db, user, id).await?;
    let res = result(db, user, id).await?;
    let stored: Option<sqlx::types::Json<ChartCandles>> =
        sqlx::query_scalar("select chart_candles from backtest_result where backtest_run_id = $1")
            .bind(id)
            .fetch_one(db)
            .await?;
    let candles = match stored {
        Some(c) => c.0,
        // Results stored before chart candles were kept: resample the stored candles now.
        None => chart_candles(&run_candles(db, &run).await?),
    };
    let (trades, total) = trades(db, user, id, None, None, CHART_MAX_TRADES, 0).await?;
    Ok(ChartData {
        trade_count: usize::try_from(total).unwrap_or(usize::MAX),
        candles,
        equity: res.equity,
        initial_cash: run.config.initial_cash,
        trades: trades
            .iter()
            .map(|t| ChartTrade {
                seq: t.seq,
                entry_time: t.entry_time.timestamp_millis(),
                exit_time: t.exit_time.timestamp_millis(),
                entry_price: t.entry_price,
                exit_price: t.exit_price,
                pnl: t.pnl,
                return_pct: t.return_pct,
                exit_reason: t.exit_reason.clone(),
            })
            .collect(),
    })
}

/// One bar of the decision trace, JSON-friendly (NaN → `None`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TraceBar {
    pub index: usize,
    pub time: i64,
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    pub in_position: bool,
    pub entry_rules: Vec<(String, bool)>,
    pub exit_rules: Vec<(String, bool)>,
    pub values: Vec<(String, Option<f64>)>,
    pub actions: Vec<String>,
}

/// The decision trace around a time.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Trace {
    pub bars: Vec<TraceBar>,
    /// Set when the answer needs a caveat (e.g. the stored candles changed since the run).
    pub note: Option<String>,
}

/// Most bars one trace answer lists.
pub const TRACE_MAX_BARS: usize = 20;
/// Most bars one trace request may span (a chart candle of a resampled chart is far less).
pub const TRACE_MAX_SPAN_BARS: usize = 5_000;
/// Trace requests per user per minute (browser and API), on top of the API's general limit.
pub const TRACE_RATE_PER_MINUTE: u64 = 30;

/// "Why here?" is computed by a backtest worker within the memory budget and stored ([`super::trace`]).
pub use super::trace::trace;

/// Thins an equity curve to about `points` points: each bucket keeps its lowest and highest point in time
/// order (so peaks and drawdowns stay), plus the final point.
pub fn thin_equity(time: &[i64], equity: &[f64], points: usize) -> EquitySeries {
    let n = equity.len().min(time.len());
    if n <= points.max(2) {
        return EquitySeries {
            time: time[..n].to_vec(),
            equity: equity[..n].to_vec(),
        };
    }
    let buckets = (points / 2).max(1);
    let size = n.div_ceil(buckets);
    let mut out = EquitySeries::default();
    let mut i = 0;
    while i < n {
        let end = (i + size).min(n);
        let (mut lo, mut hi) = (i, i);
        for k in i..end {
            if equity[k] < equity[lo] {
                lo = k;
            }
            if equity[k] > equity[hi] {
                hi = k;
            }
        }
        let (a, b) = if lo <= hi { (lo, hi) } else { (hi, lo) };
        out.time.push(time[a]);
        out.equity.push(equity[a]);
        if b != a {
            out.time.push(time[b]);
            out.equity.push(equity[b]);
        }
        i = end;
    }
    if out.time.last() != Some(&time[n - 1]) {
        out.time.push(time[n - 1]);
        out.equity.push(equity[n - 1]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thinning_keeps_extremes_and_the_end() {
        let time: Vec<i64> = (0..10_000).collect();
        let mut equity: Vec<f64> = (0..10_000).map(|i| 100.0 + (i as f64) * 0.01).collect();
        equity[4321] = 1.0; // a deep drawdown
        equity[7000] = 10_000.0; // a spike
        let t = thin_equity(&time, &equity, 100);
        assert!(t.time.len() <= 102, "{}", t.time.len());
        assert!(t.equity.contains(&1.0));
        assert!(t.equity.contains(&10_000.0));
        assert_eq!(t.time.last(), Some(&9_999));
        assert!(t.time.windows(2).all(|w| w[0] < w[1]));
        let short = thin_equity(&time[..50], &equity[..50], 100);
        assert_eq!(short.time.len(), 50);
    }

    #[test]
    fn csv_cells_are_quoted_and_formulas_defused() {
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("=cmd()"), "'=cmd()");
        assert_eq!(csv_cell("-1.5"), "-1.5");
        assert_eq!(csv_cell("rsi < 30"), "rsi < 30");
    }

    #[test]
    fn options_are_checked_with_the_field_named() {
        assert!(config(10_000.0, 0.001, 5.0, "next_open").is_ok());
        for (cash, fee, slip, fill, field) in [
            (0.0, 0.001, 0.0, "next_open", "initial_cash"),
            (f64::NAN, 0.001, 0.0, "next_open", "initial_cash"),
            (100.0, 0.2, 0.0, "next_open", "fee"),
            (100.0, -0.1, 0.0, "next_open", "fee"),
            (100.0, 0.001, 5000.0, "next_open", "slippage_bps"),
            (100.0, 0.001, 0.0, "whenever", "fill"),
        ] {
            match config(cash, fee, slip, fill) {
                Err(Error::Invalid { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{field}: {other:?}"),
            }
        }
        assert_eq!(
            parse_bound("to", "2019-01-01", true).unwrap()
                - parse_bound("from", "2019-01-01", false).unwrap(),
            engine::time::DAY_MS
        );
        assert!(matches!(
            parse_bound("from", " ", false),
            Err(Error::Invalid { .. })
        ));
        assert!(matches!(
            parse_bound("from", "yesterday", false),
            Err(Error::Invalid { .. })
        ));
    }
}
