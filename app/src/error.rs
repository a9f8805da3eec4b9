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
