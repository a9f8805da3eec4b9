//! Backtests: the run form, the runs list (filter, sort, pick runs to compare), one run's results (metrics,
//! charts with trade markers, "why here?", trades, provenance, exports) and the comparison of several runs.
//!
//! Without JavaScript every page works as plain HTML (forms post to `server::routes::backtests`, the trades
//! table sorts and pages by links). After hydration `/backtest-chart.js` draws the charts and polls a running
//! backtest's status, reloading the page when it finishes.

use engine::backtest::Metrics;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};

use crate::{
    api::backtest::{
        CompareView, RunFormView, RunRow, RunView, RunsView, format_metric, get_compare, get_run,
        get_run_form, get_runs, metric_label,
    },
    components::forms::{CsrfField, Flash},
    pages::error::ErrorTemplate,
};

fn pct(v: Option<f64>) -> String {
    v.map_or_else(|| "—".into(), |v| format!("{:.2} %", v * 100.0))
}

fn num(v: Option<f64>) -> String {
    v.map_or_else(|| "—".into(), |v| format!("{v:.2}"))
}

fn status_badge(status: &str) -> &'static str {
    match status {
        "done" => "badge ok",
        "failed" => "badge bad",
        "cancelled" => "badge",
        _ => "badge warn",
    }
}

/// The runs table (used by the runs list and a strategy's page). With `compare`, each row has a checkbox for
/// the surrounding compare form.
#[component]
pub fn RunsTable(runs: Vec<RunRow>, compare: bool) -> impl IntoView {
    #[cfg(feature = "hydrate")]
    {
        let any_active = runs.iter().any(RunRow::active);
        Effect::new(move |_| {
            if any_active {
                crate::chart::mount_backtest();
            }
        });
    }
    if runs.is_empty() {
        return view! { <p class="muted" id="no-runs">"No backtests yet."</p> }.into_any();
    }
    view! {
        <div class="table-wrap"><table class="data" id="runs">
            <thead><tr>
                {compare.then(|| view! { <th scope="col"><span class="visually-hidden">"Compare"</span></th> })}
                <th scope="col">"Run"</th>
                <th scope="col">"Range"</th>
                <th scope="col">"Status"</th>
                <th scope="col" class="num">"Return"</th>
                <th scope="col" class="num">"Sharpe"</th>
                <th scope="col" class="num">"Max drawdown"</th>
                <th scope="col" class="num">"Trades"</th>
                <th scope="col">"Created"</th>
            </tr></thead>
            <tbody>
                {runs.into_iter().map(|r| {
                    let href = format!("/backtests/{}", r.id);
                    let active = r.active();
                    let status_src = format!("/backtests/{}/status.json", r.id);
                    view! {
                        <tr data-run-id=r.id.clone()>
                            {compare.then(|| view! { <td><input type="checkbox" name="ids" value=r.id.clone() aria-label=format!("compare {}", r.label) /></td> })}
                            <td><a href=href>{r.label.clone()}</a><div class="small muted">{r.instrument.clone()}</div></td>
                            <td class="small">{r.range.clone()}</td>
                            <td>
                                {if active {
                                    view! {
                                        <div data-run-status="" data-src=status_src data-state=r.status.clone()>
                                            <progress data-run-progress="" max="100" value=(r.progress * 100.0).round()></progress>
                                            <span data-run-status-text="" class="small">{r.message.clone()}</span>
                                        </div>
                                    }.into_any()
                                } else {
                                    view! { <span class=status_badge(&r.status) title=r.message.clone()>{r.status.clone()}</span> }.into_any()
                                }}
                            </td>
                            <td class="num">{pct(r.total_return)}</td>
                            <td class="num">{num(r.sharpe)}</td>
                            <td class="num">{pct(r.max_drawdown)}</td>
                            <td class="num">{r.trade_count.map_or_else(|| "—".into(), |n| n.to_string())}</td>
                            <td class="small">{r.created.clone()}</td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table></div>
    }
    .into_any()
}

#[component]
pub fn RunsPage() -> impl IntoView {
    let query = use_query_map();
    let args = move || {
        let q = query.read();
        let opt = |k: &str| q.get(k).filter(|v| !v.is_empty());
        (
            opt("strategy"),
            opt("instrument").and_then(|v| v.parse::<i32>().ok()),
            opt("status"),
            opt("batch"),
            opt("sort"),
            opt("dir"),
        )
    };
    let data = Resource::new(args, |(a, b, c, d, e, f)| get_runs(a, b, c, d, e, f));
    view! {
        <Title text="Backtests" />
        <div class="page-head">
            <h1>"Backtests"</h1>
            <a class="button primary" href="/backtests/new" id="new-backtest">"New backtest"</a>
        </div>
        <Flash />
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            <ErrorBoundary fallback=|errors| view! { <ErrorTemplate errors /> }>
                {move || Suspend::new(async move {
                    let a = args();
                    data.await.map(|v| view! { <RunsList v args=a /> })
                })}
            </ErrorBoundary>
        </Transition>
    }
}

type RunArgs = (
    Option<String>,
    Option<i32>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

#[component]
fn RunsList(v: RunsView, args: RunArgs) -> impl IntoView {
    let (strategy, instrument, status, batch, sort, dir) = args;
    let sort = sort.unwrap_or_else(|| "created_at".into());
    let dir = dir.unwrap_or_else(|| "desc".into());
    view! {
        <form method="get" action="/backtests" class="inline-form" id="runs-filter">
            <label>"Strategy "
                <select name="strategy">
                    <option value="">"any"</option>
                    {v.strategies.iter().map(|(id, name)| {
                        let sel = strategy.as_deref() == Some(id.as_str());
                        view! { <option value=id.clone() selected=sel>{name.clone()}</option> }
                    }).collect_view()}
                </select>
            </label>
            <label>"Instrument "
                <select name="instrument">
                    <option value="">"any"</option>
                    {v.instruments.iter().map(|(id, label)| {
                        let sel = instrument == Some(*id);
                        view! { <option value=id.to_string() selected=sel>{label.clone()}</option> }
                    }).collect_view()}
                </select>
            </label>
            <label>"Status "
                <select name="status">
                    <option value="">"any"</option>
                    {["queued", "running", "done", "failed", "cancelled"].into_iter().map(|s| {
                        let sel = status.as_deref() == Some(s);
                        view! { <option value=s selected=sel>{s}</option> }
                    }).collect_view()}
                </select>
            </label>
            <label>"Sort by "
                <select name="sort">
                    {[("created_at", "date"), ("total_return", "return"), ("sharpe", "Sharpe"), ("max_drawdown", "max drawdown"), ("trade_count", "trades"), ("final_equity", "final equity")].into_iter().map(|(k, l)| {
                        let sel = sort == k;
                        view! { <option value=k selected=sel>{l}</option> }
                    }).collect_view()}
                </select>
            </label>
            <label>"Order "
                <select name="dir">
                    <option value="desc" selected=dir == "desc">"high → low / newest"</option>
                    <option value="asc" selected=dir == "asc">"low → high / oldest"</option>
                </select>
            </label>
            {batch.map(|b| view! { <input type="hidden" name="batch" value=b /> })}
            <button class="button" type="submit">"Apply"</button>
        </form>
        <form method="get" action="/backtests/compare" id="compare-form">
            <RunsTable runs=v.runs compare=true />
            <p><button class="button" type="submit" id="compare-button">"Compare selected runs"</button></p>
        </form>
    }
}

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
            <div><button class="button primary" type="submit" id="start-backtest" disabled=!can_run>"Run backtest"</button></div>
        </form>
    }
    .into_any()
}

#[component]
pub fn RunPage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let args = move || {
        let q = query.read();
        (
            params.read().get("id").unwrap_or_default(),
            q.get("sort").filter(|v| !v.is_empty()),
            q.get("dir").filter(|v| !v.is_empty()),
            q.get("page").and_then(|v| v.parse::<i64>().ok()),
        )
    };
    let data = Resource::new(args, |(id, s, d, p)| get_run(id, s, d, p));
    view! {
        <Title text="Backtest" />
        <Flash />
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            <ErrorBoundary fallback=|errors| view! { <ErrorTemplate errors /> }>
                {move || Suspend::new(async move { data.await.map(|v| view! { <RunResults v /> }) })}
            </ErrorBoundary>
        </Transition>
    }
}

#[component]
fn MetricCards(m: Metrics) -> impl IntoView {
    view! {
        <div class="metric-cards" id="metrics">
            {m.iter().into_iter().map(|(name, metric)| {
                let value = format_metric(metric.value, &metric.unit);
                let na = metric.na_reason.clone();
                view! {
                    <div class="metric" data-metric=name>
                        <div class="metric-name">{metric_label(name)}</div>
                        <div class="metric-value">{value}</div>
                        <div class="metric-basis small muted">{metric.basis.clone()}</div>
                        {na.map(|r| view! { <div class="metric-na small">{r}</div> })}
                    </div>
                }
            }).collect_view()}
        </div>
    }
}

#[component]
fn RunResults(v: RunView) -> impl IntoView {
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| {
        crate::chart::mount_backtest();
    });
    let RunView {
        row,
        params,
        config,
        error,
        timing,
        metrics,
        provenance,
        strategy_version_id,
        trades,
        trade_total,
        page,
        per_page,
        sort,
        dir,
    } = v;
    let id = row.id.clone();
    let base = format!("/backtests/{id}");
    let active = row.active();
    let done = row.status == "done";
    let pages = (trade_total + per_page - 1) / per_page;
    // "why?" explains the bar whose close fired the entry rule: with next-open fills, the bar before the fill.
    let signal_offset = match config.fill {
        engine::backtest::Fill::NextOpen => engine::candles::Timeframe::parse(&row.timeframe)
            .map(|t| t.millis())
            .unwrap_or(0),
        engine::backtest::Fill::SameClose => 0,
    };
    let sort_link = {
        let base = base.clone();
        let sort = sort.clone();
        let dir = dir.clone();
        move |key: &'static str, label: &'static str| {
            let next_dir = if sort == key && dir == "asc" {
                "desc"
            } else {
                "asc"
            };
            let arrow = if sort == key {
                if dir == "asc" { " ▲" } else { " ▼" }
            } else {
                ""
            };
            view! { <a href=format!("{base}?sort={key}&dir={next_dir}#trades")>{label}{arrow}</a> }
        }
    };
    let page_link = {
        let base = base.clone();
        let (sort, dir) = (sort.clone(), dir.clone());
        move |p: i64| format!("{base}?sort={sort}&dir={dir}&page={p}#trades")
    };
    view! {
        <Title text=row.label.clone() />
        <div class="page-head">
            <h1>{row.label.clone()}</h1>
            <div class="actions">
                <a class="button" href=format!("/strategies/{}", row.strategy_id)>"Strategy"</a>
                <a class="button" href=format!("/backtests/new?strategy={}&version={}", row.strategy_id, row.version)>"Run again"</a>
            </div>
        </div>
        <p class="muted">{row.instrument.clone()} " · " {row.timeframe.clone()} " · " {row.range.clone()} " · created " {row.created.clone()}</p>
        {active.then(|| {
            let src = format!("/backtests/{id}/status.json");
            view! {
                <section class="card" id="run-status" data-run-status="" data-src=src data-state=row.status.clone()>
                    <p><span data-run-status-text="" id="status-text">{row.message.clone()}</span></p>
                    <progress data-run-progress="" max="100" value=(row.progress * 100.0).round()></progress>
                    <form method="post" action=format!("/backtests/{id}/cancel")><CsrfField />
                        <button class="button" type="submit" id="cancel-run">"Cancel"</button>
                    </form>
                    <p class="small muted">"This page updates by itself; without JavaScript, reload it."</p>
                </section>
            }
        })}
        {(row.status == "failed").then(|| view! {
            <section class="card error-card" id="run-error">
                <h2>"The backtest failed"</h2>
                <pre class="code">{error.clone().unwrap_or_default()}</pre>
            </section>
        })}
        {(row.status == "cancelled").then(|| view! { <p class="card notice" id="run-cancelled">"This backtest was cancelled."</p> })}
        {metrics.map(|m| view! { <MetricCards m /> })}
        {done.then(|| {
            let chart_src = format!("/backtests/{id}/chart.json");
            let trace_url = format!("/backtests/{id}/trace.json");
            view! {
                <section aria-labelledby="charts-head">
                    <h2 id="charts-head">"Price, equity and drawdown"</h2>
                    <div class="backtest-chart" id="backtest-chart" data-backtest-chart="" data-src=chart_src
                        data-trace-url=trace_url data-trace-target="trace-panel"></div>
                    <p class="small muted">"Markers: B = entry, S = exit (trade number). Click a candle for the decision trace."</p>
                    <aside class="card" id="trace-panel" aria-live="polite"><p class="muted">"The charts need JavaScript; the trades table below works without it."</p></aside>
                </section>
            }
        })}
        {done.then(|| view! {
            <section aria-labelledby="trades-head" id="trades">
                <h2 id="trades-head">{format!("Trades ({trade_total})")}</h2>
                <p class="small">
                    <a href=format!("{base}/trades.csv") download="" id="export-csv">"Trades CSV"</a> " · "
                    <a href=format!("{base}/result.json") download="" id="export-json">"Full result JSON"</a> " · "
                    <a href=format!("{base}/report.html") download="" id="export-html">"HTML report (works offline)"</a>
                </p>
                <div class="table-wrap"><table class="data trades">
                    <thead><tr>
                        <th scope="col">{sort_link("seq", "#")}</th>
                        <th scope="col">{sort_link("entry_time", "Entry")}</th>
                        <th scope="col">{sort_link("exit_time", "Exit")}</th>
                        <th scope="col" class="num">"Entry price"</th>
                        <th scope="col" class="num">"Exit price"</th>
                        <th scope="col" class="num">{sort_link("pnl", "P&L")}</th>
                        <th scope="col" class="num">{sort_link("return_pct", "Return")}</th>
                        <th scope="col" class="num">{sort_link("bars_held", "Bars")}</th>
                        <th scope="col">{sort_link("exit_reason", "Exit reason")}</th>
                        <th scope="col">"Rule that fired"</th>
                        <th scope="col"><span class="visually-hidden">"Why"</span></th>
                    </tr></thead>
                    <tbody>
                        {trades.into_iter().map(|t| {
                            let values = t.entry_values.iter().map(|(k, v)| format!("{k} = {}", v.map_or_else(|| "n/a".into(), |v| format!("{v:.6}")))).collect::<Vec<_>>().join(", ");
                            view! {
                                <tr class={if t.pnl >= 0.0 { "win" } else { "loss" }}>
                                    <td class="num">{t.seq}</td>
                                    <td class="small">{t.entry.clone()}</td>
                                    <td class="small">{t.exit.clone()}</td>
                                    <td class="num">{format!("{:.8}", t.entry_price)}</td>
                                    <td class="num">{format!("{:.8}", t.exit_price)}</td>
                                    <td class="num">{format!("{:.2}", t.pnl)}</td>
                                    <td class="num">{format!("{:.2} %", t.return_pct * 100.0)}</td>
                                    <td class="num">{t.bars_held}</td>
                                    <td>{t.exit_reason.clone()}</td>
                                    <td class="small"><code>{t.entry_rule.clone()}</code>
                                        {t.exit_rule.clone().map(|r| view! { " → " <code>{r}</code> })}
                                        <div class="muted">{values}</div></td>
                                    <td><button type="button" class="button small" data-trace-time=(t.entry_ms - signal_offset).to_string() title="the bar whose close fired the entry">"why?"</button></td>
                                </tr>
                            }
                        }).collect_view()}
                    </tbody>
                </table></div>
                {(pages > 1).then(|| view! {
                    <nav class="pager" aria-label="Trade pages">
                        {(page > 1).then(|| view! { <a href=page_link(page - 1)>"← previous"</a> })}
                        <span>{format!(" page {page} of {pages} ")}</span>
                        {(page < pages).then(|| view! { <a href=page_link(page + 1)>"next →"</a> })}
                    </nav>
                })}
            </section>
        })}
        <div class="two-col">
            <section class="card" aria-labelledby="settings-head">
                <h2 id="settings-head">"Settings"</h2>
                <dl class="kv">
                    <dt>"Parameters"</dt>
                    <dd>{if params.is_empty() { "defaults".to_owned() } else { params.iter().map(|(k, v)| format!("{k} = {v}")).collect::<Vec<_>>().join(", ") }}</dd>
                    <dt>"Initial cash"</dt><dd>{format!("{:.2}", config.initial_cash)}</dd>
                    <dt>"Fee per side"</dt><dd>{format!("{} %", config.fee * 100.0)}</dd>
                    <dt>"Slippage"</dt><dd>{format!("{} bps", config.slippage_bps)}</dd>
                    <dt>"Fill"</dt><dd>{format!("{:?}", config.fill)}</dd>
                    {timing.map(|t| view! {
                        <dt>"Timing"</dt>
                        <dd class="small" id="timing">{t}</dd>
                    })}
                </dl>
            </section>
            {provenance.map(|p| view! {
                <section class="card" aria-labelledby="prov-head" id="provenance">
                    <h2 id="prov-head">"Provenance"</h2>
                    <dl class="kv small">
                        <dt>"Engine"</dt><dd>{p.engine_version.clone()}</dd>
                        <dt>"Data hash"</dt><dd><code>{p.candles_hash.clone()}</code></dd>
                        <dt>"Candles"</dt><dd>{format!("{} × {}", p.bars, p.timeframe)}</dd>
                        <dt>"Strategy version"</dt><dd><code>{strategy_version_id.clone()}</code> " (v" {row.version} ")"</dd>
                        <dt>"Source hash"</dt><dd><code>{p.strategy_source_hash.clone()}</code></dd>
                        <dt>"Parameters"</dt><dd>{p.params.iter().map(|(k, v)| format!("{k} = {v}")).collect::<Vec<_>>().join(", ")}</dd>
                        <dt>"Fill model"</dt><dd>{p.fill_model.clone()}</dd>
                        <dt>"Fees"</dt><dd>{format!("{} % per side, {} bps slippage", p.fee * 100.0, p.slippage_bps)}</dd>
                        <dt>"Position size"</dt><dd>{p.position_size.clone()}</dd>
                        <dt>"Semantics"</dt><dd><ul>{p.semantics.iter().map(|s| view! { <li>{s.clone()}</li> }).collect_view()}</ul></dd>
                    </dl>
                </section>
            })}
        </div>
    }
}

#[component]
pub fn ComparePage() -> impl IntoView {
    let query = use_query_map();
    let ids = move || query.read().get_all("ids").unwrap_or_default();
    let data = Resource::new(ids, get_compare);
    view! {
        <Title text="Compare backtests" />
        <h1>"Compare backtests"</h1>
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            <ErrorBoundary fallback=|errors| view! { <ErrorTemplate errors /> }>
                {move || Suspend::new(async move {
                    let ids = ids();
                    data.await.map(|v| view! { <Comparison v ids /> })
                })}
            </ErrorBoundary>
        </Transition>
    }
}

#[component]
fn Comparison(v: CompareView, ids: Vec<String>) -> impl IntoView {
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| {
        crate::chart::mount_backtest();
    });
    if v.runs.len() < 2 {
        return view! {
            <p class="card notice" id="compare-empty">"Pick two or more runs on the " <a href="/backtests">"Backtests"</a> " page to compare them."</p>
        }
        .into_any();
    }
    let names: Vec<&'static str> = v
        .runs
        .iter()
        .find_map(|(_, m)| m.as_ref())
        .map(|m| m.iter().iter().map(|(n, _)| *n).collect())
        .unwrap_or_default();
    let src = format!(
        "/backtests/compare.json?{}",
        ids.iter()
            .map(|i| format!("ids={i}"))
            .collect::<Vec<_>>()
            .join("&")
    );
    view! {
        <div class="compare-chart" id="compare-chart" data-compare-chart="" data-src=src></div>
        <div class="table-wrap"><table class="data" id="compare-table">
            <thead><tr>
                <th scope="col">"Metric"</th>
                {v.runs.iter().map(|(r, _)| view! { <th scope="col"><a href=format!("/backtests/{}", r.id)>{r.label.clone()}</a><div class="small muted">{r.range.clone()}</div></th> }).collect_view()}
            </tr></thead>
            <tbody>
                {names.into_iter().map(|name| view! {
                    <tr>
                        <th scope="row">{metric_label(name)}</th>
                        {v.runs.iter().map(|(r, m)| {
                            let cell = match m {
                                Some(m) => m.iter().iter().find(|(n, _)| *n == name).map(|(_, x)| format_metric(x.value, &x.unit)).unwrap_or_default(),
                                None => r.status.clone(),
                            };
                            view! { <td class="num">{cell}</td> }
                        }).collect_view()}
                    </tr>
                }).collect_view()}
            </tbody>
        </table></div>
    }
    .into_any()
}
