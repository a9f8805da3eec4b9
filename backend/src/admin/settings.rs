//! Platform settings: the sign-up policy (`open`, `invite` or `closed`), single-use invitation links, the
//! maintenance banner and whether administrators must use two-factor sign-in. Anyone may read the settings (the sign-up form and every page need them); only admins
//! change them (audited as `platform_settings_changed`) and create invitations (audited as `invite_created`).

use serde::Serialize;
use serde_json::json;

use crate::{
    Actor, Ctx,
    error::{Error, Result},
};

/// Longest banner, in characters.
pub const MAX_BANNER: usize = 500;
/// Days an invitation link works.
pub const INVITE_DAYS: i64 = 14;
/// The short-lived cookie that carries a new invitation link to the one page view that shows it.
pub const INVITE_COOKIE: &str = "vortex_invite";
/// The sign-up policies.
pub const POLICIES: &[&str] = &["open", "invite", "closed"];

/// The settings as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlatformSettings {
    /// `open` (anyone may sign up), `invite` (with an invitation link) or `closed` (nobody; admins create or
    /// promote accounts).
    pub signup_policy: String,
    /// Shown at the top of every page when not empty.
    pub banner: String,
    /// Administrators must turn on two-factor sign-in before they can use anything else
    /// (`account::two_factor::must_enrol`).
    pub admin_two_factor_required: bool,
}

/// The current settings (no permission needed: they are shown to everyone).
///
/// # Errors
/// Database errors.
pub async fn current(ctx: &Ctx) -> Result<PlatformSettings> {
    let r = sqlx::query_as!(
        PlatformSettings,
        "select signup_policy, banner, admin_two_factor_required from platform_settings where id",
    )
    .fetch_optional(&ctx.db)
    .await?;
    Ok(r.unwrap_or_else(|| PlatformSettings {
        signup_policy: "open".into(),
        banner: String::new(),
        admin_two_factor_required: false,
    }))
}

/// The maintenance banner (empty for none), as every page shows it: read at most once per
/// [`crate::ctx::BANNER_TTL`] per process, and at once after this process changed it.
///
/// # Errors
/// Database errors.
pub async fn banner(ctx: &Ctx) -> Result<String> {
    if let Some(b) = ctx.banner.get() {
        return Ok(b);
    }
    let b = current(ctx).await?.banner;
    ctx.banner.set(b.clone());
    Ok(b)
}

fn token_hash(token: &str) -> String {
    crate::settings::hex(&crate::auth::sha256(token.trim()))
}

/// Whether this sign-up may go ahead under the policy: always while `open`; with a valid, unused, unexpired
/// `invite` token while `invite`; never while `closed`. Returns the invitation to use up (with [`use_invite`]
/// once the account exists).
///
/// # Errors
/// [`Error::Forbidden`] saying why (for the visitor), database.
pub async fn check_signup(ctx: &Ctx, invite: Option<&str>) -> Result<Option<String>> {
    match current(ctx).await?.signup_policy.as_str() {
        "open" => Ok(None),
        "invite" => {
            let Some(token) = invite
                .map(str::trim)
                .filter(|t| !t.is_empty() && t.len() <= 128)
            else {
                return Err(Error::Forbidden(
                    "Sign-up on this instance is by invitation: open the invitation link you were sent."
                        .into(),
                ));
            };
            let hash = token_hash(token);
            let valid = sqlx::query_scalar!(
                r#"select exists (select 1 from signup_invite
                   where token_hash = $1 and used_at is null and expires_at > now()) as "valid!""#,
                hash,
            )
            .fetch_one(&ctx.db)
            .await?;
            if !valid {
                return Err(invalid_invite());
            }
            Ok(Some(hash))
        }
        _ => Err(Error::Forbidden(
            "Sign-up is closed on this instance. Ask an administrator for an account.".into(),
        )),
    }
}

fn invalid_invite() -> Error {
    Error::Forbidden(
        "This invitation link is not valid: it expired or was used already. Ask for a new one."
            .into(),
    )
}

/// Uses up the invitation checked by [`check_signup`] for the new account, in the sign-up's transaction (a
/// concurrent sign-up with the same link loses: [`Error::Forbidden`]).
///
/// # Errors
/// [`Error::Forbidden`], database.
pub async fn use_invite(
    conn: &mut sqlx::PgConnection,
    hash: &str,
    user_id: uuid::Uuid,
) -> Result<()> {
    let used = sqlx::query!(
        "update signup_invite set used_at = now(), used_by = $2
         where token_hash = $1 and used_at is null and expires_at > now()",
        hash,
        user_id,
    )
    .execute(conn)
    .await?;
    if used.rows_affected() == 1 {
        Ok(())
    } else {
        Err(invalid_invite())
    }
}

/// Creates a single-use invitation link valid for [`INVITE_DAYS`] days (admins with a read-write credential);
/// audited as `invite_created`. The link is shown once; only its hash is stored.
///
/// # Errors
/// [`Error::Unauthenticated`], [`Error::Forbidden`], database.
pub async fn create_invite(actor: &Actor, ctx: &Ctx) -> Result<String> {
    actor.admin_writer()?;
    let token = crate::auth::random_secret();
    let hash = token_hash(&token);
    let expires = ctx.clock.now() + chrono::Duration::days(INVITE_DAYS);
    let mut tx = ctx.db.begin().await?;
    sqlx::query!(
        "insert into signup_invite (token_hash, created_by, expires_at) values ($1, $2, $3)",
        hash,
        actor.user_id(),
        expires,
    )
    .execute(&mut *tx)
    .await?;
    actor
        .audit(
            &mut tx,
            super::event::INVITE_CREATED,
            None,
            json!({ "invite": &hash[..16], "expires_at": expires }),
        )
        .await?;
    tx.commit().await?;
    let mut url = ctx.settings.public_url.clone();
    url.set_path("/signup");
    url.set_query(Some(&format!("invite={token}")));
    Ok(url.to_string())
}

/// Sets the sign-up policy, the banner and whether admins must use two-factor sign-in (admins with a
/// read-write credential); audited with the old and new values.
///
/// # Errors
/// [`Error::Unauthenticated`], [`Error::Forbidden`], [`Error::Invalid`] (`signup_policy`, `banner`), database.
pub async fn update(
    actor: &Actor,
    ctx: &Ctx,
    signup_policy: &str,
    banner: &str,
    admin_two_factor_required: bool,
) -> Result<PlatformSettings> {
    actor.admin_writer()?;
    let policy = signup_policy.trim();
    if !POLICIES.contains(&policy) {
        return Err(Error::invalid(
            "signup_policy",
            "choose open, invite or closed",
        ));
    }
    let banner = banner.trim();
    if banner.chars().count() > MAX_BANNER || banner.chars().any(char::is_control) {
        return Err(Error::invalid(
            "banner",
            format!("use at most {MAX_BANNER} characters, on one line"),
        ));
    }
    let mut tx = ctx.db.begin().await?;
    let old = sqlx::query_as!(
        PlatformSettings,
        "select signup_policy, banner, admin_two_factor_required from platform_settings where id for update",
    )
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query!(
        "update platform_settings set signup_policy = $1, banner = $2, admin_two_factor_required = $4,
                updated_by = $3, updated_at = now()
         where id",
        policy,
        banner,
        actor.user_id(),
        admin_two_factor_required,
    )
    .execute(&mut *tx)
    .await?;
    actor
        .audit(
            &mut tx,
            super::event::SETTINGS_CHANGED,
            None,
            json!({
                "signup_policy": { "from": old.signup_policy, "to": policy },
                "banner": { "from": old.banner, "to": banner },
                "admin_two_factor_required": {
                    "from": old.admin_two_factor_required,
                    "to": admin_two_factor_required,
                },
            }),
        )
        .await?;
    tx.commit().await?;
    ctx.banner.clear();
    Ok(PlatformSettings {
        signup_policy: policy.to_owned(),
        banner: banner.to_owned(),
        admin_two_factor_required,
    })
}
