//! The one error type of every backend action (see `docs/architecture.md`, "Errors").
//!
//! An action refuses with a domain variant that says *why* (not found, not allowed, wrong input, over a limit,
//! wrong state); each surface maps the variant to its own shape: an RFC 9457 problem for the REST API, an HTML
//! page or an in-place form message for the browser, an exit code and a sentence for the CLI. The two
//! infrastructure variants ([`Error::Db`], [`Error::Internal`]) are logged with their cause by the surface and
//! shown to people as an opaque "internal error" (or "temporarily unavailable" when the database is down).

use serde::{Deserialize, Serialize};

/// Why an action was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No such row for this actor (also for rows of other users: existence is never revealed).
    #[error("not found")]
    NotFound,
    /// The action needs a signed-in user.
    #[error("sign in first")]
    Unauthenticated,
    /// Signed in, but this actor may not do this (viewer role, read-only token, not an admin). The message says
    /// which and is safe to show.
    #[error("{0}")]
    Forbidden(String),
    /// The action changes data and the account's email address is not confirmed yet.
    #[error(
        "confirm your email address first: open the link we sent you (or ask for a new one on the Account page)"
    )]
    EmailUnconfirmed,
    /// A field is wrong: which one and why, in words a trader can act on.
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    /// The strategy source does not compile.
    #[error("the strategy has {} problem(s)", .0.len())]
    Strategy(Vec<Problem>),
    /// A per-user limit (concurrent runs, quotas, plan limits).
    #[error("{0}")]
    Limit(String),
    /// A limit of the user's plan (or their override) is reached: which, the usage and the value, and how to
    /// raise it (`backend::plans`).
    #[error("{}", .0.message)]
    PlanLimit(Box<PlanRefusal>),
    /// The user is over a limit of their plan past its grace period and this strategy is part of the excess,
    /// which is read-only (`backend::plans::overage`): the limit, the usage, the value and what to do.
    #[error("{}", .0.message)]
    PlanReadOnly(Box<PlanRefusal>),
    /// The request conflicts with the row's state (e.g. cancelling a finished run, a stale save).
    #[error("{0}")]
    Conflict(String),
    /// The thing asked for exists but is not finished yet (a run's trades while it is queued or running).
    #[error("{0}")]
    NotFinished(String),
    /// Too many attempts; retry after this many seconds.
    #[error("too many requests; retry in {retry_after} seconds")]
    RateLimited { retry_after: u64 },
    /// A dependency (Redis, the password-hash slots) cannot serve now; retry after this many seconds.
    #[error("{message}")]
    Unavailable { message: String, retry_after: u64 },
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// Every backend action's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A field error.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.to_owned(),
            message: message.into(),
        }
    }

    /// A stable machine-readable code: the suffix of the REST problem type, the CLI's and the pages' key.
    pub fn code(&self) -> &'static str {
        match self {
            Error::NotFound => "not_found",
            Error::Unauthenticated => "unauthorized",
            Error::Forbidden(_) => "forbidden",
            Error::EmailUnconfirmed => "email_unconfirmed",
            Error::Invalid { .. } => "invalid_input",
            Error::Strategy(_) => "invalid_strategy",
            Error::Limit(_) => "limit_reached",
            Error::PlanLimit(_) => "plan_limit",
            Error::PlanReadOnly(_) => "plan_read_only",
            Error::Conflict(_) => "conflict",
            Error::NotFinished(_) => "not_finished",
            Error::RateLimited { .. } => "rate_limited",
            Error::Unavailable { .. } => "unavailable",
            Error::Db(e) if crate::db::is_unavailable(e) => "unavailable",
            Error::Db(_) | Error::Internal(_) => "internal",
        }
    }

    /// The HTTP status every web surface answers with.
    pub fn status(&self) -> u16 {
        match self.code() {
            "not_found" => 404,
            "unauthorized" => 401,
            "forbidden" | "email_unconfirmed" | "plan_limit" | "plan_read_only" => 403,
            "invalid_input" => 400,
            "invalid_strategy" => 422,
            "limit_reached" | "conflict" | "not_finished" => 409,
            "rate_limited" => 429,
            "unavailable" => 503,
            _ => 500,
        }
    }

    /// Seconds a client should wait before retrying, for 429/503 answers.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            Error::RateLimited { retry_after } | Error::Unavailable { retry_after, .. } => {
                Some(*retry_after)
            }
            Error::Db(e) if crate::db::is_unavailable(e) => Some(5),
            _ => None,
        }
    }

    /// Whether this is an infrastructure failure (to be logged with its cause, shown opaquely).
    pub fn is_internal(&self) -> bool {
        matches!(self.code(), "internal" | "unavailable")
            && !matches!(self, Error::Unavailable { .. })
    }

    /// A one-paragraph message for a person (never a database or internal detail).
    pub fn message(&self) -> String {
        match self {
            Error::Strategy(p) => {
                let first = p.first().map(Problem::to_string).unwrap_or_default();
                if p.len() > 1 {
                    format!("{first} (and {} more problem(s))", p.len() - 1)
                } else {
                    first
                }
            }
            Error::Db(e) if crate::db::is_unavailable(e) => {
                "temporarily unavailable; please try again in a moment".into()
            }
            Error::Db(_) | Error::Internal(_) => "internal error".into(),
            other => other.to_string(),
        }
    }
}

/// Why a plan refused: the limit's name (`concurrent_backtests`, `strategies`, …: `backend::plans::Limit`), the
/// user's current usage (with what the action would add), the limit's value and a sentence for people that
/// says how to raise it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanRefusal {
    pub limit: String,
    pub usage: i64,
    pub value: i64,
    pub message: String,
}

/// Maps a unique-constraint violation to a domain error where it happens (instead of check-then-insert).
pub trait ResultExt<T> {
    /// When the query failed on the named constraint, `f` builds the error to return instead.
    ///
    /// # Errors
    /// `f`'s error on that constraint, otherwise the database error.
    fn on_constraint(self, name: &str, f: impl FnOnce() -> Error) -> Result<T>;
}

impl<T> ResultExt<T> for std::result::Result<T, sqlx::Error> {
    fn on_constraint(self, name: &str, f: impl FnOnce() -> Error) -> Result<T> {
        match self {
            Err(sqlx::Error::Database(db)) if db.constraint() == Some(name) => Err(f()),
            other => other.map_err(Error::Db),
        }
    }
}

/// Chains a second constraint mapping after a first one.
impl<T> ResultExt<T> for Result<T> {
    fn on_constraint(self, name: &str, f: impl FnOnce() -> Error) -> Result<T> {
        match self {
            Err(Error::Db(sqlx::Error::Database(db))) if db.constraint() == Some(name) => Err(f()),
            other => other,
        }
    }
}

/// One problem in a strategy's source (1-based line and column; line 0 = not tied to a position).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    pub line: usize,
    pub column: usize,
    pub len: usize,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line > 0 {
            write!(
                f,
                "line {}, column {}: {}",
                self.line, self.column, self.message
            )
        } else {
            f.write_str(&self.message)
        }
    }
}

impl From<engine::strategy::Diagnostic> for Problem {
    fn from(d: engine::strategy::Diagnostic) -> Self {
        Self {
            line: d.line,
            column: d.column,
            len: d.len,
            message: d.message,
        }
    }
}
