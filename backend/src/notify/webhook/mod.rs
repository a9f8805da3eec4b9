//! Chat and generic webhooks (docs/design/notifications.md §6): where a destination may point ([`ssrf`]),
//! how a generic body is signed ([`sign`]), the Slack, Discord and generic bodies ([`format`]), one HTTP
//! attempt ([`send`]) and the `notify_webhook` delivery job ([`job`]).
//!
//! The actions here manage a user's destinations: [`create`] (the generic secret is returned once),
//! [`list`] (the URL is never returned, only its hint), [`test`] (one signed request, now), [`enable`] (after
//! it was disabled), [`rotate_secret`] (generic; the old secret signs too for 24 hours) and [`delete`].
//! Each checks the actor's permission and writes its audit entry in the effect's transaction. A URL is vetted
//! when it is created or tested and again before every delivery attempt.

pub mod format;
pub mod job;
pub mod send;
pub mod sign;
pub mod ssrf;

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

pub use ssrf::NetGuard;

use super::catalogue::Category;
use crate::{Actor, Ctx, Error, Result, error::ResultExt};

/// Test requests one user may send per minute.
pub const TEST_RATE_PER_MIN: u64 = 5;

/// The kind of a destination, which decides the body's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Slack,
    Discord,
    Generic,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Slack => "slack",
            Kind::Discord => "discord",
            Kind::Generic => "generic",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "slack" => Some(Kind::Slack),
            "discord" => Some(Kind::Discord),
            "generic" => Some(Kind::Generic),
            _ => None,
        }
    }
}

/// What the user asks to create.
#[derive(Debug, Clone)]
pub struct NewWebhook {
    pub name: String,
    pub kind: String,
    pub url: String,
    /// Category names (`backtests`, `system`, …); at least one.
    pub categories: Vec<String>,
}

/// A destination as its owner sees it: never the URL (a bearer secret for Slack and Discord), only its hint.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Webhook {
    pub id: Uuid,
    pub name: String,
    pub kind: String,
    pub url_hint: String,
    pub categories: Vec<String>,
    pub disabled_at: Option<DateTime<Utc>>,
    pub disabled_reason: Option<String>,
    pub consecutive_failures: i32,
    pub last_success_at: Option<DateTime<Utc>>,
    pub last_failure_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// A created destination and, for a generic one, its signing secret (shown this once).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Created {
    pub webhook: Webhook,
    pub secret: Option<String>,
}

/// `https://hooks.slack.com/…/x9Qe`: the scheme, host and the last four characters of the URL.
pub fn url_hint(url: &url::Url) -> String {
    let host = url.host_str().unwrap_or("");
    let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
    let s = url.as_str().trim_end_matches('/');
    let tail: String = s
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("{}://{host}{port}/…/{tail}", url.scheme())
}

fn refusal(r: &ssrf::Refusal) -> Error {
    Error::invalid("url", r.to_string())
}

/// Adds a destination for the actor. The URL is vetted now (and again before every delivery).
///
/// # Errors
/// [`Error::Invalid`] on `name`, `kind`, `categories` or `url` (a private or loopback address included);
/// [`Error::Limit`] past `WEBHOOK_MAX_PER_USER`; [`Error::Conflict`] for a name in use; permission errors
/// (a confirmed writer is needed: webhooks send traffic).
pub async fn create(ctx: &Ctx, actor: &Actor, new: NewWebhook) -> Result<Created> {
    let user = actor.runner()?;
    let name = new.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 80 {
        return Err(Error::invalid("name", "must be 1 to 80 characters"));
    }
    let kind = Kind::parse(new.kind.trim())
        .ok_or_else(|| Error::invalid("kind", "must be slack, discord or generic"))?;
    let mut categories = Vec::new();
    for c in &new.categories {
        let c = Category::parse(c.trim())
            .ok_or_else(|| Error::invalid("categories", format!("unknown category `{c}`")))?;
        if !categories.contains(&c.as_str().to_owned()) {
            categories.push(c.as_str().to_owned());
        }
    }
    if categories.is_empty() {
        return Err(Error::invalid("categories", "choose at least one"));
    }
    let vetted = ctx.net.vet(&new.url).await.map_err(|r| refusal(&r))?;
    let url = vetted.url.to_string();
    let hint = url_hint(&vetted.url);
    let secret = (kind == Kind::Generic).then(sign::generate_secret);
    let webhook_id = Uuid::new_v4();

    let mut tx = ctx.db.begin().await?;
    // One user's creations are serialised, so the count below is exact.
    sqlx::query!(
        "select user_id from app_user where user_id = $1 for update",
        user.user_id
    )
    .fetch_optional(&mut *tx)
    .await?;
    let count = sqlx::query_scalar!(
        r#"select count(*) as "n!" from notify_webhook where user_id = $1"#,
        user.user_id,
    )
    .fetch_one(&mut *tx)
    .await?;
    let max = ctx.settings.webhook.max_per_user;
    if count >= max {
        return Err(Error::Limit(format!("at most {max} webhooks per account")));
    }
    let webhook = sqlx::query_as!(
        Webhook,
        r#"insert into notify_webhook (webhook_id, user_id, name, kind, url, url_hint, categories, secret)
           values ($1, $2, $3, $4, $5, $6, $7, $8)
           returning webhook_id as id, name, kind, url_hint, categories, disabled_at, disabled_reason,
                     consecutive_failures, last_success_at, last_failure_at, created_at"#,
        webhook_id,
        user.user_id,
        &name,
        kind.as_str(),
        &url,
        &hint,
        &categories,
        secret.as_deref(),
    )
    .fetch_one(&mut *tx)
    .await
    .on_constraint("notify_webhook_name_key", || {
        Error::Conflict("a webhook with this name exists already".into())
    })?;
    actor
        .audit(
            &mut tx,
            "webhook_created",
            None,
            serde_json::json!({
                "webhook_id": webhook_id, "name": name, "kind": kind.as_str(), "url_hint": hint,
                "categories": categories,
            }),
        )
        .await?;
    tx.commit().await?;
    Ok(Created { webhook, secret })
}

/// The actor's destinations, oldest first.
///
/// # Errors
/// Permission and database errors.
pub async fn list(ctx: &Ctx, actor: &Actor) -> Result<Vec<Webhook>> {
    let user = actor.reader()?;
    let rows = sqlx::query_as!(
        Webhook,
        r#"select webhook_id as id, name, kind, url_hint, categories, disabled_at, disabled_reason,
                  consecutive_failures, last_success_at, last_failure_at, created_at
           from notify_webhook where user_id = $1 order by created_at, webhook_id"#,
        user.user_id,
    )
    .fetch_all(&ctx.db)
    .await?;
    Ok(rows)
}

/// Deletes one of the actor's destinations (its deliveries go with it).
///
/// # Errors
/// [`Error::NotFound`] (also for another user's webhook); permission and database errors.
pub async fn delete(ctx: &Ctx, actor: &Actor, webhook_id: Uuid) -> Result<()> {
    let user = actor.runner()?;
    let mut tx = ctx.db.begin().await?;
    let row = sqlx::query!(
        "delete from notify_webhook where webhook_id = $1 and user_id = $2 returning name, kind, url_hint",
        webhook_id,
        user.user_id,
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(Error::NotFound)?;
    actor
        .audit(
            &mut tx,
            "webhook_deleted",
            None,
            serde_json::json!({
                "webhook_id": webhook_id, "name": row.name, "kind": row.kind, "url_hint": row.url_hint,
            }),
        )
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Enables one of the actor's destinations again (after `gone`, `failing` or a user's pause): the URL is
/// vetted again and the failure counter reset.
///
/// # Errors
/// [`Error::NotFound`]; [`Error::Invalid`] on `url` when the destination is refused now; permission and
/// database errors.
pub async fn enable(ctx: &Ctx, actor: &Actor, webhook_id: Uuid) -> Result<()> {
    let user = actor.runner()?;
    let hook = send::Destination::load(&ctx.db, webhook_id)
        .await?
        .filter(|h| h.user_id == user.user_id)
        .ok_or(Error::NotFound)?;
    ctx.net.vet(&hook.url).await.map_err(|r| refusal(&r))?;
    let mut tx = ctx.db.begin().await?;
    let was = sqlx::query_scalar!(
        r#"update notify_webhook n set disabled_at = null, disabled_reason = null, consecutive_failures = 0
           from notify_webhook o
           where n.webhook_id = o.webhook_id and n.webhook_id = $1 and n.user_id = $2
           returning o.disabled_reason"#,
        webhook_id,
        user.user_id,
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(Error::NotFound)?;
    actor
        .audit(
            &mut tx,
            "webhook_enabled",
            None,
            serde_json::json!({ "webhook_id": webhook_id, "was_disabled": was }),
        )
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Gives a generic destination a new signing secret (returned this once). The old one keeps signing too,
/// for 24 hours, so the receiver can switch without dropping a message.
///
/// # Errors
/// [`Error::NotFound`]; [`Error::Invalid`] on `kind` for a Slack or Discord destination (they are not
/// signed); permission and database errors.
pub async fn rotate_secret(ctx: &Ctx, actor: &Actor, webhook_id: Uuid) -> Result<String> {
    let user = actor.runner()?;
    let secret = sign::generate_secret();
    let mut tx = ctx.db.begin().await?;
    let kind = sqlx::query_scalar!(
        "select kind from notify_webhook where webhook_id = $1 and user_id = $2 for update",
        webhook_id,
        user.user_id,
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(Error::NotFound)?;
    if kind != Kind::Generic.as_str() {
        return Err(Error::invalid("kind", "only generic webhooks are signed"));
    }
    sqlx::query!(
        r#"update notify_webhook
           set previous_secret = secret, previous_secret_until = now() + interval '24 hours', secret = $2
           where webhook_id = $1"#,
        webhook_id,
        &secret,
    )
    .execute(&mut *tx)
    .await?;
    actor
        .audit(
            &mut tx,
            "webhook_secret_rotated",
            None,
            serde_json::json!({ "webhook_id": webhook_id }),
        )
        .await?;
    tx.commit().await?;
    Ok(secret)
}

/// What a test request got back.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TestOutcome {
    /// The HTTP status, when the destination answered.
    pub http_status: Option<u16>,
    /// Whether it counts as delivered (a 2xx).
    pub ok: bool,
    /// Why not, in words (never the URL).
    pub error: Option<String>,
}

/// Sends one `system.test` message to one of the actor's destinations now (vetted, pinned and signed like a
/// delivery), at most [`TEST_RATE_PER_MIN`] a minute. It does not change the webhook's failure counters.
///
/// # Errors
/// [`Error::NotFound`]; [`Error::Invalid`] on `url` when the destination is refused now;
/// [`Error::RateLimited`]; permission and database errors.
pub async fn test(ctx: &Ctx, actor: &Actor, webhook_id: Uuid) -> Result<TestOutcome> {
    let user = actor.runner()?;
    let hook = send::Destination::load(&ctx.db, webhook_id)
        .await?
        .filter(|h| h.user_id == user.user_id)
        .ok_or(Error::NotFound)?;
    if let Some(retry_after) = crate::redis::rate_limit(
        &ctx.redis,
        &ctx.settings.redis_namespace,
        &format!("webhook_test:{}", user.user_id),
        TEST_RATE_PER_MIN,
    )
    .await
    {
        return Err(Error::RateLimited { retry_after });
    }
    let event = super::Event::SystemTest(super::event::SystemTest {
        user_id: user.user_id,
        sent_by: "self".into(),
        note: format!("Test of the webhook “{}”.", hook.name),
        channel: Some(super::Channel::Webhook),
    });
    let event_id = Uuid::new_v4();
    let msg = format::Message {
        event_id,
        event: &event,
        occurred_at: Utc::now(),
        public_url: &ctx.settings.public_url,
    };
    let outcome = send::attempt(ctx, &hook, &sign::message_id(event_id), &msg).await;
    if let send::Outcome::Refused(r) = &outcome.outcome {
        return Err(refusal(r));
    }
    let mut tx = ctx.db.begin().await?;
    actor
        .audit(
            &mut tx,
            "webhook_tested",
            None,
            serde_json::json!({
                "webhook_id": webhook_id, "http_status": outcome.http_status, "ok": outcome.outcome.is_ok(),
            }),
        )
        .await?;
    tx.commit().await?;
    Ok(TestOutcome {
        http_status: outcome.http_status,
        ok: outcome.outcome.is_ok(),
        error: outcome.error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_hide_the_secret_path() {
        let u = url::Url::parse("https://hooks.slack.com/services/T000/B000/abcdefx9Qe").unwrap();
        assert_eq!(url_hint(&u), "https://hooks.slack.com/…/x9Qe");
        let u = url::Url::parse("http://127.0.0.1:4000/hook/").unwrap();
        assert_eq!(url_hint(&u), "http://127.0.0.1:4000/…/hook");
    }

    #[test]
    fn kinds_round_trip() {
        for k in [Kind::Slack, Kind::Discord, Kind::Generic] {
            assert_eq!(Kind::parse(k.as_str()), Some(k));
        }
        assert_eq!(Kind::parse("teams"), None);
    }
}
