//! RFC 9457 problems: the body of every API error ([`Problem`]), the table of problem codes ([`PROBLEMS`]), the
//! middleware that puts the request id into every problem and turns other error answers on the API's paths
//! into problems ([`problem_details`]), and the problem-type pages (`GET /api/problems/{code}`).

use axum::{
    Json, Router,
    body::Body,
    extract::{Path, Request},
    http::{HeaderName, HeaderValue, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
    routing::get,
};
use serde::Serialize;
use utoipa::ToSchema;

use super::ApiError;

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
        "plan_limit",
        403,
        "Plan limit reached",
        "A limit of your plan is reached: `limit` names it (e.g. `concurrent_backtests`, `backtests_per_day`, `candles_per_backtest`, `history_days`, `strategies`, `export_rows`), `usage` is your current usage and `allowed` the limit's value. Nothing was changed. Wait for running work to finish, make the request smaller, or ask an administrator for a larger plan or a higher limit; `GET /api/v1/me/plan` shows your limits and usage.",
    ),
    (
        "plan_read_only",
        403,
        "Read-only over your plan",
        "You are over a limit of your plan (`limit`: `strategies`) past its grace period, and this strategy is part of the excess, which is read-only: you can view, export, archive and delete it, but not edit it, backtest it or start paper runs from it. `usage` is your current usage and `allowed` the limit's value. Nothing was changed. Delete strategies you no longer need (archived ones count), or move to a larger plan; the restriction ends as soon as you are within the limit. `GET /api/v1/me/plan` lists your open overages and what they restrict.",
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
        "stale_signal",
        422,
        "Stale signal",
        "An inbound signal's time (or its signature's timestamp) is more than 300 seconds from now: a late or replayed request. Nothing changed but the rejection record.",
    ),
    (
        "wrong_ticker",
        422,
        "Wrong ticker",
        "An inbound signal names another instrument than the run's. Nothing changed but the rejection record.",
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

pub(super) fn title_of(code: &str, status: StatusCode) -> String {
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
    /// `email_unconfirmed`, `plan_limit`, `plan_read_only`, `not_found`, `method_not_allowed`, `timeout`, `conflict`, `limit_reached`,
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
    /// `plan_limit`, `plan_read_only`: the limit that refused (`concurrent_backtests`, `strategies`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<String>,
    /// `plan_limit`, `plan_read_only`: the current usage (or the size of the request, for per-run limits).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<i64>,
    /// `plan_limit`, `plan_read_only`: the limit's value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed: Option<i64>,
}

impl Problem {
    /// The problem as a response (status, `application/problem+json`, `no-store`), remembering itself in the
    /// response's extensions so [`problem_details`] can add the request id.
    pub(super) fn into_response_with(self, retry_after: Option<u64>) -> Response {
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

/// Whether errors on this path are the API's problems (not HTML pages or the Leptos server functions' format).
pub fn is_api_path(path: &str) -> bool {
    path.starts_with("/api/v1/") || path == "/api/v1" || path == "/api/session"
}

/// Middleware (outside the timeout, panic and body-limit layers, inside the request-id one): puts the request id
/// into every problem, and turns any other error answer on an API path (405 from the router, 408 timeout, 413,
/// the panic page, …) into the problem of its status, keeping its headers (`Allow`, `Retry-After`).
pub async fn problem_details(req: Request, next: Next) -> Response {
    // (`crate::middleware::X_REQUEST_ID`; named here, as the middleware module uses this one.)
    static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
    let api = is_api_path(req.uri().path());
    // The request id's header (set with the same text as `RequestId` by the request-id layer just outside
    // this one) costs a reference count to keep; the text is copied only when there is a problem to answer.
    let request_id = req
        .extensions()
        .get::<backend::web::RequestId>()
        .and_then(|_| req.headers().get(&X_REQUEST_ID).cloned());
    let mut resp = next.run(req).await;
    let problem = match resp.extensions_mut().remove::<Problem>() {
        Some(p) => p,
        None if api && (resp.status().is_client_error() || resp.status().is_server_error()) => {
            ApiError::from_status(resp.status()).problem().0
        }
        None => return resp,
    };
    let problem = Problem {
        request_id: request_id.and_then(|v| v.to_str().ok().map(str::to_owned)),
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
