//! API tokens of the signed-in user: listing, creating (confirmed email and current password) and revoking.

use serde_json::json;
use uuid::Uuid;

use crate::{
    Actor, Ctx,
    auth::{Scope, api_token, audit::event},
    error::{Error, Result},
    notify::{self, Event, event::TokenCreated},
};

/// What the new-token form sends (as typed; the action validates it).
#[derive(Debug, Clone, Default)]
pub struct NewToken {
    pub name: String,
    /// `read` or `read_write`.
    pub scope: String,
    /// Days until it expires (1–3650), or empty / `never`.
    pub expires_in_days: String,
    pub current_password: String,
}

/// The refusal when a live token of the user already has this name.
pub fn name_taken() -> Error {
    Error::Conflict("You already have a token with that name.".into())
}

fn parse_expiry(s: &str) -> Result<Option<u32>> {
    match s.trim() {
        "" | "never" => Ok(None),
        d => match d.parse::<u32>() {
            Ok(n) if (1..=3650).contains(&n) => Ok(Some(n)),
            _ => Err(Error::invalid(
                "expires_in_days",
                "The expiry must be between 1 and 3650 days, or never.",
            )),
        },
    }
}

/// The actor's live tokens (never their secrets).
///
/// # Errors
/// [`Error::Unauthenticated`], database.
pub async fn list(ctx: &Ctx, actor: &Actor) -> Result<Vec<api_token::ApiTokenInfo>> {
    let user = actor.reader()?;
    Ok(api_token::list(&ctx.db, user.user_id).await?)
}

/// Creates a token: needs a writer whose email is confirmed ([`Actor::runner`]) and the current password (a
/// session alone, e.g. a stolen cookie, cannot mint lasting access). Returns the token and its secret, which
/// is never shown again.
///
/// # Errors
/// [`Error::Unauthenticated`], [`Error::Forbidden`], [`Error::EmailUnconfirmed`], [`Error::Invalid`] (`name`,
/// `scope`, `expires_in_days`, `current_password`), [`Error::RateLimited`], [`name_taken`], hashing busy,
/// database.
pub async fn create(
    ctx: &Ctx,
    actor: &Actor,
    input: NewToken,
) -> Result<(api_token::ApiTokenInfo, String)> {
    let user = actor.runner()?;
    let name = api_token::parse_name(&input.name).map_err(|m| Error::invalid("name", m))?;
    let scope = Scope::parse(input.scope.trim())
        .ok_or_else(|| Error::invalid("scope", "Choose a scope for the token."))?;
    let expires = parse_expiry(&input.expires_in_days)?;
    super::password::confirm_current(ctx, actor, input.current_password, "token_create").await?;
    let mut tx = ctx.db.begin().await?;
    let (info, secret) = api_token::create(&mut *tx, user.user_id, &name, scope, expires)
        .await?
        .ok_or_else(name_taken)?;
    actor
        .audit(
            &mut tx,
            event::TOKEN_CREATED,
            None,
            json!({ "token": info.api_token_id, "name": info.name, "scope": scope.as_str() }),
        )
        .await?;
    let emitted = super::emit(
        ctx,
        &mut tx,
        &Event::TokenCreated(TokenCreated {
            user_id: user.user_id,
            token_id: info.api_token_id,
            token_name: info.name.clone(),
            scope: scope.as_str().to_owned(),
            expires_at: info.expires_at,
        }),
    )
    .await?;
    tx.commit().await?;
    notify::push(&ctx.jobs, &[emitted]).await;
    Ok((info, secret))
}

/// Revokes one of the actor's own tokens (any signed-in user may revoke their own); other users' tokens and
/// ids that are not UUIDs are not found.
///
/// # Errors
/// [`Error::Unauthenticated`], [`Error::NotFound`], database.
pub async fn revoke(ctx: &Ctx, actor: &Actor, token_id: &str) -> Result<()> {
    let user = actor.reader()?;
    let token_id = token_id.parse::<Uuid>().map_err(|_| Error::NotFound)?;
    let mut tx = ctx.db.begin().await?;
    let name = api_token::revoke(&mut *tx, user.user_id, token_id)
        .await?
        .ok_or(Error::NotFound)?;
    actor
        .audit(
            &mut tx,
            event::TOKEN_REVOKED,
            None,
            json!({ "token": token_id, "name": name }),
        )
        .await?;
    tx.commit().await?;
    Ok(())
}
