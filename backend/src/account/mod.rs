//! The account flows as backend actions: sign-up, sign-in and sign-out, two-factor sign-in, email verification
//! and change, password reset and change, the data export, deleting the account, profile, sessions, API tokens, the audit trail and the operator's `create-admin`.
//!
//! Every action takes the [`Actor`] and already-parsed input, and itself enforces who may do it, the confirmed
//! email where one is needed, the attempt limits and the current-password checks; it records its audit entry
//! with [`Actor::audit`] in the same transaction as its effect, and queues its mail through the outbox in that
//! transaction too. Surfaces (form handlers, REST handlers, server functions, the CLI) only parse, call and map
//! the [`Error`] to their own shape.

pub mod admin;
pub mod delete;
pub mod email_change;
pub mod events;
pub mod export;
pub mod password;
pub mod profile;
pub mod reset;
pub mod sessions;
pub mod signin;
pub mod signup;
pub mod tokens;
pub mod two_factor;
pub mod verify;

use sqlx::PgConnection;
use uuid::Uuid;

use crate::{
    Actor, Ctx,
    auth::{password as hashing, signin::Check},
    error::{Error, Result},
    mail::{outbox, templates},
};

/// The field named in [`Error::Invalid`] when a new password breaks the policy; the message is
/// [`hashing::PolicyError::message`] (see [`password_policy`]).
pub const PASSWORD_FIELD: &str = "password";

/// Which password rule an [`Error::Invalid`] on [`PASSWORD_FIELD`] names, for surfaces that show a code.
pub fn password_policy(e: &Error) -> Option<hashing::PolicyError> {
    match e {
        Error::Invalid { field, message } if field == PASSWORD_FIELD => hashing::PolicyError::ALL
            .iter()
            .copied()
            .find(|p| p.message() == message),
        _ => None,
    }
}

/// A new password checked against the policy (for this account's address).
fn check_policy(password: &str, email: &str) -> Result<()> {
    hashing::check_policy(password, email).map_err(|p| Error::invalid(PASSWORD_FIELD, p.message()))
}

/// Every hashing slot stayed busy: nothing was checked or changed.
fn busy(b: hashing::Busy) -> Error {
    Error::Unavailable {
        message:
            "Too many password checks are running right now. Please try again in a few seconds."
                .into(),
        retry_after: b.retry_after_secs,
    }
}

impl From<hashing::HashError> for Error {
    fn from(e: hashing::HashError) -> Self {
        match e {
            hashing::HashError::Busy(b) => busy(b),
            hashing::HashError::Internal(e) => Error::Internal(e),
        }
    }
}

/// A password check's outcome as the action's result; `wrong` is the refusal for a wrong password.
fn checked<T>(check: Check<T>, wrong: impl FnOnce() -> Error) -> Result<T> {
    match check {
        Check::Passed(v) => Ok(v),
        Check::Wrong => Err(wrong()),
        Check::Limited { retry_after_secs } => Err(Error::RateLimited {
            retry_after: retry_after_secs,
        }),
        Check::Busy(b) => Err(busy(b)),
    }
}

/// An attempt limit's answer (`Err(seconds)` when over it) as the action's result.
fn limited(r: std::result::Result<(), u64>) -> Result<()> {
    r.map_err(|retry_after| Error::RateLimited { retry_after })
}

/// A link to a page of this site carrying an emailed token.
fn link(ctx: &Ctx, path: &str, token: &str) -> String {
    let mut url = ctx.settings.public_url.clone();
    url.set_path(path);
    url.set_query(Some(&format!("token={token}")));
    url.to_string()
}

/// The forgot-password page (named in mails about account changes).
fn forgot_url(ctx: &Ctx) -> String {
    let mut url = ctx.settings.public_url.clone();
    url.set_path("/forgot-password");
    url.to_string()
}

/// Queues an account flow mail (confirmation link, reset link, sign-up attempt notice) in the caller's
/// transaction with its `account.*` event; returns the job to push after committing.
async fn queue_mail(
    ctx: &Ctx,
    actor: &Actor,
    conn: &mut PgConnection,
    user_id: Option<Uuid>,
    to: &str,
    rendered: templates::Rendered,
) -> Result<Uuid> {
    use crate::notify::{Event, event::FlowMail};
    let domain = ctx.mailer.message_id_domain();
    let template = rendered.template;
    let (email_id, job) = outbox::queue(
        conn,
        &ctx.jobs,
        &domain,
        user_id,
        to,
        rendered,
        actor.request_id.clone(),
    )
    .await?;
    // The flow mail is an event of the stream too (born fanned out: the mail above is its only delivery).
    let flow = FlowMail { user_id, email_id };
    let event = match template {
        templates::reset_password::KEY => Event::PasswordResetRequested(flow),
        templates::signup_existing::KEY => Event::SignupAttemptExisting(flow),
        _ => Event::VerificationRequested(flow),
    };
    let emitted = emit(ctx, conn, &event).await?;
    sqlx::query!(
        "update email_outbox set event_id = $2, category = 'account', mail_class = 'transactional'
         where email_id = $1",
        email_id,
        emitted.event_id,
    )
    .execute(&mut *conn)
    .await?;
    Ok(job)
}

/// Emits a notification event about the account in the caller's transaction (push it after committing with
/// [`crate::notify::push`]).
async fn emit(
    ctx: &Ctx,
    conn: &mut PgConnection,
    event: &crate::notify::Event,
) -> Result<crate::notify::Emitted> {
    Ok(crate::notify::emit(conn, &ctx.jobs, &ctx.clock, event).await?)
}

/// Pushes a committed mail job (if the push is lost, the reconciler delivers it).
async fn push(ctx: &Ctx, job: Uuid) {
    ctx.jobs.push(crate::jobs::DEFAULT_QUEUE, job).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_password_rule_is_found_again_from_its_refusal() {
        for p in hashing::PolicyError::ALL {
            let e = Error::invalid(PASSWORD_FIELD, p.message());
            assert_eq!(password_policy(&e), Some(*p));
            assert_eq!(e.code(), "invalid_input");
        }
        assert_eq!(
            password_policy(&Error::invalid("email", "Use at least 12 characters.")),
            None
        );
        assert_eq!(
            check_policy("short", "a@b.co").map_err(|e| password_policy(&e)),
            Err(Some(hashing::PolicyError::TooShort))
        );
    }
}
