//! `GET /metrics`: Prometheus text format. Pool gauges are sampled at scrape time. nginx does not expose this
//! route to the internet (see `nginx/`); scrape it on the private network.

use axum::{Router, extract::State, http::header, response::IntoResponse, routing::get};

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/metrics", get(metrics))
}

/// The Prometheus scrape handler (also served by `vortex worker` on `METRICS_ADDR`).
pub async fn metrics(State(ctx): State<backend::Ctx>) -> impl IntoResponse {
    let ctx = &ctx;
    let size = f64::from(ctx.db.size());
    let idle = ctx.db.num_idle() as f64;
    metrics::gauge!("db_pool_connections", "state" => "idle").set(idle);
    metrics::gauge!("db_pool_connections", "state" => "in_use").set(size - idle);
    metrics::gauge!("db_pool_max_connections")
        .set(f64::from(ctx.settings.database_max_connections));
    let redis = ctx.redis.status();
    metrics::gauge!("redis_pool_connections", "state" => "available").set(redis.available as f64);
    metrics::gauge!("redis_pool_connections", "state" => "in_use")
        .set((redis.size - redis.available) as f64);
    metrics::gauge!("redis_pool_waiting").set(redis.waiting as f64);
    if let Ok(Ok(c)) = tokio::time::timeout(
        std::time::Duration::from_millis(500),
        backend::jobs::store::counts(&ctx.db),
    )
    .await
    {
        metrics::gauge!("jobs_pending", "status" => "queued").set(c.queued as f64);
        metrics::gauge!("jobs_pending", "status" => "running").set(c.running as f64);
        metrics::gauge!("jobs_failed").set(c.failed as f64);
    }
    backend::market::lag::refresh();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        backend::telemetry::prometheus().render(),
    )
}
