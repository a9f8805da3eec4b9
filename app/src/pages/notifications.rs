//! The in-app centre (`/notifications`): the signed-in user's notifications, newest first, all or unread
//! only, a page at a time (`?before=<seq>`). Each item is a form post to `/notifications/{id}/open` (marks it
//! read and goes where it leads), and "Mark all read" posts `/notifications/read-all`: everything works
//! without JavaScript.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::{
    api::notifications::{ListView, category_label, get_notifications},
    components::{
        bell::LiveNotifications,
        forms::{CsrfField, Flash},
    },
    pages::error::ErrorTemplate,
};

#[component]
pub fn NotificationsPage() -> impl IntoView {
    let query = use_query_map();
    let args = move || {
        let q = query.read();
        (
            q.get("filter").as_deref() == Some("unread"),
            q.get("before").and_then(|v| v.parse::<i64>().ok()),
        )
    };
    let data = Resource::new(args, |(unread, before)| get_notifications(unread, before));
    view! {
        <Title text="Notifications" />
        <div class="page-head">
            <h1>"Notifications"</h1>
            <a class="button" href="/notifications/settings" id="notification-settings-link">"Settings"</a>
        </div>
        <Flash />
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            <ErrorBoundary fallback=|errors| view! { <ErrorTemplate errors /> }>
                {move || Suspend::new(async move {
                    let (unread, before) = args();
                    data.await.map(|v| view! { <NotificationList v unread_only=unread first_page=before.is_none() /> })
                })}
            </ErrorBoundary>
        </Transition>
    }
}

#[component]
fn NotificationList(v: ListView, unread_only: bool, first_page: bool) -> impl IntoView {
    // What arrived live since this list was read, newest first (empty when rendered on the server).
    let known: Vec<String> = v.items.iter().map(|n| n.id.clone()).collect();
    let live = use_context::<LiveNotifications>().filter(|_| first_page);
    let arrived = move || {
        live.map(|LiveNotifications(l)| {
            l.get()
                .into_iter()
                .filter(|i| !known.contains(&i.id))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default()
    };
    let filter = if unread_only { "unread" } else { "" };
    let older = v.next_before.map(|b| {
        if unread_only {
            format!("/notifications?filter=unread&before={b}")
        } else {
            format!("/notifications?before={b}")
        }
    });
    let empty = v.items.is_empty();
    view! {
        <div class="notif-toolbar">
            <nav class="notif-filter" aria-label="Filter">
                <a href="/notifications" aria-current=(!unread_only).then_some("page")>"All"</a>
                <a href="/notifications?filter=unread" aria-current=unread_only.then_some("page")>
                    "Unread " <span class="badge">{v.unread}</span>
                </a>
            </nav>
            {(v.unread > 0).then(|| view! {
                <form method="post" action="/notifications/read-all" id="read-all-form">
                    <CsrfField />
                    <input type="hidden" name="up_to" value=v.newest.map(|s| s.to_string()).unwrap_or_default() />
                    <input type="hidden" name="filter" value=filter />
                    <button class="button small" type="submit" id="read-all">"Mark all read"</button>
                </form>
            })}
        </div>
        <ul class="notif-list" id="live-notifications" aria-live="polite">
            {move || arrived().into_iter().map(|n| {
                let action = format!("/notifications/{}/open", n.id);
                let label = if n.has_url { "Open" } else { "Mark read" };
                view! {
                    <li class="notif-item unread" data-notification-id=n.id.clone()>
                        <div class="notif-main">
                            <p class="notif-title"><span class="visually-hidden">"Unread: "</span>{n.title.clone()}</p>
                            <p class="small muted">"just now"</p>
                        </div>
                        <form method="post" action=action class="notif-open">
                            <CsrfField />
                            <button class="button small" type="submit" aria-label=format!("{label}: {}", n.title)>{label}</button>
                        </form>
                    </li>
                }
            }).collect_view()}
        </ul>
        {if empty {
            view! {
                <p class="muted" id="no-notifications">
                    {if unread_only { "No unread notifications." } else { "No notifications yet." }}
                </p>
            }.into_any()
        } else {
            view! {
                <ul class="notif-list" id="notifications">
                    {v.items.into_iter().map(|n| {
                        let class = if n.read { "notif-item" } else { "notif-item unread" };
                        let action = format!("/notifications/{}/open", n.id);
                        let label = if n.has_url { "Open" } else { "Mark read" };
                        view! {
                            <li class=class data-notification-id=n.id.clone()>
                                <div class="notif-main">
                                    <p class="notif-title">
                                        {(!n.read).then(|| view! { <span class="visually-hidden">"Unread: "</span> })}
                                        {n.critical.then(|| view! { <span class="badge bad">"important"</span> " " })}
                                        {n.title.clone()}
                                    </p>
                                    {(!n.body.is_empty()).then(|| view! { <p class="small">{n.body.clone()}</p> })}
                                    <p class="small muted">{category_label(&n.category)} " · " {n.at.clone()}</p>
                                </div>
                                <form method="post" action=action class="notif-open">
                                    <CsrfField />
                                    <button class="button small" type="submit" aria-label=format!("{label}: {}", n.title)>{label}</button>
                                </form>
                            </li>
                        }
                    }).collect_view()}
                </ul>
            }.into_any()
        }}
        {older.map(|href| view! { <p><a class="button" href=href id="older">"Older notifications"</a></p> })}
    }
}
