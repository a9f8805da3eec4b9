//! Errors the browser sees: stable, serialisable codes. Server functions return `Result<T, AppError>`.

use leptos::server_fn::{
    codec::JsonEncoding,
    error::{FromServerFnError, ServerFnErrorErr},
};
use serde::{Deserialize, Serialize};

/// An error a page can show. `Display` is the text for people.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "error", rename_all = "snake_case")]
pub enum AppError {
    #[error("not found")]
    NotFound,
    #[error("please sign in")]
    Unauthorized,
    #[error("{message}")]
    Validation { field: String, message: String },
    /// Signed in but not allowed (read-only account or token, not an admin).
    #[error("{message}")]
    Forbidden { message: String },
    /// Refused by a rule of the action: `code` is the backend error code (`email_unconfirmed`, `plan_limit`, `plan_read_only`, `limit_reached`,
    /// `conflict`, `not_finished`, `rate_limited`, `invalid_strategy`), the same code the REST API answers with.
    #[error("{message}")]
    Refused { code: String, message: String },
    #[error("temporarily unavailable: {message}")]
    Unavailable { message: String },
    #[error("something went wrong on our side; it has been logged")]
    Internal,
    #[error("request failed: {0}")]
    ServerFn(ServerFnErrorErr),
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        Self::ServerFn(value)
    }

    /// Serialises the error for the client and, when answering a server function's own HTTP request, makes
    /// the response's status the error's ([`AppError::status`]): not found, unauthorized and bad arguments are
    /// 4xx, not 500 (server_fn answers every error with 500 unless told otherwise). Every server function
    /// error, including argument errors raised before the function runs, passes through here. Plain form
    /// posts (`Accept: text/html`) keep leptos_axum's redirect back to the form.
    fn ser(&self) -> leptos::server_fn::Bytes {
        #[cfg(feature = "ssr")]
        set_response_status(self.status());
        <JsonEncoding as leptos::server_fn::Encodes<Self>>::encode(self).unwrap_or_else(|e| {
            <JsonEncoding as leptos::server_fn::Encodes<Self>>::encode(&Self::ServerFn(
                ServerFnErrorErr::Serialization(e.to_string()),
            ))
            .unwrap_or_default()
        })
    }
}

#[cfg(feature = "ssr")]
fn set_response_status(status: http::StatusCode) {
    use leptos::prelude::use_context;
    let Some(opts) = use_context::<leptos_axum::ResponseOptions>() else {
        return;
    };
    let html_form = use_context::<http::request::Parts>().is_some_and(|p| {
        p.headers
            .get(http::header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("text/html"))
    });
    if !html_form {
        opts.set_status(status);
    }
}

impl AppError {
    /// The HTTP status that matches this error.
    pub fn status(&self) -> http::StatusCode {
        match self {
            Self::NotFound => http::StatusCode::NOT_FOUND,
            Self::Unauthorized => http::StatusCode::UNAUTHORIZED,
            Self::Validation { .. } => http::StatusCode::UNPROCESSABLE_ENTITY,
            Self::Forbidden { .. } => http::StatusCode::FORBIDDEN,
            Self::Refused { code, .. } => match code.as_str() {
                "email_unconfirmed" | "plan_limit" | "plan_read_only" => {
                    http::StatusCode::FORBIDDEN
                }
                "rate_limited" => http::StatusCode::TOO_MANY_REQUESTS,
                "invalid_strategy" => http::StatusCode::UNPROCESSABLE_ENTITY,
                _ => http::StatusCode::CONFLICT,
            },
            Self::Unavailable { .. } => http::StatusCode::SERVICE_UNAVAILABLE,
            // Arguments the caller sent that cannot be read are the caller's error.
            Self::ServerFn(
                ServerFnErrorErr::Args(_)
                | ServerFnErrorErr::MissingArg(_)
                | ServerFnErrorErr::Deserialization(_)
                | ServerFnErrorErr::UnsupportedRequestMethod(_),
            ) => http::StatusCode::BAD_REQUEST,
            Self::Internal | Self::ServerFn(_) => http::StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// Tells a cache that may keep the page being rendered that part of it could not be read
/// ([`backend::web::RenderFailures`]); nothing outside a render.
#[cfg(feature = "ssr")]
pub fn note_render_failure() {
    if let Some(f) = leptos::prelude::use_context::<http::request::Parts>()
        .as_ref()
        .and_then(|p| p.extensions.get::<backend::web::RenderFailures>())
    {
        f.mark();
    }
}

/// Every backend refusal as the browser's error: the same decision and code as the other surfaces.
#[cfg(feature = "ssr")]
impl From<backend::Error> for AppError {
    fn from(e: backend::Error) -> Self {
        use backend::Error as E;
        let message = e.message();
        match e {
            E::NotFound => Self::NotFound,
            E::Unauthenticated => Self::Unauthorized,
            E::Forbidden(message) => Self::Forbidden { message },
            E::Invalid { field, message } => Self::Validation { field, message },
            E::Db(_) | E::Internal(_) | E::Unavailable { .. } => {
                note_render_failure();
                if e.code() == "unavailable" {
                    tracing::warn!(error = %e, "dependency unavailable");
                    Self::Unavailable { message }
                } else {
                    tracing::error!(error = ?e, "server function failed");
                    Self::Internal
                }
            }
            other => Self::Refused {
                code: other.code().to_owned(),
                message,
            },
        }
    }
}
