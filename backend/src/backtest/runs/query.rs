//! Reading a user's runs (list, one, status, result, trades) and cancelling one.

use chrono::{DateTime, Utc};
use engine::backtest::{BacktestConfig, Metrics, Provenance};
use sqlx::PgPool;
use sqlx::types::Json;
use uuid::Uuid;

use super::{
    EquitySeries, RUN_SORTS, RunDetail, RunFilter, RunResult, RunState, RunStatus, RunSummary,
    TRADE_SORTS, TradeRow, parse_dir,
};
use crate::backtest::Error;

/// The runs as `$row`s ([`SummaryRow`] or [`RunRow`]): the summary's columns, then `$more` (for a
/// [`RunRow`], the detail columns `strategy_version_id`, `params`, `config`, `timing` and `started_at`; for a
/// list, which shows none of them, nothing: `params`, `config` and `timing` are JSON that would be read and
/// decoded for every row), `$tail` (the `where …` and anything after it) appended to the select; `$1` is
/// bound to the trader's message for failed jobs, the caller's arguments are `$2`, `$3`, ….
///
/// The effective status: a run whose job ran out of attempts (or is gone) is failed, with a message for the
/// trader (the job's own error is for operators: logs, `vortex jobs show`).
macro_rules! select_runs {
    ($row:ident, $more:literal, $tail:literal, $($arg:expr),+ $(,)?) => {
        sqlx::query_as!(
            $row,
            r#"
    select r.backtest_run_id, r.batch_id, r.strategy_id, s.name as strategy_name, v.version, r.instrument_id,
           i.base || '/' || i.quote || ' · ' || i.exchange as "instrument!", r.timeframe, r.range_from, r.range_to,
           case when l.lost then 'failed' else r.status end as "status!",
           r.progress, r.cancel_requested,
           case when l.lost then $1::text else r.error end as error,
           r.total_return, r.sharpe, r.max_drawdown, r.trade_count, r.final_equity, r.created_at, r.finished_at"#
            + $more
            + r#"
    from backtest_run r
    join strategy s on s.strategy_id = r.strategy_id
    join strategy_version v on v.strategy_version_id = r.strategy_version_id
    join instrument i on i.instrument_id = r.instrument_id
    left join job j on j.job_id = r.job_id
    cross join lateral (
        select r.status in ('queued', 'running') and (j.job_id is null or j.status in ('failed', 'cancelled')) as lost
    ) l"# + $tail,
            crate::backtest::job::FAILED_FOR_TRADER,
            $($arg),+
        )
    };
}

/// A row type of [`select_runs!`]: the summary's columns (what a [`RunSummary`] shows), then `$field`s, and
/// its `summary()`.
macro_rules! run_row {
    ($(#[$m:meta])* $name:ident { $($field:ident: $ty:ty),* $(,)? }) => {
        $(#[$m])*
        struct $name {
            backtest_run_id: Uuid,
            batch_id: Uuid,
            strategy_id: Uuid,
            strategy_name: String,
            version: i32,
            instrument_id: i32,
            instrument: String,
            timeframe: String,
            range_from: DateTime<Utc>,
            range_to: DateTime<Utc>,
            status: String,
            progress: f32,
            cancel_requested: bool,
            error: Option<String>,
            total_return: Option<f64>,
            sharpe: Option<f64>,
            max_drawdown: Option<f64>,
            trade_count: Option<i32>,
            final_equity: Option<f64>,
            created_at: DateTime<Utc>,
            finished_at: Option<DateTime<Utc>>,
            $($field: $ty,)*
        }

        impl $name {
            /// The summary's columns as a [`RunSummary`] (the row's other fields stay).
            fn summary(&mut self) -> Result<RunSummary, sqlx::Error> {
                let take = std::mem::take::<String>;
                Ok(RunSummary {
                    status: RunState::parse(&self.status).ok_or_else(|| sqlx::Error::ColumnDecode {
                        index: "status".into(),
                        source: format!("unknown run status `{}`", self.status).into(),
                    })?,
                    backtest_run_id: self.backtest_run_id,
                    batch_id: self.batch_id,
                    strategy_id: self.strategy_id,
                    strategy_name: take(&mut self.strategy_name),
                    version: self.version,
                    instrument_id: self.instrument_id,
                    instrument: take(&mut self.instrument),
                    timeframe: take(&mut self.timeframe),
                    range_from: self.range_from,
                    range_to: self.range_to,
                    progress: self.progress,
                    cancel_requested: self.cancel_requested,
                    error: self.error.take(),
                    total_return: self.total_return,
                    sharpe: self.sharpe,
                    max_drawdown: self.max_drawdown,
                    trade_count: self.trade_count,
                    final_equity: self.final_equity,
                    created_at: self.created_at,
                    finished_at: self.finished_at,
                })
            }
        }
    };
}

run_row!(
    /// A list's row of [`select_runs!`]: what a [`RunSummary`] shows.
    SummaryRow {}
);

run_row!(
    /// A single run's row of [`select_runs!`]: the summary's columns and the detail columns
    /// (`strategy_version_id`, `params`, `config`, `timing`, `started_at`). `params` and `config` stay JSON
    /// until [`RunRow::detail`] decodes them.
    RunRow {
        strategy_version_id: Uuid,
        params: serde_json::Value,
        config: serde_json::Value,
        timing: Option<serde_json::Value>,
        started_at: Option<DateTime<Utc>>,
    }
);

/// A JSON column decoded into `T`, failing as reading the column as `Json<T>` would.
fn from_json<T: serde::de::DeserializeOwned>(
    column: &str,
    value: serde_json::Value,
) -> Result<T, sqlx::Error> {
    serde_json::from_value(value).map_err(|e| sqlx::Error::ColumnDecode {
        index: format!("{column:?}"),
        source: Box::new(e),
    })
}

impl RunRow {
    fn detail(mut self) -> Result<RunDetail, sqlx::Error> {
        Ok(RunDetail {
            summary: self.summary()?,
            strategy_version_id: self.strategy_version_id,
            params: from_json("params", self.params)?,
            config: from_json::<BacktestConfig>("config", self.config)?,
            timing: self.timing,
            started_at: self.started_at,
        })
    }
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
    // The order is one of RUN_SORTS in either direction (nulls last): one `case` per choice, the others null.
    let rows = select_runs!(
        SummaryRow,
        "",
        r#"
    where r.user_id = $2
      and ($3::uuid is null or r.strategy_id = $3) and ($4::int is null or r.instrument_id = $4)
      and ($5::text is null or (case when l.lost then 'failed' else r.status end) = $5)
      and ($6::uuid is null or r.batch_id = $6)
    order by case when $7 = 'created_at' and $8 = 'asc' then r.created_at end asc nulls last,
             case when $7 = 'created_at' and $8 = 'desc' then r.created_at end desc nulls last,
             case when $7 = 'total_return' and $8 = 'asc' then r.total_return end asc nulls last,
             case when $7 = 'total_return' and $8 = 'desc' then r.total_return end desc nulls last,
             case when $7 = 'sharpe' and $8 = 'asc' then r.sharpe end asc nulls last,
             case when $7 = 'sharpe' and $8 = 'desc' then r.sharpe end desc nulls last,
             case when $7 = 'max_drawdown' and $8 = 'asc' then r.max_drawdown end asc nulls last,
             case when $7 = 'max_drawdown' and $8 = 'desc' then r.max_drawdown end desc nulls last,
             case when $7 = 'trade_count' and $8 = 'asc' then r.trade_count end asc nulls last,
             case when $7 = 'trade_count' and $8 = 'desc' then r.trade_count end desc nulls last,
             case when $7 = 'final_equity' and $8 = 'asc' then r.final_equity end asc nulls last,
             case when $7 = 'final_equity' and $8 = 'desc' then r.final_equity end desc nulls last,
             r.created_at desc
    limit $9 offset $10"#,
        user,
        f.strategy_id,
        f.instrument_id,
        f.status.as_deref().filter(|s| !s.is_empty()),
        f.batch_id,
        sort,
        dir,
        limit,
        offset,
    )
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|mut r| r.summary())
        .collect::<Result<_, _>>()?)
}

/// One of the user's runs.
///
/// # Errors
/// [`Error::NotFound`], database errors.
pub async fn get(db: &PgPool, user: Uuid, id: Uuid) -> Result<RunDetail, Error> {
    let r = select_runs!(
        RunRow,
        ", r.strategy_version_id, r.params, r.config, r.timing, r.started_at",
        " where r.user_id = $2 and r.backtest_run_id = $3",
        user,
        id
    )
    .fetch_optional(db)
    .await?
    .ok_or(Error::NotFound)?;
    Ok(r.detail()?)
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
    let row = sqlx::query!(
        "select status, job_id from backtest_run where backtest_run_id = $1 and user_id = $2 for update",
        id,
        user,
    )
    .fetch_one(&mut *tx)
    .await?;
    let (stored, job_id) = (row.status, row.job_id);
    match RunState::parse(&stored) {
        Some(RunState::Queued) => {
            sqlx::query!(
                r#"update backtest_run set status = 'cancelled', cancel_requested = true, finished_at = now()
                   where backtest_run_id = $1"#,
                id,
            )
            .execute(&mut *tx)
            .await?;
            // A worker that already claimed the job sees the run cancelled and stops.
            sqlx::query!(
                "update job set status = 'cancelled', finished_at = now() where job_id = $1 and status = 'queued'",
                job_id,
            )
            .execute(&mut *tx)
            .await?;
        }
        Some(RunState::Running) => {
            sqlx::query!(
                "update backtest_run set cancel_requested = true where backtest_run_id = $1",
                id,
            )
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

/// Marks the queued runs of a waiting job cancelled (an administrator cancelled the job), in the caller's
/// transaction, so the trader sees them cancelled at once. Returns how many.
///
/// # Errors
/// Database errors.
pub(crate) async fn cancel_for_job(
    conn: &mut sqlx::PgConnection,
    job_id: Uuid,
) -> sqlx::Result<u64> {
    Ok(sqlx::query!(
        r#"update backtest_run set status = 'cancelled', cancel_requested = true, finished_at = now(),
                  error = 'cancelled by an administrator before it started'
           where job_id = $1 and status = 'queued'"#,
        job_id,
    )
    .execute(conn)
    .await?
    .rows_affected())
}

/// The stored result of one of the user's runs.
///
/// # Errors
/// [`Error::NotFound`] (no run, or not finished), database errors.
pub async fn result(db: &PgPool, user: Uuid, id: Uuid) -> Result<RunResult, Error> {
    let r = sqlx::query!(
        r#"select res.metrics as "metrics: Json<Metrics>", res.provenance as "provenance: Json<Provenance>",
                  res.equity as "equity: Json<EquitySeries>", res.bars, res.skipped_entries
           from backtest_result res join backtest_run r using (backtest_run_id)
           where r.user_id = $1 and r.backtest_run_id = $2"#,
        user,
        id,
    )
    .fetch_optional(db)
    .await?
    .ok_or(Error::NotFound)?;
    Ok(RunResult {
        metrics: r.metrics.0,
        provenance: r.provenance.0,
        equity: r.equity.0,
        bars: r.bars,
        skipped_entries: r.skipped_entries,
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
    let owner = sqlx::query!(
        r#"select (select coalesce(sum(c.n), 0) from backtest_trade_chunk c
                   where c.backtest_run_id = r.backtest_run_id)::bigint as "n!",
                  res.value_names as "value_names?: Json<ValueNames>"
           from backtest_run r left join backtest_result res using (backtest_run_id)
           where r.user_id = $1 and r.backtest_run_id = $2"#,
        user,
        id,
    )
    .fetch_optional(db)
    .await?
    .ok_or(Error::NotFound)?;
    let total = owner.n;
    let names = owner.value_names.map(|n| n.0).unwrap_or_default();
    let rows = crate::backtest::trade_chunks::page(
        db,
        id,
        sort,
        dir == "desc",
        usize::try_from(limit.max(1)).unwrap_or(usize::MAX),
        usize::try_from(offset.max(0)).unwrap_or(usize::MAX),
    )
    .await?;
    Ok((
        rows.into_iter().map(|r| r.into_row(&names)).collect(),
        total,
    ))
}

/// One trade as stored (see [`crate::backtest::trade_chunks`]).
pub(crate) struct TradeRecord {
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
    pub entry_vals: Vec<Option<f64>>,
    pub exit_rule: Option<String>,
    pub exit_vals: Vec<Option<f64>>,
}

/// The names of each rule's values in a run (`backtest_result.value_names`): rule line → names.
pub(crate) type ValueNames = std::collections::BTreeMap<String, Vec<String>>;

/// A rule's values with their names (a value without a stored name is called `value N`).
fn named(
    names: &ValueNames,
    rule: Option<&str>,
    values: Vec<Option<f64>>,
) -> Vec<(String, Option<f64>)> {
    let names = rule.and_then(|r| names.get(r));
    values
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            let name = names
                .and_then(|n| n.get(i))
                .cloned()
                .unwrap_or_else(|| format!("value {}", i + 1));
            (name, v)
        })
        .collect()
}

/// The value names of run `id` (empty when it has no result).
///
/// # Errors
/// Database errors.
pub(crate) async fn value_names(db: &PgPool, id: Uuid) -> sqlx::Result<ValueNames> {
    Ok(sqlx::query_scalar!(
        r#"select value_names as "value_names: Json<ValueNames>" from backtest_result where backtest_run_id = $1"#,
        id,
    )
    .fetch_optional(db)
    .await?
    .map(|n| n.0)
    .unwrap_or_default())
}

impl TradeRecord {
    /// The trade as the API and the pages show it, its values named from the run's `names`.
    pub(crate) fn into_row(self, names: &ValueNames) -> TradeRow {
        let r = self;
        TradeRow {
            entry_values: named(names, Some(&r.entry_rule), r.entry_vals),
            exit_values: named(names, r.exit_rule.as_deref(), r.exit_vals),
            seq: r.seq,
            entry_time: r.entry_time,
            exit_time: r.exit_time,
            entry_price: r.entry_price,
            exit_price: r.exit_price,
            units: r.units,
            fees: r.fees,
            pnl: r.pnl,
            return_pct: r.return_pct,
            bars_held: r.bars_held,
            exit_reason: r.exit_reason,
            entry_rule: r.entry_rule,
            exit_rule: r.exit_rule,
        }
    }
}

/// Every trade of a run, in order.
///
/// # Errors
/// As [`trades`].
pub async fn all_trades(db: &PgPool, user: Uuid, id: Uuid) -> Result<Vec<TradeRow>, Error> {
    Ok(trades(db, user, id, None, None, i64::MAX, 0).await?.0)
}
