//! The paper runs list, filtered by status (or "live"), strategy, instrument and batch in the query string.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::{
    api::paper::{PaperListView, PaperRow, get_paper_runs, money, status_badge},
    components::forms::Flash,
    pages::error::ErrorTemplate,
};

type Args = (Option<String>, Option<String>, Option<i32>, Option<String>);

#[component]
pub fn PaperRunsPage() -> impl IntoView {
    let query = use_query_map();
    let args = move || {
        let q = query.read();
        let opt = |k: &str| q.get(k).filter(|v| !v.is_empty());
        (
            opt("status"),
            opt("strategy"),
            opt("instrument").and_then(|v| v.parse::<i32>().ok()),
            opt("batch"),
        )
    };
    let data = Resource::new(args, |(a, b, c, d)| get_paper_runs(a, b, c, d));
    view! {
        <Title text="Paper trading" />
        <div class="page-head">
            <h1>"Paper trading"</h1>
            <a class="button primary" href="/paper/new" id="new-paper-run">"Start a paper run"</a>
        </div>
        <p class="muted small">"Strategies trading on live candles with simulated money (guide: docs/paper-trading.md)."</p>
        <Flash />
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            <ErrorBoundary fallback=|errors| view! { <ErrorTemplate errors /> }>
                {move || Suspend::new(async move {
                    let a = args();
                    data.await.map(|v| view! { <PaperList v args=a /> })
                })}
            </ErrorBoundary>
        </Transition>
    }
}

#[component]
fn PaperList(v: PaperListView, args: Args) -> impl IntoView {
    let (status, strategy, instrument, batch) = args;
    view! {
        <form method="get" action="/paper" class="inline-form" id="paper-filter">
            <label>"Status "
                <select name="status">
                    <option value="">"any"</option>
                    {["live", "active", "paused", "stopping", "stopped", "failed"].into_iter().map(|s| {
                        let sel = status.as_deref() == Some(s);
                        view! { <option value=s selected=sel>{s}</option> }
                    }).collect_view()}
                </select>
            </label>
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
            {batch.map(|b| view! { <input type="hidden" name="batch" value=b /> })}
            <button class="button" type="submit">"Apply"</button>
        </form>
        <PaperTable runs=v.runs />
    }
}

/// The runs table.
#[component]
pub fn PaperTable(runs: Vec<PaperRow>) -> impl IntoView {
    if runs.is_empty() {
        return view! { <p class="muted" id="no-paper-runs">"No paper runs match."</p> }.into_any();
    }
    view! {
        <div class="table-wrap"><table class="data" id="paper-runs">
            <thead><tr>
                <th scope="col">"Run"</th>
                <th scope="col">"Market"</th>
                <th scope="col">"Status"</th>
                <th scope="col" class="num">"Equity"</th>
                <th scope="col" class="num">"Realised P&L"</th>
                <th scope="col" class="num">"Trades"</th>
                <th scope="col">"Last candle"</th>
                <th scope="col">"Started"</th>
            </tr></thead>
            <tbody>
                {runs.into_iter().map(|r| {
                    let href = format!("/paper/{}", r.id);
                    let gate = (r.gate != "open" && r.live()).then(|| r.gate.clone());
                    view! {
                        <tr data-paper-run=r.id.clone()>
                            <td><a href=href>{r.label()}</a></td>
                            <td>{format!("{} · {}", r.symbol, r.timeframe)}</td>
                            <td><span class=status_badge(&r.status)>{r.status.clone()}</span>
                                {gate.map(|g| view! { " " <span class="badge warn" title="gate">{format!("gate: {g}")}</span> })}</td>
                            <td class="num">{money(r.equity)}</td>
                            <td class="num">{money(r.realised_pnl)}</td>
                            <td class="num">{r.trades}</td>
                            <td class="small">{r.last_candle.clone().unwrap_or_else(|| "none yet".into())}</td>
                            <td class="small">{r.started.clone()}</td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table></div>
    }
    .into_any()
}
