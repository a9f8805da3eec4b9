//! The frame around every page: header with the product name and navigation, main area, footer.

use leptos::prelude::*;
use leptos_router::components::A;

use crate::components::theme::ThemeToggle;

#[component]
pub fn Layout(children: Children) -> impl IntoView {
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
                    <A href="/market">"Market data"</A>
                    <A href="/status">"Status"</A>
                </nav>
                <ThemeToggle />
            </div>
        </header>
        <main id="main" class="container site-main">{children()}</main>
        <footer class="site-footer">
            <div class="container footer-row">
                <span>"Vortex " <span class="version">{crate::VERSION}</span></span>
                <span class="muted">"Self-hosted strategy research and paper trading"</span>
            </div>
        </footer>
    }
}
