//! Form helpers: the CSRF field every form carries, and the message shown after a form post.

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

/// The CSRF token of this page: rendered by the server into `<meta name="csrf-token">`, read from there in the
/// browser, so server rendering and hydration agree.
pub fn csrf_token() -> String {
    #[cfg(feature = "ssr")]
    {
        use_context::<http::request::Parts>()
            .and_then(|p| {
                p.extensions
                    .get::<backend::web::CsrfToken>()
                    .map(|t| t.0.clone())
            })
            .unwrap_or_default()
    }
    #[cfg(not(feature = "ssr"))]
    {
        document()
            .query_selector("meta[name=csrf-token]")
            .ok()
            .flatten()
            .and_then(|e| e.get_attribute("content"))
            .unwrap_or_default()
    }
}

/// The hidden `csrf` input.
#[component]
pub fn CsrfField() -> impl IntoView {
    view! { <input type="hidden" name="csrf" value=csrf_token() /> }
}

/// Text for the `ok=` and `error=` codes that the form handlers redirect with.
pub fn message_for(code: &str) -> Option<&'static str> {
    crate::flash::Flash::from_code(code).map(crate::flash::Flash::message)
}

/// Shows the message for the page's `ok` / `error` query parameter.
#[component]
pub fn Flash() -> impl IntoView {
    let query = use_query_map();
    move || {
        let q = query.read();
        if let Some(m) = q.get("error").as_deref().and_then(message_for) {
            Some(view! { <p class="flash error" role="alert">{m}</p> }.into_any())
        } else {
            q.get("ok")
                .as_deref()
                .and_then(message_for)
                .map(|m| view! { <p class="flash ok" role="status">{m}</p> }.into_any())
        }
    }
}
