//! The server side of the backtest server functions: each reads through the actions in
//! `backend::backtest::actions` as the call's actor and shapes the result for the pages.

use backend::{
    Actor, Ctx,
    backtest::{
        Error,
        actions::{runs as act_runs, strategies as act_strategies},
        runs, strategies,
    },
};
use chrono::{DateTime, Utc};
use leptos::prelude::*;
use uuid::Uuid;

use super::*;

/// The call's actor, who must be signed in, with their time zone.
async fn actor() -> Result<(Actor, String), AppError> {
    let actor = crate::api::actor().await?;
    let tz = actor.reader()?.time_zone.clone();
    Ok((actor, tz))
}

fn id(text: &str) -> Result<Uuid, AppError> {
    Uuid::parse_str(text.trim()).map_err(|_| AppError::NotFound)
}

fn when(t: DateTime<Utc>, tz: &str) -> String {
    backend::auth::users::format_time(t, tz)
}

fn strategy_row(s: strategies::StrategySummary, tz: &str) -> StrategyRow {
    StrategyRow {
        id: s.strategy_id.to_string(),
        name: s.name,
        description: s.description,
        template: s.template,
        version: s.latest_version,
        archived: s.archived,
        has_draft: s.has_draft,
        runs: s.runs,
        updated: when(s.updated_at, tz),
    }
}

pub(crate) fn run_row(r: &runs::RunSummary, tz: &str) -> RunRow {
    let st = runs::RunStatus::from(r);
    RunRow {
        id: r.backtest_run_id.to_string(),
        label: r.label(),
        strategy_id: r.strategy_id.to_string(),
        strategy: r.strategy_name.clone(),
        version: r.version,
        instrument_id: r.instrument_id,
        instrument: r.instrument.clone(),
        timeframe: r.timeframe.clone(),
        range: format!(
            "{} → {}",
            r.range_from.format("%Y-%m-%d"),
            (r.range_to - chrono::Duration::milliseconds(1)).format("%Y-%m-%d")
        ),
        status: r.status,
        progress: r.progress,
        message: st.message,
        total_return: r.total_return,
        sharpe: r.sharpe,
        max_drawdown: r.max_drawdown,
        trade_count: r.trade_count,
        created: when(r.created_at, tz),
    }
}

async fn templates(actor: &backend::Actor, ctx: &Ctx) -> Result<Vec<TemplateView>, AppError> {
    Ok(
        backend::backtest::catalogue::published_summaries(actor, ctx)
            .await?
            .into_iter()
            .map(|t| TemplateView {
                name: t.slug,
                title: t.name,
                description: t.description,
                featured: t.featured,
            })
            .collect(),
    )
}

pub async fn strategies(archived: bool) -> Result<StrategiesView, AppError> {
    let (actor, tz) = actor().await?;
    let ctx = expect_context::<Ctx>();
    let list = act_strategies::list(&actor, &ctx, archived).await?;
    Ok(StrategiesView {
        strategies: list.into_iter().map(|s| strategy_row(s, &tz)).collect(),
        templates: templates(&actor, &ctx).await?,
        can_write: actor.writer().is_ok(),
    })
}

pub async fn strategy(id_text: String) -> Result<StrategyView, AppError> {
    let (actor, tz) = actor().await?;
    let ctx = expect_context::<Ctx>();
    let sid = id(&id_text)?;
    let d = act_strategies::get(&actor, &ctx, sid).await?;
    let (source, draft, problems) = match &d.draft_source {
        Some(src) => {
            let problems = match act_strategies::validate(&actor, src) {
                Err(Error::Strategy(p)) => p
                    .into_iter()
                    .map(|p| ProblemView {
                        line: p.line,
                        column: p.column,
                        len: p.len,
                        message: p.message,
                    })
                    .collect(),
                _ => Vec::new(),
            };
            (src.clone(), true, problems)
        }
        None => (d.latest.source.clone(), false, Vec::new()),
    };
    let filter = runs::RunFilter {
        strategy_id: Some(sid),
        limit: Some(10),
        ..Default::default()
    };
    let recent = act_runs::list(&actor, &ctx, &filter).await?;
    Ok(StrategyView {
        source,
        draft,
        draft_rev: d.draft_rev,
        problems,
        params: d.latest.params.clone(),
        versions: d
            .versions
            .iter()
            .map(|(v, t)| (*v, when(*t, &tz)))
            .collect(),
        recent_runs: recent.iter().map(|r| run_row(r, &tz)).collect(),
        read_only: d.read_only.as_ref().map(|o| {
            format!(
                "This strategy is read-only since {}: you have {} strategies and your plan ({}) allows {}, and it is \
                 one of the most recently created beyond the limit. You can view, export, archive and delete it, \
                 but not edit it, backtest it or paper-trade it. Delete strategies you no longer need (archived \
                 ones count) or move to a larger plan: it is writable again as soon as you are within the limit.",
                when(o.enforced_at.unwrap_or(o.grace_ends_at), &tz),
                o.usage,
                o.plan,
                o.allowed
            )
        }),
        row: strategy_row(d.summary, &tz),
        can_write: actor.writer().is_ok(),
    })
}

/// Reads and clears nothing: the form error travels in a short-lived cookie set by the form handler.
fn form_error() -> Option<(String, String)> {
    let parts = use_context::<http::request::Parts>()?;
    let raw = backend::web::read_cookie(&parts.headers, backend::web::FORM_ERROR_COOKIE)?;
    let json = backend::web::decode_flash(raw)?;
    let v: (String, String) = serde_json::from_str(&json).ok()?;
    Some(v)
}

/// Why the actor cannot run backtests (the decision is the backend's; the words are the page's).
fn blocked(actor: &Actor) -> Option<String> {
    match act_runs::may_submit(actor) {
        Ok(()) => None,
        Err(Error::EmailUnconfirmed) => Some(
            "Confirm your email address (see your account page) before running backtests."
                .to_owned(),
        ),
        Err(_) => {
            Some("Your account is read-only: you can look at runs but not start them.".to_owned())
        }
    }
}

pub async fn run_form(
    strategy: Option<String>,
    version: Option<i32>,
) -> Result<RunFormView, AppError> {
    let (actor, _) = actor().await?;
    let ctx = expect_context::<Ctx>();
    let list = act_strategies::list(&actor, &ctx, false).await?;
    let chosen = match strategy.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => Some(id(s)?),
        None => list.first().map(|s| s.strategy_id),
    };
    let (versions, version, params) = match chosen {
        Some(sid) => {
            let d = act_strategies::get(&actor, &ctx, sid).await?;
            let v = act_strategies::version(&actor, &ctx, sid, version).await?;
            (
                d.versions.iter().map(|(v, _)| *v).collect(),
                Some(v.version),
                v.params,
            )
        }
        None => (Vec::new(), None, Vec::new()),
    };
    let coverage = backend::market::coverage::coverage(&ctx.db, None, 0)
        .await
        .map_err(Error::Db)?;
    let series = coverage
        .into_iter()
        .filter(|s| s.count > 0)
        .map(|s| SeriesOption {
            default_from: match (s.first, s.last) {
                (Some(f), Some(l)) => backend::market::iso(f.max(l - 365 * engine::time::DAY_MS)),
                _ => String::new(),
            },
            instrument_id: s.instrument_id,
            pair: format!("{}/{}", s.base, s.quote),
            exchange: s.exchange,
            timeframe: s.timeframe.as_str().to_owned(),
            first: s.first.map(backend::market::iso).unwrap_or_default(),
            last: s.last.map(backend::market::iso).unwrap_or_default(),
            count: s.count,
            gap_count: s.gap_count,
            missing: s.missing,
        })
        .collect();
    let blocked = blocked(&actor);
    Ok(RunFormView {
        strategies: list
            .iter()
            .map(|s| (s.strategy_id.to_string(), s.name.clone(), s.latest_version))
            .collect(),
        strategy_id: chosen.map(|s| s.to_string()),
        versions,
        version,
        params,
        series,
        can_run: blocked.is_none(),
        blocked,
        error: form_error(),
    })
}

pub async fn runs(
    strategy: Option<String>,
    instrument: Option<i32>,
    status: Option<String>,
    batch: Option<String>,
    sort: Option<String>,
    dir: Option<String>,
) -> Result<RunsView, AppError> {
    let (actor, tz) = actor().await?;
    let ctx = expect_context::<Ctx>();
    let opt_id = |s: Option<String>| -> Result<Option<Uuid>, AppError> {
        match s.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            Some(s) => Ok(Some(Uuid::parse_str(s).map_err(|_| {
                AppError::Validation {
                    field: "strategy".into(),
                    message: format!("`{s}` is not an id"),
                }
            })?)),
            None => Ok(None),
        }
    };
    let filter = runs::RunFilter {
        strategy_id: opt_id(strategy)?,
        instrument_id: instrument,
        status,
        batch_id: opt_id(batch)?,
        sort,
        dir,
        limit: Some(200),
        offset: None,
    };
    let list = act_runs::list(&actor, &ctx, &filter).await?;
    let strategies = act_strategies::list(&actor, &ctx, true)
        .await?
        .into_iter()
        .map(|s| (s.strategy_id.to_string(), s.name))
        .collect();
    let user = actor.reader()?.user_id;
    let instruments = sqlx::query_as::<_, (i32, String)>(
        r#"select distinct i.instrument_id, i.base || '/' || i.quote || ' · ' || i.exchange
               from backtest_run r join instrument i using (instrument_id) where r.user_id = $1 order by 2"#,
    )
    .bind(user)
    .fetch_all(&ctx.db)
    .await
    .map_err(Error::Db)?;
    Ok(RunsView {
        runs: list.iter().map(|r| run_row(r, &tz)).collect(),
        strategies,
        instruments,
    })
}

pub async fn run(
    id_text: String,
    sort: Option<String>,
    dir: Option<String>,
    page: Option<i64>,
) -> Result<RunView, AppError> {
    let (actor, tz) = actor().await?;
    let ctx = expect_context::<Ctx>();
    let rid = id(&id_text)?;
    let d = act_runs::get(&actor, &ctx, rid).await?;
    let page = page.unwrap_or(1).max(1);
    let (metrics, provenance, trades, total) = if d.summary.status.has_result() {
        let res = act_runs::result(&actor, &ctx, rid).await?;
        let window = act_runs::TradePage {
            sort: sort.clone(),
            dir: dir.clone(),
            limit: TRADES_PER_PAGE,
            offset: (page - 1).saturating_mul(TRADES_PER_PAGE),
            max_limit: TRADES_PER_PAGE,
        };
        let (trades, total) = act_runs::trades(&actor, &ctx, rid, &window).await?;
        (Some(res.metrics), Some(res.provenance), trades, total)
    } else {
        (None, None, Vec::new(), 0)
    };
    Ok(RunView {
        row: run_row(&d.summary, &tz),
        params: d.params,
        config: d.config,
        error: d.summary.error.clone(),
        timing: d.timing.map(|t| {
            format!(
                "queue {} ms · load {} ms · engine {} ms · store {} ms · {} bars",
                t["queue_ms"], t["load_ms"], t["engine_ms"], t["store_ms"], t["bars"]
            )
        }),
        metrics,
        provenance,
        strategy_version_id: d.strategy_version_id.to_string(),
        trades: trades
            .into_iter()
            .map(|t| TradeView {
                seq: t.seq,
                entry_ms: t.entry_time.timestamp_millis(),
                entry: when(t.entry_time, &tz),
                exit: when(t.exit_time, &tz),
                entry_price: t.entry_price,
                exit_price: t.exit_price,
                units: t.units,
                fees: t.fees,
                pnl: t.pnl,
                return_pct: t.return_pct,
                bars_held: t.bars_held,
                exit_reason: t.exit_reason,
                entry_rule: t.entry_rule,
                exit_rule: t.exit_rule,
                entry_values: t.entry_values,
            })
            .collect(),
        trade_total: total,
        page,
        per_page: TRADES_PER_PAGE,
        sort: sort.unwrap_or_else(|| "seq".into()),
        dir: dir.unwrap_or_else(|| "asc".into()),
    })
}

pub async fn compare(ids: Vec<String>) -> Result<CompareView, AppError> {
    let (actor, tz) = actor().await?;
    let ctx = expect_context::<Ctx>();
    let ids = ids
        .iter()
        .flat_map(|s| s.split(','))
        .filter(|s| !s.trim().is_empty())
        .take(act_runs::COMPARE_MAX)
        .map(id)
        .collect::<Result<Vec<_>, _>>()?;
    let runs = act_runs::compare(&actor, &ctx, &ids).await?;
    Ok(CompareView {
        runs: runs
            .into_iter()
            .map(|(d, r)| (run_row(&d.summary, &tz), r.map(|r| r.metrics)))
            .collect(),
    })
}
