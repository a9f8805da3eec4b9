//! The plan page (`/account/plan`): the user's plan and price, each limit with its usage, the plans to
//! compare, and — when the instance takes payments (docs/billing.md) — the subscription's state, "Upgrade"
//! per paid plan (a form post that sends the trader to the provider's checkout), "Manage billing" (the
//! provider's portal) and the invoices. Coming back from the checkout (`?billing=success`) reads the
//! subscription from the provider first. Without a provider the page says billing is off.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::{
    api::plans::{BillingSection, MyPlanView, get_my_plan},
    components::forms::CsrfField,
    pages::error::ErrorTemplate,
};

#[component]
pub fn PlanPage() -> impl IntoView {
    let query = use_query_map();
    let sync = move || query.read().get("billing").as_deref() == Some("success");
    let data = Resource::new(sync, get_my_plan);
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
        overages,
        ends,
        plans,
        billing,
    } = v;
    let on = billing.enabled;
    let live = billing.live;
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
            {if on {
                view! { <p class="small muted">"Buy or change a plan below. Lowering a plan never deletes anything: over a new limit you get a grace period, then the newest runs or strategies beyond it become read-only until you are within it again."</p> }.into_any()
            } else {
                view! { <p class="small muted">"To change your plan or a limit, ask an administrator. Lowering a plan never deletes anything: over a new limit you get a grace period, then the newest runs or strategies beyond it become read-only until you are within it again."</p> }.into_any()
            }}
        </section>
        {(!overages.is_empty()).then(|| view! {
            <section class="card notice" id="plan-overages">
                <h2>"Over your plan's limits"</h2>
                {overages.into_iter().map(|o| view! {
                    <div class="overage" data-limit=o.key.clone() data-state={if o.enforced { "enforced" } else { "grace" }}>
                        <p><strong>{format!("{}: {} of {}", o.label, o.usage, o.allowed)}</strong> " · "
                            {if o.enforced { format!("read-only since the grace period ended on {}", o.grace_ends) } else { format!("grace period until {}", o.grace_ends) }}
                        </p>
                        <p class="small">{o.what}</p>
                        {(!o.restricted.is_empty()).then(|| view! {
                            <ul class="restricted">
                                {o.restricted.into_iter().map(|(href, name)| view! { <li><a href=href>{name}</a></li> }).collect_view()}
                            </ul>
                        })}
                    </div>
                }).collect_view()}
            </section>
        })}
        <BillingCard b=billing />
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
                        {on.then(|| view! { <th></th> })}
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
                                {on.then(|| view! {
                                    <td>{(p.buyable && !mine && !live).then(|| view! {
                                        <form method="post" action="/account/plan/checkout"><CsrfField />
                                            <input type="hidden" name="plan" value=p.slug.clone() />
                                            <button type="submit" class="upgrade">"Upgrade"</button>
                                        </form>
                                    })}</td>
                                })}
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </section>
    }
}

#[component]
fn BillingCard(b: BillingSection) -> impl IntoView {
    if !b.enabled {
        return view! {
            <section class="card" id="billing-off">
                <h2>"Billing"</h2>
                <p class="muted">"Billing is off on this instance: plans are given by an administrator."</p>
            </section>
        }
        .into_any();
    }
    let BillingSection {
        status,
        status_text,
        period_end,
        cancel_at_period_end,
        has_customer,
        invoices,
        invoices_unavailable,
        ..
    } = b;
    let data_status = status.clone().unwrap_or_default();
    view! {
        <section class="card" id="billing">
            <h2>"Billing"</h2>
            <p id="billing-status" data-status=data_status>
                {status.map(|s| view! { <strong>{s}</strong> " · " })}
                {status_text}
            </p>
            {period_end.map(|e| view! {
                <p class="small">{if cancel_at_period_end { "Ends on " } else { "Renews on " }} {e}</p>
            })}
            {has_customer.then(|| view! {
                <form method="post" action="/account/plan/portal"><CsrfField />
                    <button type="submit" id="manage-billing">"Manage billing"</button>
                    <span class="small muted">" Payment method, invoices, change or cancel (at the provider)."</span>
                </form>
            })}
            <h3>"Invoices"</h3>
            {if invoices_unavailable {
                view! { <p class="muted">"The payment provider did not answer; the invoices are not shown just now."</p> }.into_any()
            } else if invoices.is_empty() {
                view! { <p class="muted">"No invoices yet."</p> }.into_any()
            } else {
                view! {
                    <table id="billing-invoices">
                        <thead><tr><th>"Invoice"</th><th>"Date"</th><th>"Amount"</th><th>"Status"</th></tr></thead>
                        <tbody>
                            {invoices.into_iter().map(|i| view! {
                                <tr>
                                    <td>{match i.url {
                                        Some(u) => view! { <a href=u rel="noopener noreferrer" target="_blank">{i.number}</a> }.into_any(),
                                        None => view! { <span>{i.number}</span> }.into_any(),
                                    }}</td>
                                    <td>{i.date}</td><td>{i.amount}</td><td>{i.status}</td>
                                </tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                }.into_any()
            }}
        </section>
    }
    .into_any()
}
