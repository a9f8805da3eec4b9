//! The state every route receives: Leptos options, the backend context and per-process web limits.

use backend::Ctx;
use leptos::prelude::LeptosOptions;

/// State shared by every route.
#[derive(Clone, axum::extract::FromRef)]
pub struct AppState {
    pub leptos: LeptosOptions,
    pub ctx: Ctx,
    pub limits: WebLimits,
}

/// Per-process limits on the web routes that do heavy work (refused with 503/429 and `Retry-After` when
/// full, never queued).
#[derive(Clone)]
pub struct WebLimits {
    /// Exports being streamed (`EXPORT_MAX_CONCURRENT`).
    pub exports: std::sync::Arc<tokio::sync::Semaphore>,
    /// CSV uploads being received and stored: one at a time.
    pub uploads: std::sync::Arc<tokio::sync::Semaphore>,
}

impl WebLimits {
    pub fn new(settings: &backend::settings::Settings) -> Self {
        Self {
            exports: std::sync::Arc::new(tokio::sync::Semaphore::new(
                settings.backtest.export_max_concurrent,
            )),
            uploads: std::sync::Arc::new(tokio::sync::Semaphore::new(1)),
        }
    }
}
