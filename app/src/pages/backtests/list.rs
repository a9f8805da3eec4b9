//! The runs list (filter, sort, pick runs to compare) and the runs table a strategy's page shows too.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use super::{num, pct, status_badge};
use crate::{
    api::backtest::{RunRow, RunState, RunsView, get_runs},
    components::forms::Flash,
    pages::error::ErrorTemplate,
};

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
                                        <div data-run-status="" data-src=status_src data-state=r.status.as_str()>
                                            <progress data-run-progress="" max="100" value=(r.progress * 100.0).round()></progress>
                                            <span data-run-status-text="" class="small">{r.message.clone()}</span>
                                        </div>
                                    }.into_any()
                                } else {
                                    view! { <span class=status_badge(r.status) title=r.message.clone()>{r.status.as_str()}</span> }.into_any()
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
                    {RunState::ALL.into_iter().map(RunState::as_str).map(|s| {
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
