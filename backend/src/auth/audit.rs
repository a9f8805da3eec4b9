//! The audit trail: security events with time, IP and user agent. Append-only. Secrets never go into
//! `detail`.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::RequestMeta;

/// Event names (stable: the UI and operators filter on them).
pub mod event {
    pub const SIGNUP: &str = "signup";
    pub const SIGNIN_SUCCEEDED: &str = "signin_succeeded";
    pub const SIGNIN_FAILED: &str = "signin_failed";
    pub const SIGNOUT: &str = "signout";
    pub const EMAIL_VERIFIED: &str = "email_verified";
    pub const VERIFICATION_REQUESTED: &str = "verification_requested";
    pub const PASSWORD_CHANGED: &str = "password_changed";
    pub const PASSWORD_RESET_REQUESTED: &str = "password_reset_requested";
    pub const PASSWORD_RESET: &str = "password_reset";
    pub const PROFILE_UPDATED: &str = "profile_updated";
    pub const SESSION_REVOKED: &str = "session_revoked";
    pub const TOKEN_CREATED: &str = "token_created";
    pub const TOKEN_REVOKED: &str = "token_revoked";
    pub const ROLE_CHANGED: &str = "role_changed";
}

/// One event to record.
#[derive(Debug, Default)]
pub struct Entry<'a> {
    pub user_id: Option<Uuid>,
    pub actor_id: Option<Uuid>,
    pub event: &'a str,
    pub subject_email: Option<&'a str>,
    pub detail: serde_json::Value,
}

/// Records an event (also logged as a structured `audit` line, CF8).
///
/// # Errors
/// Database errors.
pub async fn record(
    conn: &mut PgConnection,
    meta: &RequestMeta,
    entry: Entry<'_>,
) -> sqlx::Result<()> {
    tracing::info!(
        target: "audit",
        event = entry.event,
        user_id = ?entry.user_id,
        actor_id = ?entry.actor_id,
        client_ip = %meta.ip,
        "audit event"
    );
    let detail = if entry.detail.is_null() {
        serde_json::json!({})
    } else {
        entry.detail
    };
    sqlx::query!(
        r#"insert into audit_event (user_id, actor_id, event, subject_email, ip, user_agent, detail)
           values ($1, $2, $3, $4, $5, $6, $7)"#,
        entry.user_id,
        entry.actor_id,
        entry.event,
        entry.subject_email,
        meta.ip,
        meta.user_agent,
        detail,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Convenience: [`record`] on a pooled connection.
///
/// # Errors
/// Database errors.
pub async fn record_now(db: &PgPool, meta: &RequestMeta, entry: Entry<'_>) -> sqlx::Result<()> {
    let mut conn = db.acquire().await?;
    record(&mut conn, meta, entry).await
}

/// An event as shown to users and admins.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct AuditRow {
    pub audit_event_id: i64,
    pub user_id: Option<Uuid>,
    pub actor_id: Option<Uuid>,
    pub event: String,
    pub ip: String,
    pub user_agent: String,
    pub detail: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

/// The newest events of one user (`Some`) or of everyone (`None`, admins only: the caller checks).
///
/// # Errors
/// Database errors.
pub async fn list(db: &PgPool, user_id: Option<Uuid>, limit: i64) -> sqlx::Result<Vec<AuditRow>> {
    sqlx::query_as!(
        AuditRow,
        r#"select audit_event_id, user_id, actor_id, event, ip, user_agent, detail, created_at
           from audit_event where ($1::uuid is null or user_id = $1)
           order by audit_event_id desc limit $2"#,
        user_id,
        limit.clamp(1, 1000),
    )
    .fetch_all(db)
    .await
}
