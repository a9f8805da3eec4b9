//! The start form ("new paper run"), prefilled from the query string (the "Paper-trade this" buttons link
//! here with a strategy's or a backtest's settings). Posts to `/paper/create`; an error comes back in place,
//! under the field it names.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::{
    api::paper::{PaperFormView, get_paper_form},
    components::forms::{CsrfField, Flash},
    pages::error::ErrorTemplate,
};

#[component]
pub fn NewPaperRunPage() -> impl IntoView {
    let query = use_query_map();
    let args = move || {
        let q = query.read();
        (
            q.get("strategy").filter(|v| !v.is_empty()),
            q.get("version").and_then(|v| v.parse::<i32>().ok()),
        )
    };
    let data = Resource::new(args, |(s, v)| get_paper_form(s, v));
    view! {
        <Title text="Start a paper run" />
        <h1>"Start a paper run"</h1>
        <p class="muted small">"A paper run trades a strategy version on live candles with simulated money: the same \
            engine, fills and fees as a backtest, deciding on each candle that closes after the start."</p>
        <Flash />
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            <ErrorBoundary fallback=|errors| view! { <ErrorTemplate errors /> }>
                {move || Suspend::new(async move { data.await.map(|v| view! { <StartForm v /> }) })}
            </ErrorBoundary>
        </Transition>
    }
}

#[component]
fn StartForm(v: PaperFormView) -> impl IntoView {
    let query = use_query_map();
    let q = query.get_untracked();
    let chosen: Vec<String> = q.get_all("instrument_id").unwrap_or_default();
    let prev = move |k: &str| q.get(k).unwrap_or_default();
    let error = if prev("failed") == "1" {
        v.error.clone()
    } else {
        None
    };
    let field_error = {
        let error = error.clone();
        move |field: &str| {
            error
                .as_ref()
                .filter(|(f, _)| f == field)
                .map(|(f, m)| view! { <span class="field-error" role="alert" data-field=f.clone()>{m.clone()}</span> })
        }
    };
    if v.strategies.is_empty() {
        return view! {
            <div class="card"><p>"You have no strategies yet. " <a href="/strategies">"Create one from a template"</a> " first."</p></div>
        }
        .into_any();
    }
    if v.feeds.is_empty() {
        return view! {
            <div class="card" id="no-feeds"><p>"No market series has a live feed yet. Paper runs need a series the \
                scheduled market update keeps current; an operator starts tracking one by fetching it once with "
                <code>"vortex run-etl"</code> ". See " <a href="/market">"Market data"</a> "."</p></div>
        }
        .into_any();
    }
    let or = |k: &str, d: &str| {
        Some(prev(k))
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| d.to_owned())
    };
    let mut timeframes: Vec<String> = v.feeds.iter().map(|s| s.timeframe.clone()).collect();
    timeframes.sort_by_key(|t| {
        engine::candles::Timeframe::parse(t)
            .map(|t| t.millis())
            .unwrap_or(i64::MAX)
    });
    timeframes.dedup();
    let tf = or("timeframe", v.feeds[0].timeframe.as_str());
    let mut instruments = std::collections::BTreeMap::<i32, (String, Vec<String>)>::new();
    for f in &v.feeds {
        instruments
            .entry(f.instrument_id)
            .or_insert_with(|| (format!("{} · {}", f.pair, f.exchange), Vec::new()))
            .1
            .push(format!(
                "{} (to {})",
                f.timeframe,
                f.last.get(..16).unwrap_or("")
            ));
    }
    let first = v
        .feeds
        .iter()
        .find(|f| f.timeframe == tf)
        .map(|f| f.instrument_id);
    let strategy_id = v.strategy_id.clone().unwrap_or_default();
    let fill = prev("fill");
    view! {
        {v.blocked.clone().map(|b| view! { <div class="card notice" id="start-blocked">{b}</div> })}
        {error.clone().map(|(_, m)| view! { <p class="flash error" role="alert" id="form-error">{m}</p> })}
        <form method="get" action="/paper/new" class="inline-form" id="pick-strategy">
            <label>"Strategy "
                <select name="strategy">
                    {v.strategies.iter().map(|(id, name, latest)| {
                        let sel = *id == strategy_id;
                        view! { <option value=id.clone() selected=sel>{format!("{name} (v{latest})")}</option> }
                    }).collect_view()}
                </select>
            </label>
            <button class="button small" type="submit">"Choose"</button>
        </form>
        <form method="post" action="/paper/create" class="stack run-form" id="paper-form">
            <CsrfField />
            <input type="hidden" name="strategy_id" value=strategy_id.clone() />
            <fieldset>
                <legend>"Strategy version and parameters"</legend>
                <label>"Version "
                    <select name="version">
                        {v.versions.iter().map(|n| {
                            let sel = Some(*n) == v.version;
                            view! { <option value=n.to_string() selected=sel>{format!("v{n}")}</option> }
                        }).collect_view()}
                    </select>
                </label>
                {field_error("version")}
                {field_error("strategy")}
                {v.params.iter().map(|p| {
                    let name = format!("param.{}", p.name);
                    let value = or(&name, &p.value.to_string());
                    let step = if p.kind == "int" { "1" } else { "any" };
                    if p.kind == "bool" {
                        let checked = value == "true";
                        view! {
                            <label class="check"><input type="hidden" name=name.clone() value="false" />
                                <input type="checkbox" name=name.clone() value="true" checked=checked /> " " {p.name.clone()}</label>
                        }.into_any()
                    } else {
                        view! {
                            <label>{p.name.clone()} " " <span class="small muted">{format!("({})", p.kind)}</span>
                                <input type="number" name=name.clone() value=value step=step
                                    min=p.min.map(|m| m.to_string()) max=p.max.map(|m| m.to_string()) required />
                            </label>
                        }.into_any()
                    }
                }).collect_view()}
                {field_error("params")}
                {field_error("invalid_strategy")}
            </fieldset>
            <fieldset>
                <legend>"Live feed"</legend>
                <label>"Timeframe "
                    <select name="timeframe" id="timeframe">
                        {timeframes.iter().map(|t| {
                            let sel = *t == tf;
                            view! { <option value=t.clone() selected=sel>{t.clone()}</option> }
                        }).collect_view()}
                    </select>
                </label>
                {field_error("timeframe")}
                <label>"Instruments (one run each; Ctrl/⌘-click to pick several) "
                    <select name="instrument_id" id="instruments" multiple size="5" required>
                        {instruments.into_iter().map(|(iid, (label, tfs))| {
                            let sel = if chosen.is_empty() { Some(iid) == first } else { chosen.contains(&iid.to_string()) };
                            view! { <option value=iid.to_string() selected=sel>{format!("{label} — live: {}", tfs.join(", "))}</option> }
                        }).collect_view()}
                    </select>
                </label>
                {field_error("instrument")}
                <label>"Warm-up candles " <span class="small muted">"(history the indicators start from)"</span>
                    <input type="number" name="warmup_bars" min="0" max=v.max_warmup_bars.to_string() step="1"
                        value=or("warmup_bars", &v.warmup_bars.to_string()) required />
                </label>
                {field_error("warmup_bars")}
            </fieldset>
            <fieldset>
                <legend>"Trading assumptions"</legend>
                <div class="inline-form">
                    <label>"Initial cash " <input type="number" name="initial_cash" min="0" step="any" value=or("initial_cash", "10000") required /></label>
                    <label>"Fee per side (%) " <input type="number" name="fee_pct" min="0" max="10" step="any" value=prev("fee_pct") required
                        placeholder="required, e.g. 0.1" /></label>
                    <label>"Slippage (bps) " <input type="number" name="slippage_bps" min="0" max="1000" step="any" value=or("slippage_bps", "0") required /></label>
                    <label>"Fill "
                        <select name="fill">
                            <option value="next_open" selected=fill != "same_close">"next candle's open (no look-ahead)"</option>
                            <option value="same_close" selected=fill == "same_close">"signal candle's close (optimistic)"</option>
                        </select>
                    </label>
                </div>
                <p class="small muted">"The fee is required: a paper run never assumes one (0 is allowed)."</p>
                {field_error("initial_cash")}
                {field_error("fee")}
                {field_error("slippage_bps")}
                {field_error("fill")}
            </fieldset>
            <fieldset id="risk-fieldset">
                <legend>"Risk limits"</legend>
                <p class="small muted">"A breach puts the run in the chosen mode from its next candle, like a kill switch. Empty keeps the default shown; 0 turns a limit off."</p>
                <div class="inline-form">
                    <label>"On a breach "
                        <select name="risk_mode">
                            {["halt", "reduce_only", "flatten"].into_iter().map(|m| {
                                let sel = if prev("risk_mode").is_empty() { m == v.risk_defaults.mode } else { prev("risk_mode") == m };
                                view! { <option value=m selected=sel>{m.replace('_', "-")}</option> }
                            }).collect_view()}
                        </select>
                    </label>
                    {[
                        ("max_drawdown_pct", "Max drawdown (%)", v.risk_defaults.max_drawdown_pct.map(|x| x.to_string())),
                        ("daily_loss", "Daily loss (quote)", v.risk_defaults.daily_loss.map(|x| x.to_string())),
                        ("daily_loss_pct", "Daily loss (%)", v.risk_defaults.daily_loss_pct.map(|x| x.to_string())),
                        ("max_consecutive_losses", "Losing trades in a row", v.risk_defaults.max_consecutive_losses.map(|x| x.to_string())),
                        ("max_position_value", "Max position value (quote)", v.risk_defaults.max_position_value.map(|x| x.to_string())),
                        ("max_orders_per_day", "Max orders per day", v.risk_defaults.max_orders_per_day.map(|x| x.to_string())),
                        ("stale_feed_secs", "Stale-feed timeout (s)", v.risk_defaults.stale_feed_secs.map(|x| x.to_string())),
                    ].into_iter().map(|(name, label, default)| view! {
                        <label>{label} " "
                            <input type="number" name=name min="0" step="any" value=prev(name)
                                placeholder=default.map_or_else(|| "off".to_owned(), |d| format!("default {d}")) />
                        </label>
                    }).collect_view()}
                </div>
                {["risk_mode", "max_drawdown_pct", "daily_loss", "daily_loss_pct", "max_consecutive_losses",
                  "max_position_value", "max_orders_per_day", "stale_feed_secs"].into_iter().map(&field_error).collect_view()}
            </fieldset>
            {field_error("limit_reached")}
            {field_error("plan_limit").map(|e| view! { {e} " " <a href="/account/plan">"Your plan and usage"</a> })}
            {field_error("plan_read_only").map(|e| view! { {e} " " <a href="/account/plan">"Your plan and usage"</a> })}
            {field_error("email")}
            <div><button class="button primary" type="submit" id="start-paper" disabled=!v.can_start>"Start paper run"</button></div>
        </form>
    }
    .into_any()
}
