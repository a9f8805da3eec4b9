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

/// [`emit`] for many events in two statements (the events, then their fan-out jobs): what a producer that
/// emits hundreds of events in one transaction uses (a paper-trading step over many runs).
///
/// # Errors
/// Database errors.
pub async fn emit_many(
    conn: &mut PgConnection,
    jobs: &JobQueue,
    clock: &Clock,
    events: &[Event],
) -> sqlx::Result<Vec<Emitted>> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let occurred_at = clock.now();
    let n = events.len();
    let mut ids = Vec::with_capacity(n);
    let (mut critical, mut types, mut categories) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut audiences, mut users, mut dedupe) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut coalesce, mut payloads, mut fanout, mut runs) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for event in events {
        let spec = event.spec();
        let key = event.dedupe_key();
        ids.push(key.as_deref().map_or_else(Uuid::new_v4, ids::event));
        critical.push(spec.critical);
        types.push(spec.name.to_owned());
        categories.push(spec.category.as_str().to_owned());
        audiences.push(spec.audience.as_str().to_owned());
        users.push(event.user_id());
        dedupe.push(key);
        coalesce.push(event.coalesce_key());
        payloads.push(serde_json::to_value(event).map_err(|e| sqlx::Error::Encode(Box::new(e)))?);
        fanout.push(spec.audience != Audience::Address);
        runs.push(event.paper_run().map(|r| r.run_id));
    }
    let inserted: Vec<Uuid> = sqlx::query_scalar!(
        r#"insert into notify_event (event_id, critical, event_type, category, audience, user_id, dedupe_key,
               coalesce_key, payload, occurred_at, fanned_out_at, paper_run_id)
           select e.id, e.critical, e.type, e.category, e.audience, e.user_id, e.dedupe, e.coalesce, e.payload, $10,
                  case when e.fanout then null else $10::timestamptz end, e.run
           from unnest($1::uuid[], $2::bool[], $3::text[], $4::text[], $5::text[], $6::uuid[], $7::text[],
                       $8::text[], $9::jsonb[], $11::bool[], $12::uuid[])
                as e(id, critical, type, category, audience, user_id, dedupe, coalesce, payload, fanout, run)
           on conflict do nothing
           returning event_id"#,
        &ids,
        &critical,
        &types,
        &categories,
        &audiences,
        &users as &[Option<Uuid>],
        &dedupe as &[Option<String>],
        &coalesce as &[Option<String>],
        &payloads,
        occurred_at,
        &fanout,
        &runs as &[Option<Uuid>],
    )
    .fetch_all(&mut *conn)
    .await?;
    let inserted: std::collections::HashSet<Uuid> = inserted.into_iter().collect();
    let needs: Vec<Uuid> = ids
        .iter()
        .zip(&fanout)
        .filter(|(id, f)| **f && inserted.contains(id))
        .map(|(id, _)| *id)
        .collect();
    let mut job_ids = std::collections::HashMap::new();
    if !needs.is_empty() {
        let template = jobs.new_job(NOTIFY_QUEUE, fanout::KIND, serde_json::Value::Null);
        let new_ids: Vec<Uuid> = needs.iter().map(|_| Uuid::new_v4()).collect();
        let job_payloads: Vec<serde_json::Value> = needs
            .iter()
            .map(|&event_id| serde_json::json!(fanout::Payload { event_id }))
            .collect();
        let keys: Vec<String> = needs
            .iter()
            .map(|e| format!("{}:{e}", fanout::KIND))
            .collect();
        let rows = sqlx::query!(
            r#"insert into job (job_id, queue, kind, payload, dedupe_key, max_attempts)
               select j.id, $2, $3, j.payload, j.key, $4
               from unnest($1::uuid[], $5::jsonb[], $6::text[]) as j(id, payload, key)
               on conflict (dedupe_key) where dedupe_key is not null and status in ('queued', 'running')
               do nothing
               returning job_id, payload"#,
            &new_ids,
            &template.queue,
            &template.kind,
            template.max_attempts,
            &job_payloads,
            &keys,
        )
        .fetch_all(&mut *conn)
        .await?;
        for r in rows {
            if let Some(event_id) = r
                .payload
                .get("event_id")
                .and_then(|v| v.as_str())
                .and_then(|v| v.parse::<Uuid>().ok())
            {
                job_ids.insert(event_id, r.job_id);
            }
        }
    }
    let mut out = Vec::with_capacity(n);
    for (event, id) in events.iter().zip(&ids) {
        let job_id = job_ids.get(id).copied();
        if job_id.is_some() {
            metrics::counter!("notify_events_total", "type" => event.spec().name).increment(1);
        }
        out.push(Emitted {
            event_id: *id,
            job_id,
        });
    }
    Ok(out)
}

/// Pushes the fan-out jobs of committed emits to Redis (a failed push is logged; the reconciler retries).
pub async fn push(jobs: &JobQueue, emitted: &[Emitted]) {
    for job_id in emitted.iter().filter_map(|e| e.job_id) {
        jobs.push(NOTIFY_QUEUE, job_id).await;
    }
}
