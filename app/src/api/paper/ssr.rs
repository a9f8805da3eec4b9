//! The server side of the paper-trading server functions: each reads through the actions in
//! `backend::paper::actions` as the call's actor and shapes the result for the pages.

use backend::{
    Actor, Ctx, Error,
    backtest::actions::strategies as act_strategies,
    paper::{
        PaperRunSummary,
        actions::{self as act, Owner as RunOwner},
        parity::{Difference, TradeView},
        query::{Processed, RunFilter},
    },
};
use chrono::{DateTime, Utc};
use leptos::prelude::*;
use uuid::Uuid;

use super::*;

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

fn row(r: &PaperRunSummary, tz: &str) -> PaperRow {
    PaperRow {
        id: r.paper_run_id.to_string(),
        batch_id: r.batch_id.to_string(),
        strategy_id: r.strategy_id.to_string(),
        strategy: r.strategy_name.clone(),
        version: r.version,
        instrument_id: r.instrument_id,
        symbol: r.symbol.clone(),
        timeframe: r.timeframe.clone(),
        status: r.status.as_str().to_owned(),
        gate: r.run_gate.clone(),
        initial_cash: r.initial_cash,
        cash: r.cash,
        equity: r.equity,
        position_units: r.position_units,
        realised_pnl: r.realised_pnl,
        trades: r.trade_count,
        candles: r.candles_processed,
        live_from: when(r.live_from, tz),
        last_candle: r.last_candle.map(|t| when(t, tz)),
        started: when(r.created_at, tz),
        stopped: r.stopped_at.map(|t| when(t, tz)),
        error: r.error.clone(),
        stop_reason: r.stop_reason.clone(),
    }
}

fn opt_uuid(field: &str, s: Option<String>) -> Result<Option<Uuid>, AppError> {
    match s.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(s) => Ok(Some(Uuid::parse_str(s).map_err(|_| {
            AppError::Validation {
                field: field.into(),
                message: format!("`{s}` is not an id"),
            }
        })?)),
        None => Ok(None),
    }
}

/// The series with a live feed: tracked by the scheduled update of the configured exchange. (The start
/// action checks this again; the list only offers what can work.)
async fn feeds(ctx: &Ctx) -> Result<Vec<FeedOption>, AppError> {
    let series = backend::market::coverage::series(&ctx.db, None)
        .await
        .map_err(Error::Db)?;
    Ok(series
        .into_iter()
        .filter(|s| s.tracked && s.exchange == ctx.settings.market.exchange)
        .map(|s| FeedOption {
            instrument_id: s.instrument_id,
            pair: format!("{}/{}", s.base, s.quote),
            exchange: s.exchange,
            timeframe: s.timeframe.as_str().to_owned(),
            last: s.last.map(backend::market::iso).unwrap_or_default(),
        })
        .collect())
}

pub async fn runs(
    status: Option<String>,
    strategy: Option<String>,
    instrument: Option<i32>,
    batch: Option<String>,
) -> Result<PaperListView, AppError> {
    let (actor, tz) = actor().await?;
    let ctx = expect_context::<Ctx>();
    let filter = RunFilter {
        status: status.filter(|s| !s.trim().is_empty()),
        strategy_id: opt_uuid("strategy", strategy)?,
        instrument_id: instrument,
        batch_id: opt_uuid("batch", batch)?,
        limit: Some(200),
    };
    let list = act::list(&actor, &ctx, RunOwner::Me, &filter).await?;
    let strategies = act_strategies::list(&actor, &ctx, true)
        .await?
        .into_iter()
        .map(|s| (s.strategy_id.to_string(), s.name))
        .collect();
    let mut instruments: Vec<(i32, String)> = feeds(&ctx)
        .await?
        .into_iter()
        .map(|f| (f.instrument_id, format!("{} · {}", f.pair, f.exchange)))
        .chain(list.iter().map(|r| (r.instrument_id, r.symbol.clone())))
        .collect();
    instruments.sort_by_key(|(id, _)| *id);
    instruments.dedup_by_key(|(id, _)| *id);
    Ok(PaperListView {
        runs: list.iter().map(|r| row(r, &tz)).collect(),
        strategies,
        instruments,
    })
}

/// Why the actor cannot start paper runs (the decision is the backend's; the words are the page's).
fn blocked(actor: &Actor) -> Option<String> {
    match act::may_start(actor) {
        Ok(()) => None,
        Err(Error::EmailUnconfirmed) => Some(
            "Confirm your email address (see your account page) before starting paper runs."
                .to_owned(),
        ),
        Err(_) => Some(
            "Your account is read-only: you can look at paper runs but not start them.".to_owned(),
        ),
    }
}

/// The form error travels in a short-lived cookie set by the form handler.
fn form_error() -> Option<(String, String)> {
    let parts = use_context::<http::request::Parts>()?;
    let raw = backend::web::read_cookie(&parts.headers, backend::web::FORM_ERROR_COOKIE)?;
    let json = backend::web::decode_flash(raw)?;
    serde_json::from_str(&json).ok()
}

pub async fn form(
    strategy: Option<String>,
    version: Option<i32>,
) -> Result<PaperFormView, AppError> {
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
    let blocked = blocked(&actor);
    Ok(PaperFormView {
        strategies: list
            .iter()
            .map(|s| (s.strategy_id.to_string(), s.name.clone(), s.latest_version))
            .collect(),
        strategy_id: chosen.map(|s| s.to_string()),
        versions,
        version,
        params,
        feeds: feeds(&ctx).await?,
        warmup_bars: ctx.settings.paper.warmup_bars,
        max_warmup_bars: ctx.settings.paper.max_warmup_bars,
        can_start: blocked.is_none(),
        blocked,
        error: form_error(),
        risk_defaults: risk_view(&ctx.settings.paper.risk),
    })
}

fn risk_view(l: &backend::paper::risk::RiskLimits) -> RiskLimitsView {
    RiskLimitsView {
        mode: l.mode.as_str().to_owned(),
        max_drawdown_pct: l.max_drawdown_pct,
        daily_loss: l.daily_loss,
        daily_loss_pct: l.daily_loss_pct,
        max_consecutive_losses: l.max_consecutive_losses,
        max_position_value: l.max_position_value,
        max_orders_per_day: l.max_orders_per_day,
        stale_feed_secs: l.stale_feed_secs,
    }
}

fn values_text(values: &[(String, Option<f64>)]) -> String {
    values
        .iter()
        .map(|(k, v)| {
            format!(
                "{k} = {}",
                v.map_or_else(|| "n/a".into(), |v| format!("{v:.6}"))
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Pairs `[text, x]` of a bar trace's JSON.
fn pairs<T>(
    v: &serde_json::Value,
    key: &str,
    f: impl Fn(&serde_json::Value) -> Option<T>,
) -> Vec<(String, T)> {
    v.get(key)
        .and_then(|a| a.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|p| {
                    let p = p.as_array()?;
                    Some((p.first()?.as_str()?.to_owned(), f(p.get(1)?)?))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn candle(p: Processed, tz: &str) -> CandleView {
    let d = &p.decision;
    CandleView {
        time: when(p.time, tz),
        open: p.open,
        high: p.high,
        low: p.low,
        close: p.close,
        gate: p.gate,
        equity: p.equity,
        units: p.units,
        entry_rules: pairs(d, "entry_rules", serde_json::Value::as_bool),
        exit_rules: pairs(d, "exit_rules", serde_json::Value::as_bool),
        values: pairs(d, "values", |v| Some(v.as_f64())),
        actions: d
            .get("actions")
            .and_then(|a| a.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_owned))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
            .into_iter()
            .chain(risk_words(d))
            .chain(signal_words(d))
            .collect(),
    }
}

/// What risk did at a candle (`decision.risk`): the lock that gated it, the limits breached at its close.
fn risk_words(d: &serde_json::Value) -> Vec<String> {
    let Some(r) = d.get("risk") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if let Some(l) = r.get("lock").and_then(|l| l.as_str()) {
        out.push(format!("gated by the {} risk lock", l.replace('_', " ")));
    }
    for b in r
        .get("breaches")
        .and_then(|b| b.as_array())
        .into_iter()
        .flatten()
    {
        if let Some(reason) = b.get("reason").and_then(|x| x.as_str()) {
            out.push(format!("risk limit hit: {reason}"));
        }
    }
    out
}

/// What inbound signals did at a candle (`decision.signal`, gate mode).
fn signal_words(d: &serde_json::Value) -> Vec<String> {
    let Some(s) = d.get("signal") else {
        return Vec::new();
    };
    let used = s.get("ids").and_then(|i| i.as_array()).map_or(0, Vec::len);
    let mut out = Vec::new();
    if used > 0 {
        out.push(format!("{used} inbound signal(s) used here"));
    }
    if s.get("gated").and_then(serde_json::Value::as_bool) == Some(true) {
        match s.get("gate").and_then(|g| g.as_str()) {
            Some("flatten") => {
                out.push("an exit signal: the position is sold at the next open".into())
            }
            _ => out.push("no buy signal since the previous candle: entries refused".into()),
        }
    }
    out
}

/// "3 min 12 s" and the like.
pub fn duration_words(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min {} s", s / 60, s % 60),
        3600..86_400 => format!("{} h {} min", s / 3600, (s % 3600) / 60),
        _ => format!("{} d {} h", s / 86_400, (s % 86_400) / 3600),
    }
}

/// Received signals the run page lists.
const SIGNALS_SHOWN: i64 = 20;

pub async fn run(id_text: String) -> Result<PaperRunView, AppError> {
    let (actor, tz) = actor().await?;
    let ctx = expect_context::<Ctx>();
    let rid = id(&id_text)?;
    let d = act::get(&actor, &ctx, RunOwner::Me, rid).await?;
    let fills = act::fills(&actor, &ctx, rid, None, FILLS_SHOWN).await?;
    let candles = act::candles(&actor, &ctx, rid, None, CANDLES_SHOWN).await?;
    let equity = act::equity(&actor, &ctx, rid, EQUITY_POINTS).await?;
    let last_close = candles.first().map(|c| c.close);
    let position = d.position.as_ref().map(|p| {
        let num = |k: &str| p.get(k).and_then(serde_json::Value::as_f64).unwrap_or(0.0);
        let units = num("units");
        PositionView {
            units,
            entry_price: num("entry_price"),
            entry_time: p
                .get("entry_time")
                .and_then(serde_json::Value::as_i64)
                .and_then(DateTime::<Utc>::from_timestamp_millis)
                .map(|t| when(t, &tz))
                .unwrap_or_default(),
            entry_rule: p
                .get("entry_rule")
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_owned(),
            unrealised: last_close.map(|c| units * c - num("cost")),
            last_close,
        }
    });
    let pending = d.pending.as_ref().map(|p| {
        let entry = p.get("entry").and_then(serde_json::Value::as_bool) == Some(true);
        let rule = p.get("rule").and_then(|r| r.as_str()).unwrap_or("");
        let reason = p.get("reason").and_then(|r| r.as_str()).unwrap_or("");
        let what = if entry { "buy (entry)" } else { "sell (exit)" };
        let why = [reason, rule]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(": ");
        if why.is_empty() {
            format!("{what} at the next open")
        } else {
            format!("{what} at the next open — {why}")
        }
    });
    let timeframe_ms = engine::candles::Timeframe::parse(&d.summary.timeframe)
        .map(|t| t.millis())
        .unwrap_or(0);
    let feed_lag = d.summary.last_candle.map(|t| {
        duration_words(ctx.clock.now().timestamp_millis() - t.timestamp_millis() - timeframe_ms)
    });
    let cfg = &d.config;
    let sig = act::signal_settings(&actor, &ctx, RunOwner::Me, rid).await?;
    let received =
        act::received_signals(&actor, &ctx, RunOwner::Me, rid, None, SIGNALS_SHOWN).await?;
    let path = format!("/api/v1/signals/{rid}");
    // TradingView posts only to ports 80 and 443: the public address the operator configured.
    let signals = SignalsView {
        mode: sig.mode.as_str().to_owned(),
        has_secret: sig.has_secret,
        allow_ips: sig.allow_ips,
        rotated: sig.rotated_at.map(|t| when(t, &tz)),
        url: format!(
            "{}{path}",
            ctx.settings.public_url.as_str().trim_end_matches('/')
        ),
        recent: sig.recent,
        near_limit: sig.near_tradingview_limit,
        received: received
            .into_iter()
            .map(|s| SignalRowView {
                received: when(s.received_at, &tz),
                verdict: s.verdict,
                status: s.status,
                reason: s.reason,
                action: s.action,
                ticker: s.ticker,
                id: s.client_id,
                auth: s.auth,
                ip: s.source_ip,
                applied: s.applied_to.map(|t| when(t, &tz)),
            })
            .collect(),
    };
    Ok(PaperRunView {
        signals,
        row: row(&d.summary, &tz),
        params: d.params.clone(),
        fee: cfg.fee,
        slippage_bps: cfg.slippage_bps,
        fill: match cfg.fill {
            engine::backtest::Fill::NextOpen => "next_open".into(),
            engine::backtest::Fill::SameClose => "same_close".into(),
        },
        warmup_from: when(d.warmup_from, &tz),
        fees_paid: d.fees_paid,
        position,
        pending,
        notice: d.notice.clone(),
        gaps: d
            .gaps
            .iter()
            .map(|g| GapView {
                from: when(g.from, &tz),
                to: when(g.to, &tz),
                candles: g.candles,
            })
            .collect(),
        feed_lag,
        equity: equity
            .into_iter()
            .map(|(t, e)| (t.timestamp_millis(), e))
            .collect(),
        fills: fills
            .into_iter()
            .map(|f| FillView {
                time: when(f.time, &tz),
                side: f.side,
                price: f.price,
                units: f.units,
                fee: f.fee,
                reason: f.reason,
                rule: f.rule,
                values: values_text(&f.values),
            })
            .collect(),
        candles: candles.into_iter().map(|c| candle(c, &tz)).collect(),
        can_control: actor.writer().is_ok(),
        effective_gate: d.effective_gate.clone(),
        plan_gate: d.plan_gate.as_ref().map(|o| {
            format!(
                "Reduce-only by your plan since {}: you have {} active paper runs and your plan ({}) allows {}, \
                 and this is one of the most recently started beyond the limit. It keeps processing candles and \
                 can close its position but opens no new one. Stop runs you no longer need or move to a larger \
                 plan; it ends as soon as you are within the limit.",
                when(o.enforced_at.unwrap_or(o.grace_ends_at), &tz),
                o.usage,
                o.plan,
                o.allowed
            )
        }),
        error: form_error(),
        kill_switches: d
            .kill_switches
            .iter()
            .map(|k| KillSwitchView {
                id: k.switch_id.to_string(),
                scope: k.scope.clone(),
                mode: k.mode.clone(),
                reason: k.reason.clone(),
                by_admin: k.thrown_by_admin,
                thrown: when(k.thrown_at, &tz),
            })
            .collect(),
        risk_limits: risk_view(&d.risk_limits),
        risk_locks: d
            .risk_locks
            .iter()
            .map(|l| RiskLockView {
                limit: l.limit.clone(),
                mode: l.mode.clone(),
                reason: l.reason.clone(),
                candle: when(l.candle_time, &tz),
                until: l.until.map(|u| when(u, &tz)),
                released: l.released_at.map(|u| when(u, &tz)),
                active: l.active,
            })
            .collect(),
    })
}

fn trade(t: &TradeView, tz: &str) -> ParityTrade {
    ParityTrade {
        entry: when(t.entry_time, tz),
        exit: t.exit_time.map(|x| when(x, tz)),
        entry_price: t.entry_price,
        exit_price: t.exit_price,
        units: t.units,
        fees: t.fees,
        exit_reason: t.exit_reason.clone(),
    }
}

fn difference(d: &Difference, tz: &str) -> ParityDifference {
    ParityDifference {
        kind: d.kind.clone(),
        entry: when(d.entry_time, tz),
        fields: d.fields.clone(),
        paper: d.paper.as_ref().map(|t| trade(t, tz)),
        backtest: d.backtest.as_ref().map(|t| trade(t, tz)),
        cause: d.cause.clone(),
        detail: d.detail.clone(),
    }
}

pub async fn parity(id_text: String) -> Result<ParityView, AppError> {
    let (actor, tz) = actor().await?;
    let ctx = expect_context::<Ctx>();
    let rid = id(&id_text)?;
    let d = act::get(&actor, &ctx, RunOwner::Me, rid).await?;
    let r = act::parity(&actor, &ctx, RunOwner::Me, rid).await?;
    Ok(ParityView {
        row: row(&d.summary, &tz),
        summary: r.summary.clone(),
        window_from: when(r.window_from, &tz),
        live_from: when(r.live_from, &tz),
        window_to: r.window_to.map(|t| when(t, &tz)),
        candles: r.candles,
        paper_trades: r.paper_trades,
        backtest_trades: r.backtest_trades,
        matched: r.matched,
        open_position_matches: r.open_position_matches,
        differences: r.differences.iter().map(|x| difference(x, &tz)).collect(),
    })
}
