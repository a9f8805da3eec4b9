//! The Vortex web application (Leptos): the HTML shell, routes, pages, components and the `#[server]` functions
//! they call. Compiled twice: with `ssr` into the `vortex` binary (server-side rendering) and with `hydrate`
//! into the wasm bundle that makes the rendered pages interactive.

#![recursion_limit = "256"]

pub mod api;
#[cfg(feature = "hydrate")]
pub mod chart;
pub mod components;
pub mod error;
pub mod flash;
pub mod pages;

use leptos::prelude::*;
use leptos_meta::{MetaTags, Stylesheet, Title, provide_meta_context};
use leptos_router::{
    ParamSegment, SsrMode, StaticSegment,
    components::{Route, Router, Routes},
};

use crate::{
    components::layout::Layout,
    pages::{
        account::AccountPage,
        admin::{
            AdminAuditPage, AdminCatalogueEntryPage, AdminCataloguePage, AdminJobsPage,
            AdminKillPage, AdminMarketPage, AdminOverviewPage, AdminPlansPage, AdminSignupsPage,
            AdminSubscriptionsPage, AdminUserPage, AdminUsersPage,
        },
        admin_notifications::AdminNotificationsPage,
        auth::{
            ConfirmEmailChangePage, ForgotPasswordPage, ResetPasswordPage, SignInCodePage,
            SignInPage, SignUpPage, VerifyEmailPage,
        },
        backtests::{ComparePage, NewBacktestPage, RunPage, RunsPage},
        home::HomePage,
        market::MarketPage,
        not_found::NotFound,
        notification_settings::NotificationSettingsPage,
        notifications::NotificationsPage,
        paper::{NewPaperRunPage, PaperRunPage, PaperRunsPage, ParityPage},
        plan::PlanPage,
        status::StatusPage,
        strategies::{StrategiesPage, StrategyPage},
        unsubscribe::UnsubscribePage,
    },
};

/// The product version shown in the footer.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Sets the theme before first paint (no flash of the wrong theme). Runs under the page's CSP nonce.
const THEME_BOOT: &str = "try{var t=localStorage.getItem('vortex-theme');if(t==='dark'||t==='light'){document.documentElement.dataset.theme=t}}catch(e){}";

/// The HTML document around every page.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    #[cfg(feature = "ssr")]
    use_request_nonce();
    let nonce = leptos::nonce::use_nonce();
    let csrf = crate::components::forms::csrf_token();
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <meta name="color-scheme" content="dark light" />
                <meta name="csrf-token" content=csrf />
                <link rel="icon" href="/favicon.svg" type="image/svg+xml" />
                <script nonce=nonce>{THEME_BOOT}</script>
                <HydrationScripts options />
                <MetaTags />
            </head>
            <body>
                <App />
            </body>
        </html>
    }
}

/// Uses the CSP nonce that the security-headers middleware put into the request (and into the
/// `Content-Security-Policy` header), instead of the random one leptos_axum generates per render.
#[cfg(feature = "ssr")]
fn use_request_nonce() {
    if let Some(parts) = use_context::<http::request::Parts>()
        && let Some(n) = parts.extensions.get::<backend::web::CspNonce>()
    {
        provide_context(leptos::nonce::Nonce::from_value(n.0.clone()));
    }
}

/// The document title for a page's `<Title text=…>`. On the server the text is escaped: leptos_meta writes
/// the formatted title into `<title>` verbatim, and titles carry user text (strategy names, run labels), so
/// a name like `</title><meta http-equiv=refresh …>` would otherwise become markup in the head. In the
/// browser the title is set with `document.title`, which takes text, so it is left as is there.
pub fn page_title(t: String) -> String {
    let full = if t.is_empty() {
        "Vortex".to_owned()
    } else {
        format!("{t} · Vortex")
    };
    #[cfg(feature = "ssr")]
    {
        escape_text(&full)
    }
    #[cfg(not(feature = "ssr"))]
    {
        full
    }
}

/// Escapes text for HTML element content.
pub fn escape_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The application: routes inside the common layout.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    view! {
        <Stylesheet id="vortex-css" href="/pkg/vortex.css" />
        <Title formatter=page_title />
        <Router>
            <Layout>
                <Routes fallback=NotFound>
                    <Route path=StaticSegment("") view=HomePage ssr=SsrMode::InOrder />
                    <Route path=StaticSegment("status") view=StatusPage ssr=SsrMode::InOrder />
                    <Route path=StaticSegment("signin") view=SignInPage ssr=SsrMode::InOrder />
                    <Route path=(StaticSegment("signin"), StaticSegment("two-factor")) view=SignInCodePage ssr=SsrMode::InOrder />
                    <Route path=StaticSegment("signup") view=SignUpPage ssr=SsrMode::InOrder />
                    <Route path=StaticSegment("verify-email") view=VerifyEmailPage ssr=SsrMode::InOrder />
                    <Route path=StaticSegment("confirm-email-change") view=ConfirmEmailChangePage ssr=SsrMode::InOrder />
                    <Route path=StaticSegment("forgot-password") view=ForgotPasswordPage ssr=SsrMode::InOrder />
                    <Route path=StaticSegment("reset-password") view=ResetPasswordPage ssr=SsrMode::InOrder />
                    <Route path=StaticSegment("account") view=AccountPage ssr=SsrMode::Async />
                    <Route path=(StaticSegment("account"), StaticSegment("plan")) view=PlanPage ssr=SsrMode::Async />
                    <Route path=StaticSegment("market") view=MarketPage ssr=SsrMode::InOrder />
                    <Route path=StaticSegment("strategies") view=StrategiesPage ssr=SsrMode::Async />
                    <Route path=(StaticSegment("strategies"), ParamSegment("id")) view=StrategyPage ssr=SsrMode::Async />
                    <Route path=StaticSegment("backtests") view=RunsPage ssr=SsrMode::Async />
                    <Route path=(StaticSegment("backtests"), StaticSegment("new")) view=NewBacktestPage ssr=SsrMode::Async />
                    <Route path=(StaticSegment("backtests"), StaticSegment("compare")) view=ComparePage ssr=SsrMode::Async />
                    <Route path=(StaticSegment("backtests"), ParamSegment("id")) view=RunPage ssr=SsrMode::Async />
                    <Route path=StaticSegment("paper") view=PaperRunsPage ssr=SsrMode::Async />
                    <Route path=(StaticSegment("paper"), StaticSegment("new")) view=NewPaperRunPage ssr=SsrMode::Async />
                    <Route path=(StaticSegment("paper"), ParamSegment("id")) view=PaperRunPage ssr=SsrMode::Async />
                    <Route path=(StaticSegment("paper"), ParamSegment("id"), StaticSegment("parity")) view=ParityPage ssr=SsrMode::Async />
                    <Route path=StaticSegment("notifications") view=NotificationsPage ssr=SsrMode::Async />
                    <Route path=(StaticSegment("notifications"), StaticSegment("settings")) view=NotificationSettingsPage ssr=SsrMode::Async />
                    <Route path=StaticSegment("unsubscribe") view=UnsubscribePage ssr=SsrMode::Async />
                    <Route path=(StaticSegment("admin"), StaticSegment("notifications")) view=AdminNotificationsPage ssr=SsrMode::Async />
                    <Route path=StaticSegment("admin") view=AdminOverviewPage ssr=SsrMode::Async />
                    <Route path=(StaticSegment("admin"), StaticSegment("users")) view=AdminUsersPage ssr=SsrMode::Async />
                    <Route path=(StaticSegment("admin"), StaticSegment("signups")) view=AdminSignupsPage ssr=SsrMode::Async />
                    <Route path=(StaticSegment("admin"), StaticSegment("users"), ParamSegment("id")) view=AdminUserPage ssr=SsrMode::Async />
                    <Route path=(StaticSegment("admin"), StaticSegment("plans")) view=AdminPlansPage ssr=SsrMode::Async />
                    <Route path=(StaticSegment("admin"), StaticSegment("catalogue")) view=AdminCataloguePage ssr=SsrMode::Async />
                    <Route path=(StaticSegment("admin"), StaticSegment("catalogue"), ParamSegment("id")) view=AdminCatalogueEntryPage ssr=SsrMode::Async />
                    <Route path=(StaticSegment("admin"), StaticSegment("jobs")) view=AdminJobsPage ssr=SsrMode::Async />
                    <Route path=(StaticSegment("admin"), StaticSegment("audit")) view=AdminAuditPage ssr=SsrMode::Async />
                    <Route path=(StaticSegment("admin"), StaticSegment("market")) view=AdminMarketPage ssr=SsrMode::Async />
                    <Route path=(StaticSegment("admin"), StaticSegment("subscriptions")) view=AdminSubscriptionsPage ssr=SsrMode::Async />
                    <Route path=(StaticSegment("admin"), StaticSegment("kill")) view=AdminKillPage ssr=SsrMode::Async />
                </Routes>
            </Layout>
        </Router>
    }
}
