//! The plan page (`/account/plan`): the user's plan and price, each limit with its usage, and the plans to
//! compare. Changing plans is done by an administrator for now (payments come later); nothing here pretends
//! otherwise.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::{
    api::plans::{MyPlanView, get_my_plan},
    pages::error::ErrorTemplate,
};

#[component]
pub fn PlanPage() -> impl IntoView {
    let data = Resource::new(|| (), |_| get_my_plan());
    view! {
        <Title text="Your plan" />
        <h1>"Your plan"</h1>
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            <ErrorBoundary fallback=|errors| view! { <ErrorTemplate errors /> }>
                {move || Suspend::new(async move { data.await.map(|v| view! { <PlanSections v /> }) })}
            </ErrorBoundary>
        </Transition>
    }
}

#[component]
fn PlanSections(v: MyPlanView) -> impl IntoView {
    let MyPlanView {
        plan,
        limits,
        ends,
        plans,
    } = v;
    let current = plan.slug.clone();
    let labels: Vec<String> = plans
        .first()
        .map(|p| p.limits.iter().map(|(l, _)| l.clone()).collect())
        .unwrap_or_default();
    view! {
        <section class="card" id="plan">
            <h2 id="plan-name">{plan.name.clone()}</h2>
            <p id="plan-price"><strong>{plan.price.clone()}</strong>
                {(plan.trial_days > 0).then(|| format!(" · {} trial days", plan.trial_days))}</p>
            {(!plan.description.is_empty()).then(|| view! { <p class="muted">{plan.description.clone()}</p> })}
            {ends.map(|e| view! { <p>"This plan ends on " {e} "; you are then on the default plan."</p> })}
            <p class="small muted">"To change your plan or a limit, ask an administrator. Lowering a plan never deletes anything: work over a new limit is kept, only new work is refused."</p>
        </section>
        <section class="card">
            <h2>"Limits and usage"</h2>
            <p class="small muted">"Used shows what counts against a limit now; limits per backtest or export have no running count (—)."</p>
            <table id="plan-limits">
                <thead><tr><th>"Limit"</th><th>"Used"</th><th>"Allowed"</th><th>"From"</th></tr></thead>
                <tbody>
                    {limits.into_iter().map(|l| view! {
                        <tr data-limit=l.key.clone() class:warn=l.full>
                            <td>{l.label}</td>
                            <td>{l.usage.map_or_else(|| "—".to_owned(), |u| u.to_string())}</td>
                            <td>{l.value}</td>
                            <td class="small muted">{l.source}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
        </section>
        <section class="card">
            <h2>"Plans"</h2>
            <table id="plan-compare">
                <thead>
                    <tr><th>"Plan"</th><th>"Price"</th>
                        {labels.into_iter().map(|l| view! { <th>{l}</th> }).collect_view()}
                    </tr>
                </thead>
                <tbody>
                    {plans.into_iter().map(|p| {
                        let mine = p.slug == current;
                        view! {
                            <tr data-plan=p.slug.clone() class:current=mine>
                                <td><strong>{p.name}</strong>{mine.then_some(" (yours)")}{p.is_default.then_some(" · default")}</td>
                                <td>{p.price}</td>
                                {p.limits.into_iter().map(|(_, v)| view! { <td>{v}</td> }).collect_view()}
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </section>
    }
}
