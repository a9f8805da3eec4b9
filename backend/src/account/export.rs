//! "Download my data": one JSON document with the signed-in user's own data — profile, strategies with every
//! version, backtest runs with their results and trades, paper runs with their trades and fills, notification
//! preferences. Only rows of the acting user are read (every query is keyed on their id). Bounded: at most
//! [`MAX_BACKTESTS`] newest backtest runs, [`MAX_BACKTEST_TRADES`] of their trades, and [`MAX_PAPER_ROWS`] trades
//! and fills per paper run; the document says what was left out (`truncated`). Secrets are never exported (no
//! password hash, two-factor secret, API token, webhook URL or signal secret). Every surface shares the limits
//! here: one export per user per [`RATE_WINDOW_SECS`], and none bigger than [`MAX_ROWS`] rows or
//! [`MAX_SOURCE_BYTES`] of strategy source (refused before anything is built, so memory stays bounded).

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::{
    Actor, Ctx,
    error::{Error, Result},
};

/// Newest backtest runs exported.
pub const MAX_BACKTESTS: i64 = 500;
/// Backtest trades exported (of those runs, newest runs first).
pub const MAX_BACKTEST_TRADES: i64 = 50_000;
/// Trades, and fills, exported per paper run.
pub const MAX_PAPER_ROWS: i64 = 10_000;
/// Rows one export may hold in all (strategies and their versions, backtest runs and trades, paper runs with
/// their trades and fills, as capped above); a bigger export is refused, naming what to delete.
pub const MAX_ROWS: i64 = 100_000;
/// Strategy source text one export may hold in all (every version's source, description and draft), bytes.
pub const MAX_SOURCE_BYTES: i64 = 32 * 1024 * 1024;
/// One export per user in this many seconds (counted in Redis; refused when Redis cannot count).
pub const RATE_WINDOW_SECS: u64 = 120;
/// The audit event.
pub const EXPORTED: &str = "data_exported";

/// One export per user per [`RATE_WINDOW_SECS`] (the browser download and the REST API share it; a refused
/// export counts too). Fails closed: without Redis, no export.
async fn rate_limit(ctx: &Ctx, user_id: uuid::Uuid, by_admin: bool) -> Result<()> {
    // An administrator's exports are counted apart: they never hold up the owner's own.
    let key = if by_admin {
        format!("account_export:admin:{user_id}")
    } else {
        format!("account_export:{user_id}")
    };
    match crate::redis::check_rate_window(
        &ctx.redis,
        &ctx.settings.redis_namespace,
        &key,
        1,
        RATE_WINDOW_SECS,
    )
    .await
    {
        crate::redis::RateCheck::Allowed => Ok(()),
        crate::redis::RateCheck::Over(wait) => Err(Error::RateLimited { retry_after: wait }),
        crate::redis::RateCheck::Unchecked => Err(Error::Unavailable {
            message: "data exports cannot be counted right now; try again shortly".into(),
            retry_after: 5,
        }),
    }
}

/// Refuses an export bigger than [`MAX_ROWS`] rows or [`MAX_SOURCE_BYTES`] of strategy source, in the
/// export's snapshot, before anything is built.
async fn check_size(conn: &mut sqlx::PgConnection, id: uuid::Uuid) -> Result<()> {
    let r = sqlx::query!(
        r#"select
             (select count(*) from strategy where user_id = $1)
           + (select count(*) from strategy_version v join strategy s using (strategy_id) where s.user_id = $1)
           + least((select count(*) from backtest_run where user_id = $1), $2)
           + (select count(*) from (select 1 from backtest_trade t
                join (select backtest_run_id from backtest_run where user_id = $1
                      order by created_at desc limit $2) r using (backtest_run_id) limit $3) t)
           + (select count(*) from paper_run where user_id = $1)
           + (select coalesce(sum(
                  (select count(*) from (select 1 from paper_trade t where t.paper_run_id = p.paper_run_id
                                         limit $4) t)
                + (select count(*) from (select 1 from paper_fill f where f.paper_run_id = p.paper_run_id
                                         limit $4) f)), 0)::bigint
              from paper_run p where p.user_id = $1)
           + (select count(*) from notify_rule where user_id = $1) as "rows!",
           (select coalesce(sum(octet_length(v.source)), 0)::bigint
              from strategy_version v join strategy s using (strategy_id) where s.user_id = $1)
           + (select coalesce(sum(coalesce(octet_length(description), 0)
                                  + coalesce(octet_length(draft_source), 0)), 0)::bigint
              from strategy where user_id = $1) as "source_bytes!""#,
        id,
        MAX_BACKTESTS,
        MAX_BACKTEST_TRADES,
        MAX_PAPER_ROWS,
    )
    .fetch_one(&mut *conn)
    .await?;
    if r.rows > MAX_ROWS || r.source_bytes > MAX_SOURCE_BYTES {
        return Err(Error::Limit(format!(
            "Your data is too big for one export ({} rows, {} MiB of strategy source; the limit is {MAX_ROWS} rows \
             and {} MiB). Delete strategy versions, backtests or paper runs you no longer need, or download them \
             run by run (each backtest's trades CSV and result JSON).",
            r.rows,
            r.source_bytes / (1024 * 1024),
            MAX_SOURCE_BYTES / (1024 * 1024),
        )));
    }
    Ok(())
}

/// The export document of the acting user; audited as `data_exported`. At most one per [`RATE_WINDOW_SECS`]
/// and bounded in size ([`MAX_ROWS`], [`MAX_SOURCE_BYTES`]).
///
/// # Errors
/// [`crate::Error::Unauthenticated`], [`Error::RateLimited`], [`Error::Unavailable`] (Redis),
/// [`Error::Limit`] (too big), database.
pub async fn export(ctx: &Ctx, actor: &Actor) -> Result<Value> {
    let user = actor.reader()?;
    document(ctx, actor, user.user_id, None).await
}

/// The export document of user `id`, audited for `actor` with `subject` (`None`: the actor is the user; an
/// administrator's export names the user). The caller has checked that `actor` may read it.
///
/// # Errors
/// As [`export`].
pub(crate) async fn document(
    ctx: &Ctx,
    actor: &Actor,
    id: uuid::Uuid,
    subject: Option<uuid::Uuid>,
) -> Result<Value> {
    rate_limit(ctx, id, subject.is_some()).await?;
    let mut tx = ctx.db.begin().await?;
    // One snapshot for every section.
    sqlx::query!("set transaction isolation level repeatable read, read only")
        .execute(&mut *tx)
        .await?;
    check_size(&mut tx, id).await?;
    let profile = sqlx::query_scalar!(
        r#"select jsonb_build_object(
               'user_id', user_id, 'email', email, 'display_name', display_name, 'role', role,
               'time_zone', time_zone, 'email_verified_at', email_verified_at, 'created_at', created_at
           ) as "doc!" from app_user where user_id = $1"#,
        id,
    )
    .fetch_one(&mut *tx)
    .await?;
    let strategies = sqlx::query_scalar!(
        r#"select coalesce(jsonb_agg(jsonb_build_object(
               'strategy_id', s.strategy_id, 'name', s.name, 'description', s.description,
               'template', s.template, 'draft_source', s.draft_source, 'archived_at', s.archived_at,
               'created_at', s.created_at,
               'versions', (select coalesce(jsonb_agg(jsonb_build_object(
                                'version', v.version, 'source', v.source, 'params', v.params,
                                'created_at', v.created_at) order by v.version), '[]'::jsonb)
                            from strategy_version v where v.strategy_id = s.strategy_id)
           ) order by s.created_at), '[]'::jsonb) as "doc!"
           from strategy s where s.user_id = $1"#,
        id,
    )
    .fetch_one(&mut *tx)
    .await?;
    let backtests = sqlx::query_scalar!(
        r#"select coalesce(jsonb_agg(jsonb_build_object(
               'run_id', r.backtest_run_id, 'batch_id', r.batch_id, 'strategy_id', r.strategy_id,
               'strategy_version', v.version, 'exchange', i.exchange, 'symbol', i.symbol,
               'timeframe', r.timeframe, 'range_from', r.range_from, 'range_to', r.range_to,
               'params', r.params, 'config', r.config, 'status', r.status, 'error', r.error,
               'created_at', r.created_at, 'finished_at', r.finished_at,
               'metrics', res.metrics, 'provenance', res.provenance, 'bars', res.bars
           ) order by r.created_at desc), '[]'::jsonb) as "doc!"
           from (select * from backtest_run where user_id = $1 order by created_at desc limit $2) r
           join strategy_version v on v.strategy_version_id = r.strategy_version_id
           join instrument i on i.instrument_id = r.instrument_id
           left join backtest_result res on res.backtest_run_id = r.backtest_run_id"#,
        id,
        MAX_BACKTESTS,
    )
    .fetch_one(&mut *tx)
    .await?;
    let trades = sqlx::query_scalar!(
        r#"select coalesce(jsonb_agg(jsonb_build_object(
               'run_id', t.backtest_run_id, 'seq', t.seq, 'entry_time', t.entry_time, 'exit_time', t.exit_time,
               'entry_price', t.entry_price, 'exit_price', t.exit_price, 'units', t.units, 'fees', t.fees,
               'pnl', t.pnl, 'return_pct', t.return_pct, 'bars_held', t.bars_held,
               'exit_reason', t.exit_reason, 'entry_rule', t.entry_rule, 'exit_rule', t.exit_rule
           ) order by t.created_at desc, t.seq), '[]'::jsonb) as "doc!"
           from (select t.*, r.created_at from backtest_trade t
                 join (select backtest_run_id, created_at from backtest_run where user_id = $1
                       order by created_at desc limit $2) r on r.backtest_run_id = t.backtest_run_id
                 order by r.created_at desc, t.seq limit $3) t"#,
        id,
        MAX_BACKTESTS,
        MAX_BACKTEST_TRADES,
    )
    .fetch_one(&mut *tx)
    .await?;
    let paper = sqlx::query_scalar!(
        r#"select coalesce(jsonb_agg(jsonb_build_object(
               'run_id', p.paper_run_id, 'batch_id', p.batch_id, 'strategy_id', p.strategy_id,
               'strategy_version', v.version, 'exchange', i.exchange, 'symbol', i.symbol,
               'timeframe', p.timeframe, 'params', p.params, 'config', p.config, 'status', p.status,
               'live_from', p.live_from, 'last_open_time', p.last_open_time,
               'candles_processed', p.candles_processed, 'cash', p.cash, 'equity', p.equity,
               'position', p.position, 'trade_count', p.trade_count, 'realised_pnl', p.realised_pnl,
               'fees_paid', p.fees_paid, 'error', p.error, 'stop_reason', p.stop_reason,
               'signal_mode', p.signal_mode, 'risk_limits', p.risk_limits,
               'created_at', p.created_at, 'stopped_at', p.stopped_at,
               'trades', (select coalesce(jsonb_agg(jsonb_build_object(
                              'seq', t.seq, 'entry_time', t.entry_time, 'exit_time', t.exit_time,
                              'entry_price', t.entry_price, 'exit_price', t.exit_price, 'units', t.units,
                              'fees', t.fees, 'pnl', t.pnl, 'return_pct', t.return_pct,
                              'bars_held', t.bars_held, 'exit_reason', t.exit_reason,
                              'entry_rule', t.entry_rule, 'exit_rule', t.exit_rule) order by t.seq), '[]'::jsonb)
                          from (select * from paper_trade where paper_run_id = p.paper_run_id
                                order by seq limit $2) t),
               'fills', (select coalesce(jsonb_agg(jsonb_build_object(
                             'open_time', f.open_time, 'side', f.side, 'price', f.price, 'units', f.units,
                             'fee', f.fee, 'reason', f.reason, 'rule', f.rule) order by f.open_time), '[]'::jsonb)
                         from (select * from paper_fill where paper_run_id = p.paper_run_id
                               order by open_time limit $2) f)
           ) order by p.created_at), '[]'::jsonb) as "doc!"
           from paper_run p
           join strategy_version v on v.strategy_version_id = p.strategy_version_id
           join instrument i on i.instrument_id = p.instrument_id
           where p.user_id = $1"#,
        id,
        MAX_PAPER_ROWS,
    )
    .fetch_one(&mut *tx)
    .await?;
    let notifications = sqlx::query_scalar!(
        r#"select jsonb_build_object(
               'rules', (select coalesce(jsonb_agg(jsonb_build_object(
                             'paper_run_id', paper_run_id, 'category', category, 'event_type', event_type,
                             'channel', channel, 'mode', mode, 'source', source, 'updated_at', updated_at)
                             order by updated_at), '[]'::jsonb)
                         from notify_rule where user_id = $1),
               'settings', (select to_jsonb(s) - 'user_id' - 'next_digest_at'
                            from notify_settings s where s.user_id = $1),
               'webhooks', (select coalesce(jsonb_agg(jsonb_build_object('name', name, 'kind', kind)
                             order by name), '[]'::jsonb)
                            from notify_webhook where user_id = $1)
           ) as "doc!""#,
        id,
    )
    .fetch_one(&mut *tx)
    .await?;
    let totals = sqlx::query!(
        r#"select (select count(*) from backtest_run where user_id = $1) as "runs!",
                  (select coalesce(sum(c.n), 0)::bigint from backtest_trade_chunk c
                   join backtest_run r using (backtest_run_id) where r.user_id = $1) as "trades!""#,
        id,
    )
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    let exported_at: DateTime<Utc> = Utc::now();
    let runs = backtests.as_array().map_or(0, Vec::len);
    let trade_rows = trades.as_array().map_or(0, Vec::len);
    let mut conn = ctx.db.acquire().await?;
    actor
        .audit(
            &mut conn,
            EXPORTED,
            subject,
            json!({ "backtests": runs, "backtest_trades": trade_rows }),
        )
        .await?;
    Ok(json!({
        "format": "vortex-export/1",
        "exported_at": exported_at,
        "profile": profile,
        "strategies": strategies,
        "backtests": backtests,
        "backtest_trades": trades,
        "paper_runs": paper,
        "notifications": notifications,
        "truncated": {
            "backtests": totals.runs > MAX_BACKTESTS,
            "backtest_trades": usize::try_from(totals.trades).unwrap_or(usize::MAX) > trade_rows,
            "paper_rows_per_run": MAX_PAPER_ROWS,
        },
    }))
}
