//! Reconciliation with the payment provider (docs/billing.md, "Reconciliation"): the `billing_reconcile` job,
//! run every `BILLING_RECONCILE_INTERVAL_SECS` (a day) and on an administrator's "Reconcile now", repairs what
//! lost webhook deliveries left behind (an outage of Vortex, of the network, a misconfigured endpoint).
//!
//! 1. **Events.** The provider's event list (`GET /v1/events`, the types of [`webhook::EVENTS`], 100 a page,
//!    newest first) over a window of creation times, from a watermark: the previous complete window's end minus
//!    [`OVERLAP`] (the first run: [`EVENT_HORIZON`], as far back as Stripe keeps events). Each event goes through
//!    the webhook's own `webhook::process`: one processed before (by its webhook or an earlier run) does
//!    nothing, the others fetch their subscription and apply it, so order and repeats do not matter. A run reads
//!    at most `BILLING_RECONCILE_MAX_PAGES` pages; one that stops early (the budget, or the provider failing)
//!    records the last event it fully processed, and the next run lists the same window on from there
//!    (`starting_after`; from that event's creation time if the provider no longer knows it).
//! 2. **Subscriptions.** Every stored subscription that is not final (`canceled`, `incomplete_expired`), and any
//!    whose period ended since it was last read, at most [`SYNC_BATCH`] per run (least recently read first), is
//!    read from the provider and stored through `sync::apply` — a cancel whose webhook was lost ends the paid
//!    plan. An error is recorded for that subscription and the others go on; after
//!    [`MAX_FAILURES_IN_A_ROW`] failures in a row the rest wait for the next run.
//! 3. **Record.** Each run is a `billing_reconcile_run` row (window, progress, counts, up to [`MAX_ERRORS`]
//!    errors) written as it goes, metrics (`billing_reconcile_*`) and log lines without secrets.
//!
//! One run at a time: the job's dedupe key (one queued or running) and a Postgres advisory lock held for the
//! run (a job re-delivered after its lease expired finds it taken). The schedule checks hourly whether a run is
//! due ([`due_after`]): a day after a run that finished `ok`; an hour after one that did not (failed, or stopped
//! early), doubling while they keep failing, up to the interval.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use super::{
    stripe::Stripe,
    sync,
    webhook::{self, Handled, Provider, Source},
};
use crate::{
    Actor, Ctx,
    error::{Error, Result},
    jobs::{DEFAULT_QUEUE, JobCtx, JobError, JobKind, NewJob, Schedule},
    notify, plans,
    settings::Settings,
};

pub const KIND: &str = "billing_reconcile";
/// Shared by scheduled and requested runs: at most one queued or running.
const DEDUPE_KEY: &str = "billing_reconcile";
/// Stripe keeps events for 30 days: nothing older can be listed.
pub const EVENT_HORIZON: chrono::TimeDelta = chrono::TimeDelta::days(30);
/// A new window starts this long before the previous one ended (events created just before its end may have
/// been listed only later).
pub const OVERLAP: chrono::TimeDelta = chrono::TimeDelta::hours(1);
/// Subscriptions read and stored per run at most.
pub const SYNC_BATCH: i64 = 1_000;
/// Subscription failures in a row after which the rest wait for the next run (the provider is down).
pub const MAX_FAILURES_IN_A_ROW: u32 = 3;
/// Error texts kept per run.
pub const MAX_ERRORS: usize = 20;
/// How often the schedule looks whether a run is due, and how soon a run that did not finish `ok` is retried.
pub const CHECK_EVERY: Duration = Duration::from_secs(3_600);
/// Most runs [`overview`] lists.
pub const MAX_RUNS: i64 = 100;
/// The audit event of "Reconcile now".
pub const REQUESTED: &str = "billing_reconcile_requested";

/// Checked every hour (at most every `BILLING_RECONCILE_INTERVAL_SECS`) by the workers serving `default`, only
/// with a payment provider; [`enqueue_scheduled`] decides whether a run is due.
pub const JOB: JobKind = JobKind {
    schedule: Some(Schedule {
        every: check_every,
        enqueue: |ctx| Box::pin(enqueue_scheduled(ctx)),
        at_start: Some(|ctx| Box::pin(export_at_start(ctx))),
    }),
    ..JobKind::new(KIND, DEFAULT_QUEUE, |job| Box::pin(run(job)))
};

fn check_every(s: &Settings) -> Duration {
    if s.billing.enabled() {
        s.billing.reconcile_interval.min(CHECK_EVERY)
    } else {
        Duration::ZERO
    }
}

/// What started a run (`billing_reconcile_run.trigger`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// The schedule (`BILLING_RECONCILE_INTERVAL_SECS`).
    Schedule,
    /// An administrator's "Reconcile now" (console or REST).
    Admin,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Schedule => "schedule",
            Self::Admin => "admin",
        }
    }
}

/// The job's payload.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Payload {
    pub trigger: Trigger,
    #[serde(default)]
    pub requested_by: Option<Uuid>,
}

fn new_job(ctx: &Ctx, payload: &Payload) -> NewJob {
    let mut job = ctx.jobs.new_job(
        DEFAULT_QUEUE,
        KIND,
        serde_json::to_value(payload).unwrap_or_default(),
    );
    job.dedupe_key = Some(DEDUPE_KEY.into());
    job
}

/// How long after the latest run the next scheduled one is due: `interval` after a run that finished `ok`;
/// after `failed_in_a_row` runs in a row that did not, an hour, doubled for each earlier one (1 h, 2 h, 4 h …),
/// never more than `interval` — a provider outage is retried soon, a key that cannot list events is not asked
/// every hour for ever.
pub fn due_after(interval: Duration, failed_in_a_row: u32) -> Duration {
    if failed_in_a_row == 0 {
        return interval;
    }
    CHECK_EVERY
        .saturating_mul(1 << (failed_in_a_row - 1).min(16))
        .min(interval)
}

/// The gauge of when a run last finished `ok` (Unix seconds), for the alert `VortexBillingReconcileFailing`.
pub const LAST_OK_GAUGE: &str = "billing_reconcile_last_ok_timestamp_seconds";

/// Exports, from Postgres (so a restarted worker reports it at once), when a run last finished `ok` — before
/// any did, when the first run started; before any ran, now (a run is queued at once) — and the schedule's
/// interval. Only with a schedule: without one nothing is due, and nothing alerts.
async fn export_health(ctx: &Ctx, interval: Duration) -> sqlx::Result<()> {
    let last_ok = sqlx::query_scalar!(
        r#"select extract(epoch from coalesce(max(finished_at) filter (where outcome = 'ok'), min(started_at),
                  now()))::float8 as "t!"
           from billing_reconcile_run"#
    )
    .fetch_one(&ctx.db)
    .await?;
    metrics::gauge!(LAST_OK_GAUGE).set(last_ok);
    metrics::gauge!("billing_reconcile_interval_seconds").set(interval.as_secs_f64());
    Ok(())
}

/// [`export_health`] when a worker starts (with billing and a schedule), so a restarted worker reports when
/// a run last finished `ok` at once rather than after the first hourly check.
async fn export_at_start(ctx: &Ctx) {
    let interval = ctx.settings.billing.reconcile_interval;
    if !ctx.settings.billing.enabled() || interval.is_zero() {
        return;
    }
    if let Err(e) = export_health(ctx, interval).await {
        tracing::warn!(error = %e, "could not read the last reconciliation for the metrics");
    }
}

/// Enqueues a scheduled run if one is due ([`due_after`] the latest run; at once when none ever ran) and none
/// is queued or running. `Ok(None)` when not due or already pending.
///
/// # Errors
/// Database errors.
pub async fn enqueue_scheduled(ctx: &Ctx) -> sqlx::Result<Option<Uuid>> {
    let interval = ctx.settings.billing.reconcile_interval;
    if !ctx.settings.billing.enabled() || interval.is_zero() {
        return Ok(None);
    }
    export_health(ctx, interval).await?;
    let mut tx = ctx.db.begin().await?;
    // Several workers check at once: one decides at a time.
    sqlx::query!("select pg_advisory_xact_lock(hashtextextended('billing_reconcile:schedule', 0))")
        .execute(&mut *tx)
        .await?;
    let latest = sqlx::query!(
        r#"select outcome, extract(epoch from now() - started_at)::float8 as "age!"
           from billing_reconcile_run order by started_at desc limit 17"#
    )
    .fetch_all(&mut *tx)
    .await?;
    if let Some(last) = latest.first() {
        let failed = latest.iter().take_while(|r| r.outcome != "ok").count();
        let wait = due_after(interval, u32::try_from(failed).unwrap_or(u32::MAX));
        if last.age < wait.as_secs_f64() {
            return Ok(None);
        }
    }
    let job = new_job(
        ctx,
        &Payload {
            trigger: Trigger::Schedule,
            requested_by: None,
        },
    );
    let id = ctx.jobs.insert(&mut tx, &job).await?;
    tx.commit().await?;
    if let Some(id) = id {
        ctx.jobs.push(DEFAULT_QUEUE, id).await;
    }
    Ok(id)
}

/// "Reconcile now": queues a run (administrators with a read-write credential). Returns its job id. Audited
/// as `billing_reconcile_requested`, in the transaction that queues it.
///
/// # Errors
/// [`Error::Unauthenticated`], [`Error::Forbidden`] (not an admin, a read-only token); [`Error::Conflict`] when
/// billing is off or a run is already queued or running; database errors.
pub async fn request(actor: &Actor, ctx: &Ctx) -> Result<Uuid> {
    let admin = actor.admin_writer()?.map(|u| u.user_id);
    if !ctx.settings.billing.enabled() {
        return Err(Error::Conflict(
            "billing is off on this instance (PAYMENT_PROVIDER=none): there is no payment provider to reconcile with"
                .into(),
        ));
    }
    let mut job = new_job(
        ctx,
        &Payload {
            trigger: Trigger::Admin,
            requested_by: admin,
        },
    );
    job.request_id.clone_from(&actor.request_id);
    let mut tx = ctx.db.begin().await?;
    let id = ctx.jobs.insert(&mut tx, &job).await?.ok_or_else(|| {
        Error::Conflict(
            "a reconciliation is already queued or running; its result is shown here when it finishes".into(),
        )
    })?;
    actor
        .audit(&mut tx, REQUESTED, None, json!({ "job_id": id }))
        .await?;
    tx.commit().await?;
    ctx.jobs.push(DEFAULT_QUEUE, id).await;
    tracing::info!(job_id = %id, "billing reconciliation requested");
    Ok(id)
}

/// One reconciliation run, as recorded.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Run {
    pub run_id: Uuid,
    pub job_id: Option<Uuid>,
    /// `schedule` or `admin`.
    pub trigger: String,
    pub requested_by: Option<Uuid>,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// `running`, `ok`, `partial` (stopped early or some subscriptions failed: the next run continues),
    /// `failed` (nothing could be read) or `abandoned` (its worker died; the next run continued).
    pub outcome: String,
    /// The window of event creation times listed.
    pub events_from: DateTime<Utc>,
    pub events_to: DateTime<Utc>,
    /// Events created up to this time are still to be listed by the next run (`None` once the window was read
    /// to its end).
    pub events_resume: Option<DateTime<Utc>>,
    pub events_complete: bool,
    pub pages: i32,
    pub events_seen: i32,
    /// Events processed now (their webhook had not arrived).
    pub events_processed: i32,
    /// Events processed before (by their webhook or an earlier run).
    pub events_duplicate: i32,
    pub subscriptions_synced: i32,
    pub subscriptions_failed: i32,
    pub errors: Vec<String>,
}

/// What the subscriptions page and `GET /api/v1/admin/billing/reconcile` show.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Overview {
    /// A payment provider is configured (otherwise nothing runs and "Reconcile now" is refused).
    pub enabled: bool,
    /// `BILLING_RECONCILE_INTERVAL_SECS` (0: only when an administrator asks).
    pub interval_secs: u64,
    /// A run is queued or running now.
    pub pending: bool,
    /// The newest runs, newest first.
    pub runs: Vec<Run>,
}

/// The newest `limit` runs and whether one is pending (administrators).
///
/// # Errors
/// [`Error::Unauthenticated`], [`Error::Forbidden`], [`Error::Invalid`] (`limit`), database errors.
pub async fn overview(actor: &Actor, ctx: &Ctx, limit: i64) -> Result<Overview> {
    actor.admin()?;
    if !(1..=MAX_RUNS).contains(&limit) {
        return Err(Error::invalid(
            "limit",
            format!("must be between 1 and {MAX_RUNS}"),
        ));
    }
    let pending = sqlx::query_scalar!(
        r#"select exists (select 1 from job where dedupe_key = $1 and status in ('queued', 'running'))
           as "pending!""#,
        DEDUPE_KEY,
    )
    .fetch_one(&ctx.db)
    .await?;
    Ok(Overview {
        enabled: ctx.settings.billing.enabled(),
        interval_secs: ctx.settings.billing.reconcile_interval.as_secs(),
        pending,
        runs: latest(ctx, None, limit).await?,
    })
}

/// The newest `limit` runs (or the run `only`).
async fn latest(ctx: &Ctx, only: Option<Uuid>, limit: i64) -> Result<Vec<Run>> {
    let rows = sqlx::query!(
        r#"select run_id, job_id, trigger, requested_by, started_at, finished_at, outcome, events_from,
                  events_to, events_upper, events_cursor_created, events_complete, pages, events_seen,
                  events_processed, events_duplicate, subscriptions_synced, subscriptions_failed, errors
           from billing_reconcile_run where $2::uuid is null or run_id = $2
           order by started_at desc, run_id limit $1"#,
        limit,
        only,
    )
    .fetch_all(&ctx.db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Run {
            run_id: r.run_id,
            job_id: r.job_id,
            trigger: r.trigger,
            requested_by: r.requested_by,
            started_at: r.started_at,
            finished_at: r.finished_at,
            outcome: r.outcome,
            events_from: r.events_from,
            events_to: r.events_to,
            events_resume: (!r.events_complete)
                .then(|| r.events_cursor_created.unwrap_or(r.events_upper)),
            events_complete: r.events_complete,
            pages: r.pages,
            events_seen: r.events_seen,
            events_processed: r.events_processed,
            events_duplicate: r.events_duplicate,
            subscriptions_synced: r.subscriptions_synced,
            subscriptions_failed: r.subscriptions_failed,
            errors: serde_json::from_value(r.errors).unwrap_or_default(),
        })
        .collect())
}

async fn run(job: &JobCtx) -> std::result::Result<(), JobError> {
    let p: Payload = job.payload()?;
    run_once(&job.ctx, Some(job.job.job_id), p.trigger, p.requested_by)
        .await
        .map(|_| ())
        .map_err(|e| JobError::Retry(anyhow::Error::new(e)))
}

/// An event fully processed: its id (the list's `starting_after`) and creation time.
type Cursor = (String, DateTime<Utc>);

/// What a run lists: events created in `[from, upper]` (`upper` ≤ `to`, the window's end), newest first, after
/// `cursor` when the previous run stopped there.
#[derive(Debug, Clone)]
struct Window {
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    upper: DateTime<Utc>,
    cursor: Option<Cursor>,
}

/// Continues the latest run's window if it was not read to its end, or starts the next one at the watermark.
async fn window(ctx: &Ctx, now: DateTime<Utc>) -> Result<Window> {
    let horizon = now - EVENT_HORIZON;
    let last = sqlx::query!(
        r#"select events_from, events_to, events_upper, events_cursor, events_cursor_created, events_complete
           from billing_reconcile_run where outcome <> 'running' order by started_at desc limit 1"#
    )
    .fetch_optional(&ctx.db)
    .await?;
    let fresh = |from: DateTime<Utc>| Window {
        from: from.max(horizon).min(now),
        to: now,
        upper: now,
        cursor: None,
    };
    let Some(l) = last else {
        return Ok(fresh(horizon));
    };
    if l.events_complete {
        return Ok(fresh(l.events_to - OVERLAP));
    }
    let cursor = l.events_cursor.zip(l.events_cursor_created);
    let lowest = cursor.as_ref().map_or(l.events_upper, |c| c.1);
    if lowest < horizon {
        // The rest of that window is older than the provider keeps: nothing of it can be listed any more.
        tracing::warn!(from = %l.events_from, upto = %lowest, "billing events older than the provider keeps were never listed");
        return Ok(fresh(l.events_to - OVERLAP));
    }
    // The same window (the provider lists nothing older than it keeps, whatever `from` says).
    Ok(Window {
        from: l.events_from,
        to: l.events_to,
        upper: l.events_upper,
        cursor,
    })
}

/// Counts, position and errors of a run in progress.
#[derive(Debug, Default)]
struct Tally {
    pages: i32,
    seen: i32,
    processed: i32,
    duplicate: i32,
    synced: i32,
    failed: i32,
    complete: bool,
    /// The listing's `created[lte]`.
    upper: Option<DateTime<Utc>>,
    /// The last event fully processed (the next listing starts after it).
    cursor: Option<Cursor>,
    errors: Vec<String>,
}

impl Tally {
    fn error(&mut self, e: String) {
        tracing::warn!(error = %e, "billing reconciliation");
        if self.errors.len() < MAX_ERRORS {
            self.errors.push(e.chars().take(300).collect());
        }
    }

    fn outcome(&self) -> &'static str {
        if self.complete && self.errors.is_empty() {
            "ok"
        } else if self.pages == 0 && self.synced == 0 {
            "failed"
        } else {
            "partial"
        }
    }
}

/// Runs one reconciliation now (the job's body). Returns the run as recorded; `None` when billing is off or
/// another run holds the lock (nothing is recorded then).
///
/// # Errors
/// Database errors (the provider's are recorded in the run, not returned).
pub async fn run_once(
    ctx: &Ctx,
    job_id: Option<Uuid>,
    trigger: Trigger,
    requested_by: Option<Uuid>,
) -> Result<Option<Run>> {
    if !ctx.settings.billing.enabled() {
        tracing::warn!("billing reconciliation skipped: billing is off (PAYMENT_PROVIDER=none)");
        return Ok(None);
    }
    let stripe = Stripe::from_settings(&ctx.settings.billing)?;
    // Held until this function returns (the transaction rolls back when dropped, which releases it).
    let mut lock = ctx.db.begin().await?;
    let locked = sqlx::query_scalar!(
        r#"select pg_try_advisory_xact_lock(hashtextextended('billing_reconcile', 0)) as "locked!""#
    )
    .fetch_one(&mut *lock)
    .await?;
    if !locked {
        tracing::info!("billing reconciliation skipped: another run is in progress");
        return Ok(None);
    }
    // A run still marked running lost its worker (this one holds the lock): keep what it recorded.
    sqlx::query!(
        "update billing_reconcile_run set outcome = 'abandoned', finished_at = now() where outcome = 'running'"
    )
    .execute(&ctx.db)
    .await?;
    let now = Utc::now();
    let w = window(ctx, now).await?;
    let run_id = Uuid::new_v4();
    sqlx::query!(
        r#"insert into billing_reconcile_run
               (run_id, job_id, trigger, requested_by, started_at, events_from, events_to, events_upper,
                events_cursor, events_cursor_created)
           values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"#,
        run_id,
        job_id,
        trigger.as_str(),
        requested_by,
        now,
        w.from,
        w.to,
        w.upper,
        w.cursor.as_ref().map(|c| c.0.as_str()),
        w.cursor.as_ref().map(|c| c.1),
    )
    .execute(&ctx.db)
    .await?;
    tracing::info!(
        %run_id, trigger = trigger.as_str(), from = %w.from, to = %w.to, upto = %w.upper,
        after = w.cursor.as_ref().map_or("", |c| c.0.as_str()), "billing reconciliation started"
    );
    let mut tally = Tally {
        upper: Some(w.upper),
        cursor: w.cursor.clone(),
        ..Tally::default()
    };
    let mut provider = Provider::remembering(stripe);
    events(ctx, run_id, &w, &mut provider, &mut tally).await?;
    subscriptions(ctx, run_id, &mut provider, &mut tally).await;
    let outcome = tally.outcome();
    save(ctx, run_id, &tally, Some(outcome)).await?;
    lock.rollback().await?;
    metrics::counter!("billing_reconcile_runs_total", "outcome" => outcome).increment(1);
    if outcome == "ok" {
        metrics::gauge!(LAST_OK_GAUGE).set(Utc::now().timestamp() as f64);
    }
    tracing::info!(
        %run_id, outcome, pages = tally.pages, events_seen = tally.seen, events_processed = tally.processed,
        events_duplicate = tally.duplicate, subscriptions_synced = tally.synced,
        subscriptions_failed = tally.failed, errors = tally.errors.len(),
        "billing reconciliation finished"
    );
    Ok(latest(ctx, Some(run_id), 1).await?.pop())
}

/// Writes the run's progress (after each page) or its end (`outcome`).
async fn save(ctx: &Ctx, run_id: Uuid, t: &Tally, outcome: Option<&str>) -> Result<()> {
    sqlx::query!(
        r#"update billing_reconcile_run set
               pages = $2, events_seen = $3, events_processed = $4, events_duplicate = $5,
               subscriptions_synced = $6, subscriptions_failed = $7, events_complete = $8,
               events_upper = coalesce($9, events_upper), events_cursor = $10, events_cursor_created = $11,
               errors = $12, outcome = coalesce($13, outcome),
               finished_at = case when $13::text is null then null else now() end
           where run_id = $1"#,
        run_id,
        t.pages,
        t.seen,
        t.processed,
        t.duplicate,
        t.synced,
        t.failed,
        t.complete,
        t.upper,
        t.cursor.as_ref().map(|c| c.0.as_str()),
        t.cursor.as_ref().map(|c| c.1),
        json!(t.errors),
        outcome,
    )
    .execute(&ctx.db)
    .await?;
    Ok(())
}

/// Step 1: the provider's events of the window, newest first, each through the webhook's processing. Stops at
/// the page budget or the first failure that a later run may not have (the provider unreachable); the position
/// reached is saved after every page and at the stop.
async fn events(
    ctx: &Ctx,
    run_id: Uuid,
    w: &Window,
    provider: &mut Provider,
    t: &mut Tally,
) -> Result<()> {
    let max_pages = ctx.settings.billing.reconcile_max_pages;
    let from = w.from.timestamp();
    // Pages read by this call (an attempt that fell back is not one; it happens once at most).
    let mut fell_back = false;
    let mut read = 0;
    while read < max_pages {
        let upper = t.upper.unwrap_or(w.upper).timestamp();
        let after = t.cursor.as_ref().map(|c| c.0.clone());
        let page = match provider
            .client(ctx)?
            .events(webhook::EVENTS, from, upper, after.as_deref())
            .await
        {
            Ok(p) => p,
            // The provider no longer knows the event to continue after: list again from its creation time
            // (the events of that second come again and are duplicates).
            Err(e) if !fell_back && !matches!(e, Error::Unavailable { .. }) && after.is_some() => {
                fell_back = true;
                tracing::warn!(error = %text(&e), after = ?after, "billing events: listing after the saved event failed; listing from its creation time");
                t.upper = t.cursor.take().map(|c| c.1).or(t.upper);
                continue;
            }
            Err(e) => {
                t.error(format!("listing events: {}", text(&e)));
                save(ctx, run_id, t, None).await?;
                return Ok(());
            }
        };
        read += 1;
        t.pages += 1;
        for ev in &page.data {
            t.seen += 1;
            let id = ev.get("id").and_then(|v| v.as_str()).unwrap_or_default();
            let created = ev
                .get("created")
                .and_then(serde_json::Value::as_i64)
                .and_then(|c| DateTime::from_timestamp(c, 0));
            match webhook::process(ctx, ev, Source::Reconcile, provider).await {
                Ok(Handled::Processed(outcome)) => {
                    t.processed += 1;
                    metrics::counter!("billing_reconcile_events_total", "result" => "processed")
                        .increment(1);
                    tracing::info!(%run_id, event = %sync::clip(id), outcome = %outcome, "billing event recovered");
                }
                Ok(Handled::Duplicate) => {
                    t.duplicate += 1;
                    metrics::counter!("billing_reconcile_events_total", "result" => "duplicate")
                        .increment(1);
                }
                // Not an event: it can never be processed, so it does not hold the run up.
                Err(e @ Error::Invalid { .. }) => {
                    metrics::counter!("billing_reconcile_events_total", "result" => "failed")
                        .increment(1);
                    t.error(format!("event {}: {}", sync::clip(id), text(&e)));
                }
                Err(e) => {
                    metrics::counter!("billing_reconcile_events_total", "result" => "failed")
                        .increment(1);
                    t.error(format!("event {}: {}", sync::clip(id), text(&e)));
                    save(ctx, run_id, t, None).await?;
                    return Ok(());
                }
            }
            if let (false, Some(c)) = (id.is_empty() || id.len() > 255, created) {
                t.cursor = Some((id.to_owned(), c));
            }
        }
        if !page.has_more {
            t.complete = true;
            t.cursor = None;
            save(ctx, run_id, t, None).await?;
            return Ok(());
        }
        if page.data.is_empty() {
            t.error("listing events: an empty page said more would follow".into());
            save(ctx, run_id, t, None).await?;
            return Ok(());
        }
        save(ctx, run_id, t, None).await?;
    }
    t.error(format!(
        "stopped after {max_pages} pages of events (BILLING_RECONCILE_MAX_PAGES); the next run continues with those created up to {}",
        t.cursor
            .as_ref()
            .map(|c| c.1)
            .or(t.upper)
            .map(|r| r.to_rfc3339())
            .unwrap_or_default()
    ));
    Ok(())
}

/// Step 2: every subscription not final (or whose period ended since it was read), read and stored.
async fn subscriptions(ctx: &Ctx, run_id: Uuid, provider: &mut Provider, t: &mut Tally) {
    let rows = match sqlx::query!(
        r#"select user_id, subscription_id as "subscription_id!" from subscription
           where subscription_id is not null
             and (status is null or status not in ('canceled', 'incomplete_expired')
                  or (current_period_end < now() and (observed_at is null or observed_at < current_period_end)))
           order by observed_at asc nulls first, user_id
           limit $1"#,
        SYNC_BATCH,
    )
    .fetch_all(&ctx.db)
    .await
    {
        Ok(r) => r,
        Err(e) => {
            t.error(format!("listing subscriptions: {e}"));
            return;
        }
    };
    let total = rows.len();
    let mut in_a_row = 0;
    let change = format!("reconcile:{run_id}");
    for (i, r) in rows.into_iter().enumerate() {
        let sub = sync::clip(&r.subscription_id);
        match sync_one(ctx, provider, &r.subscription_id, &change).await {
            Ok(true) => {
                t.synced += 1;
                in_a_row = 0;
                metrics::counter!("billing_reconcile_subscriptions_total", "result" => "synced")
                    .increment(1);
            }
            Ok(false) => {
                t.failed += 1;
                metrics::counter!("billing_reconcile_subscriptions_total", "result" => "failed")
                    .increment(1);
                t.error(format!(
                    "subscription {sub} (user {}): the provider has no such subscription",
                    r.user_id
                ));
            }
            Err(e) => {
                t.failed += 1;
                in_a_row += 1;
                metrics::counter!("billing_reconcile_subscriptions_total", "result" => "failed")
                    .increment(1);
                t.error(format!(
                    "subscription {sub} (user {}): {}",
                    r.user_id,
                    text(&e)
                ));
                if in_a_row >= MAX_FAILURES_IN_A_ROW && i + 1 < total {
                    t.error(format!(
                        "{MAX_FAILURES_IN_A_ROW} subscriptions failed in a row: the other {} wait for the next run",
                        total - i - 1
                    ));
                    return;
                }
            }
        }
    }
}

/// Reads one subscription and stores it. `Ok(false)`: the provider has no such subscription (nothing changed).
async fn sync_one(ctx: &Ctx, provider: &mut Provider, id: &str, change: &str) -> Result<bool> {
    let Some((sub, observed_at)) = provider.subscription(ctx, id).await? else {
        return Ok(false);
    };
    let mut tx = ctx.db.begin().await?;
    let applied = sync::apply(ctx, &mut tx, &sub, observed_at, change).await?;
    tx.commit().await?;
    if let Some(u) = applied.user {
        plans::actions::forget_user(u);
    }
    notify::push(&ctx.jobs, &applied.emitted).await;
    Ok(true)
}

/// An error as the run records it: the action's message (database and internal errors say only that, the
/// detail is in the log).
fn text(e: &Error) -> String {
    match e {
        Error::Internal(a) => format!("{a:#}").chars().take(300).collect(),
        other => other.message(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_that_did_not_finish_ok_is_retried_after_an_hour_doubling_up_to_the_interval() {
        let day = Duration::from_secs(86_400);
        let h = |n: u64| Duration::from_secs(n * 3_600);
        assert_eq!(due_after(day, 0), day);
        assert_eq!(due_after(day, 1), h(1));
        assert_eq!(due_after(day, 2), h(2));
        assert_eq!(due_after(day, 5), h(16));
        assert_eq!(due_after(day, 6), day);
        assert_eq!(due_after(day, u32::MAX), day);
        let short = Duration::from_secs(300);
        assert_eq!(due_after(short, 0), short);
        assert_eq!(due_after(short, 1), short);
        assert_eq!(due_after(short, 3), short);
    }
}
