//! How a page shows errors: inside an `ErrorBoundary`, with the status code set during server rendering.

use leptos::prelude::*;

use crate::error::AppError;

/// Renders the errors caught by an `ErrorBoundary`.
#[component]
pub fn ErrorTemplate(errors: ArcRwSignal<Errors>) -> impl IntoView {
    let all = errors.clone();
    let list = move || {
        all.get()
            .into_iter()
            .map(|(_, e)| e.to_string())
            .collect::<Vec<_>>()
    };
    #[cfg(feature = "ssr")]
    {
        let status = errors
            .get_untracked()
            .into_iter()
            .filter_map(|(_, e)| e.downcast_ref::<AppError>().map(AppError::status))
            .next()
            .unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
        if let Some(resp) = use_context::<leptos_axum::ResponseOptions>() {
            if status == http::StatusCode::UNAUTHORIZED {
                // A page that needs a signed-in user: send the visitor to sign in, then back here.
                let path = use_context::<http::request::Parts>()
                    .map(|p| p.uri.path().to_owned())
                    .unwrap_or_else(|| "/".into());
                if let Ok(v) = http::HeaderValue::from_str(&format!(
                    "/signin?next={path}&error=signin_required"
                )) {
                    resp.insert_header(http::header::LOCATION, v);
                    resp.set_status(http::StatusCode::SEE_OTHER);
                }
            } else {
                resp.set_status(status);
            }
        }
    }
    #[cfg(not(feature = "ssr"))]
    let _ = AppError::status;
    view! {
        <section class="message-page error" role="alert">
            <h1>"Something went wrong"</h1>
            <p class="muted">"If you were signed out, " <a href="/signin">"sign in"</a> " again."</p>
            <ul>{move || list().into_iter().map(|e| view! { <li>{e}</li> }).collect_view()}</ul>
            <a class="button" href="">"Try again"</a>
        </section>
    }
}
