//! The `app_user` table.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::Role;

/// A user row without the password hash.
#[derive(Debug, Clone, Serialize)]
pub struct User {
    pub user_id: Uuid,
    pub email: String,
    pub display_name: String,
    pub role: Role,
    pub time_zone: String,
    pub email_verified: bool,
    pub disabled: bool,
    pub created_at: DateTime<Utc>,
}

type UserRow = (
    Uuid,
    String,
    String,
    String,
    String,
    bool,
    bool,
    DateTime<Utc>,
);

fn to_user(r: UserRow) -> User {
    User {
        user_id: r.0,
        email: r.1,
        display_name: r.2,
        role: Role::parse(&r.3).unwrap_or(Role::Viewer),
        time_zone: r.4,
        email_verified: r.5,
        disabled: r.6,
        created_at: r.7,
    }
}

/// Normalises and validates an email address: trimmed, at most 254 characters, one `@`, a dotted domain, no
/// whitespace or control characters (so it can never inject SMTP headers, IV6). The domain is lower-cased.
///
/// # Errors
/// A message for the user.
pub fn parse_email(input: &str) -> Result<String, &'static str> {
    let s = input.trim();
    if s.is_empty() {
        return Err("Enter your email address.");
    }
    if s.len() > 254 || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("That email address is not valid.");
    }
    let Some((local, domain)) = s.rsplit_once('@') else {
        return Err("That email address is not valid.");
    };
    let domain_ok = domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && domain
            .chars()
            .all(|c| c.is_alphanumeric() || c == '.' || c == '-');
    if local.is_empty()
        || local.len() > 64
        || local.contains('@')
        || !domain_ok
        || s.contains(['<', '>', ',', ';', '"'])
    {
        return Err("That email address is not valid.");
    }
    Ok(format!("{local}@{}", domain.to_lowercase()))
}

/// Inserts a user. Returns `None` when the email is taken (case-insensitively).
///
/// # Errors
/// Database errors.
pub async fn insert(
    conn: &mut PgConnection,
    email: &str,
    display_name: &str,
    password_hash: &str,
    role: Role,
) -> sqlx::Result<Option<Uuid>> {
    let id = Uuid::new_v4();
    let r = sqlx::query!(
        r#"insert into app_user (user_id, email, display_name, password_hash, role) values ($1, $2, $3, $4, $5)
           on conflict ((lower(email))) do nothing"#,
        id,
        email,
        display_name,
        password_hash,
        role.as_str(),
    )
    .execute(conn)
    .await?;
    Ok((r.rows_affected() == 1).then_some(id))
}

/// The user with this email (case-insensitive) and their password hash.
///
/// # Errors
/// Database errors.
pub async fn find_for_signin(db: &PgPool, email: &str) -> sqlx::Result<Option<(User, String)>> {
    let row = sqlx::query!(
        r#"select user_id, email, display_name, role, time_zone, email_verified_at is not null as "email_verified!",
                  disabled_at is not null as "disabled!", created_at, password_hash
           from app_user where lower(email) = lower($1)"#,
        email,
    )
    .fetch_optional(db)
    .await?;
    Ok(row.map(|r| {
        let user = (
            r.user_id,
            r.email,
            r.display_name,
            r.role,
            r.time_zone,
            r.email_verified,
            r.disabled,
            r.created_at,
        );
        (to_user(user), r.password_hash)
    }))
}

/// One user.
///
/// # Errors
/// Database errors.
pub async fn get(db: &PgPool, user_id: Uuid) -> sqlx::Result<Option<User>> {
    let row = sqlx::query!(
        r#"select user_id, email, display_name, role, time_zone, email_verified_at is not null as "email_verified!",
                  disabled_at is not null as "disabled!", created_at
           from app_user where user_id = $1"#,
        user_id,
    )
    .fetch_optional(db)
    .await?;
    Ok(row.map(|r| {
        to_user((
            r.user_id,
            r.email,
            r.display_name,
            r.role,
            r.time_zone,
            r.email_verified,
            r.disabled,
            r.created_at,
        ))
    }))
}

/// The stored password hash of a user.
///
/// # Errors
/// Database errors.
pub async fn password_hash(db: &PgPool, user_id: Uuid) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar!(
        "select password_hash from app_user where user_id = $1 and disabled_at is null",
        user_id,
    )
    .fetch_optional(db)
    .await
}

/// Replaces the password hash (and restarts the sign-in failure window).
///
/// # Errors
/// Database errors.
pub async fn set_password(conn: &mut PgConnection, user_id: Uuid, hash: &str) -> sqlx::Result<()> {
    sqlx::query!(
        "update app_user set password_hash = $2, password_changed_at = now() where user_id = $1",
        user_id,
        hash,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Updates what a user may edit about themselves. Nothing else (role, email, verification) can be set here.
///
/// # Errors
/// Database errors.
pub async fn update_profile(
    db: impl sqlx::PgExecutor<'_>,
    user_id: Uuid,
    display_name: &str,
    time_zone: &str,
) -> sqlx::Result<()> {
    sqlx::query!(
        "update app_user set display_name = $2, time_zone = $3 where user_id = $1",
        user_id,
        display_name,
        time_zone,
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Marks the email verified. Returns false if it already was.
///
/// # Errors
/// Database errors.
pub async fn mark_verified(conn: &mut PgConnection, user_id: Uuid) -> sqlx::Result<bool> {
    let r = sqlx::query!(
        "update app_user set email_verified_at = now() where user_id = $1 and email_verified_at is null",
        user_id,
    )
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Sets a user's role. Returns the previous role.
///
/// # Errors
/// Database errors.
pub async fn set_role(
    conn: &mut PgConnection,
    user_id: Uuid,
    role: Role,
) -> sqlx::Result<Option<Role>> {
    let old: Option<String> = sqlx::query_scalar!(
        "update app_user u set role = $2 from app_user old where u.user_id = $1 and old.user_id = $1 returning old.role",
        user_id,
        role.as_str(),
    )
    .fetch_optional(conn)
    .await?;
    Ok(old.and_then(|r| Role::parse(&r)))
}

/// Validates a display name: at most 80 characters, no control characters; surrounding spaces removed.
///
/// # Errors
/// A message for the user.
pub fn parse_display_name(input: &str) -> Result<String, &'static str> {
    let s = input.trim();
    if s.chars().count() > 80 {
        return Err("Use at most 80 characters for your name.");
    }
    if s.chars().any(char::is_control) {
        return Err("Your name contains control characters.");
    }
    Ok(s.to_owned())
}

/// Validates an IANA time zone name (`Europe/Zurich`, `UTC`).
///
/// # Errors
/// A message for the user.
pub fn parse_time_zone(input: &str) -> Result<String, &'static str> {
    input
        .trim()
        .parse::<chrono_tz::Tz>()
        .map(|tz| tz.name().to_owned())
        .map_err(|_| "Unknown time zone; use a name like Europe/Zurich or UTC.")
}

/// A timestamp in the user's time zone, e.g. `2026-11-22 19:05 CET`.
pub fn format_time(t: DateTime<Utc>, time_zone: &str) -> String {
    let tz: chrono_tz::Tz = time_zone.parse().unwrap_or(chrono_tz::UTC);
    t.with_timezone(&tz).format("%Y-%m-%d %H:%M %Z").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_validated_and_their_domain_lower_cased() {
        assert_eq!(
            parse_email("  Ann.Lee+x@Example.ORG "),
            Ok("Ann.Lee+x@example.org".into())
        );
        for bad in [
            "",
            "no-at",
            "a@b",
            "a@.com",
            "a b@c.de",
            "a@b.com\r\nBcc: x@y.z",
            "<a@b.com>",
            "a@b.com,c@d.com",
        ] {
            assert!(parse_email(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn time_zones_and_names_are_validated() {
        assert_eq!(parse_time_zone("Europe/Zurich"), Ok("Europe/Zurich".into()));
        assert!(parse_time_zone("Mars/Olympus").is_err());
        assert_eq!(parse_display_name("  Ann  "), Ok("Ann".into()));
        assert!(parse_display_name(&"x".repeat(81)).is_err());
        assert!(parse_display_name("a\u{0}b").is_err());
    }
}
