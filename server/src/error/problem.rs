//! The REST API's error type, [`ApiError`]: every error under `/api/v1/` (and `/api/session`, and the page
//! scripts' JSON endpoints) is an RFC 9457 problem, `application/problem+json`:
//!
//! ```json
//! {"type": "/api/problems/invalid_input", "title": "Invalid input", "status": 400,
//!  "detail": "to: the end must be after the start", "code": "invalid_input", "field": "to",
//!  "request_id": "3f1c…"}
//! ```
//!
//! `type` is a stable URI per problem code (listed, with a sentence each, at `GET /api/problems/{code}` and in
//! [`PROBLEMS`]); `code` is the same code as a plain member for clients to switch on; `field` names the input at
//! fault (`invalid_input`), `problems` lists a strategy's compile errors (`invalid_strategy`); `request_id` is the
//! response's `x-request-id` (filled in by [`problem_details`], the middleware that also turns every other error
//! answer under the API's paths — unknown methods, timeouts, panics, body limits — into a problem). 429 and 503
//! carry `Retry-After`. Internal errors are logged with their cause and answered with an opaque detail.

use axum::{
    Json, Router,
    body::Body,
    extract::{Path, Request},
    http::{HeaderValue, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
    routing::get,
};
use serde::Serialize;
use utoipa::ToSchema;

/// The media type of every API error.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Every problem code: (code, status, title, what it means). The `type` of a problem is `/api/problems/<code>`.
pub const PROBLEMS: &[(&str, u16, &str, &str)] = &[
    (
        "bad_request",
        400,
        "Bad request",
        "The request cannot be read: malformed JSON, a body that is not a JSON object, an unknown field, a wrong type, or a path or query parameter of the wrong form.",
    ),
    (
        "invalid_input",
        400,
        "Invalid input",
        "A field has a value the server does not accept; `field` names it and `detail` says why.",
    ),
    (
        "unauthorized",
        401,
        "Authentication required",
        "No API token, or one that is unknown, revoked or expired. Send `Authorization: Bearer vxt_…`.",
    ),
    (
        "forbidden",
        403,
        "Forbidden",
        "The token or account may not do this (a read-only token, a viewer, not an admin).",
    ),
    (
        "email_unconfirmed",
        403,
        "Email address not confirmed",
        "The action changes data and the account's email address is not confirmed yet.",
    ),
    (
        "not_found",
        404,
        "Not found",
        "No such resource, or one of another user (existence is never revealed), or no such API path.",
    ),
    (
        "method_not_allowed",
        405,
        "Method not allowed",
        "The path exists but not with this method; `Allow` lists the methods it has.",
    ),
    (
        "timeout",
        408,
        "Request timeout",
        "The request took longer than the server allows (REQUEST_TIMEOUT_SECS).",
    ),
    (
        "conflict",
        409,
        "Conflict",
        "The request conflicts with the resource's state (e.g. a stale save, cancelling a finished run).",
    ),
    (
        "limit_reached",
        409,
        "Limit reached",
        "A per-user limit (strategies, versions, concurrent backtests) is reached.",
    ),
    (
        "not_finished",
        409,
        "Not finished",
        "The resource exists but is not finished yet (e.g. the trades of a running backtest).",
    ),
    (
        "payload_too_large",
        413,
        "Payload too large",
        "The body is larger than the server accepts (BODY_LIMIT_BYTES).",
    ),
    (
        "unsupported_media_type",
        415,
        "Unsupported media type",
        "The body must be sent as `application/json`.",
    ),
    (
        "invalid_strategy",
        422,
        "Invalid strategy",
        "The strategy source does not compile; `problems` lists every problem with its 1-based line and column.",
    ),
    (
        "rate_limited",
        429,
        "Too many requests",
        "Too many requests; wait the seconds `Retry-After` gives.",
    ),
    (
        "internal",
        500,
        "Internal error",
        "An unexpected error; it has been logged under the request id.",
    ),
    (
        "unavailable",
        503,
        "Service unavailable",
        "A dependency (database, Redis) cannot serve right now; retry after the seconds `Retry-After` gives.",
    ),
];

/// The `type` URI of a problem code.
pub fn problem_type(code: &str) -> String {
    format!("/api/problems/{code}")
}

fn title_of(code: &str, status: StatusCode) -> String {
    PROBLEMS.iter().find(|p| p.0 == code).map_or_else(
        || status.canonical_reason().unwrap_or("Error").to_owned(),
        |p| p.2.to_owned(),
    )
}

/// One compile problem of a strategy source (1-based line and column; `len` characters to underline).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SourceProblem {
    pub line: usize,
    pub column: usize,
    pub len: usize,
    pub message: String,
}

impl From<&backend::backtest::Problem> for SourceProblem {
    fn from(p: &backend::backtest::Problem) -> Self {
        Self {
            line: p.line,
            column: p.column,
            len: p.len,
            message: p.message.clone(),
        }
    }
}

/// An RFC 9457 problem: the body of every API error (`application/problem+json`).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"type": "/api/problems/invalid_input", "title": "Invalid input", "status": 400,
    "detail": "to: the end must be after the start", "code": "invalid_input", "field": "to",
    "request_id": "3f1c2a9e-1b2c-4d5e-8f90-123456789abc"}))]
pub struct Problem {
    /// A stable URI per problem code: `/api/problems/<code>` (GET it for the code's meaning).
    #[serde(rename = "type")]
    #[schema(example = "/api/problems/invalid_input")]
    pub type_: String,
    /// A short summary of the problem code, the same for every occurrence.
    pub title: String,
    /// The HTTP status code of the response.
    #[schema(minimum = 400, maximum = 599)]
    pub status: u16,
    /// What is wrong in this occurrence, in words a person can act on.
    pub detail: String,
    /// The problem code to switch on: `bad_request`, `invalid_input`, `unauthorized`, `forbidden`,
    /// `email_unconfirmed`, `not_found`, `method_not_allowed`, `timeout`, `conflict`, `limit_reached`,
    /// `not_finished`, `payload_too_large`, `unsupported_media_type`, `invalid_strategy`, `rate_limited`,
    /// `internal` or `unavailable`.
    #[schema(example = "invalid_input")]
    pub code: String,
    /// The request's id, as in the response's `x-request-id` header (quote it when reporting a problem).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// `invalid_input`: the request field at fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// `invalid_strategy`: every problem in the source.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problems: Option<Vec<SourceProblem>>,
}

impl Problem {
    /// The problem as a response (status, `application/problem+json`, `no-store`), remembering itself in the
    /// response's extensions so [`problem_details`] can add the request id.
    fn into_response_with(self, retry_after: Option<u64>) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut resp = (status, Json(&self)).into_response();
        let h = resp.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(secs) = retry_after
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            h.insert(header::RETRY_AFTER, v);
        }
        if status == StatusCode::UNAUTHORIZED {
            h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp.extensions_mut().insert(self);
        resp
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("not found")]
    NotFound,
    #[error("authentication required: send an API token as `Authorization: Bearer vxt_…`")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("too many requests; retry in {0} seconds")]
    RateLimited(u64),
    /// The request cannot be read (`bad_request`).
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    /// Any status and code, with the field at fault or a strategy's problems.
    #[error("{message}")]
    Detailed {
        status: StatusCode,
        code: &'static str,
        message: String,
        field: Option<String>,
        problems: Option<Vec<SourceProblem>>,
    },
    /// A dependency cannot serve now (`Retry-After: 5`).
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// A dependency cannot serve now; retry after this many seconds.
    #[error("service unavailable: {0}")]
    UnavailableFor(String, u64),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    /// An error with its own status and code.
    pub fn coded(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self::Detailed {
            status,
            code,
            message: message.into(),
            field: None,
            problems: None,
        }
    }

    /// `invalid_input` (400) naming the field at fault.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::Detailed {
            status: StatusCode::BAD_REQUEST,
            code: "invalid_input",
            message: message.into(),
            field: Some(field.to_owned()),
            problems: None,
        }
    }

    /// The generic problem of a bare error status (used for answers no handler built, e.g. 405 or 408).
    pub fn from_status(status: StatusCode) -> Self {
        let code = match status.as_u16() {
            400 => "bad_request",
            401 => "unauthorized",
            403 => "forbidden",
            404 => "not_found",
            405 => "method_not_allowed",
            408 => "timeout",
            409 => "conflict",
            413 => "payload_too_large",
            415 => "unsupported_media_type",
            429 => "rate_limited",
            503 => "unavailable",
            s if s >= 500 => "internal",
            _ => "bad_request",
        };
        let detail = PROBLEMS
            .iter()
            .find(|p| p.0 == code)
            .map_or("", |p| p.3)
            .to_owned();
        Self::coded(status, code, detail)
    }

    /// The status, code, detail and retry delay (logs internal causes once).
    fn parts(&self) -> (StatusCode, &'static str, String, Option<u64>) {
        match self {
            Self::NotFound => (StatusCode::NOT_FOUND, "not_found", self.to_string(), None),
            Self::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                self.to_string(),
                None,
            ),
            Self::Forbidden(m) => (StatusCode::FORBIDDEN, "forbidden", m.clone(), None),
            Self::RateLimited(s) => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                self.to_string(),
                Some(*s),
            ),
            Self::BadRequest(m) => (StatusCode::BAD_REQUEST, "bad_request", m.clone(), None),
            Self::Conflict(m) => (StatusCode::CONFLICT, "conflict", m.clone(), None),
            Self::UnsupportedMediaType(m) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                m.clone(),
                None,
            ),
            Self::PayloadTooLarge(m) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                m.clone(),
                None,
            ),
            Self::Detailed {
                status,
                code,
                message,
                ..
            } => {
                let retry = match *status {
                    StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => Some(5),
                    _ => None,
                };
                (*status, *code, message.clone(), retry)
            }
            Self::Unavailable(m) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                m.clone(),
                Some(5),
            ),
            Self::UnavailableFor(m, s) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                m.clone(),
                Some(*s),
            ),
            Self::Database(e) if backend::db::is_unavailable(e) => {
                tracing::warn!(error = %e, "database unavailable");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "the database is unavailable; try again shortly".to_owned(),
                    Some(5),
                )
            }
            Self::Database(e) => {
                tracing::error!(error = %e, "database error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error".to_owned(),
                    None,
                )
            }
            Self::Internal(e) => {
                tracing::error!(error = ?e, "internal error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error".to_owned(),
                    None,
                )
            }
        }
    }

    /// The problem body (without the request id, which [`problem_details`] adds) and the `Retry-After` delay.
    pub fn problem(&self) -> (Problem, Option<u64>) {
        let (status, code, detail, retry) = self.parts();
        let (field, problems) = match self {
            Self::Detailed {
                field, problems, ..
            } => (field.clone(), problems.clone()),
            _ => (None, None),
        };
        (
            Problem {
                type_: problem_type(code),
                title: title_of(code, status),
                status: status.as_u16(),
                detail,
                code: code.to_owned(),
                request_id: None,
                field,
                problems,
            },
            retry,
        )
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

/// Every backend refusal with its code and status (see `backend::Error::code`): 404 `not_found`, 401
/// `unauthorized`, 403 `forbidden`/`email_unconfirmed`, 400 `invalid_input` (+ `field`), 422 `invalid_strategy`
/// (+ `problems`), 409 `limit_reached`/`conflict`/`not_finished`, 429 `rate_limited` and 503 `unavailable` (with
/// `Retry-After`), database and internal errors as usual.
impl From<backend::Error> for ApiError {
    fn from(e: backend::Error) -> Self {
        use backend::Error as E;
        let message = e.message();
        let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        match e {
            E::NotFound => Self::NotFound,
            E::Unauthenticated => Self::Unauthorized,
            E::Forbidden(m) => Self::Forbidden(m),
            E::Conflict(m) => Self::Conflict(m),
            E::Invalid { ref field, .. } => Self::invalid(field, message),
            E::Strategy(ref problems) => Self::Detailed {
                status,
                code: "invalid_strategy",
                message,
                field: None,
                problems: Some(problems.iter().map(SourceProblem::from).collect()),
            },
            E::EmailUnconfirmed | E::Limit(_) | E::NotFinished(_) => {
                Self::coded(status, e.code(), message)
            }
            E::RateLimited { retry_after } => Self::RateLimited(retry_after),
            E::Unavailable {
                message,
                retry_after,
            } => Self::UnavailableFor(message, retry_after),
            E::Db(db) => Self::Database(db),
            E::Internal(e) => Self::Internal(e),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (problem, retry) = self.problem();
        problem.into_response_with(retry)
    }
}

/// Whether errors on this path are the API's problems (not HTML pages or the Leptos server functions' format).
pub fn is_api_path(path: &str) -> bool {
    path.starts_with("/api/v1/") || path == "/api/v1" || path == "/api/session"
}

/// Middleware (outside the timeout, panic and body-limit layers, inside the request-id one): puts the request id
/// into every problem, and turns any other error answer on an API path (405 from the router, 408 timeout, 413,
/// the panic page, …) into the problem of its status, keeping its headers (`Allow`, `Retry-After`).
pub async fn problem_details(req: Request, next: Next) -> Response {
    let api = is_api_path(req.uri().path());
    let request_id = req
        .extensions()
        .get::<backend::web::RequestId>()
        .map(|r| r.0.clone());
    let mut resp = next.run(req).await;
    let problem = match resp.extensions_mut().remove::<Problem>() {
        Some(p) => p,
        None if api && (resp.status().is_client_error() || resp.status().is_server_error()) => {
            ApiError::from_status(resp.status()).problem().0
        }
        None => return resp,
    };
    let problem = Problem {
        request_id,
        ..problem
    };
    let body = serde_json::to_vec(&problem).unwrap_or_default();
    let status = StatusCode::from_u16(problem.status).unwrap_or(resp.status());
    let (mut parts, _) = resp.into_parts();
    parts.status = status;
    let h = &mut parts.headers;
    h.remove(header::CONTENT_ENCODING);
    h.remove(header::CONTENT_LENGTH);
    h.remove(header::TRANSFER_ENCODING);
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if matches!(problem.status, 429 | 503) && !h.contains_key(header::RETRY_AFTER) {
        h.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    }
    if problem.status == 401 && !h.contains_key(header::WWW_AUTHENTICATE) {
        h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    let mut out = Response::from_parts(parts, Body::from(body));
    out.extensions_mut().insert(problem);
    out
}

/// `GET /api/problems/{code}`: what a problem type means (its `type` URI resolves here), as plain text.
async fn describe_problem(Path(code): Path<String>) -> Response {
    match PROBLEMS.iter().find(|p| p.0 == code) {
        Some((code, status, title, meaning)) => (
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("{title} ({status}, code `{code}`)\n\n{meaning}\n"),
        )
            .into_response(),
        None => ApiError::NotFound.into_response(),
    }
}

/// The problem-type pages.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new().route("/api/problems/{code}", get(describe_problem))
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
