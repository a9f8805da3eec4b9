//! Strategy actions: list, read, validate (readers); create, save a version, duplicate, archive, restore,
//! delete, discard the draft (writers, within the per-user quotas, audited in the same transaction). A
//! strategy that is read-only over the user's plan refuses saves (`crate::plans::overage`).

use engine::strategy::ParamInfo;
use uuid::Uuid;

use crate::{
    Actor, Ctx,
    backtest::{
        Error,
        strategies::{
            self as data, NewStrategy, Quota, SaveStrategy, Saved, StrategyDetail, StrategySummary,
            Version,
        },
    },
};

/// The actor's strategies (archived ones too when asked).
///
/// # Errors
/// [`Error::Unauthenticated`], database errors.
pub async fn list(
    actor: &Actor,
    ctx: &Ctx,
    include_archived: bool,
) -> Result<Vec<StrategySummary>, Error> {
    let user = actor.reader()?.user_id;
    data::list(&ctx.db, user, include_archived).await
}

/// One of the actor's strategies.
///
/// # Errors
/// [`Error::Unauthenticated`], [`Error::NotFound`], database errors.
pub async fn get(actor: &Actor, ctx: &Ctx, id: Uuid) -> Result<StrategyDetail, Error> {
    let user = actor.reader()?.user_id;
    data::get(&ctx.db, user, id).await
}

/// A saved version (`None` = the newest) of one of the actor's strategies.
///
/// # Errors
/// [`Error::Unauthenticated`], [`Error::NotFound`], database errors.
pub async fn version(
    actor: &Actor,
    ctx: &Ctx,
    id: Uuid,
    version: Option<i32>,
) -> Result<Version, Error> {
    let user = actor.reader()?.user_id;
    data::version(&ctx.db, user, id, version).await
}

/// Checks source text (the editor's live check): its parameters, or every problem.
///
/// # Errors
/// [`Error::Unauthenticated`], [`Error::Strategy`], [`Error::Invalid`] (too long).
pub fn validate(actor: &Actor, source: &str) -> Result<Vec<ParamInfo>, Error> {
    actor.reader()?;
    data::validate(source)
}

/// Creates a strategy (from source, a template or blank) within the actor's quota.
///
/// # Errors
/// [`Error::Unauthenticated`], [`Error::Forbidden`], [`Error::Invalid`], [`Error::Strategy`],
/// [`Error::Limit`] (quota), database errors.
pub async fn create(actor: &Actor, ctx: &Ctx, new: NewStrategy) -> Result<Uuid, Error> {
    let user = actor.writer()?.user_id;
    let quota = Quota::for_user(ctx, user).await?;
    let id = data::create_as(
        &ctx.db,
        user,
        new,
        quota,
        Some((actor, serde_json::json!({}))),
    )
    .await?;
    crate::plans::warn_usage(ctx, user, crate::plans::Limit::Strategies).await;
    Ok(id)
}

/// Saves an edit: a new version when the source changed, name/description otherwise (see
/// [`data::save`] for drafts and stale edits).
///
/// # Errors
/// [`Error::Unauthenticated`], [`Error::Forbidden`], and as [`data::save`].
pub async fn save(actor: &Actor, ctx: &Ctx, id: Uuid, edit: SaveStrategy) -> Result<Saved, Error> {
    let user = actor.writer()?.user_id;
    let quota = Quota::for_user(ctx, user).await?;
    data::save_as(&ctx.db, user, id, edit, quota, Some(actor)).await
}

/// Copies the newest version into a new strategy, within the quota.
///
/// # Errors
/// [`Error::Unauthenticated`], [`Error::Forbidden`], [`Error::NotFound`], [`Error::Limit`], database errors.
pub async fn duplicate(actor: &Actor, ctx: &Ctx, id: Uuid) -> Result<Uuid, Error> {
    let user = actor.writer()?.user_id;
    let quota = Quota::for_user(ctx, user).await?;
    let copy = data::duplicate_as(&ctx.db, user, id, quota, Some(actor)).await?;
    crate::plans::warn_usage(ctx, user, crate::plans::Limit::Strategies).await;
    Ok(copy)
}

/// Archives (`true`) or restores (`false`) a strategy.
///
/// # Errors
/// [`Error::Unauthenticated`], [`Error::Forbidden`], [`Error::NotFound`], database errors.
pub async fn set_archived(actor: &Actor, ctx: &Ctx, id: Uuid, archived: bool) -> Result<(), Error> {
    let user = actor.writer()?.user_id;
    data::set_archived_as(&ctx.db, user, id, archived, Some(actor)).await
}

/// Deletes a strategy for good with its versions, backtests and finished paper runs (archiving keeps them);
/// refused while a paper run of it is live or a backtest of it queued or running. Allowed also while the
/// strategy is read-only over the user's plan: deleting is how a trader gets back within the `strategies`
/// limit (the overage is reconciled in the same transaction).
///
/// # Errors
/// [`Error::Unauthenticated`], [`Error::Forbidden`], [`Error::NotFound`], [`Error::Conflict`] (open work),
/// database errors.
pub async fn delete(actor: &Actor, ctx: &Ctx, id: Uuid) -> Result<data::Deleted, Error> {
    let user = actor.writer()?.user_id;
    data::delete_as(ctx, user, id, actor).await
}

/// Drops the unsaved draft.
///
/// # Errors
/// [`Error::Unauthenticated`], [`Error::Forbidden`], [`Error::NotFound`], database errors.
pub async fn discard_draft(actor: &Actor, ctx: &Ctx, id: Uuid) -> Result<(), Error> {
    let user = actor.writer()?.user_id;
    data::discard_draft_as(&ctx.db, user, id, Some(actor)).await
}
