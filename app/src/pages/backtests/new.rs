//! The run form ("new backtest").

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::{
    api::backtest::{RunFormView, get_run_form},
    components::forms::{CsrfField, Flash},
    pages::error::ErrorTemplate,
};

#[component]
pub fn NewBacktestPage() -> impl IntoView {
    let query = use_query_map();
    let args = move || {
        let q = query.read();
        (
            q.get("strategy").filter(|v| !v.is_empty()),
            q.get("version").and_then(|v| v.parse::<i32>().ok()),
        )
    };
    let data = Resource::new(args, |(s, v)| get_run_form(s, v));
    view! {
        <Title text="New backtest" />
        <h1>"New backtest"</h1>
        <Flash />
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            <ErrorBoundary fallback=|errors| view! { <ErrorTemplate errors /> }>
                {move || Suspend::new(async move { data.await.map(|v| view! { <RunForm v /> }) })}
            </ErrorBoundary>
        </Transition>
    }
}

#[component]
fn RunForm(v: RunFormView) -> impl IntoView {
    let query = use_query_map();
    let q = query.get_untracked();
    let chosen_instruments: Vec<String> = q.get_all("instrument_id").unwrap_or_default();
    let prev = move |k: &str| q.get(k).unwrap_or_default();
    // The error of the last submission is shown only on the page its redirect led to.
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
                .map(|(_, m)| view! { <span class="field-error" role="alert">{m.clone()}</span> })
        }
    };
    if v.strategies.is_empty() {
        return view! {
            <div class="card">
                <p>"You have no strategies yet. " <a href="/strategies">"Create one from a template"</a> " first."</p>
            </div>
        }
        .into_any();
    }
    if v.series.is_empty() {
        return view! {
            <div class="card"><p>"No market data is stored yet. See " <a href="/market">"Market data"</a> "."</p></div>
        }
        .into_any();
    }
    let mut timeframes: Vec<String> = v.series.iter().map(|s| s.timeframe.clone()).collect();
    timeframes.sort_by_key(|t| {
        engine::candles::Timeframe::parse(t)
            .map(|t| t.millis())
            .unwrap_or(i64::MAX)
    });
    timeframes.dedup();
    let default_tf = v
        .series
        .first()
        .map(|s| s.timeframe.clone())
        .unwrap_or_default();
    let tf = Some(prev("timeframe"))
        .filter(|s| !s.is_empty())
        .unwrap_or(default_tf.clone());
    // Default range: the newest year of the first series of the chosen timeframe.
    let first_series = v
        .series
        .iter()
        .find(|s| s.timeframe == tf)
        .or(v.series.first());
    let (def_from, def_to) = first_series
        .map(|s| {
            (
                s.default_from.get(..10).unwrap_or("").to_owned(),
                s.last.get(..10).unwrap_or("").to_owned(),
            )
        })
        .unwrap_or_default();
    let or = |k: &str, d: &str| {
        Some(prev(k))
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| d.to_owned())
    };
    let strategy_id = v.strategy_id.clone().unwrap_or_default();
    let blocked = v.blocked.clone();
    let can_run = v.can_run;
    view! {
        {blocked.map(|b| view! { <div class="card notice" id="run-blocked">{b}</div> })}
        {error.clone().map(|(_, m)| view! { <p class="flash error" role="alert" id="form-error">{m}</p> })}
        <form method="get" action="/backtests/new" class="inline-form" id="pick-strategy">
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
        <form method="post" action="/backtests/create" class="stack run-form" id="run-form">
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
                {v.params.iter().map(|p| {
                    let name = format!("param.{}", p.name);
                    let value = or(&name, &p.value.to_string());
                    let range = match (p.min, p.max) {
                        (Some(a), Some(b)) => format!("{a} – {b}"),
                        _ => String::new(),
                    };
                    let step = if p.kind == "int" { "1" } else { "any" };
                    if p.kind == "bool" {
                        let checked = value == "true";
                        view! {
                            <label class="check"><input type="hidden" name=name.clone() value="false" />
                                <input type="checkbox" name=name.clone() value="true" checked=checked /> " " {p.name.clone()}</label>
                        }.into_any()
                    } else {
                        view! {
                            <label>{p.name.clone()} " " <span class="small muted">{format!("({}, {range})", p.kind)}</span>
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
                <legend>"Market data"</legend>
                <label>"Timeframe "
                    <select name="timeframe">
                        {timeframes.iter().map(|t| {
                            let sel = *t == tf;
                            view! { <option value=t.clone() selected=sel>{t.clone()}</option> }
                        }).collect_view()}
                    </select>
                </label>
                {field_error("timeframe")}
                <p class="small muted">"Instruments (one run each). Stored coverage per timeframe; gaps are candles missing inside the range:"</p>
                <ul class="series-options" id="instruments">
                    {
                        let mut seen = std::collections::BTreeMap::<i32, Vec<_>>::new();
                        for s in &v.series {
                            seen.entry(s.instrument_id).or_default().push(s.clone());
                        }
                        let first_id = v.series.iter().find(|s| s.timeframe == tf).map(|s| s.instrument_id);
                        seen.into_iter().map(|(iid, list)| {
                            let checked = if chosen_instruments.is_empty() { Some(iid) == first_id } else { chosen_instruments.contains(&iid.to_string()) };
                            let pair = format!("{} · {}", list[0].pair, list[0].exchange);
                            view! {
                                <li>
                                    <label class="check"><input type="checkbox" name="instrument_id" value=iid.to_string() checked=checked /> " " <strong>{pair}</strong></label>
                                    <ul class="small">
                                        {list.into_iter().map(|s| view! {
                                            <li data-series=format!("{}:{}", s.instrument_id, s.timeframe)>
                                                {format!("{}: {} → {} · {} candles", s.timeframe, s.first.get(..10).unwrap_or(""), s.last.get(..10).unwrap_or(""), s.count)}
                                                {(s.gap_count > 0).then(|| view! { " " <span class="warn">{format!("⚠ {} gap(s), {} candles missing", s.gap_count, s.missing)}</span> })}
                                            </li>
                                        }).collect_view()}
                                    </ul>
                                </li>
                            }
                        }).collect_view()
                    }
                </ul>
                {field_error("instrument")}
                <div class="inline-form">
                    <label>"From " <input type="date" name="from" value=or("from", &def_from) required /></label>
                    <label>"To (inclusive) " <input type="date" name="to" value=or("to", &def_to) required /></label>
                </div>
                {field_error("from")}
                {field_error("to")}
                {field_error("range")}
            </fieldset>
            <fieldset>
                <legend>"Trading assumptions"</legend>
                <div class="inline-form">
                    <label>"Initial cash " <input type="number" name="initial_cash" min="0" step="any" value=or("initial_cash", "10000") required /></label>
                    <label>"Fee per side (%) " <input type="number" name="fee_pct" min="0" max="10" step="any" value=or("fee_pct", "0.1") required /></label>
                    <label>"Slippage (bps) " <input type="number" name="slippage_bps" min="0" max="1000" step="any" value=or("slippage_bps", "0") required /></label>
                    <label>"Fill "
                        <select name="fill">
                            <option value="next_open" selected=prev("fill") != "same_close">"next bar's open (no look-ahead)"</option>
                            <option value="same_close" selected=prev("fill") == "same_close">"signal bar's close (optimistic)"</option>
                        </select>
                    </label>
                </div>
                {field_error("initial_cash")}
                {field_error("fee")}
                {field_error("slippage_bps")}
                {field_error("fill")}
            </fieldset>
            {field_error("limit_reached")}
            {field_error("plan_limit").map(|e| view! { {e} " " <a href="/account/plan">"Your plan and usage"</a> })}
            {field_error("plan_read_only").map(|e| view! { {e} " " <a href="/account/plan">"Your plan and usage"</a> })}
            <div><button class="button primary" type="submit" id="start-backtest" disabled=!can_run>"Run backtest"</button></div>
        </form>
    }
    .into_any()
}
