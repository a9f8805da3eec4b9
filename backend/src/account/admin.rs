//! Creating an administrator, or promoting an existing account (`vortex create-admin`).

use serde_json::json;

use crate::{
    Actor, Ctx,
    auth::{Role, audit::event, password, session, users},
    error::{Error, Result},
};

/// The refusal to promote an account that waits for sign-up approval.
pub const PENDING_SIGNUP: &str =
    "a sign-up for this address is awaiting approval; approve or reject it on /admin/signups first";

/// What [`create_or_promote`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Created { email: String },
    Promoted { email: String },
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Created { email } => write!(f, "created admin {email}"),
            Outcome::Promoted { email } => write!(f, "promoted {email} to admin"),
        }
    }
}

/// Makes the account with this address an admin: promotes it if it exists (ending its sessions, so the new
/// role starts with a fresh session), else creates it, verified, with `password` (which must meet the policy).
/// Only admins and the operator ([`Actor::admin`]). An account waiting for sign-up approval is not promoted
/// (its password is the applicant's): [`PENDING_SIGNUP`].
///
/// # Errors
/// [`Error::Unauthenticated`], [`Error::Forbidden`], [`Error::Invalid`] (`email`, `password`),
/// [`Error::Conflict`] when the account was created or deleted concurrently or waits for sign-up approval,
/// hashing busy, database.
pub async fn create_or_promote(
    ctx: &Ctx,
    actor: &Actor,
    email: &str,
    password: Option<String>,
) -> Result<Outcome> {
    actor.admin()?;
    let email = users::parse_email(email).map_err(|m| Error::invalid("email", m))?;
    let by = actor.surface.as_str();
    if let Some((user, _)) = users::find_for_signin(&ctx.db, &email).await? {
        let mut tx = ctx.db.begin().await?;
        // The row is locked so that a concurrent rejection (which deletes it) either waits for the promotion
        // or has already deleted it: never "promoted" for an account that is gone.
        let locked = sqlx::query_scalar!(
            r#"select exists (select 1 from signup_request r where r.user_id = u.user_id) as "pending!"
               from app_user u where u.user_id = $1 for update of u"#,
            user.user_id,
        )
        .fetch_optional(&mut *tx)
        .await?;
        match locked {
            None => {
                return Err(Error::Conflict(format!(
                    "{email} was deleted concurrently; run the command again"
                )));
            }
            // The applicant chose that password: promoting would hand them an administrator's account.
            Some(true) => return Err(Error::Conflict(PENDING_SIGNUP.into())),
            Some(false) => {}
        }
        let old = users::set_role(&mut tx, user.user_id, Role::Admin).await?;
        session::revoke_all(&mut *tx, user.user_id, None).await?;
        actor
            .audit(
                &mut tx,
                event::ROLE_CHANGED,
                Some(user.user_id),
                json!({ "from": old.map(Role::as_str), "to": "admin", "by": by }),
            )
            .await?;
        tx.commit().await?;
        return Ok(Outcome::Promoted { email });
    }
    let password = password.ok_or_else(|| {
        Error::invalid(
            super::PASSWORD_FIELD,
            "no password given on stdin or in VORTEX_ADMIN_PASSWORD_FILE",
        )
    })?;
    super::check_policy(&password, &email)?;
    let hash = password::hash(password).await?;
    let mut tx = ctx.db.begin().await?;
    let user_id = users::insert(&mut tx, &email, "", &hash, Role::Admin)
        .await?
        .ok_or_else(|| {
            Error::Conflict(format!(
                "{email} was created concurrently; run the command again"
            ))
        })?;
    users::mark_verified(&mut tx, user_id).await?;
    actor
        .audit(
            &mut tx,
            event::ROLE_CHANGED,
            Some(user_id),
            json!({ "from": null, "to": "admin", "by": by }),
        )
        .await?;
    tx.commit().await?;
    Ok(Outcome::Created { email })
}
