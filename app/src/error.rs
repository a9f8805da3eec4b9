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
}

impl AppError {
    /// The HTTP status that matches this error.
    pub fn status(&self) -> http::StatusCode {
        match self {
            Self::NotFound => http::StatusCode::NOT_FOUND,
            Self::Unauthorized => http::StatusCode::UNAUTHORIZED,
            Self::Validation { .. } => http::StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unavailable { .. } => http::StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal | Self::ServerFn(_) => http::StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}
