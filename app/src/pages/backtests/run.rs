//! One run's page: status, metrics, charts with trade markers, "why here?", trades, provenance, exports.

use engine::backtest::Metrics;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};

use crate::{
    api::backtest::{RunState, RunView, format_metric, get_run, metric_label},
    components::forms::{CsrfField, Flash},
    pages::error::ErrorTemplate,
};

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
    let done = row.status == RunState::Done;
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
                {done.then(|| {
                    let href = crate::pages::paper::start_link(&row.strategy_id, row.version, &params, Some(row.instrument_id), Some(&row.timeframe), Some(&config));
                    view! { <a class="button" href=href id="paper-trade-this">"Paper-trade this"</a> }
                })}
            </div>
        </div>
        <p class="muted">{row.instrument.clone()} " · " {row.timeframe.clone()} " · " {row.range.clone()} " · created " {row.created.clone()}</p>
        {active.then(|| {
            let src = format!("/backtests/{id}/status.json");
            view! {
                <section class="card" id="run-status" data-run-status="" data-src=src data-state=row.status.as_str()>
                    <p><span data-run-status-text="" id="status-text">{row.message.clone()}</span></p>
                    <progress data-run-progress="" max="100" value=(row.progress * 100.0).round()></progress>
                    <form method="post" action=format!("/backtests/{id}/cancel")><CsrfField />
                        <button class="button" type="submit" id="cancel-run">"Cancel"</button>
                    </form>
                    <p class="small muted">"This page updates by itself; without JavaScript, reload it."</p>
                </section>
            }
        })}
        {(row.status == RunState::Failed).then(|| view! {
            <section class="card error-card" id="run-error">
                <h2>"The backtest failed"</h2>
                <pre class="code">{error.clone().unwrap_or_default()}</pre>
            </section>
        })}
        {(row.status == RunState::Cancelled).then(|| view! { <p class="card notice" id="run-cancelled">"This backtest was cancelled."</p> })}
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
