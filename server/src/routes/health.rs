//! Liveness and readiness probes.
//!
//! * `GET /health`: the process is alive and serving (no dependency checks; always 200).
//! * `GET /ready`: Postgres and Redis answer within 1.5 s each; otherwise 503. Only a caller with the operator
//!   token (`Authorization: Bearer $OPS_TOKEN`) is told which dependency fails, why, and the latencies: error
//!   texts can carry internal addresses. nginx does not pass `/ready` (orchestrators probe the app directly).

use axum::{
    Json, Router,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::IntoResponse,
    routing::get,
};
use serde_json::{Map, Value, json};

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
}

/// Liveness: 200 while the process can answer.
pub async fn health() -> impl IntoResponse {
    Json(json!({ "status": "ok", "version": env!("CARGO_PKG_VERSION") }))
}

/// Readiness: 200 when every dependency answers, else 503; details for operators only.
pub async fn ready(State(ctx): State<backend::Ctx>, headers: HeaderMap) -> impl IntoResponse {
    let report = ctx.readiness().await;
    if !crate::routes::ops::has_ops_token(&ctx.settings, &headers) {
        return if report.is_ready() {
            (StatusCode::OK, Json(json!({ "status": "ready" })))
        } else {
            tracing::warn!(failing = ?report.checks.iter().filter(|c| c.error.is_some()).map(|c| c.name).collect::<Vec<_>>(), "not ready");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "status": "not_ready" })),
            )
        };
    }
    let mut checks = Map::new();
    let mut failing = Vec::new();
    for c in &report.checks {
        let value = match &c.error {
            None => json!({ "status": "ok", "latency_ms": c.latency_ms }),
            Some(e) => {
                failing.push(c.name);
                json!({ "status": "error", "error": e, "latency_ms": c.latency_ms })
            }
        };
        checks.insert(c.name.to_owned(), value);
    }
    if failing.is_empty() {
        (
            StatusCode::OK,
            Json(json!({ "status": "ready", "checks": Value::Object(checks) })),
        )
    } else {
        tracing::warn!(failing = ?failing, "not ready");
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({
                "status": "not_ready",
                "failing": failing,
                "message": format!("unavailable: {}", failing.join(", ")),
                "checks": Value::Object(checks),
            })),
        )
    }
}
