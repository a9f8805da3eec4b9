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
//!
//! * `problem`: the problem body, the table of problem codes, the middleware and the problem-type pages.
//! * `html`: the error pages of HTML forms and pages ([`HtmlError`]).

mod html;
mod problem;

use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
};

use self::problem::title_of;
pub use self::{
    html::{HtmlError, HtmlResult, html_error},
    problem::{
        PROBLEM_JSON, PROBLEMS, Problem, SourceProblem, is_api_path, problem_details, problem_type,
        router,
    },
};

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
    /// A limit of the caller's plan (`plan_limit`, 403): the limit's name, the usage and the allowed value.
    #[error("{}", .0.message)]
    PlanLimit(Box<backend::error::PlanRefusal>),
    /// Read-only over the caller's plan (`plan_read_only`, 403): the limit's name, the usage and the allowed
    /// value.
    #[error("{}", .0.message)]
    PlanReadOnly(Box<backend::error::PlanRefusal>),
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
            Self::PlanLimit(r) => (StatusCode::FORBIDDEN, "plan_limit", r.message.clone(), None),
            Self::PlanReadOnly(r) => (
                StatusCode::FORBIDDEN,
                "plan_read_only",
                r.message.clone(),
                None,
            ),
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
        let plan = match self {
            Self::PlanLimit(r) | Self::PlanReadOnly(r) => Some(r),
            _ => None,
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
                limit: plan.map(|r| r.limit.clone()),
                usage: plan.map(|r| r.usage),
                allowed: plan.map(|r| r.value),
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
/// `unauthorized`, 403 `forbidden`/`email_unconfirmed`/`plan_limit`/`plan_read_only` (+ `limit`, `usage`, `allowed`), 400 `invalid_input` (+ `field`), 422 `invalid_strategy`
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
            E::PlanLimit(r) => Self::PlanLimit(r),
            E::PlanReadOnly(r) => Self::PlanReadOnly(r),
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
