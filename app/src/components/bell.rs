//! The header's notification bell and the undeliverable-address banner (docs/design/notifications.md §7).
//!
//! The server renders the unread count into the badge (hidden at 0), so the bell is right without
//! JavaScript. Once hydrated, the bell opens an `EventSource` on `/api/events/notifications` and keeps the
//! badge current: `unread` (`{"unread": n}`) and `notification` (`{"id", "title", "url", "unread"}`) set
//! the count, `resync` re-reads it; each new notification is also added to [`LiveNotifications`], which the
//! centre's page shows above its list. The stream is closed when the bell is dropped (sign-out, full reload);
//! the header outlives client-side navigation, so a tab holds one stream.

use leptos::prelude::*;

use crate::{api::notifications::Summary, components::forms::CsrfField};

/// A notification that arrived on the live stream after the page was rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveItem {
    pub id: String,
    pub title: String,
    pub has_url: bool,
}

/// The notifications that arrived live in this tab, newest first (provided by the layout, filled by the
/// bell, shown by the centre's page).
#[derive(Debug, Clone, Copy)]
pub struct LiveNotifications(pub RwSignal<Vec<LiveItem>>);

/// The most live items kept in a tab.
pub const LIVE_MAX: usize = 50;

/// The unread count as the bell's accessible name says it.
fn label(n: i64) -> String {
    format!("Notifications, {n} unread")
}

#[component]
pub fn NotificationBell(unread: i64) -> impl IntoView {
    let count = RwSignal::new(unread.max(0));
    #[cfg(feature = "hydrate")]
    {
        let items = use_context::<LiveNotifications>();
        Effect::new(move |_| live::connect(count, items));
    }
    view! {
        <a id="notif-bell" class="bell" href="/notifications" aria-label=move || label(count.get())>
            <span aria-hidden="true" class="bell-icon">"🔔"</span>
            <span class="badge" aria-hidden="true" hidden=move || count.get() == 0>
                {move || count.get().to_string()}
            </span>
        </a>
    }
}

/// The banner under the header while the user's address is marked undeliverable.
#[component]
pub fn MailBanner(summary: Option<Summary>) -> impl IntoView {
    summary.filter(|s| s.undeliverable).map(|_| {
        view! {
            <div class="mail-banner" role="alert" id="mail-banner">
                <div class="container">
                    "We cannot deliver email to your address: your mail server refused it. "
                    <a href="/notifications/settings#email">"Check your notification settings"</a>
                    <form method="post" action="/notifications/email/retry" class="inline">
                        <CsrfField />
                        <button class="button small" type="submit">"Retry"</button>
                    </form>
                </div>
            </div>
        }
    })
}

#[cfg(feature = "hydrate")]
mod live {
    use leptos::prelude::*;
    use send_wrapper::SendWrapper;
    use wasm_bindgen::{JsCast, JsValue, closure::Closure};
    use web_sys::{Event, EventSource, MessageEvent};

    use super::{LIVE_MAX, LiveItem, LiveNotifications};
    use crate::api::notifications::notification_summary;

    /// An event's JSON data.
    fn data_of(e: &MessageEvent) -> Option<JsValue> {
        js_sys::JSON::parse(&e.data().as_string()?).ok()
    }

    fn field(v: &JsValue, name: &str) -> Option<JsValue> {
        js_sys::Reflect::get(v, &JsValue::from_str(name)).ok()
    }

    /// The `unread` field of an event's data.
    fn unread_of(v: &JsValue) -> Option<i64> {
        let n = field(v, "unread")?.as_f64()?;
        (n.is_finite() && n >= 0.0).then_some(n as i64)
    }

    /// The notification of a `notification` event's data.
    fn item_of(v: &JsValue) -> Option<LiveItem> {
        Some(LiveItem {
            id: field(v, "id")?.as_string()?,
            title: field(v, "title")?.as_string()?,
            has_url: field(v, "url").and_then(|u| u.as_string()).is_some(),
        })
    }

    /// Opens the stream and keeps `count` current until the owner is cleaned up.
    pub fn connect(count: RwSignal<i64>, items: Option<LiveNotifications>) {
        let Ok(source) = EventSource::new("/api/events/notifications") else {
            return;
        };
        let set = Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
            if let Some(n) = data_of(&e).as_ref().and_then(unread_of) {
                count.set(n);
            }
        });
        let added = Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
            let Some(v) = data_of(&e) else { return };
            if let Some(n) = unread_of(&v) {
                count.set(n);
            }
            if let (Some(LiveNotifications(list)), Some(item)) = (items, item_of(&v)) {
                list.update(|l| {
                    if !l.iter().any(|i| i.id == item.id) {
                        l.insert(0, item);
                        l.truncate(LIVE_MAX);
                    }
                });
            }
        });
        let resync = Closure::<dyn FnMut(Event)>::new(move |_: Event| {
            leptos::task::spawn_local(async move {
                if let Ok(Some(s)) = notification_summary().await {
                    count.set(s.unread.max(0));
                }
            });
        });
        let _ = source.add_event_listener_with_callback("unread", set.as_ref().unchecked_ref());
        let _ =
            source.add_event_listener_with_callback("notification", added.as_ref().unchecked_ref());
        let _ = source.add_event_listener_with_callback("resync", resync.as_ref().unchecked_ref());
        // The listeners live as long as the stream; both go when the bell does.
        let held = SendWrapper::new((source, set, added, resync));
        on_cleanup(move || held.0.close());
    }
}
