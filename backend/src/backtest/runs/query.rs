//! Reading a user's runs (list, one, status, result, trades) and cancelling one.

use engine::backtest::{BacktestConfig, Metrics, Provenance};
use sqlx::{PgPool, Row};
use uuid::Uuid;

use super::{
    EquitySeries, RUN_SORTS, RunDetail, RunFilter, RunResult, RunState, RunStatus, RunSummary,
    TRADE_SORTS, TradeRow, parse_dir,
};
use crate::backtest::Error;

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
        &format!(
            "'{}'",
            crate::backtest::job::FAILED_FOR_TRADER.replace('\'', "''")
        ),
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
        status: {
            let text: String = r.try_get("status")?;
            RunState::parse(&text).ok_or_else(|| sqlx::Error::ColumnDecode {
                index: "status".into(),
                source: format!("unknown run status `{text}`").into(),
            })?
        },
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
        && RunState::parse(s).is_none()
    {
        return Err(Error::invalid(
            "status",
            format!(
                "`{s}` is not a status; use one of {}",
                RunState::ALL.map(RunState::as_str).join(", ")
            ),
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
    cancel_as(db, user, id, None).await
}

/// [`cancel`], recording `backtest_cancelled` for `actor` in the cancelling transaction.
///
/// # Errors
/// As [`cancel`].
pub(crate) async fn cancel_as(
    db: &PgPool,
    user: Uuid,
    id: Uuid,
    actor: Option<&crate::Actor>,
) -> Result<RunStatus, Error> {
    let current = get(db, user, id).await?;
    if !current.summary.is_active() {
        return Err(Error::Conflict(format!(
            "this backtest has already finished ({})",
            current.summary.status
        )));
    }
    let mut tx = db.begin().await?;
    let (stored, job_id): (String, Option<Uuid>) = sqlx::query_as(
        "select status, job_id from backtest_run where backtest_run_id = $1 and user_id = $2 for update",
    )
    .bind(id)
    .bind(user)
    .fetch_one(&mut *tx)
    .await?;
    match RunState::parse(&stored) {
        Some(RunState::Queued) => {
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
        Some(RunState::Running) => {
            sqlx::query(
                "update backtest_run set cancel_requested = true where backtest_run_id = $1",
            )
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        _ => {
            return Err(Error::Conflict(format!(
                "this backtest has already finished ({stored})"
            )));
        }
    }
    if let Some(actor) = actor {
        actor
            .audit(
                &mut tx,
                "backtest_cancelled",
                None,
                serde_json::json!({ "backtest_run_id": id }),
            )
            .await?;
    }
    tx.commit().await?;
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
