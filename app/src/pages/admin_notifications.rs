//! The admin notifications page (`/admin/notifications?email=…`): look a user up by email address, see their
//! recent email and webhook deliveries (event, channel, status, attempts, last error, times), send them a test
//! notification on one channel or all, and clear the undeliverable mark of their address. The lookup is a
//! plain GET form and the changes are HTML form posts (handled in `server::routes::notifications`), so the
//! page works without JavaScript. Admins only: the read action refuses everyone else (403, as the admin REST
//! API does), and an anonymous visitor is sent to sign in.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::{
    api::notifications_admin::{AdminNotificationsView, AdminUserView, get_admin_notifications},
    components::forms::{CsrfField, Flash},
    pages::error::ErrorTemplate,
};

/// The page's path (the form handlers redirect back to it).
pub const PATH: &str = "/admin/notifications";

#[component]
pub fn AdminNotificationsPage() -> impl IntoView {
    let query = use_query_map();
    let email = move || query.read().get("email").unwrap_or_default();
    let data = Resource::new(email, get_admin_notifications);
    view! {
        <Title text="Notification deliveries" />
        <div class="page-head">
            <h1>"Notification deliveries"</h1>
        </div>
        <crate::pages::admin::AdminNav current=PATH />
        <Flash />
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            <ErrorBoundary fallback=|errors| view! { <ErrorTemplate errors /> }>
                {move || Suspend::new(async move {
                    data.await.map(|v| view! { <AdminSections v /> })
                })}
            </ErrorBoundary>
        </Transition>
    }
}

#[component]
fn AdminSections(v: AdminNotificationsView) -> impl IntoView {
    let AdminNotificationsView {
        email,
        user,
        form_error,
    } = v;
    let asked = !email.is_empty();
    view! {
        {form_error.map(|(field, message)| view! {
            <p class="flash error" role="alert" id="form-error" data-field=field>{message}</p>
        })}
        <section class="card" id="lookup">
            <form method="get" action=PATH class="inline-form">
                <label>"User's email address "
                    <input type="email" name="email" id="lookup-email" required maxlength="320" value=email.clone() />
                </label>
                <button class="button" type="submit">"Look up"</button>
            </form>
            <p class="small muted">"Shows the user's recent email and webhook deliveries. Sending a test or clearing a mark is recorded in the audit log."</p>
        </section>
        {match user {
            Some(u) => view! { <UserSection u /> }.into_any(),
            None if asked => view! {
                <p class="muted" id="no-such-user">"No account has the address " <strong>{email}</strong> "."</p>
            }.into_any(),
            None => ().into_any(),
        }}
    }
}

#[component]
fn UserSection(u: AdminUserView) -> impl IntoView {
    let AdminUserView {
        user_id,
        email,
        display_name,
        disabled,
        email_verified,
        undeliverable,
        deliveries,
        more,
    } = u;
    let email_field = email.clone();
    let email_field2 = email.clone();
    let user_field = user_id.clone();
    view! {
        <section class="card" id="user" data-user-id=user_id.clone()>
            <h2>{display_name} " " <span class="muted small">{email.clone()}</span></h2>
            <p class="small">
                {if disabled { view! { <span class="badge bad">"disabled"</span> }.into_any() } else { view! { <span class="badge ok">"active"</span> }.into_any() }}
                " "
                {if email_verified { "Address confirmed." } else { "Address not confirmed: only security messages are emailed." }}
            </p>
            {match undeliverable {
                Some(why) => view! {
                    <div id="undeliverable">
                        <p class="field-error">"The address is marked undeliverable (" {why} "): no notification mail goes to it."</p>
                        <form method="post" action="/admin/notifications/clear-undeliverable">
                            <CsrfField />
                            <input type="hidden" name="user_id" value=user_field.clone() />
                            <input type="hidden" name="email" value=email_field.clone() />
                            <button class="button" type="submit" id="clear-undeliverable">"Clear the mark and send a test"</button>
                        </form>
                    </div>
                }.into_any(),
                None => view! { <p class="small muted" id="deliverable">"The address is not marked undeliverable."</p> }.into_any(),
            }}
            <h3>"Send a test notification"</h3>
            <form method="post" action="/admin/notifications/test" class="inline-form" id="test-form">
                <CsrfField />
                <input type="hidden" name="user_id" value=user_field />
                <input type="hidden" name="email" value=email_field2 />
                <label>"Channel " <select name="channel" id="test-channel">
                    <option value="">"Every channel the user's settings allow"</option>
                    <option value="inapp">"In-app"</option>
                    <option value="email">"Email"</option>
                    <option value="webhook">"Webhooks"</option>
                </select></label>
                <button class="button" type="submit" id="send-test">"Send test"</button>
            </form>
            <p class="small muted">"The test goes through the user's preferences, quiet hours and destinations, like any notification."</p>
        </section>
        <section class="card" id="deliveries">
            <h2>"Recent deliveries"</h2>
            <DeliveryTable deliveries more />
        </section>
    }
}

#[component]
fn DeliveryTable(
    deliveries: Vec<crate::api::notifications_admin::DeliveryRow>,
    more: bool,
) -> impl IntoView {
    if deliveries.is_empty() {
        return view! { <p class="muted" id="no-deliveries">"No email or webhook deliveries yet."</p> }
            .into_any();
    }
    view! {
        <div class="table-wrap"><table class="data" id="delivery-log">
            <thead><tr>
                <th scope="col">"Created"</th>
                <th scope="col">"Event"</th>
                <th scope="col">"Channel"</th>
                <th scope="col">"Status"</th>
                <th scope="col">"Attempts"</th>
                <th scope="col">"Last error"</th>
                <th scope="col">"Sent"</th>
            </tr></thead>
            <tbody>
                {deliveries.into_iter().map(|d| {
                    let bad = matches!(d.status.as_str(), "failed" | "suppressed" | "cancelled");
                    let status = match &d.reason {
                        Some(r) => format!("{} ({r})", d.status),
                        None => d.status.clone(),
                    };
                    view! {
                        <tr data-delivery-id=d.id.clone() data-status=d.status.clone()>
                            <td class="small">{d.created_at.clone()}</td>
                            <td><code>{d.event_type.clone()}</code><div class="small muted">{d.category.clone()}</div></td>
                            <td class="small">{d.channel.clone()}</td>
                            <td><span class=if bad { "badge bad" } else { "badge ok" }>{status}</span></td>
                            <td>{d.attempts}</td>
                            <td class="small">{d.last_error.clone().unwrap_or_default()}</td>
                            <td class="small">{d.sent_at.clone().unwrap_or_default()}</td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table></div>
        {more.then(|| view! { <p class="small muted">"Older deliveries: " <code>"vortex notify deliveries --email …"</code> " or the REST API."</p> })}
    }
    .into_any()
}
