//! Sign-in and sign-out of browser sessions.

use serde_json::json;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::{
    Actor, Ctx,
    auth::{RequestMeta, audit::event, password, session, signin, users::User},
    error::{Error, Result},
    notify::{
        self, Event,
        event::{SigninNewDevice, device},
    },
};

/// The refusal for a wrong email or password (unknown and disabled accounts answer the same).
pub fn wrong_credentials() -> Error {
    Error::invalid("credentials", "the email or password is not correct")
}

/// A signed-in user and their new session.
pub struct SignedIn {
    pub user: User,
    pub session: session::NewSession,
}

/// What a right password leads to.
pub enum SignInStep {
    /// Signed in.
    Done(SignedIn),
    /// Two-factor sign-in is on: the code comes next ([`super::two_factor::sign_in_code`]).
    Code(super::two_factor::Challenge),
}

impl SignInStep {
    /// The session, when no second step is needed.
    pub fn done(self) -> Option<SignedIn> {
        match self {
            Self::Done(s) => Some(s),
            Self::Code(_) => None,
        }
    }
}

/// Checks the email and password (with the attempt limits of [`signin::sign_in`]) and starts a new session,
/// or, when the account has two-factor sign-in on, a pending second step (the code) instead.
/// Unknown account and wrong password take the same time and give the same answer. The right password of a
/// suspended account is refused with the suspension's reason and end (a suspension whose end has passed is
/// lifted, and the sign-in goes on); that of an account waiting for sign-up approval with
/// [`crate::admin::signups::PENDING_MESSAGE`].
///
/// # Errors
/// [`wrong_credentials`], [`Error::Forbidden`] (suspended, the message says why and until when; or awaiting
/// approval),
/// [`Error::RateLimited`], hashing busy ([`Error::Unavailable`]), database.
pub async fn sign_in(
    ctx: &Ctx,
    actor: &Actor,
    email: &str,
    password: String,
) -> Result<SignInStep> {
    let email = email.trim();
    if email.is_empty() || email.len() > 254 || password.chars().count() > password::MAX_CHARS {
        return Err(wrong_credentials());
    }
    let check = signin::sign_in(&ctx.db, email, password, &actor.meta).await?;
    if matches!(check, signin::Check::Wrong) {
        // The failed attempt is recorded by the check itself; this is its audit entry (about the address only:
        // whether an account has it is not revealed).
        let mut conn = ctx.db.acquire().await?;
        Actor::anonymous(actor.surface, actor.meta.clone(), actor.request_id.clone())
            .audit_email(
                &mut conn,
                event::SIGNIN_FAILED,
                None,
                Some(email),
                serde_json::Value::Null,
            )
            .await?;
    }
    let user = super::checked(check, wrong_credentials)?;
    if user.disabled
        && let Some(suspension) =
            crate::admin::users::suspension_at_signin(ctx, actor, user.user_id).await?
    {
        let mut conn = ctx.db.acquire().await?;
        actor
            .audit_email(
                &mut conn,
                event::SIGNIN_FAILED,
                Some(user.user_id),
                Some(&user.email),
                json!({ "suspended": true }),
            )
            .await?;
        return Err(Error::Forbidden(suspension.message()));
    }
    if crate::admin::signups::is_pending(&mut *ctx.db.acquire().await?, user.user_id).await? {
        // Only whoever knows the password learns that the request waits (a wrong one got the usual answer).
        let mut conn = ctx.db.acquire().await?;
        actor
            .audit_email(
                &mut conn,
                event::SIGNIN_FAILED,
                Some(user.user_id),
                Some(&user.email),
                json!({ "pending_approval": true }),
            )
            .await?;
        return Err(Error::Forbidden(
            crate::admin::signups::PENDING_MESSAGE.into(),
        ));
    }
    if super::two_factor::enabled(ctx, user.user_id).await? {
        let challenge = super::two_factor::challenge(ctx, actor, &user).await?;
        return Ok(SignInStep::Code(challenge));
    }
    start_session(ctx, actor, user, false)
        .await
        .map(SignInStep::Done)
}

/// Starts a session for `user`, whose password (and second factor, `two_factor`) was just checked: the
/// audit entry, and the new-device notice when the client is new to the account.
pub(super) async fn start_session(
    ctx: &Ctx,
    actor: &Actor,
    user: User,
    two_factor: bool,
) -> Result<SignedIn> {
    let mut tx = ctx.db.begin().await?;
    let new_device = is_new_client(&mut tx, user.user_id, &actor.meta).await?;
    let new = session::create(
        &mut *tx,
        &ctx.keys,
        &ctx.settings,
        user.user_id,
        &actor.meta,
    )
    .await?;
    actor
        .audit_email(
            &mut tx,
            event::SIGNIN_SUCCEEDED,
            Some(user.user_id),
            Some(&user.email),
            json!({
                "session": session::public_id(&new.session_id),
                "new_device": new_device,
                "two_factor": two_factor,
            }),
        )
        .await?;
    let mut emitted = Vec::new();
    if new_device {
        let event = Event::SigninNewDevice(SigninNewDevice {
            user_id: user.user_id,
            ip: actor.meta.ip.clone(),
            device: device(&actor.meta.user_agent),
            at: ctx.clock.now(),
            session_public_id: session::public_id(&new.session_id),
        });
        emitted.push(super::emit(ctx, &mut tx, &event).await?);
    }
    tx.commit().await?;
    notify::push(&ctx.jobs, &emitted).await;
    Ok(SignedIn { user, session: new })
}

/// How long a client (address and user agent) stays known after a successful sign-in or the sign-up.
pub const KNOWN_CLIENT_DAYS: i32 = 30;

/// Whether this sign-in comes from a client the account has not used in [`KNOWN_CLIENT_DAYS`] (judged on the
/// audit trail). The first sign-in after sign-up is never new: there is nothing to compare it with.
async fn is_new_client(conn: &mut PgConnection, user_id: Uuid, meta: &RequestMeta) -> Result<bool> {
    let r = sqlx::query!(
        r#"select
             exists (select 1 from audit_event where user_id = $1 and event = $2) as "signed_in_before!",
             exists (select 1 from audit_event
                     where user_id = $1 and event in ($2, $3) and ip = $4 and user_agent = $5
                       and created_at > now() - make_interval(days => $6)) as "known!""#,
        user_id,
        event::SIGNIN_SUCCEEDED,
        event::SIGNUP,
        meta.ip,
        meta.user_agent,
        KNOWN_CLIENT_DAYS,
    )
    .fetch_one(conn)
    .await?;
    Ok(r.signed_in_before && !r.known)
}

/// Ends the actor's current session at once (anonymous actors: nothing to do).
///
/// # Errors
/// Database errors.
pub async fn sign_out(ctx: &Ctx, actor: &Actor) -> Result<()> {
    let Some(user) = actor.auth_user() else {
        return Ok(());
    };
    let mut tx = ctx.db.begin().await?;
    if let Some(sid) = user.session_id() {
        session::revoke(&mut *tx, user.user_id, sid).await?;
    }
    actor
        .audit(&mut tx, event::SIGNOUT, None, serde_json::Value::Null)
        .await?;
    tx.commit().await?;
    Ok(())
}
