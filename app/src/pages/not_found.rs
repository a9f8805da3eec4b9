//! The 404 page (also sets the HTTP status during server rendering).

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;

#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(resp) = use_context::<leptos_axum::ResponseOptions>() {
        resp.set_status(http::StatusCode::NOT_FOUND);
    }
    view! {
        <Title text="Page not found" />
        <section class="message-page">
            <p class="status-code">"404"</p>
            <h1>"Page not found"</h1>
            <p class="muted">"The page you asked for does not exist or has moved."</p>
            <A href="/" attr:class="button">"Back to the home page"</A>
        </section>
    }
}
