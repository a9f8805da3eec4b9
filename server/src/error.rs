//! The REST API's error type: every error is JSON `{ "error": code, "message": text }` with a matching status,
//! plus, for some codes, fields that say more (`field` for `invalid_input`, `problems` for `invalid_strategy`).
//! Internal errors are logged with their cause and answered with an opaque message.

use axum::{
    Json,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::{Map, Value, json};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("not found")]
    NotFound,
    #[error("authentication required")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("too many requests; retry in {0} seconds")]
    RateLimited(u64),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    /// Any status and code, with extra JSON fields next to `error` and `message` (e.g. `field`, `problems`).
    #[error("{message}")]
    Detailed {
        status: StatusCode,
        code: &'static str,
        message: String,
        extra: Map<String, Value>,
    },
    #[error("service unavailable: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    /// An error with its own status and code and no extra fields.
    pub fn coded(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self::Detailed {
            status,
            code,
            message: message.into(),
            extra: Map::new(),
        }
    }
}

/// Refusals of the expensive endpoints' rate limits: 429 over the limit, 503 when Redis cannot count.
impl From<backend::redis::Refused> for ApiError {
    fn from(r: backend::redis::Refused) -> Self {
        match r {
            backend::redis::Refused::Over(wait) => Self::RateLimited(wait),
            backend::redis::Refused::Unavailable => Self::Unavailable(
                "request limits cannot be checked right now; try again shortly".into(),
            ),
        }
    }
}

/// Strategy and backtest refusals: 404 `not_found`, 400 `invalid_input` (+ `field`), 422 `invalid_strategy`
/// (+ `problems` with 1-based line and column), 409 `limit_reached` or `conflict`; database errors as usual.
impl From<backend::backtest::Error> for ApiError {
    fn from(e: backend::backtest::Error) -> Self {
        use backend::backtest::Error as E;
        let message = e.message();
        match e {
            E::NotFound => Self::NotFound,
            E::Db(db) => Self::Database(db),
            E::Conflict(m) => Self::Conflict(m),
            E::Limit(_) => Self::coded(StatusCode::CONFLICT, "limit_reached", message),
            E::Invalid { ref field, .. } => {
                let mut extra = Map::new();
                extra.insert("field".into(), Value::String(field.clone()));
                Self::Detailed {
                    status: StatusCode::BAD_REQUEST,
                    code: "invalid_input",
                    message,
                    extra,
                }
            }
            E::Strategy(ref problems) => {
                let mut extra = Map::new();
                extra.insert("problems".into(), json!(problems));
                Self::Detailed {
                    status: StatusCode::UNPROCESSABLE_ENTITY,
                    code: "invalid_strategy",
                    message,
                    extra,
                }
            }
            E::Unauthenticated => Self::Unauthorized,
            E::Forbidden(m) => Self::Forbidden(m),
            E::EmailUnconfirmed => Self::coded(StatusCode::FORBIDDEN, "email_unconfirmed", message),
            E::NotFinished(m) => Self::coded(StatusCode::CONFLICT, "not_finished", m),
            E::RateLimited { retry_after } => Self::RateLimited(retry_after),
            E::Unavailable { message, .. } => Self::Unavailable(message),
            E::Internal(e) => Self::Internal(e),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut extra = Map::new();
        let (status, code, message) = match &self {
            Self::NotFound => (StatusCode::NOT_FOUND, "not_found", self.to_string()),
            Self::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized", self.to_string()),
            Self::Forbidden(m) => (StatusCode::FORBIDDEN, "forbidden", m.clone()),
            Self::RateLimited(_) => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                self.to_string(),
            ),
            Self::BadRequest(m) => (StatusCode::BAD_REQUEST, "bad_request", m.clone()),
            Self::Conflict(m) => (StatusCode::CONFLICT, "conflict", m.clone()),
            Self::UnsupportedMediaType(m) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                m.clone(),
            ),
            Self::PayloadTooLarge(m) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                m.clone(),
            ),
            Self::Detailed {
                status,
                code,
                message,
                extra: fields,
            } => {
                extra.clone_from(fields);
                (*status, *code, message.clone())
            }
            Self::Unavailable(m) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable", m.clone()),
            Self::Database(e) if backend::db::is_unavailable(e) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the database is unavailable; try again shortly".to_owned(),
            ),
            Self::Database(e) => {
                tracing::error!(error = %e, "database error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error".to_owned(),
                )
            }
            Self::Internal(e) => {
                tracing::error!(error = ?e, "internal error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error".to_owned(),
                )
            }
        };
        let mut body = Map::new();
        body.insert("error".into(), Value::from(code));
        body.insert("message".into(), Value::from(message));
        body.extend(extra);
        let mut resp = (status, Json(Value::Object(body))).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        if let Self::RateLimited(secs) = &self
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        resp.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

/// A small HTML page for errors of form posts (429, 403, 404) in the site's style.
pub fn html_error(status: StatusCode, title: &str, message: &str) -> Response {
    let escape = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    let body = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" \
         content=\"width=device-width, initial-scale=1\"><title>{title} · Vortex</title>\
         <link rel=\"stylesheet\" href=\"/pkg/vortex.css\"></head><body><main class=\"container message-page\">\
         <p class=\"status-code\">{code}</p><h1>{title}</h1><p class=\"muted\">{message}</p>\
         <a class=\"button\" href=\"javascript:history.back()\" onclick=\"history.back();return false;\">Go back</a> \
         <a class=\"button\" href=\"/\">Home</a></main></body></html>",
        code = status.as_u16(),
        title = escape(title),
        message = escape(message),
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
