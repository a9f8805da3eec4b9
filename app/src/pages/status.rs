//! Service status: version and dependency health (and, for admins, job counts), refreshed on demand.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::{api::status::get_status, pages::error::ErrorTemplate};

#[component]
pub fn StatusPage() -> impl IntoView {
    let refresh = RwSignal::new(0u32);
    let status = Resource::new(move || refresh.get(), |_| get_status());
    view! {
        <Title text="Status" />
        <div class="page-head">
            <h1>"Service status"</h1>
            <button
                id="refresh-status"
                class="button"
                type="button"
                on:click=move |_| refresh.update(|n| *n += 1)
            >
                "Refresh"
            </button>
        </div>
        <Transition fallback=|| view! { <p class="muted">"Checking…"</p> }>
            <ErrorBoundary fallback=|errors| view! { <ErrorTemplate errors /> }>
                {move || Suspend::new(async move {
                    status.await.map(|s| view! {
                        <p class="muted">
                            "Version " <strong>{s.version}</strong> " · " {s.environment}
                            " · checked " <time id="checked-at">{s.checked_at}</time>
                        </p>
                        <div class="cards">
                            {s.dependencies.into_iter().map(|d| {
                                let class = if d.ok { "card dep ok" } else { "card dep down" };
                                let key = d.name.clone();
                                view! {
                                    <article class=class data-dependency=key>
                                        <h2>{d.name}</h2>
                                        <p class="dep-state">{if d.ok { "Up" } else { "Down" }}</p>
                                        <p class="muted">{d.detail} " · " {d.latency_ms} " ms"</p>
                                    </article>
                                }
                            }).collect_view()}
                            {s.jobs.map(|j| view! {
                                <article class="card" id="job-counts">
                                    <h2>"Jobs"</h2>
                                    <p>{j.queued} " queued · " {j.running} " running · "
                                       {j.failed} " failed"</p>
                                </article>
                            })}
                        </div>
                    })
                })}
            </ErrorBoundary>
        </Transition>
    }
}
