//! Sign-up: a new trader account and its verification mail.

use crate::{
    Actor, Ctx,
    admin::signups,
    auth::{Role, audit::event, email_token, password, rate_limit, users},
    error::{Error, Result},
    mail::templates,
};

/// What the sign-up form sends.
#[derive(Debug, Clone, Default)]
pub struct SignUp {
    pub email: String,
    pub display_name: String,
    pub password: String,
    /// The invitation token from the link (needed while sign-up is by invitation).
    pub invite: Option<String>,
    /// Why the applicant wants an account (needed while sign-up is by approval).
    pub reason: Option<String>,
}

/// What a sign-up answers (the same whether or not the address already has an account).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignedUp {
    /// Confirm the address; then sign in.
    CheckEmail,
    /// Confirm the address; an administrator decides on the request, and the applicant is mailed the outcome.
    AwaitingApproval,
}

/// Creates a trader account and mails a verification link. Answers the same whether or not the address already
/// has an account (no enumeration): an existing owner gets a mail about the attempt instead. Limited per client
/// address ([`rate_limit::check_signup`]). Refused while an administrator has closed sign-up, and without a
/// valid invitation while sign-up is by invitation (the invitation is used up by the new account). While sign-up
/// is by approval, the reason is required and the new account waits for an administrator
/// ([`crate::admin::signups`]; the approvers are notified); an address rejected less than
/// [`crate::admin::signups::REAPPLY_DAYS`] days ago gets the same answer, but no account (and no mail).
///
/// # Errors
/// [`Error::Forbidden`] (sign-up closed, no or a used invitation), [`Error::RateLimited`], [`Error::Invalid`]
/// (`email`, `display_name`, `password`, `reason`), hashing busy, database.
pub async fn sign_up(ctx: &Ctx, actor: &Actor, input: SignUp) -> Result<SignedUp> {
    super::limited(rate_limit::check_signup(&ctx.db, &actor.meta.ip).await?)?;
    let email = users::parse_email(&input.email).map_err(|m| Error::invalid("email", m))?;
    // The policy, then the domain lists, on the address as it will be stored and mailed.
    let gate = crate::admin::settings::check_signup(ctx, input.invite.as_deref(), &email).await?;
    let display_name = users::parse_display_name(&input.display_name)
        .map_err(|m| Error::invalid("display_name", m))?;
    let reason = gate
        .approval
        .then(|| signups::parse_reason(input.reason.as_deref()))
        .transpose()?;
    super::check_policy(&input.password, &email)?;
    let answer = if gate.approval {
        SignedUp::AwaitingApproval
    } else {
        SignedUp::CheckEmail
    };
    // Hashed before anything else decides the answer, so that every path (new, taken, rejected recently,
    // over the pending cap) costs the same and the response time tells nothing.
    let hash = password::hash(input.password).await?;
    let refused = if !gate.approval {
        None
    } else if signups::cooling_off(&mut *ctx.db.acquire().await?, &email).await? {
        Some("rejected_recently")
    } else if signups::pending_count(&ctx.db).await? >= signups::MAX_PENDING {
        tracing::warn!(
            max = signups::MAX_PENDING,
            "sign-up refused: the pending sign-ups are at their cap; decide waiting requests to take new ones"
        );
        Some("too_many_pending")
    } else {
        None
    };
    if let Some(refused) = refused {
        // Rejected recently, or too many requests wait: the same answer as any sign-up, and nothing else (no
        // account, no mail). The audit entry names the address by its hash (and masked), not in full: nobody
        // with the log learns it.
        drop(hash);
        let mut conn = ctx.db.acquire().await?;
        actor
            .audit(
                &mut conn,
                event::SIGNUP,
                None,
                serde_json::json!({
                    "refused": refused,
                    "email": crate::notify::unsubscribe::mask_email(&email),
                    "email_hash": signups::address_hash(&email),
                }),
            )
            .await?;
        return Ok(answer);
    }
    let mut tx = ctx.db.begin().await?;
    let created = users::insert(&mut tx, &email, &display_name, &hash, Role::Trader).await?;
    let mut emitted = Vec::new();
    let job = match created {
        Some(user_id) => {
            if let Some(hash) = &gate.invite {
                crate::admin::settings::use_invite(&mut tx, hash, user_id).await?;
            }
            if let Some(reason) = &reason {
                emitted.push(signups::request(ctx, &mut tx, user_id, &email, reason).await?);
            }
            let token =
                email_token::create(&mut tx, user_id, email_token::Purpose::VerifyEmail).await?;
            let rendered = templates::verify(&super::link(ctx, "/verify-email", &token))?;
            super::queue_mail(ctx, actor, &mut tx, Some(user_id), &email, rendered).await?
        }
        None => {
            // Tell the owner, at the address stored for the account (not the spelling just typed).
            let owner = users::find_for_signin(&ctx.db, &email).await?;
            let (owner_id, owner_email) =
                owner.map_or((None, email.clone()), |(u, _)| (Some(u.user_id), u.email));
            let rendered = templates::signup_existing(&super::forgot_url(ctx))?;
            super::queue_mail(ctx, actor, &mut tx, owner_id, &owner_email, rendered).await?
        }
    };
    actor
        .audit_email(
            &mut tx,
            event::SIGNUP,
            created,
            Some(&email),
            if reason.is_some() {
                serde_json::json!({ "pending_approval": true })
            } else {
                serde_json::Value::Null
            },
        )
        .await?;
    tx.commit().await?;
    super::push(ctx, job).await;
    crate::notify::push(&ctx.jobs, &emitted).await;
    Ok(answer)
}
