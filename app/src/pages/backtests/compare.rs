//! The comparison of several runs: their metrics side by side and their equity curves on one chart.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::{
    api::backtest::{CompareView, format_metric, get_compare, metric_label},
    pages::error::ErrorTemplate,
};

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
                                None => r.status.as_str().to_owned(),
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
