//! One-click unsubscribe (RFC 8058; docs/design/notifications.md §5, "GET vs POST").
//!
//! * `POST /unsubscribe/one-click?t=…` with the body `List-Unsubscribe=One-Click` (form-urlencoded or
//!   multipart, as RFC 8058 allows): what a mail provider sends for the `List-Unsubscribe` header. No session is
//!   read and no cookie is set; the signed token is the authority. 200 with a short page; 400 (one body for
//!   every failure) for a bad token or body.
//! * `GET`/`HEAD /unsubscribe/one-click?t=…` (link scanners, curious readers): 303 to the confirmation page,
//!   nothing changes.
//! * `POST /unsubscribe` (the confirmation page's button, CSRF-protected like every form): the same action,
//!   then back to the page with a flash code.

use app::flash::Flash;
use axum::{
    Form,
    body::Bytes,
    extract::{Query, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use backend::{Actor, Surface, notify::unsubscribe};
use serde::Deserialize;

use super::to;
use crate::{
    error::HtmlResult,
    extract::{AnyWebActor, Meta},
    state::AppState,
};

/// The longest token accepted (a genuine one is about 60 characters).
const MAX_TOKEN: usize = 200;
/// The largest one-click body read (a genuine one is 26 bytes, a multipart one a few hundred).
const MAX_BODY: usize = 4096;

#[derive(Debug, Deserialize)]
pub(super) struct TokenQuery {
    #[serde(default)]
    t: String,
}

/// The confirmation page of a token (its query string re-encoded).
fn page_url(token: &str) -> String {
    let q = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("t", token)
        .finish();
    format!("/unsubscribe?{q}")
}

/// A small page for mail clients and providers (no scripts, no cookies).
fn answer(status: StatusCode, title: &str, message: &str) -> Response {
    let body = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" \
         content=\"width=device-width, initial-scale=1\"><title>{title} · Vortex</title>\
         <link rel=\"stylesheet\" href=\"/pkg/vortex.css\"></head><body><main class=\"container message-page\">\
         <h1>{title}</h1><p>{message}</p><a class=\"button\" href=\"/notifications/settings\">Notification settings</a>\
         </main></body></html>",
        title = app::escape_text(title),
        message = app::escape_text(message),
    );
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

fn refused() -> Response {
    answer(
        StatusCode::BAD_REQUEST,
        "Link not valid",
        "This unsubscribe link is not valid. Sign in to manage your notifications.",
    )
}

/// Whether the body is RFC 8058's `List-Unsubscribe=One-Click`, form-urlencoded or as a multipart field.
fn is_one_click_body(headers: &HeaderMap, body: &[u8]) -> bool {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if content_type.starts_with("multipart/form-data") {
        // One small field: its name and value are in the body as written.
        let text = String::from_utf8_lossy(body);
        text.contains("name=\"List-Unsubscribe\"") && text.contains("One-Click")
    } else {
        url::form_urlencoded::parse(body).any(|(k, v)| k == "List-Unsubscribe" && v == "One-Click")
    }
}

/// `POST /unsubscribe/one-click?t=…`: turns the token's category's email off for its user.
pub(super) async fn one_click(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Query(q): Query<TokenQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if q.t.len() > MAX_TOKEN || body.len() > MAX_BODY || !is_one_click_body(&headers, &body) {
        return refused();
    }
    // Anonymous on purpose: the session cookie, if a browser sent one, is not the authority here.
    let actor = Actor::anonymous(Surface::Web, meta, None);
    match unsubscribe::one_click(&state.ctx, &actor, &q.t).await {
        Ok(_) => answer(
            StatusCode::OK,
            "Unsubscribed",
            "You will get no more email of this kind. You can turn it on again in your notification settings.",
        ),
        Err(e) if e.code() == "invalid_input" => refused(),
        Err(e) => crate::error::HtmlError::from(e).0,
    }
}

/// `GET`/`HEAD /unsubscribe/one-click?t=…`: nothing changes; 303 to the confirmation page.
pub(super) async fn to_page(Query(q): Query<TokenQuery>) -> Response {
    let t: String = q.t.chars().take(MAX_TOKEN).collect();
    let mut resp = to(&page_url(&t));
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

#[derive(Debug, Deserialize)]
pub(super) struct ConfirmForm {
    #[serde(default)]
    t: String,
}

/// `POST /unsubscribe`: the confirmation page's button.
pub(super) async fn confirm(
    State(state): State<AppState>,
    AnyWebActor(actor): AnyWebActor,
    Form(form): Form<ConfirmForm>,
) -> HtmlResult {
    if form.t.len() > MAX_TOKEN {
        return Ok(to(&Flash::UnsubscribeInvalid.redirect_to("/unsubscribe")));
    }
    let back = page_url(&form.t);
    match unsubscribe::one_click(&state.ctx, &actor, &form.t).await {
        Ok(_) => Ok(to(&Flash::Unsubscribed.redirect_to(&back))),
        Err(e) if e.code() == "invalid_input" => {
            Ok(to(&Flash::UnsubscribeInvalid.redirect_to(&back)))
        }
        Err(e) => Err(e.into()),
    }
}
