//! The errors of HTML form and page handlers: a small error page in the site's style ([`html_error`]) and
//! [`HtmlError`], built from a backend error with `?`.

use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};

/// A small HTML page for errors of form posts (429, 403, 404) in the site's style.
pub fn html_error(status: StatusCode, title: &str, message: &str) -> Response {
    let escape = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
            .replace('\'', "&#39;")
    };
    let body = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" \
         content=\"width=device-width, initial-scale=1\"><title>{title} · Vortex</title>\
         <link rel=\"icon\" href=\"/favicon.svg\" type=\"image/svg+xml\"><link rel=\"stylesheet\" href=\"/pkg/vortex.css\"></head><body><main class=\"container message-page\">\
         <p class=\"status-code\">{code}</p><h1>{title}</h1><p class=\"muted\">{message}</p>\
         <a class=\"button\" id=\"go-back\" href=\"/\" hidden>Go back</a> \
         <a class=\"button\" href=\"/\">Home</a></main>{back}</body></html>",
        code = status.as_u16(),
        title = escape(title),
        message = escape(message),
        back = go_back_script(),
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

/// Shows and wires the "Go back" button (the browser's history; the CSP forbids inline handlers and
/// `javascript:` links, so it is a script with the response's nonce). Without the nonce, or without
/// JavaScript, the button stays hidden and "Home" remains.
fn go_back_script() -> String {
    crate::nonce::current()
        .map(|nonce| {
            format!(
                "<script nonce=\"{nonce}\">(function(){{var b=document.getElementById('go-back');\
                 if(!b||history.length<2)return;b.hidden=false;b.addEventListener('click',function(e){{\
                 e.preventDefault();history.back();}});}})();</script>"
            )
        })
        .unwrap_or_default()
}

/// The error of HTML form and page handlers: an HTML error page in the site's style (or a redirect a handler
/// chose), built from a backend [`backend::Error`] with `?`. Internal errors are logged with their cause and
/// shown opaquely; an unavailable database is a 503 with `Retry-After`.
#[derive(Debug)]
pub struct HtmlError(pub Response);

/// The result of HTML form and page handlers.
pub type HtmlResult<T = Response> = Result<T, HtmlError>;

impl HtmlError {
    /// An error page with this status, title and message.
    pub fn page(status: StatusCode, title: &str, message: &str) -> Self {
        Self(html_error(status, title, message))
    }

    /// Any response (e.g. a redirect back to the form with the field's message).
    pub fn response(r: impl IntoResponse) -> Self {
        Self(r.into_response())
    }
}

impl IntoResponse for HtmlError {
    fn into_response(self) -> Response {
        self.0
    }
}

impl From<backend::Error> for HtmlError {
    fn from(e: backend::Error) -> Self {
        use backend::Error as E;
        let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut r = match &e {
            E::NotFound => html_error(
                status,
                "Not found",
                "There is no such page or item in your account.",
            ),
            E::Unauthenticated => {
                html_error(status, "Sign in first", "Please sign in and try again.")
            }
            E::Forbidden(m) => html_error(status, "Not allowed", m),
            E::EmailUnconfirmed => html_error(status, "Confirm your email first", &e.message()),
            E::RateLimited { .. } => html_error(status, "Too many requests", &e.message()),
            _ if e.code() == "unavailable" => {
                if e.is_internal() {
                    tracing::warn!(error = %e, "dependency unavailable");
                }
                html_error(
                    status,
                    "Temporarily unavailable",
                    "Please try again in a moment.",
                )
            }
            E::Db(_) | E::Internal(_) => {
                tracing::error!(error = ?e, "request failed");
                html_error(
                    status,
                    "Something went wrong",
                    "The error has been logged. Please try again.",
                )
            }
            _ => html_error(status, "Cannot do that", &e.message()),
        };
        if let Some(secs) = e.retry_after()
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        Self(r)
    }
}

impl From<sqlx::Error> for HtmlError {
    fn from(e: sqlx::Error) -> Self {
        backend::Error::Db(e).into()
    }
}

impl From<anyhow::Error> for HtmlError {
    fn from(e: anyhow::Error) -> Self {
        backend::Error::Internal(e).into()
    }
}
