//! Changing strategies: create (within the per-user quota), save an edit as a new version (all or nothing,
//! keeping a refused edit as the draft), discard the draft, duplicate, archive and restore. The `*_as`
//! variants record the actor's audit entry in the same transaction (see [`crate::backtest::actions`]).

use sqlx::PgPool;
use uuid::Uuid;

use super::{
    ARCHIVED, MAX_NAME, NewStrategy, STALE_DRAFT, SaveStrategy, Saved, blank_source,
    check_source_text, clean_description, clean_name, get, insert_version,
};
use crate::backtest::{Error, compile};

/// Creates a strategy with version 1.
///
/// # Errors
/// [`Error::Invalid`] (name, unknown template), [`Error::Strategy`] (source), database errors.
pub async fn create(db: &PgPool, user: Uuid, new: NewStrategy) -> Result<Uuid, Error> {
    create_within(db, user, new, Quota::UNLIMITED).await
}

/// Per-user bounds on stored strategies (the plan's `strategies` limit, see [`crate::plans`]) and versions
/// (`STRATEGY_VERSION_QUOTA`), checked under a lock on the user's row so parallel requests cannot overshoot
/// them.
#[derive(Debug, Clone)]
pub struct Quota {
    pub strategies: i64,
    pub versions: i64,
    /// The user's plan limits, when `strategies` comes from them (a refusal then names the plan).
    pub plan: Option<crate::plans::Limits>,
}

impl Quota {
    /// No bounds (operator tools, tests).
    pub const UNLIMITED: Self = Self {
        strategies: i64::MAX,
        versions: i64::MAX,
        plan: None,
    };

    /// The instance settings (`STRATEGY_QUOTA`, `STRATEGY_VERSION_QUOTA`), without a plan.
    pub fn from_settings(s: &crate::settings::Settings) -> Self {
        Self {
            strategies: s.backtest.strategy_quota,
            versions: s.backtest.version_quota,
            plan: None,
        }
    }

    /// The user's quota: the plan's `strategies` limit and the instance's version quota.
    ///
    /// # Errors
    /// As [`crate::plans::limits_for`].
    pub async fn for_user(ctx: &crate::Ctx, user: Uuid) -> Result<Self, Error> {
        let limits = crate::plans::limits_for(ctx, user).await?;
        Ok(Self {
            strategies: limits
                .get(crate::plans::Limit::Strategies)
                .unwrap_or(i64::MAX),
            versions: ctx.settings.backtest.version_quota,
            plan: Some(limits),
        })
    }
}

/// Refuses a new strategy when the user has `quota.strategies` strategies or `quota.versions` versions;
/// locks the user's row until the transaction ends.
async fn check_new_strategy(
    tx: &mut sqlx::PgConnection,
    user: Uuid,
    quota: &Quota,
) -> Result<(), Error> {
    sqlx::query!(
        "select 1 as one from app_user where user_id = $1 for update",
        user
    )
    .fetch_all(&mut *tx)
    .await?;
    let counts = sqlx::query!(
        r#"select (select count(*) from strategy where user_id = $1) as "strategies!",
                  (select count(*) from strategy_version v join strategy s using (strategy_id)
                   where s.user_id = $1) as "versions!""#,
        user,
    )
    .fetch_one(&mut *tx)
    .await?;
    let (strategies, versions) = (counts.strategies, counts.versions);
    if strategies >= quota.strategies {
        if let Some(plan) = &quota.plan {
            return Err(plan.refuse(crate::plans::Limit::Strategies, strategies, 1));
        }
        return Err(Error::Limit(format!(
            "you have {strategies} strategies, the most an account may keep"
        )));
    }
    if versions >= quota.versions {
        return Err(Error::Limit(format!(
            "you have {versions} saved versions, the most an account may keep"
        )));
    }
    Ok(())
}

/// [`create`] within the user's [`Quota`].
///
/// # Errors
/// As [`create`], and [`Error::Limit`] when over the quota.
pub async fn create_within(
    db: &PgPool,
    user: Uuid,
    new: NewStrategy,
    quota: Quota,
) -> Result<Uuid, Error> {
    create_as(db, user, new, quota, None).await
}

/// [`create_within`], recording `strategy_created` (with `audit_detail` merged in) for `actor` in the
/// creating transaction.
pub(crate) async fn create_as(
    db: &PgPool,
    user: Uuid,
    new: NewStrategy,
    quota: Quota,
    actor: Option<(&crate::Actor, serde_json::Value)>,
) -> Result<Uuid, Error> {
    let (source, template) = match (&new.source, &new.template) {
        (Some(s), _) => (s.clone(), None),
        (None, Some(t)) => {
            let mut conn = db.acquire().await?;
            let p = crate::backtest::catalogue::resolve(&mut conn, t).await?;
            (p.source, Some((p.slug, p.version, p.name)))
        }
        (None, None) => (blank_source().to_owned(), None),
    };
    let name = clean_name(
        new.name
            .as_deref()
            .filter(|n| !n.trim().is_empty())
            .or(template.as_ref().map(|t| t.2.as_str()))
            .unwrap_or("Untitled strategy"),
    )?;
    let description = clean_description(new.description.as_deref().unwrap_or(""))?;
    check_source_text(&source)?;
    let compiled = compile(&source, &[])?;
    let id = Uuid::new_v4();
    let mut tx = db.begin().await?;
    check_new_strategy(&mut tx, user, &quota).await?;
    sqlx::query!(
        r#"insert into strategy (strategy_id, user_id, name, description, template, template_version)
           values ($1, $2, $3, $4, $5, $6)"#,
        id,
        user,
        name,
        description,
        template.as_ref().map(|t| t.0.as_str()),
        template.as_ref().map(|t| t.1),
    )
    .execute(&mut *tx)
    .await?;
    insert_version(&mut tx, id, 1, &compiled).await?;
    if let Some((actor, mut detail)) = actor {
        detail["strategy_id"] = serde_json::json!(id);
        actor
            .audit(&mut tx, "strategy_created", None, detail)
            .await?;
    }
    tx.commit().await?;
    Ok(id)
}

/// Saves an edit: a new version when the source changed and compiles (refused when the user already has
/// `quota.versions` versions in all), and the name and description.
///
/// A save is all or nothing: on any refusal (invalid name or description, read-only over the user's plan,
/// archived, stale `base_version`, source that does not compile, quota) neither the name, the description nor
/// a version is stored. The
/// only thing a refusal may store is the edit's source as the draft, and only by compare-and-swap on the
/// draft slot's revision ([`SaveStrategy::draft_rev`]): when another tab wrote the draft since this page was
/// opened, the refusal says so and stores nothing.
///
/// # Errors
/// [`Error::NotFound`], [`Error::Invalid`], [`Error::Conflict`], [`Error::Strategy`], [`Error::Limit`];
/// database errors.
pub async fn save(
    db: &PgPool,
    user: Uuid,
    id: Uuid,
    edit: SaveStrategy,
    quota: Quota,
) -> Result<Saved, Error> {
    save_as(db, user, id, edit, quota, None).await
}

/// [`save`], recording `strategy_saved` for `actor` in the saving transaction when a version was added.
pub(crate) async fn save_as(
    db: &PgPool,
    user: Uuid,
    id: Uuid,
    edit: SaveStrategy,
    quota: Quota,
    actor: Option<&crate::Actor>,
) -> Result<Saved, Error> {
    if let Some(src) = &edit.source {
        check_source_text(src)?;
    }
    let name = edit.name.as_deref().map(clean_name).transpose();
    let description = edit
        .description
        .as_deref()
        .map(clean_description)
        .transpose();
    let mut tx = db.begin().await?;
    let row = sqlx::query!(
        r#"select latest_version, archived_at is not null as "archived!", draft_rev
           from strategy where strategy_id = $1 and user_id = $2 for update"#,
        id,
        user,
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(Error::NotFound)?;
    let (latest, archived, draft_rev) = (row.latest_version, row.archived, row.draft_rev);
    // Read-only while it is part of the excess of an enforced plan overage (crate::plans::overage).
    let read_only = match crate::plans::overage::check_strategy(&mut tx, id).await {
        Ok(()) => None,
        Err(e @ Error::PlanReadOnly(_)) => Some(e),
        Err(e) => return Err(e),
    };
    // Whether this edit may write the draft slot: it saw the current draft. Without a revision (API
    // clients that do not send one) the last write wins, as before.
    let draft_current = edit.draft_rev.is_none_or(|rev| rev == draft_rev);
    let stale_draft = || Error::Conflict(STALE_DRAFT.into());
    let refusal = match (&name, &description) {
        (Err(e), _) | (_, Err(e)) => Some(Error::invalid(
            match e {
                Error::Invalid { field, .. } => field,
                _ => "name",
            },
            e.message(),
        )),
        _ if read_only.is_some() => read_only,
        _ if archived => Some(Error::Conflict(ARCHIVED.into())),
        _ => match edit.base_version {
            Some(base) if base != latest => Some(Error::Conflict(format!(
                "version {latest} was saved after the version {base} you edited; reload to see it"
            ))),
            _ => None,
        },
    };
    if let Some(refusal) = refusal {
        // Nothing typed is lost: a refused edit's source is kept as the draft (unless it equals the newest
        // version), shown with the refusal until it is saved or discarded; but never over a newer draft.
        if let Some(source) = &edit.source {
            if !draft_current {
                return Err(stale_draft());
            }
            write_draft(&mut tx, id, source, latest).await?;
            tx.commit().await?;
        }
        return Err(refusal);
    }
    let (name, description) = (name?, description?);
    let mut outcome = Saved {
        version: latest,
        new_version: false,
    };
    if let Some(source) = &edit.source {
        let current = sqlx::query_scalar!(
            "select source from strategy_version where strategy_id = $1 and version = $2",
            id,
            latest,
        )
        .fetch_one(&mut *tx)
        .await?;
        match compile(source, &[]) {
            Err(e) => {
                // Neither name nor description is stored with source that does not compile.
                if !draft_current {
                    return Err(stale_draft());
                }
                write_draft(&mut tx, id, source, latest).await?;
                tx.commit().await?;
                return Err(e);
            }
            Ok(compiled) => {
                if compiled.source() != current {
                    let versions = sqlx::query_scalar!(
                        r#"select count(*) as "n!" from strategy_version v join strategy s using (strategy_id)
                           where s.user_id = $1"#,
                        user,
                    )
                    .fetch_one(&mut *tx)
                    .await?;
                    if versions >= quota.versions {
                        return Err(Error::Limit(format!(
                            "you have {versions} saved versions, the most an account may keep"
                        )));
                    }
                    insert_version(&mut tx, id, latest + 1, &compiled).await?;
                    sqlx::query!(
                        "update strategy set latest_version = $2 where strategy_id = $1",
                        id,
                        latest + 1,
                    )
                    .execute(&mut *tx)
                    .await?;
                    outcome = Saved {
                        version: latest + 1,
                        new_version: true,
                    };
                }
                sqlx::query!(
                    r#"update strategy set draft_source = null,
                           draft_rev = draft_rev + case when draft_source is null then 0 else 1 end
                       where strategy_id = $1"#,
                    id,
                )
                .execute(&mut *tx)
                .await?;
            }
        }
    }
    sqlx::query!(
        "update strategy set name = coalesce($2, name), description = coalesce($3, description) where strategy_id = $1",
        id,
        name,
        description,
    )
    .execute(&mut *tx)
    .await?;
    if let Some(actor) = actor
        && outcome.new_version
    {
        actor
            .audit(
                &mut tx,
                "strategy_saved",
                None,
                serde_json::json!({ "strategy_id": id, "version": outcome.version }),
            )
            .await?;
    }
    tx.commit().await?;
    Ok(outcome)
}

/// Stores `source` as the strategy's draft and bumps the draft revision (a source equal to the newest
/// version is not a draft: the slot is left alone).
async fn write_draft(
    tx: &mut sqlx::PgConnection,
    id: Uuid,
    source: &str,
    latest: i32,
) -> Result<(), Error> {
    sqlx::query!(
        r#"update strategy s set draft_source = $2, draft_rev = draft_rev + 1
           where s.strategy_id = $1
             and $2 <> (select source from strategy_version v where v.strategy_id = $1 and v.version = $3)"#,
        id,
        source,
        latest,
    )
    .execute(tx)
    .await?;
    Ok(())
}

/// Drops the unsaved draft.
///
/// # Errors
/// [`Error::NotFound`], database errors.
pub async fn discard_draft(db: &PgPool, user: Uuid, id: Uuid) -> Result<(), Error> {
    discard_draft_as(db, user, id, None).await
}

/// [`discard_draft`], recording `strategy_draft_discarded` for `actor` in the same transaction.
pub(crate) async fn discard_draft_as(
    db: &PgPool,
    user: Uuid,
    id: Uuid,
    actor: Option<&crate::Actor>,
) -> Result<(), Error> {
    let mut tx = db.begin().await?;
    let n = sqlx::query!(
        r#"update strategy set draft_source = null,
               draft_rev = draft_rev + case when draft_source is null then 0 else 1 end
           where strategy_id = $1 and user_id = $2"#,
        id,
        user,
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if n == 0 {
        return Err(Error::NotFound);
    }
    if let Some(actor) = actor {
        actor
            .audit(
                &mut tx,
                "strategy_draft_discarded",
                None,
                serde_json::json!({ "strategy_id": id }),
            )
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Copies the newest version into a new strategy ("<name> (copy)").
///
/// # Errors
/// [`Error::NotFound`], database errors.
pub async fn duplicate(db: &PgPool, user: Uuid, id: Uuid, quota: Quota) -> Result<Uuid, Error> {
    duplicate_as(db, user, id, quota, None).await
}

/// [`duplicate`], recording `strategy_created` (with `duplicate_of`) for `actor` in the creating transaction.
pub(crate) async fn duplicate_as(
    db: &PgPool,
    user: Uuid,
    id: Uuid,
    quota: Quota,
    actor: Option<&crate::Actor>,
) -> Result<Uuid, Error> {
    let detail = get(db, user, id).await?;
    let mut name = format!("{} (copy)", detail.summary.name);
    if name.chars().count() > MAX_NAME {
        name = name.chars().take(MAX_NAME).collect();
    }
    create_as(
        db,
        user,
        NewStrategy {
            name: Some(name),
            description: Some(detail.summary.description),
            template: None,
            source: Some(detail.latest.source),
        },
        quota,
        actor.map(|a| (a, serde_json::json!({ "duplicate_of": id }))),
    )
    .await
}

/// Archives (hides from the list, refuses new runs) or restores a strategy. Its runs stay.
///
/// # Errors
/// [`Error::NotFound`], database errors.
pub async fn set_archived(db: &PgPool, user: Uuid, id: Uuid, archived: bool) -> Result<(), Error> {
    set_archived_as(db, user, id, archived, None).await
}

/// [`set_archived`], recording `strategy_archived`/`strategy_restored` for `actor` in the same transaction.
pub(crate) async fn set_archived_as(
    db: &PgPool,
    user: Uuid,
    id: Uuid,
    archived: bool,
    actor: Option<&crate::Actor>,
) -> Result<(), Error> {
    let mut tx = db.begin().await?;
    let n = sqlx::query!(
        r#"update strategy set archived_at = case when $3 then coalesce(archived_at, now()) else null end
           where strategy_id = $1 and user_id = $2"#,
        id,
        user,
        archived,
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if n == 0 {
        return Err(Error::NotFound);
    }
    if let Some(actor) = actor {
        let event = if archived {
            "strategy_archived"
        } else {
            "strategy_restored"
        };
        actor
            .audit(
                &mut tx,
                event,
                None,
                serde_json::json!({ "strategy_id": id }),
            )
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// What deleting a strategy removed with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Deleted {
    pub versions: i64,
    pub backtests: i64,
    pub paper_runs: i64,
}

/// Deletes a strategy for good, with its versions, its backtests and its finished paper runs (their trades and
/// results); audited as `strategy_deleted` (with what it removed) for `actor`, and the user's plan overages
/// reconciled, in one transaction (a deleted strategy no longer counts against the plan's `strategies`).
/// Refused while a paper run of it is active, paused or stopping, or a backtest of it is queued or running:
/// deleting never stops open work.
///
/// # Errors
/// [`Error::NotFound`], [`Error::Conflict`] (open work), database errors.
pub(crate) async fn delete_as(
    ctx: &crate::Ctx,
    user: Uuid,
    id: Uuid,
    actor: &crate::Actor,
) -> Result<Deleted, Error> {
    let mut tx = ctx.db.begin().await?;
    let name = sqlx::query_scalar!(
        "select name from strategy where strategy_id = $1 and user_id = $2 for update",
        id,
        user,
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(Error::NotFound)?;
    let open = sqlx::query!(
        r#"select (select count(*) from paper_run
                   where strategy_id = $1 and status in ('active', 'paused', 'stopping')) as "paper!",
                  (select count(*) from backtest_run where strategy_id = $1 and status in ('queued', 'running'))
                      as "backtests!""#,
        id,
    )
    .fetch_one(&mut *tx)
    .await?;
    let mut open_work = Vec::new();
    if open.paper > 0 {
        open_work.push(format!(
            "{} paper run(s) active, paused or stopping",
            open.paper
        ));
    }
    if open.backtests > 0 {
        open_work.push(format!("{} backtest(s) queued or running", open.backtests));
    }
    if !open_work.is_empty() {
        return Err(Error::Conflict(format!(
            "this strategy has {}: stop or cancel them first (deleting a strategy never stops open work), or \
             archive it instead",
            open_work.join(" and ")
        )));
    }
    let counts = sqlx::query!(
        r#"select (select count(*) from strategy_version where strategy_id = $1) as "versions!",
                  (select count(*) from backtest_run where strategy_id = $1) as "backtests!",
                  (select count(*) from paper_run where strategy_id = $1) as "paper!""#,
        id,
    )
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query!("delete from strategy where strategy_id = $1", id)
        .execute(&mut *tx)
        .await?;
    let deleted = Deleted {
        versions: counts.versions,
        backtests: counts.backtests,
        paper_runs: counts.paper,
    };
    actor
        .audit(
            &mut tx,
            "strategy_deleted",
            None,
            serde_json::json!({
                "strategy_id": id, "name": name, "versions": deleted.versions,
                "backtests": deleted.backtests, "paper_runs": deleted.paper_runs,
            }),
        )
        .await?;
    tx.commit().await?;
    // After the commit, in its own transaction: a failed reconciliation cannot undo the deletion (logged; the
    // sweep repeats it).
    crate::plans::overage::reconcile_after(ctx, actor, user).await;
    Ok(deleted)
}
