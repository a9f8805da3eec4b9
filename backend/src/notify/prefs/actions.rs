//! The preference actions ([`get`], [`put`]) and the schedule the pipeline reads ([`schedule_of`],
//! [`reschedule`]).

use chrono::{DateTime, NaiveTime, Utc};
use chrono_tz::Tz;
use sqlx::PgConnection;
use uuid::Uuid;

use super::{
    Rule,
    doc::{self, DigestDoc, Preferences, QuietAction, QuietHours, hhmm},
    load,
};
use crate::{
    Actor, Ctx,
    clock::Clock,
    error::Result,
    notify::schedule::{self, Frequency},
};

/// The audit event of [`put`].
pub const AUDIT_EVENT: &str = "notify_preferences_changed";

/// A user's quiet hours and digest schedule, with the profile's time zone (defaults when never set: no quiet
/// hours, a daily digest at 08:00).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSchedule {
    /// The profile's time zone name, and the zone (UTC when the name is unknown).
    pub time_zone: String,
    pub tz: Tz,
    /// Local start and end; `None`: no quiet hours.
    pub quiet: Option<(NaiveTime, NaiveTime)>,
    pub quiet_action: QuietAction,
    pub frequency: Frequency,
    /// ISO weekday, Monday = 1.
    pub weekday: u8,
    pub digest_time: NaiveTime,
    /// Clock time of the next digest (as stored).
    pub next_digest_at: Option<DateTime<Utc>>,
    /// Whether the user has a `notify_settings` row.
    pub stored: bool,
}

impl UserSchedule {
    /// The first digest strictly after `after` (`None`: digests off).
    pub fn next_digest(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        schedule::next_digest(
            after,
            self.tz,
            self.frequency,
            self.weekday,
            self.digest_time,
        )
    }

    /// Whether `now` is in the quiet hours.
    pub fn in_quiet(&self, now: DateTime<Utc>) -> bool {
        self.quiet
            .is_some_and(|(s, e)| schedule::in_quiet(now, self.tz, s, e))
    }

    /// When the quiet hours `now` is in end (`now` outside them).
    pub fn quiet_end(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        self.quiet
            .map_or(now, |(s, e)| schedule::quiet_end(now, self.tz, s, e))
    }
}

fn eight() -> NaiveTime {
    NaiveTime::from_hms_opt(8, 0, 0).unwrap_or_default()
}

/// The schedule of `user_id` (`None` when the user does not exist).
///
/// # Errors
/// Database errors.
pub async fn schedule_of(
    conn: &mut PgConnection,
    user_id: Uuid,
) -> sqlx::Result<Option<UserSchedule>> {
    let Some(r) = sqlx::query!(
        r#"select u.time_zone, s.user_id as "stored?", s.quiet_start as "quiet_start?",
                  s.quiet_end as "quiet_end?", s.quiet_action as "quiet_action?",
                  s.digest_frequency as "digest_frequency?", s.digest_weekday as "digest_weekday?",
                  s.digest_time as "digest_time?", s.next_digest_at as "next_digest_at?"
           from app_user u left join notify_settings s on s.user_id = u.user_id
           where u.user_id = $1"#,
        user_id,
    )
    .fetch_optional(conn)
    .await?
    else {
        return Ok(None);
    };
    Ok(Some(UserSchedule {
        tz: schedule::tz(&r.time_zone),
        time_zone: r.time_zone,
        quiet: r.quiet_start.zip(r.quiet_end),
        quiet_action: r
            .quiet_action
            .as_deref()
            .and_then(QuietAction::parse)
            .unwrap_or(QuietAction::Defer),
        frequency: r
            .digest_frequency
            .as_deref()
            .and_then(Frequency::parse)
            .unwrap_or(Frequency::Daily),
        weekday: r
            .digest_weekday
            .and_then(|d| u8::try_from(d).ok())
            .unwrap_or(1),
        digest_time: r.digest_time.unwrap_or_else(eight),
        next_digest_at: r.next_digest_at,
        stored: r.stored.is_some(),
    }))
}

/// The actor's preferences.
///
/// # Errors
/// [`crate::Error::Unauthenticated`]; database errors.
pub async fn get(ctx: &Ctx, actor: &Actor) -> Result<Preferences> {
    let user = actor.reader()?;
    let mut conn = ctx.db.acquire().await?;
    read(&mut conn, user.user_id).await
}

async fn read(conn: &mut PgConnection, user_id: Uuid) -> Result<Preferences> {
    let mut rules = load(conn, user_id).await?;
    rules.sort_by(|a, b| {
        let k = |r: &Rule| {
            (
                r.paper_run_id,
                r.category.clone(),
                r.event_type.clone(),
                r.channel.map(|c| c.as_str()),
            )
        };
        k(a).cmp(&k(b))
    });
    let s = schedule_of(conn, user_id)
        .await?
        .ok_or(crate::Error::NotFound)?;
    let default_quiet = QuietHours::default();
    Ok(Preferences {
        rules: rules.iter().map(doc::to_doc).collect(),
        quiet_hours: QuietHours {
            enabled: s.quiet.is_some(),
            start: s.quiet.map_or(default_quiet.start, |(a, _)| hhmm(a)),
            end: s.quiet.map_or(default_quiet.end, |(_, b)| hhmm(b)),
            action: s.quiet_action,
        },
        digest: DigestDoc {
            frequency: s.frequency,
            weekday: s.weekday,
            time: hhmm(s.digest_time),
        },
        time_zone: s.time_zone,
    })
}

/// Replaces the actor's preferences with `doc` and returns them as stored.
///
/// Validates everything (errors name the field, `rules[3].mode`), keeps the locks (criticals' in-app and email,
/// security email), keeps unsubscribe vetoes unless the document sets that category's email again, writes the
/// audit entry `notify_preferences_changed` in the same transaction and recomputes the next digest, moving
/// waiting digest and quiet-hours batches with it ([`reschedule`]).
///
/// # Errors
/// [`crate::Error::Unauthenticated`], [`crate::Error::Forbidden`] (a read-only token),
/// [`crate::Error::Invalid`]; database errors.
pub async fn put(ctx: &Ctx, actor: &Actor, doc: Preferences) -> Result<Preferences> {
    let user = actor.settings_writer()?;
    let user_id = user.user_id;
    let mut tx = ctx.db.begin().await?;
    // One writer at a time per user: the settings row is the lock.
    sqlx::query!(
        "insert into notify_settings (user_id) values ($1) on conflict do nothing",
        user_id
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "select user_id from notify_settings where user_id = $1 for update",
        user_id
    )
    .fetch_one(&mut *tx)
    .await?;
    let stored = load(&mut tx, user_id).await?;
    let v = doc::validate(&doc, &stored)?;
    // Per-run rules name one of the user's own paper runs.
    let runs: Vec<Uuid> = v.rules.iter().filter_map(|r| r.paper_run_id).collect();
    if !runs.is_empty() {
        let owned: Vec<Uuid> = sqlx::query_scalar!(
            "select paper_run_id from paper_run where user_id = $1 and paper_run_id = any($2)",
            user_id,
            &runs,
        )
        .fetch_all(&mut *tx)
        .await?;
        if let Some(i) = doc
            .rules
            .iter()
            .position(|r| r.paper_run_id.is_some_and(|id| !owned.contains(&id)))
        {
            return Err(crate::Error::invalid(
                &format!("rules[{i}].paper_run_id"),
                "no paper run of yours has this id",
            ));
        }
    }

    sqlx::query!(
        "delete from notify_rule where user_id = $1 and source = 'user'",
        user_id
    )
    .execute(&mut *tx)
    .await?;
    let lifted = sqlx::query!(
        r#"delete from notify_rule
           where user_id = $1 and source = 'unsubscribe' and paper_run_id is null and category = any($2)"#,
        user_id,
        &v.lift_vetoes,
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    for r in &v.rules {
        sqlx::query!(
            r#"insert into notify_rule (rule_id, user_id, paper_run_id, category, event_type, channel, mode, source)
               values ($1, $2, $3, $4, $5, $6, $7, 'user')"#,
            Uuid::new_v4(),
            user_id,
            r.paper_run_id,
            r.category.as_deref().unwrap_or("*"),
            r.event_type.as_deref().unwrap_or("*"),
            r.channel.map_or("*", |c| c.as_str()),
            r.mode.as_str(),
        )
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query!(
        r#"update notify_settings set quiet_start = $2, quiet_end = $3, quiet_action = $4,
               digest_frequency = $5, digest_weekday = $6, digest_time = $7
           where user_id = $1"#,
        user_id,
        v.quiet.map(|q| q.0),
        v.quiet.map(|q| q.1),
        v.quiet_action.as_str(),
        v.frequency.as_str(),
        i16::from(v.weekday),
        v.digest_time,
    )
    .execute(&mut *tx)
    .await?;
    reschedule(&mut tx, user_id, &ctx.clock).await?;
    actor
        .audit(
            &mut tx,
            AUDIT_EVENT,
            None,
            serde_json::json!({
                "rules": v.rules.len(),
                "unsubscribes_lifted": v.lift_vetoes,
                "vetoes_deleted": lifted,
                "quiet_hours": v.quiet.map(|(s, e)| format!("{}-{}", hhmm(s), hhmm(e))),
                "quiet_action": v.quiet_action.as_str(),
                "digest": v.frequency.as_str(),
            }),
        )
        .await?;
    let out = read(&mut tx, user_id).await?;
    tx.commit().await?;
    Ok(out)
}

/// Recomputes `user_id`'s next digest from now (by `clock`) after their schedule or time zone changed, and moves
/// their waiting batches with it: open digest batches to the new digest time (with digests off, their items are
/// suppressed, reason `digest_off`), open quiet-hours batches to the end of the current quiet hours (or now, so
/// the next tick sends them). Does nothing for a user without settings (nothing of theirs waits).
///
/// # Errors
/// Database errors.
pub async fn reschedule(conn: &mut PgConnection, user_id: Uuid, clock: &Clock) -> sqlx::Result<()> {
    let Some(s) = schedule_of(conn, user_id).await? else {
        return Ok(());
    };
    if !s.stored {
        return Ok(());
    }
    let now = clock.now();
    let next = s.next_digest(now);
    sqlx::query!(
        "update notify_settings set next_digest_at = $2 where user_id = $1",
        user_id,
        next,
    )
    .execute(&mut *conn)
    .await?;
    if next.is_none() {
        sqlx::query!(
            r#"update notify_delivery set status = 'suppressed', reason = 'digest_off', not_before = null
               where status = 'pending' and batch_id in
                   (select batch_id from notify_batch where user_id = $1 and kind = 'digest' and status = 'open')"#,
            user_id,
        )
        .execute(&mut *conn)
        .await?;
        sqlx::query!(
            r#"update notify_batch set status = 'flushed'
               where user_id = $1 and kind = 'digest' and status = 'open'"#,
            user_id,
        )
        .execute(&mut *conn)
        .await?;
    }
    sqlx::query!(
        r#"update notify_batch set flush_at = case kind when 'digest' then coalesce($2, flush_at) else $3 end
           where user_id = $1 and status = 'open' and kind in ('digest', 'quiet')"#,
        user_id,
        next,
        s.quiet_end(now),
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!(
        r#"update notify_delivery d set not_before = b.flush_at
           from notify_batch b
           where d.batch_id = b.batch_id and b.user_id = $1 and b.status = 'open' and d.status = 'pending'"#,
        user_id,
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}
