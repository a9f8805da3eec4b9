//! Single-use tokens sent by email (verification, password reset). Only their SHA-256 is stored; a token is
//! consumed atomically, so it works once.

use std::time::Duration;

use sqlx::PgConnection;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    VerifyEmail,
    ResetPassword,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Self::VerifyEmail => "verify_email",
            Self::ResetPassword => "reset_password",
        }
    }

    /// How long a link stays valid.
    pub fn ttl(self) -> Duration {
        match self {
            Self::VerifyEmail => Duration::from_secs(24 * 3600),
            Self::ResetPassword => Duration::from_secs(30 * 60),
        }
    }
}

/// Creates a token; earlier unused tokens of the same purpose stop working. Returns the plaintext for the link.
///
/// # Errors
/// Database errors.
pub async fn create(
    conn: &mut PgConnection,
    user_id: Uuid,
    purpose: Purpose,
) -> sqlx::Result<String> {
    let token = super::random_secret();
    sqlx::query!(
        "update user_token set used_at = now() where user_id = $1 and purpose = $2 and used_at is null",
        user_id,
        purpose.as_str(),
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!(
        "insert into user_token (token_hash, user_id, purpose, expires_at) values ($1, $2, $3, now() + make_interval(secs => $4))",
        super::sha256(&token),
        user_id,
        purpose.as_str(),
        purpose.ttl().as_secs_f64(),
    )
    .execute(conn)
    .await?;
    Ok(token)
}

/// Uses a token: returns its user if it exists, has this purpose, is unexpired and unused.
///
/// # Errors
/// Database errors.
pub async fn consume(
    conn: &mut PgConnection,
    token: &str,
    purpose: Purpose,
) -> sqlx::Result<Option<Uuid>> {
    if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(None);
    }
    sqlx::query_scalar!(
        r#"update user_token set used_at = now()
           where token_hash = $1 and purpose = $2 and used_at is null and expires_at > now()
           returning user_id"#,
        super::sha256(token),
        purpose.as_str(),
    )
    .fetch_optional(conn)
    .await
}

/// The user a token belongs to, if it is still usable, without using it up (to validate a form first).
///
/// # Errors
/// Database errors.
pub async fn peek(db: &sqlx::PgPool, token: &str, purpose: Purpose) -> sqlx::Result<Option<Uuid>> {
    if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(None);
    }
    sqlx::query_scalar!(
        "select user_id from user_token where token_hash = $1 and purpose = $2 and used_at is null and expires_at > now()",
        super::sha256(token),
        purpose.as_str(),
    )
    .fetch_optional(db)
    .await
}
