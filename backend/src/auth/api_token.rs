//! API tokens for the REST API (`Authorization: Bearer vxt_…`). The secret is shown once at creation; only its
//! SHA-256 is stored. A token never authenticates a browser page and the session cookie never authenticates
//! the API.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

use super::{AuthUser, Credential, Role, Scope};

pub const PREFIX: &str = "vxt_";

/// A token as its owner sees it (never the secret).
#[derive(Debug, Clone, Serialize)]
pub struct ApiTokenInfo {
    pub api_token_id: Uuid,
    pub name: String,
    pub scope: Scope,
    pub token_prefix: String,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// Validates a token name: 1–80 characters, no control characters.
///
/// # Errors
/// A message for the user.
pub fn parse_name(input: &str) -> Result<String, &'static str> {
    let s = input.trim();
    if s.is_empty() || s.chars().count() > 80 || s.chars().any(char::is_control) {
        return Err("Give the token a name of 1 to 80 characters.");
    }
    Ok(s.to_owned())
}

/// Creates a token. Returns `None` when the user already has a live token with that name.
///
/// # Errors
/// Database errors.
pub async fn create(
    db: impl sqlx::PgExecutor<'_>,
    user_id: Uuid,
    name: &str,
    scope: Scope,
    expires_in_days: Option<u32>,
) -> sqlx::Result<Option<(ApiTokenInfo, String)>> {
    let secret = format!("{PREFIX}{}", super::random_secret());
    let id = Uuid::new_v4();
    let prefix: String = secret.chars().take(PREFIX.len() + 6).collect();
    let row = sqlx::query!(
        r#"insert into api_token (api_token_id, user_id, name, scope, token_hash, token_prefix, expires_at)
           values ($1, $2, $3, $4, $5, $6,
                   case when $7::int is null then null else now() + make_interval(days => $7::int) end)
           on conflict (user_id, lower(name)) where revoked_at is null do nothing
           returning expires_at, created_at"#,
        id,
        user_id,
        name,
        scope.as_str(),
        super::sha256(&secret),
        prefix,
        expires_in_days.map(|d| i32::try_from(d).unwrap_or(i32::MAX)),
    )
    .fetch_optional(db)
    .await?;
    Ok(row.map(|r| {
        (
            ApiTokenInfo {
                api_token_id: id,
                name: name.to_owned(),
                scope,
                token_prefix: prefix,
                expires_at: r.expires_at,
                last_used_at: None,
                created_at: r.created_at,
            },
            secret,
        )
    }))
}

/// The live tokens of a user.
///
/// # Errors
/// Database errors.
pub async fn list(db: &PgPool, user_id: Uuid) -> sqlx::Result<Vec<ApiTokenInfo>> {
    let rows = sqlx::query!(
        r#"select api_token_id, name, scope, token_prefix, expires_at, last_used_at, created_at from api_token
           where user_id = $1 and revoked_at is null and (expires_at is null or expires_at > now())
           order by created_at desc"#,
        user_id,
    )
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| ApiTokenInfo {
            api_token_id: r.api_token_id,
            name: r.name,
            scope: Scope::parse(&r.scope).unwrap_or(Scope::Read),
            token_prefix: r.token_prefix,
            expires_at: r.expires_at,
            last_used_at: r.last_used_at,
            created_at: r.created_at,
        })
        .collect())
}

/// Revokes a token of `user_id`. Returns its name, or `None` if the user has no such live token.
///
/// # Errors
/// Database errors.
pub async fn revoke(
    db: impl sqlx::PgExecutor<'_>,
    user_id: Uuid,
    token_id: Uuid,
) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar!(
        "update api_token set revoked_at = now() where api_token_id = $1 and user_id = $2 and revoked_at is null returning name",
        token_id,
        user_id,
    )
    .fetch_optional(db)
    .await
}

/// Revokes every live token of `user_id` (password reset, "sign out everywhere"). Returns how many.
///
/// # Errors
/// Database errors.
pub async fn revoke_all(db: impl sqlx::PgExecutor<'_>, user_id: Uuid) -> sqlx::Result<u64> {
    let r = sqlx::query!(
        "update api_token set revoked_at = now() where user_id = $1 and revoked_at is null",
        user_id,
    )
    .execute(db)
    .await?;
    Ok(r.rows_affected())
}

/// The cookie that carries a new token's secret to the one page view that shows it: `__Host-` prefixed (which
/// requires `Secure` and `Path=/`) whenever the site is served over HTTPS, like the session cookie.
pub fn flash_cookie_name(settings: &crate::settings::Settings) -> &'static str {
    if settings.secure_cookies() {
        "__Host-vortex_new_token"
    } else {
        "vortex_new_token"
    }
}

/// `Set-Cookie` for the new-token flash cookie (`max_age_secs = 0` deletes it): HttpOnly, SameSite=Strict,
/// `Path=/` (required by `__Host-`), short-lived.
pub fn flash_cookie(
    settings: &crate::settings::Settings,
    value: &str,
    max_age_secs: u64,
) -> String {
    format!(
        "{}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_secs}{}",
        flash_cookie_name(settings),
        if settings.secure_cookies() {
            "; Secure"
        } else {
            ""
        }
    )
}

/// Authenticates a bearer secret. `Ok(None)` for unknown, revoked or expired tokens and disabled users.
///
/// # Errors
/// Database errors (callers answer 503: fail closed).
pub async fn authenticate(db: &PgPool, secret: &str) -> sqlx::Result<Option<AuthUser>> {
    if !secret.starts_with(PREFIX) || secret.len() != PREFIX.len() + 64 {
        return Ok(None);
    }
    let row = sqlx::query!(
        r#"select t.api_token_id, t.scope, u.user_id, u.email, u.display_name, u.role,
                  u.email_verified_at is not null as "email_verified!", u.time_zone, t.last_used_at
           from api_token t join app_user u on u.user_id = t.user_id
           where t.token_hash = $1 and t.revoked_at is null and (t.expires_at is null or t.expires_at > now())
             and u.disabled_at is null
             -- An account waiting for sign-up approval has no working token (docs/admin.md#pending-sign-ups).
             and not exists (select 1 from signup_request r where r.user_id = u.user_id)"#,
        super::sha256(secret),
    )
    .fetch_optional(db)
    .await?;
    let Some(r) = row else {
        return Ok(None);
    };
    let token_id = r.api_token_id;
    if r.last_used_at
        .is_none_or(|t| Utc::now() - t > chrono::Duration::seconds(60))
    {
        sqlx::query!(
            "update api_token set last_used_at = now() where api_token_id = $1",
            token_id,
        )
        .execute(db)
        .await?;
    }
    Ok(Some(AuthUser {
        user_id: r.user_id,
        email: r.email,
        display_name: r.display_name,
        role: Role::parse(&r.role).unwrap_or(Role::Viewer),
        email_verified: r.email_verified,
        time_zone: r.time_zone,
        credential: Credential::ApiToken {
            token_id,
            scope: Scope::parse(&r.scope).unwrap_or(Scope::Read),
        },
    }))
}
