//! The page a subscription mail's footer link opens (`/unsubscribe?t=…`): which email it stops and for which
//! (masked) address, and a button that posts `/unsubscribe`. Opening the page changes nothing: link scanners
//! follow links in mail.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::{
    api::notifications::unsubscribe_preview,
    components::forms::{CsrfField, Flash},
    pages::error::ErrorTemplate,
};

#[component]
pub fn UnsubscribePage() -> impl IntoView {
    let query = use_query_map();
    let token = move || query.read().get("t").unwrap_or_default();
    let done = move || query.read().get("ok").as_deref() == Some("unsubscribed");
    let data = Resource::new(token, unsubscribe_preview);
    view! {
        <Title text="Unsubscribe" />
        <h1>"Unsubscribe"</h1>
        <Flash />
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            <ErrorBoundary fallback=|errors| view! { <ErrorTemplate errors /> }>
                {move || Suspend::new(async move {
                    let t = token();
                    let done = done();
                    data.await.map(|p| match p {
                        Some(p) => view! {
                            <section class="card" id="unsubscribe">
                                <p>
                                    "Email category: " <strong id="unsubscribe-category">{p.category.clone()}</strong>
                                    <br />
                                    "Address: " <strong id="unsubscribe-address">{p.masked_email.clone()}</strong>
                                </p>
                                {if done {
                                    view! { <p>"This address gets no more " {p.category.clone()} " email from Vortex."</p> }.into_any()
                                } else {
                                    view! {
                                        <p>"Stop " {p.category.clone()} " email to this address? In-app notifications and other email are not affected."</p>
                                        <form method="post" action="/unsubscribe">
                                            <CsrfField />
                                            <input type="hidden" name="t" value=t />
                                            <button class="button primary" type="submit" id="unsubscribe-confirm">"Unsubscribe"</button>
                                        </form>
                                    }.into_any()
                                }}
                                <p class="small muted"><a href="/notifications/settings">"Manage all notification settings"</a> " (sign-in needed)"</p>
                            </section>
                        }.into_any(),
                        None => view! {
                            <section class="card notice" id="unsubscribe-invalid">
                                <p>"This unsubscribe link is not valid. "
                                <a href="/notifications/settings">"Sign in to manage your notifications"</a> "."</p>
                            </section>
                        }.into_any(),
                    })
                })}
            </ErrorBoundary>
        </Transition>
    }
}
