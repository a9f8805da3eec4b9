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
    /// Job counts: admins only (`None` for everyone else).
    pub jobs: Option<JobCounts>,
}

/// Jobs by state, as admins see them on the status page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobCounts {
    pub queued: i64,
    pub running: i64,
    pub failed: i64,
}

/// Checks Postgres and Redis. Anyone sees whether each dependency is up; only admins see why one is down (the
/// error text can name internal hosts and paths) and the job counts.
#[server(endpoint = "status", input = leptos::server_fn::codec::GetUrl)]
pub async fn get_status() -> Result<ServiceStatus, AppError> {
    let ctx = expect_context::<backend::Ctx>();
    let admin = crate::api::account::ssr::current_user()
        .await
        .ok()
        .flatten()
        .is_some_and(|u| u.is_admin());
    let report = ctx.readiness().await;
    let jobs = if admin {
        backend::jobs::store::counts(&ctx.db)
            .await
            .ok()
            .map(|c| JobCounts {
                queued: c.queued,
                running: c.running,
                failed: c.failed,
            })
    } else {
        None
    };
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
                detail: match c.error {
                    None => "reachable".to_owned(),
                    Some(e) if admin => e,
                    Some(_) => "unavailable".to_owned(),
                },
                latency_ms: c.latency_ms,
            })
            .collect(),
        jobs,
    })
}

#[cfg(feature = "ssr")]
fn chrono_now() -> String {
    backend::now_rfc3339()
}
