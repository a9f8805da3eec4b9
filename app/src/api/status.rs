//! Live service status for the status page.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// What the status page shows about one dependency.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DependencyStatus {
    pub name: String,
    pub ok: bool,
    pub detail: String,
    pub latency_ms: u64,
}

/// The service's state at one moment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceStatus {
    pub version: String,
    pub environment: String,
    pub checked_at: String,
    pub dependencies: Vec<DependencyStatus>,
    pub jobs_queued: i64,
    pub jobs_running: i64,
    pub jobs_failed: i64,
}

/// Checks Postgres and Redis and counts jobs. Public (no secrets, no user data).
#[server(endpoint = "status", input = leptos::server_fn::codec::GetUrl)]
pub async fn get_status() -> Result<ServiceStatus, AppError> {
    let ctx = expect_context::<backend::Ctx>();
    let report = ctx.readiness().await;
    let counts = backend::jobs::store::counts(&ctx.db)
        .await
        .unwrap_or_default();
    Ok(ServiceStatus {
        version: crate::VERSION.to_owned(),
        environment: ctx.settings.app_env.to_string(),
        checked_at: chrono_now(),
        dependencies: report
            .checks
            .into_iter()
            .map(|c| DependencyStatus {
                name: c.name.to_owned(),
                ok: c.error.is_none(),
                detail: c.error.unwrap_or_else(|| "reachable".to_owned()),
                latency_ms: c.latency_ms,
            })
            .collect(),
        jobs_queued: counts.queued,
        jobs_running: counts.running,
        jobs_failed: counts.failed,
    })
}

#[cfg(feature = "ssr")]
fn chrono_now() -> String {
    backend::now_rfc3339()
}
