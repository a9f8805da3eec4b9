//! Issue 11, jobs and metrics: retries with back-off scheduled from Postgres (a real SMTP outage), bounded
//! re-delivery when workers (re)connect, queue separation with the real binary, metrics a worker exposes and
//! the alert rules need, retention by housekeeping, and what `/ready` and `/status` tell strangers.

use backend::{Ctx, jobs::store};
use uuid::Uuid;

mod metrics;
mod redelivery;
mod retention;
mod retries;
mod status;

async fn job(ctx: &Ctx, id: Uuid) -> store::JobRow {
    store::get(&ctx.db, id).await.unwrap().unwrap()
}
