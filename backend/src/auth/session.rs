//! Browser sessions: a `user_session` row plus a signed JWT naming it, carried in a cookie.
//!
//! The JWT (HS256 only; `iss`, `aud`, `exp`, `nbf`, `iat`, `sub`, `typ` required and checked) proves the cookie
//! was issued by this deployment; the row decides whether the session is still alive: not revoked, not past
//! its absolute expiry, and used within the idle timeout. Every sign-in creates a new row (SE1).

use std::time::Duration;

use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, Header, Validation};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use uuid::Uuid;

use super::{AuthKeys, AuthUser, Credential, RequestMeta, Role};
use crate::settings::Settings;

pub const ISSUER: &str = "vortex";
pub const AUDIENCE: &str = "vortex-web";
const TOKEN_TYPE: &str = "session";

/// A session's last use is written when it is older than [`touch_every`] ([`authenticate`]).
const TOUCH_EVERY: Duration = Duration::from_secs(60);

/// How old a session's last use may be before [`authenticate`] writes it again: a minute, or half the idle
/// timeout when that is shorter (so a session in use never idles out between two writes). Right after a
/// session was authenticated, its last use is at most this old.
#[must_use]
pub fn touch_every(settings: &Settings) -> Duration {
    TOUCH_EVERY.min(settings.session_idle / 2)
}

/// The session cookie's name: `__Host-` prefixed (and `Secure`) whenever the site is served over HTTPS.
pub fn cookie_name(settings: &Settings) -> &'static str {
    if settings.secure_cookies() {
        "__Host-vortex_session"
    } else {
        "vortex_session"
    }
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Lax, Path=/, no Domain; Secure over HTTPS.
pub fn cookie(settings: &Settings, name: &str, value: &str, max_age: Duration) -> String {
    format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{}",
        max_age.as_secs(),
        if settings.secure_cookies() {
            "; Secure"
        } else {
            ""
        }
    )
}

/// A `Set-Cookie` value that deletes the cookie.
pub fn clear_cookie(settings: &Settings, name: &str) -> String {
    cookie(settings, name, "", Duration::ZERO)
}

/// Reads one cookie from a `Cookie` header.
pub fn read_cookie<'a>(headers: &'a http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    sid: String,
    iss: String,
    aud: String,
    typ: String,
    iat: i64,
    nbf: i64,
    exp: i64,
}

/// A new session: its id, the signed cookie value, and when it expires.
pub struct NewSession {
    pub session_id: String,
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

/// Creates a session row and its signed token.
///
/// # Errors
/// Database errors or a signing failure.
pub async fn create(
    db: impl sqlx::PgExecutor<'_>,
    keys: &AuthKeys,
    settings: &Settings,
    user_id: Uuid,
    meta: &RequestMeta,
) -> anyhow::Result<NewSession> {
    let session_id = super::random_secret();
    let now = Utc::now();
    let expires_at = now + chrono::Duration::from_std(settings.session_absolute)?;
    sqlx::query!(
        "insert into user_session (session_id, user_id, user_agent, ip, expires_at) values ($1, $2, $3, $4, $5)",
        session_id,
        user_id,
        meta.user_agent,
        meta.ip,
        expires_at,
    )
    .execute(db)
    .await?;
    let claims = Claims {
        sub: user_id.to_string(),
        sid: session_id.clone(),
        iss: ISSUER.into(),
        aud: AUDIENCE.into(),
        typ: TOKEN_TYPE.into(),
        iat: now.timestamp(),
        nbf: now.timestamp(),
        exp: expires_at.timestamp(),
    };
    let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &keys.jwt_encoding)?;
    Ok(NewSession {
        session_id,
        token,
        expires_at,
    })
}

fn validation() -> Validation {
    let mut v = Validation::new(Algorithm::HS256);
    v.algorithms = vec![Algorithm::HS256];
    v.leeway = 5;
    v.validate_nbf = true;
    v.validate_exp = true;
    v.set_issuer(&[ISSUER]);
    v.set_audience(&[AUDIENCE]);
    v.set_required_spec_claims(&["exp", "nbf", "iat", "sub", "aud", "iss"]);
    v
}

/// The claims of a session token this deployment signed that has not expired, with its user; `None` for
/// anything else. Says nothing of the session's row (revoked, idle): see [`authenticate`].
fn verify(keys: &AuthKeys, token: &str) -> Option<(Uuid, Claims)> {
    let claims = jsonwebtoken::decode::<Claims>(token, &keys.jwt_decoding, &validation())
        .ok()?
        .claims;
    let user_id = claims.sub.parse::<Uuid>().ok()?;
    (claims.typ == TOKEN_TYPE).then_some((user_id, claims))
}

/// What a session token names, read from the token alone (no database): its user, its session row and its
/// absolute expiry. For keying what a process keeps per session (the signed-in page cache), never to let
/// anyone in: only [`authenticate`] knows whether the session is alive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenClaims {
    pub user_id: Uuid,
    pub session_id: String,
    pub expires_at: DateTime<Utc>,
}

/// [`TokenClaims`] of a session token this deployment signed and that has not expired; `None` otherwise.
#[must_use]
pub fn peek(keys: &AuthKeys, token: &str) -> Option<TokenClaims> {
    let (user_id, claims) = verify(keys, token)?;
    Some(TokenClaims {
        user_id,
        session_id: claims.sid,
        expires_at: DateTime::from_timestamp(claims.exp, 0)?,
    })
}

/// Checks a session token and its row. `Ok(None)` for anything invalid, expired, idle or revoked.
///
/// # Errors
/// Database errors only (callers answer 503: authorization fails closed, AC4).
pub async fn authenticate(
    db: &PgPool,
    keys: &AuthKeys,
    settings: &Settings,
    token: &str,
) -> sqlx::Result<Option<AuthUser>> {
    let Some((user_id, claims)) = verify(keys, token) else {
        return Ok(None);
    };
    let row = sqlx::query!(
        r#"select u.email, u.display_name, u.role, u.email_verified_at is not null as "email_verified!",
                  u.time_zone, s.last_seen_at
           from user_session s join app_user u on u.user_id = s.user_id
           where s.session_id = $1 and s.user_id = $2 and s.revoked_at is null
             and s.expires_at > now() and u.disabled_at is null
             -- An account waiting for sign-up approval has no session (docs/admin.md#pending-sign-ups).
             and not exists (select 1 from signup_request r where r.user_id = u.user_id)
             and s.last_seen_at > now() - make_interval(secs => $3)"#,
        claims.sid,
        user_id,
        settings.session_idle.as_secs_f64(),
    )
    .fetch_optional(db)
    .await?;
    let Some(r) = row else {
        return Ok(None);
    };
    // Sliding idle timeout; written at most once a minute (or half the idle timeout) per session.
    if (Utc::now() - r.last_seen_at).to_std().unwrap_or_default() > touch_every(settings) {
        sqlx::query!(
            "update user_session set last_seen_at = now() where session_id = $1",
            claims.sid,
        )
        .execute(db)
        .await?;
    }
    Ok(Some(AuthUser {
        user_id,
        email: r.email,
        display_name: r.display_name,
        role: Role::parse(&r.role).unwrap_or(Role::Viewer),
        email_verified: r.email_verified,
        time_zone: r.time_zone,
        credential: Credential::Session(claims.sid),
    }))
}

/// Whether a session token is still good (signed, not expired, idle, revoked, nor of a disabled account),
/// WITHOUT counting as activity: long-lived connections (the notification stream) re-check their session with
/// this, so an open tab does not keep an idle session alive.
///
/// # Errors
/// Database errors only.
pub async fn is_live(
    db: &PgPool,
    keys: &AuthKeys,
    settings: &Settings,
    token: &str,
) -> sqlx::Result<bool> {
    let Some((user_id, claims)) = verify(keys, token) else {
        return Ok(false);
    };
    sqlx::query_scalar!(
        r#"select exists (
               select 1 from user_session s join app_user u on u.user_id = s.user_id
               where s.session_id = $1 and s.user_id = $2 and s.revoked_at is null
                 and s.expires_at > now() and u.disabled_at is null
                 and not exists (select 1 from signup_request r where r.user_id = u.user_id)
                 and s.last_seen_at > now() - make_interval(secs => $3)) as "live!""#,
        claims.sid,
        user_id,
        settings.session_idle.as_secs_f64(),
    )
    .fetch_one(db)
    .await
}

/// Ends one session of `user_id`. Returns false when there is no such live session of that user.
///
/// # Errors
/// Database errors.
pub async fn revoke(
    db: impl sqlx::PgExecutor<'_>,
    user_id: Uuid,
    session_id: &str,
) -> sqlx::Result<bool> {
    let r = sqlx::query!(
        "update user_session set revoked_at = now() where session_id = $1 and user_id = $2 and revoked_at is null",
        session_id,
        user_id,
    )
    .execute(db)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Ends every session of `user_id` except `keep`. Returns how many were ended.
///
/// # Errors
/// Database errors.
pub async fn revoke_all(
    db: impl sqlx::PgExecutor<'_>,
    user_id: Uuid,
    keep: Option<&str>,
) -> sqlx::Result<u64> {
    let r = sqlx::query!(
        r#"update user_session set revoked_at = now()
           where user_id = $1 and revoked_at is null and ($2::text is null or session_id <> $2)"#,
        user_id,
        keep,
    )
    .execute(db)
    .await?;
    Ok(r.rows_affected())
}

/// A live session as its owner sees it. The public id is a hash prefix, never the session secret.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct SessionInfo {
    pub public_id: String,
    pub user_agent: String,
    pub ip: String,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    #[sqlx(skip)]
    pub current: bool,
    #[serde(skip)]
    pub session_id: String,
}

/// The public identifier of a session (the first 16 hex digits of the SHA-256 of its id).
pub fn public_id(session_id: &str) -> String {
    crate::settings::hex(&super::sha256(session_id))[..16].to_owned()
}

/// The live sessions of `user_id`, most recently used first.
///
/// # Errors
/// Database errors.
pub async fn list(
    db: &PgPool,
    settings: &Settings,
    user_id: Uuid,
    current: Option<&str>,
) -> sqlx::Result<Vec<SessionInfo>> {
    let rows = sqlx::query!(
        r#"select session_id, user_agent, ip, created_at, last_seen_at from user_session
           where user_id = $1 and revoked_at is null and expires_at > now()
             and last_seen_at > now() - make_interval(secs => $2)
           order by last_seen_at desc"#,
        user_id,
        settings.session_idle.as_secs_f64(),
    )
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| SessionInfo {
            public_id: public_id(&r.session_id),
            current: current == Some(r.session_id.as_str()),
            user_agent: r.user_agent,
            ip: r.ip,
            created_at: r.created_at,
            last_seen_at: r.last_seen_at,
            session_id: r.session_id,
        })
        .collect())
}
