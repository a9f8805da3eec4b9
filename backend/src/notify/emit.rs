//! Emitting an event: the `notify_event` row and its `notify_fanout` job row, in the caller's transaction.

use sqlx::PgConnection;
use uuid::Uuid;

use super::{catalogue::Audience, event::Event, fanout, ids};
use crate::{
    clock::Clock,
    jobs::{JobQueue, NOTIFY_QUEUE},
};

/// What [`emit`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Emitted {
    pub event_id: Uuid,
    /// The fan-out job to push after committing; `None` when the event existed already (same dedupe key) or
    /// needs no fan-out.
    pub job_id: Option<Uuid>,
}

/// Writes `event` (occurred now, by `clock`) and its fan-out job in the caller's transaction. An event with
/// a dedupe key that was emitted before is not written again (`job_id` is then `None`). Push the job with
/// [`push`] after committing; if that is forgotten or Redis is down, the reconciler pushes it.
///
/// # Errors
/// Database errors.
pub async fn emit(
    conn: &mut PgConnection,
    jobs: &JobQueue,
    clock: &Clock,
    event: &Event,
) -> sqlx::Result<Emitted> {
    let spec = event.spec();
    let dedupe_key = event.dedupe_key();
    let event_id = dedupe_key.as_deref().map_or_else(Uuid::new_v4, ids::event);
    let occurred_at = clock.now();
    // Events for an address (the account flow mails) are delivered by their own path: born fanned out.
    let needs_fanout = spec.audience != Audience::Address;
    let payload = serde_json::to_value(event).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    let inserted = sqlx::query_scalar!(
        r#"insert into notify_event (event_id, critical, event_type, category, audience, user_id, dedupe_key,
               coalesce_key, payload, occurred_at, fanned_out_at, paper_run_id)
           values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, case when $11 then null else $10::timestamptz end,
                   $12)
           on conflict do nothing
           returning event_id"#,
        event_id,
        spec.critical,
        spec.name,
        spec.category.as_str(),
        spec.audience.as_str(),
        event.user_id(),
        dedupe_key,
        event.coalesce_key(),
        payload,
        occurred_at,
        needs_fanout,
        event.paper_run().map(|r| r.run_id),
    )
    .fetch_optional(&mut *conn)
    .await?;
    if inserted.is_none() || !needs_fanout {
        return Ok(Emitted {
            event_id,
            job_id: None,
        });
    }
    let mut job = jobs.new_job(
        NOTIFY_QUEUE,
        fanout::KIND,
        serde_json::json!(fanout::Payload { event_id }),
    );
    job.dedupe_key = Some(format!("{}:{event_id}", fanout::KIND));
    let job_id = jobs.insert(conn, &job).await?;
    metrics::counter!("notify_events_total", "type" => spec.name).increment(1);
    Ok(Emitted { event_id, job_id })
}

/// Pushes the fan-out jobs of committed emits to Redis (a failed push is logged; the reconciler retries).
pub async fn push(jobs: &JobQueue, emitted: &[Emitted]) {
    for job_id in emitted.iter().filter_map(|e| e.job_id) {
        jobs.push(NOTIFY_QUEUE, job_id).await;
    }
}
