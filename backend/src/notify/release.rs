//! The release decision (docs/design/notifications.md §4.3): whether an email or webhook delivery goes out now,
//! waits in a batch (quiet hours, a coalescing window, the hourly cap, the digest) or is suppressed. One
//! function, [`decide`], used by the fan-out for every new delivery and by the tick for batch messages
//! ([`cap`]).
//!
//! For a non-critical delivery in mode `immediate`, in order: a live storm suppression → `suppressed`; quiet
//! hours → the `quiet` batch (flushed when they end) or the digest; a coalescible type → the `coalesce` batch of
//! its key (the window opens with the first event and does not slide); the same message again (same type and
//! payload to the same destination within ten minutes) → a `coalesce` batch of its own whose window doubles
//! per repeat, up to four hours; over `NOTIFY_HOURLY_CAP` → the `cap`
//! batch (flushed as one "N more" message when the hour ends); else out now. Mode `digest` → the `digest` batch
//! (`digest_off` when the user has no digest). Criticals go out at once, and count for the cap.
//!
//! Batch joins are `insert … on conflict do nothing` then `select … for update` in the caller's transaction,
//! so racing fan-outs land in one batch; a batch the tick flushed in between is replaced by a new one.

use chrono::{DateTime, Duration, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use super::{
    catalogue::{Channel, EventSpec, Mode},
    prefs::{QuietAction, UserSchedule},
    schedule::Frequency,
};
use crate::settings::NotifySettings;

/// The kinds of batch (`notify_batch.kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchKind {
    Coalesce,
    Quiet,
    Cap,
    Digest,
}

impl BatchKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BatchKind::Coalesce => "coalesce",
            BatchKind::Quiet => "quiet",
            BatchKind::Cap => "cap",
            BatchKind::Digest => "digest",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Coalesce, Self::Quiet, Self::Cap, Self::Digest]
            .into_iter()
            .find(|k| k.as_str() == s)
    }

    /// The reason recorded on a delivery waiting in a batch of this kind.
    pub fn reason(self) -> &'static str {
        match self {
            BatchKind::Coalesce => "coalesced",
            BatchKind::Quiet => "quiet",
            BatchKind::Cap => "capped",
            BatchKind::Digest => "digest",
        }
    }
}

/// One email or webhook delivery to decide on.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    pub user_id: Uuid,
    pub channel: Channel,
    pub webhook_id: Option<Uuid>,
    pub spec: &'a EventSpec,
    pub critical: bool,
    /// `immediate` or `digest` (an `off` delivery never gets here).
    pub mode: Mode,
    pub event_type: &'a str,
    pub coalesce_key: Option<&'a str>,
    /// Clock time of the event.
    pub occurred_at: DateTime<Utc>,
    pub paper_run_id: Option<Uuid>,
    /// The event's payload: an identical one sent to the same destination lately is a repeat.
    pub payload: Option<&'a serde_json::Value>,
}

impl Candidate<'_> {
    fn dest(&self) -> (Uuid, Channel, Option<Uuid>) {
        (self.user_id, self.channel, self.webhook_id)
    }
}

/// What happens to a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Out now: `queued`, `released_at = now`, its job inserted.
    Queue,
    /// Not sent: `suppressed` with this reason.
    Suppress(String),
    /// Waits (`pending`) in this batch until `flush_at`.
    Batch {
        batch_id: Uuid,
        kind: BatchKind,
        flush_at: DateTime<Utc>,
    },
}

/// Decides on `c` at `now` (clock time) for a user with `schedule`, joining batches in the caller's
/// transaction.
///
/// # Errors
/// Database errors.
pub async fn decide(
    conn: &mut PgConnection,
    settings: &NotifySettings,
    now: DateTime<Utc>,
    schedule: &UserSchedule,
    c: &Candidate<'_>,
) -> sqlx::Result<Decision> {
    if c.critical {
        return Ok(Decision::Queue);
    }
    if let Some(cause) = suppressed_by(conn, c, now).await? {
        return Ok(Decision::Suppress(format!("suppressed_by:{cause}")));
    }
    if c.mode == Mode::Digest {
        return digest(conn, now, schedule, c).await;
    }
    if schedule.in_quiet(now) {
        if schedule.quiet_action == QuietAction::Digest && schedule.frequency != Frequency::Off {
            return digest(conn, now, schedule, c).await;
        }
        let flush_at = schedule.quiet_end(now);
        return join(conn, c.dest(), BatchKind::Quiet, "", flush_at).await;
    }
    if c.spec.coalescible
        && let Some(key) = c.coalesce_key
    {
        let flush_at = c
            .occurred_at
            .max(now - Duration::seconds(settings.coalesce_secs))
            + Duration::seconds(settings.coalesce_secs);
        return join(conn, c.dest(), BatchKind::Coalesce, key, flush_at).await;
    }
    if let Some(payload) = c.payload.filter(|_| !ON_REQUEST.contains(&c.event_type)) {
        let repeats = repeats(conn, c, payload, now).await?;
        if repeats > 0 {
            // The window doubles per repeat in the last ten minutes, up to four hours.
            let secs =
                (settings.coalesce_secs << (repeats - 1).min(12)).min(REPEAT_WINDOW_MAX_SECS);
            let key = repeat_key(c.event_type, payload);
            return join(
                conn,
                c.dest(),
                BatchKind::Coalesce,
                &key,
                now + Duration::seconds(secs),
            )
            .await;
        }
    }
    cap(conn, settings, now, c.user_id, c.channel, c.webhook_id).await
}

/// Types sent because the user asked (a test notification): each one goes out, however alike.
pub const ON_REQUEST: &[&str] = &["system.test"];

/// The longest window of a repeated identical message.
pub const REPEAT_WINDOW_MAX_SECS: i64 = 4 * 3600;

/// The coalescing key of repeats of one message: its type and a hash of its payload.
fn repeat_key(event_type: &str, payload: &serde_json::Value) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("{event_type}|{payload}").as_bytes());
    let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
    format!("repeat:{event_type}:{hex}")
}

/// How many identical messages (same type and payload) went to the candidate's destination in the last ten
/// minutes (clock time), sent on their own or in a batch message.
async fn repeats(
    conn: &mut PgConnection,
    c: &Candidate<'_>,
    payload: &serde_json::Value,
    now: DateTime<Utc>,
) -> sqlx::Result<i32> {
    let since = now - Duration::minutes(10);
    let n = sqlx::query_scalar!(
        r#"select count(*) as "n!" from notify_delivery d join notify_event e on e.event_id = d.event_id
           where d.user_id = $1 and d.channel = $2 and d.webhook_id is not distinct from $3
             and e.event_type = $4 and e.payload = $5
             and (d.released_at > $6
                  or (d.status = 'batched' and exists (
                      select 1 from notify_delivery m
                      where m.batch_id = d.batch_id and m.is_batch_message and m.released_at > $6)))"#,
        c.user_id,
        c.channel.as_str(),
        c.webhook_id,
        c.event_type,
        payload,
        since,
    )
    .fetch_one(conn)
    .await?;
    Ok(i32::try_from(n).unwrap_or(i32::MAX))
}

/// The hourly cap for one message to `user_id` × `channel` × destination: [`Decision::Queue`] under
/// `NOTIFY_HOURLY_CAP` released in the last hour (clock time), else the `cap` batch, flushed an hour after the
/// oldest message of that hour.
///
/// # Errors
/// Database errors.
pub async fn cap(
    conn: &mut PgConnection,
    settings: &NotifySettings,
    now: DateTime<Utc>,
    user_id: Uuid,
    channel: Channel,
    webhook_id: Option<Uuid>,
) -> sqlx::Result<Decision> {
    let hour = Duration::hours(1);
    let r = sqlx::query!(
        r#"select count(*) as "n!", min(released_at) as oldest
           from notify_delivery
           where user_id = $1 and channel = $2 and webhook_id is not distinct from $3
             and released_at > $4 and released_at <= $5"#,
        user_id,
        channel.as_str(),
        webhook_id,
        now - hour,
        now,
    )
    .fetch_one(&mut *conn)
    .await?;
    if r.n < settings.hourly_cap {
        return Ok(Decision::Queue);
    }
    let flush_at = r.oldest.unwrap_or(now) + hour;
    join(
        conn,
        (user_id, channel, webhook_id),
        BatchKind::Cap,
        "",
        flush_at,
    )
    .await
}

/// The live storm suppression covering `c`, if any (its cause event).
async fn suppressed_by(
    conn: &mut PgConnection,
    c: &Candidate<'_>,
    now: DateTime<Utc>,
) -> sqlx::Result<Option<Uuid>> {
    sqlx::query_scalar!(
        r#"select cause_event_id from notify_suppression
           where user_id = $1 and until > $2 and $3 = any(event_types)
             and (scope = 'user' or scope = 'paper_run:' || $4::text)
           order by until desc limit 1"#,
        c.user_id,
        now,
        c.event_type,
        c.paper_run_id.map(|r| r.to_string()),
    )
    .fetch_optional(conn)
    .await
}

/// The digest batch (the user's next digest; a settings row with the default schedule is created for a user
/// who never saved one), or `digest_off`.
async fn digest(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
    schedule: &UserSchedule,
    c: &Candidate<'_>,
) -> sqlx::Result<Decision> {
    let Some(next) = schedule.next_digest(now) else {
        return Ok(Decision::Suppress("digest_off".into()));
    };
    let at = sqlx::query_scalar!(
        r#"insert into notify_settings (user_id, next_digest_at) values ($1, $2)
           on conflict (user_id) do update
               set next_digest_at = coalesce(notify_settings.next_digest_at, excluded.next_digest_at)
           returning next_digest_at"#,
        c.user_id,
        next,
    )
    .fetch_one(&mut *conn)
    .await?;
    join(conn, c.dest(), BatchKind::Digest, "", at.unwrap_or(next)).await
}

/// Joins (or opens) the open batch of `kind`/`key` for the candidate's user and destination.
async fn join(
    conn: &mut PgConnection,
    (user_id, channel, webhook_id): (Uuid, Channel, Option<Uuid>),
    kind: BatchKind,
    key: &str,
    flush_at: DateTime<Utc>,
) -> sqlx::Result<Decision> {
    // A batch the tick flushes between our insert and our lock is no longer open: try again.
    for _ in 0..3 {
        sqlx::query!(
            r#"insert into notify_batch (batch_id, user_id, channel, webhook_id, kind, batch_key, flush_at)
               values ($1, $2, $3, $4, $5, $6, $7)
               on conflict (user_id, channel, webhook_id, kind, batch_key) where status = 'open' do nothing"#,
            Uuid::new_v4(),
            user_id,
            channel.as_str(),
            webhook_id,
            kind.as_str(),
            key,
            flush_at,
        )
        .execute(&mut *conn)
        .await?;
        if let Some(b) = sqlx::query!(
            r#"select batch_id, flush_at from notify_batch
               where user_id = $1 and channel = $2 and webhook_id is not distinct from $3 and kind = $4
                 and batch_key = $5 and status = 'open'
               for update"#,
            user_id,
            channel.as_str(),
            webhook_id,
            kind.as_str(),
            key,
        )
        .fetch_optional(&mut *conn)
        .await?
        {
            return Ok(Decision::Batch {
                batch_id: b.batch_id,
                kind,
                flush_at: b.flush_at,
            });
        }
    }
    Err(sqlx::Error::Protocol(format!(
        "could not join the open {} batch",
        kind.as_str()
    )))
}
