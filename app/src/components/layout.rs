//! The frame around every page: header with the product name and navigation, main area, footer.

use leptos::prelude::*;
use leptos_router::components::A;

use crate::{
    api::{account::get_viewer, admin::get_banner, notifications::notification_summary},
    components::{
        bell::{LiveNotifications, MailBanner, NotificationBell},
        forms::CsrfField,
        theme::ThemeToggle,
    },
};

#[component]
pub fn Layout(children: Children) -> impl IntoView {
    // The bell's count and the undeliverable flag, read once per page load (the bell then follows live).
    let summary = Resource::new(|| (), |_| notification_summary());
    // The maintenance banner an admin set (docs/admin.md), read once per page load.
    let banner = Resource::new(|| (), |_| get_banner());
    // Notifications that arrive while a page is open (the bell fills it, the centre's page shows it).
    provide_context(LiveNotifications(RwSignal::new(Vec::new())));
    view! {
        <a class="skip-link" href="#main">"Skip to content"</a>
        <header class="site-header">
            <div class="container header-row">
                <A href="/" attr:class="brand">
                    <span class="brand-mark" aria-hidden="true">"◎"</span>
                    <span class="brand-name">"Vortex"</span>
                </A>
                <nav class="site-nav" aria-label="Main">
                    <A href="/" exact=true>"Home"</A>
                    <A href="/strategies">"Strategies"</A>
                    <A href="/backtests">"Backtests"</A>
                    <A href="/paper">"Paper trading"</A>
                    <A href="/market">"Market data"</A>
                    <A href="/status">"Status"</A>
                </nav>
                <UserMenu summary />
                <ThemeToggle />
            </div>
        </header>
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                view! { <MailBanner summary=summary.await.ok().flatten() /> }
            })}
        </Transition>
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                banner.await.ok().flatten().map(|text| view! {
                    <div class="maintenance-banner" role="status" id="maintenance-banner">
                        <div class="container">{text}</div>
                    </div>
                })
            })}
        </Transition>
        <main id="main" class="container site-main">{children()}</main>
        <footer class="site-footer">
            <div class="container footer-row">
                <span>"Vortex " <span class="version">{crate::VERSION}</span></span>
                <span class="muted">"Self-hosted strategy research and paper trading"</span>
            </div>
        </footer>
    }
}

/// Sign-in links, or the signed-in user's name with account and sign-out.
#[component]
fn UserMenu(
    summary: Resource<Result<Option<crate::api::notifications::Summary>, crate::error::AppError>>,
) -> impl IntoView {
    let viewer = Resource::new(|| (), |_| get_viewer());
    view! {
        <div class="user-menu">
            <Transition fallback=|| ()>
                {move || Suspend::new(async move {
                    let unread = summary.await.ok().flatten().map_or(0, |s| s.unread);
                    match viewer.await.ok().flatten() {
                        Some(v) => {
                            let name = if v.display_name.is_empty() { v.email.clone() } else { v.display_name.clone() };
                            view! {
                                <NotificationBell unread />
                                {(v.role == "admin").then(|| view! { <A href="/admin" attr:id="admin-link">"Admin"</A> })}
                                <A href="/account" attr:class="user-name" attr:id="account-link">{name}</A>
                                <form method="post" action="/auth/signout" class="signout-form">
                                    <CsrfField />
                                    <button id="signout" class="button small" type="submit">"Sign out"</button>
                                </form>
                            }.into_any()
                        }
                        None => view! {
                            <A href="/signin" attr:id="signin-link">"Sign in"</A>
                            <A href="/signup" attr:class="button small primary">"Sign up"</A>
                        }.into_any(),
                    }
                })}
            </Transition>
        </div>
    }
}
