//! Plan actions: the catalogue (any signed-in user), the admin actions (list, create, edit, archive, assign a
//! plan or an override to a user; audited in the same transaction) and a user's plan with limits and usage.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgConnection;
use uuid::Uuid;

use super::{Limit, LimitValues, Source, apply, forget, limits_in, parse_values, to_json, usage};
use crate::{
    Actor, Ctx,
    error::{Error, Result, ResultExt},
};

/// Most plans an instance may have (archived ones included).
pub const MAX_PLANS: i64 = 200;
/// Longest assignment reason and plan description, in characters.
pub const MAX_REASON: usize = 500;

/// A plan as admins and the catalogue see it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Plan {
    pub id: Uuid,
    pub slug: String,
    pub name: String,
    pub description: String,
    /// The price in minor units of `currency` (cents), per `billing_period`.
    pub price_minor: i64,
    pub currency: String,
    /// `month` or `year`.
    pub billing_period: String,
    pub trial_days: i32,
    pub is_default: bool,
    pub archived: bool,
    /// The plan's own values (a missing limit: the instance setting, or unlimited).
    pub limits: LimitValues,
    /// Users assigned this plan explicitly (users on the default plan without an assignment not counted).
    pub users: i64,
    /// The payment provider's price id (Stripe `price_…`) a checkout for this plan buys; `None`: not for sale
    /// (docs/billing.md).
    pub provider_price_id: Option<String>,
}

/// A new plan, or the changes to one (`None` = unchanged; required on create: `slug`, `name`).
#[derive(Debug, Clone, Default)]
pub struct PlanInput {
    pub slug: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
    pub price_minor: Option<i64>,
    pub currency: Option<String>,
    pub billing_period: Option<String>,
    pub trial_days: Option<i64>,
    pub is_default: Option<bool>,
    pub archived: Option<bool>,
    /// The provider's price id: `Some("")` removes it.
    pub provider_price_id: Option<String>,
    /// Limit name → value; `null` removes the plan's value.
    pub limits: BTreeMap<String, Option<serde_json::Value>>,
}

/// A user's plan assignment (replaces the previous one).
#[derive(Debug, Clone, Default)]
pub struct Assignment {
    /// The plan's slug or id; `None` = the default plan.
    pub plan: Option<String>,
    /// Per-user values over the plan's (any subset of the limits).
    pub overrides: BTreeMap<String, Option<serde_json::Value>>,
    pub reason: Option<String>,
    /// When the assignment ends (the user is back on the default plan then).
    pub ends_at: Option<DateTime<Utc>>,
}

/// One limit of a user: its effective value (`None` = unlimited), where it comes from and the usage (for
/// counted limits).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct LimitRow {
    pub limit: Limit,
    pub label: &'static str,
    pub value: Option<i64>,
    pub source: Source,
    pub usage: Option<i64>,
}

/// A user's plan, effective limits and usage.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct UserPlan {
    pub user_id: Uuid,
    pub plan: Plan,
    pub limits: Vec<LimitRow>,
    pub overrides: LimitValues,
    pub reason: Option<String>,
    pub ends_at: Option<DateTime<Utc>>,
    /// Limits the user is over after a plan change: the grace period, and once it ended what is restricted
    /// (docs/plans.md, "Over your plan's limits").
    pub overages: Vec<super::overage::Overage>,
}

async fn all(conn: &mut PgConnection) -> Result<Vec<Plan>> {
    let rows = sqlx::query!(
        r#"select p.plan_id, p.slug, p.name, p.description, p.price_minor, p.currency, p.billing_period,
                  p.trial_days, p.is_default, p.archived_at is not null as "archived!", p.limits,
                  p.provider_price_id,
                  (select count(*) from user_plan up where up.plan_id = p.plan_id
                     and (up.ends_at is null or up.ends_at > now())
                     and not exists (select 1 from signup_request r where r.user_id = up.user_id)) as "users!"
           from plan p order by p.archived_at is not null, p.price_minor, p.name"#
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Plan {
            id: r.plan_id,
            slug: r.slug,
            name: r.name,
            description: r.description,
            price_minor: r.price_minor,
            currency: r.currency,
            billing_period: r.billing_period,
            trial_days: r.trial_days,
            is_default: r.is_default,
            archived: r.archived,
            limits: parse_values(&r.limits),
            users: r.users,
            provider_price_id: r.provider_price_id,
        })
        .collect())
}

async fn one(conn: &mut PgConnection, id: Uuid) -> Result<Plan> {
    all(conn)
        .await?
        .into_iter()
        .find(|p| p.id == id)
        .ok_or(Error::NotFound)
}

/// The plans a user can compare (not archived), cheapest first.
///
/// # Errors
/// [`Error::Unauthenticated`], database errors.
pub async fn catalogue(actor: &Actor, ctx: &Ctx) -> Result<Vec<Plan>> {
    actor.reader()?;
    let mut conn = ctx.db.acquire().await?;
    Ok(all(&mut conn)
        .await?
        .into_iter()
        .filter(|p| !p.archived)
        .map(|p| Plan { users: 0, ..p })
        .collect())
}

/// Every plan, archived ones last (admins).
///
/// # Errors
/// [`Error::Unauthenticated`], [`Error::Forbidden`], database errors.
pub async fn list(actor: &Actor, ctx: &Ctx) -> Result<Vec<Plan>> {
    actor.admin()?;
    let mut conn = ctx.db.acquire().await?;
    all(&mut conn).await
}

/// One plan by id (admins).
///
/// # Errors
/// As [`list`], and [`Error::NotFound`].
pub async fn get(actor: &Actor, ctx: &Ctx, id: Uuid) -> Result<Plan> {
    actor.admin()?;
    let mut conn = ctx.db.acquire().await?;
    one(&mut conn, id).await
}

/// One plan by slug or id (admins; the CLI's and the assignment's way to name a plan).
///
/// # Errors
/// As [`list`]; [`Error::Invalid`] (`plan`) when there is no such plan.
pub async fn find(actor: &Actor, ctx: &Ctx, slug_or_id: &str) -> Result<Plan> {
    actor.admin()?;
    let mut conn = ctx.db.acquire().await?;
    lookup(&mut conn, slug_or_id).await
}

async fn lookup(conn: &mut PgConnection, slug_or_id: &str) -> Result<Plan> {
    let key = slug_or_id.trim();
    let id = Uuid::parse_str(key).ok();
    all(conn)
        .await?
        .into_iter()
        .find(|p| p.slug == key || Some(p.id) == id)
        .ok_or_else(|| {
            let key: String = key.chars().take(40).collect();
            Error::invalid("plan", format!("there is no plan `{key}`"))
        })
}

fn check_text(field: &str, v: &str, max: usize, required: bool) -> Result<String> {
    if v.chars().count() > max || v.chars().any(char::is_control) {
        return Err(Error::invalid(
            field,
            format!("at most {max} characters, no control characters"),
        ));
    }
    let v = v.trim();
    if required && v.is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    Ok(v.to_owned())
}

/// Applies `input` to `plan` (a copy), checking every field.
fn merge(mut plan: Plan, input: &PlanInput) -> Result<Plan> {
    if let Some(s) = &input.slug {
        let ok = (1..=40).contains(&s.len())
            && s.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !ok {
            return Err(Error::invalid(
                "slug",
                "1 to 40 lowercase letters, digits and dashes, starting with a letter or digit",
            ));
        }
        plan.slug = s.to_owned();
    }
    if let Some(n) = &input.name {
        plan.name = check_text("name", n, 80, true)?;
    }
    if let Some(d) = &input.description {
        plan.description = check_text("description", d, MAX_REASON, false)?;
    }
    if let Some(p) = input.price_minor {
        if !(0..=100_000_000_000).contains(&p) {
            return Err(Error::invalid(
                "price_minor",
                "must be from 0 to 100000000000 (minor units, e.g. cents)",
            ));
        }
        plan.price_minor = p;
    }
    if let Some(c) = &input.currency {
        if c.len() != 3 || !c.chars().all(|c| c.is_ascii_uppercase()) {
            return Err(Error::invalid(
                "currency",
                "a three-letter ISO 4217 code, e.g. USD or EUR",
            ));
        }
        plan.currency.clone_from(c);
    }
    if let Some(b) = &input.billing_period {
        if b != "month" && b != "year" {
            return Err(Error::invalid("billing_period", "must be month or year"));
        }
        plan.billing_period.clone_from(b);
    }
    if let Some(t) = input.trial_days {
        plan.trial_days = i32::try_from(t)
            .ok()
            .filter(|t| (0..=365).contains(t))
            .ok_or_else(|| Error::invalid("trial_days", "must be from 0 to 365"))?;
    }
    apply(&mut plan.limits, "limits", &input.limits)?;
    if let Some(p) = &input.provider_price_id {
        let p = p.trim();
        if p.is_empty() {
            plan.provider_price_id = None;
        } else if p.len() > 100 || !p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(Error::invalid(
                "provider_price_id",
                "the provider's price id, e.g. price_1PqXyZ…: at most 100 letters, digits and underscores",
            ));
        } else {
            plan.provider_price_id = Some(p.to_owned());
        }
    }
    if let Some(a) = input.archived {
        plan.archived = a;
    }
    if let Some(d) = input.is_default {
        if !d && plan.is_default {
            return Err(Error::invalid(
                "is_default",
                "there is always a default plan: make another plan the default instead",
            ));
        }
        plan.is_default = d;
    }
    if plan.is_default && plan.archived {
        return Err(Error::invalid(
            "archived",
            "the default plan cannot be archived: make another plan the default first",
        ));
    }
    Ok(plan)
}

/// Creates a plan; audited as `plan_created`. Making it the default moves the default.
///
/// # Errors
/// [`Error::Unauthenticated`], [`Error::Forbidden`], [`Error::Invalid`] naming the field (a slug in use,
/// limits out of bounds), [`Error::Limit`] ([`MAX_PLANS`]), database errors.
pub async fn create(actor: &Actor, ctx: &Ctx, input: &PlanInput) -> Result<Plan> {
    actor.admin_writer()?;
    if input.slug.is_none() {
        return Err(Error::invalid("slug", "required"));
    }
    if input.name.is_none() {
        return Err(Error::invalid("name", "required"));
    }
    let plan = merge(
        Plan {
            id: Uuid::new_v4(),
            slug: String::new(),
            name: String::new(),
            description: String::new(),
            price_minor: 0,
            currency: "USD".into(),
            billing_period: "month".into(),
            trial_days: 0,
            is_default: false,
            archived: false,
            limits: LimitValues::new(),
            users: 0,
            provider_price_id: None,
        },
        input,
    )?;
    let mut tx = ctx.db.begin().await?;
    // One plan change at a time (the default flag moves, the count is bounded).
    sqlx::query!("select pg_advisory_xact_lock(hashtextextended('plans', 0))")
        .execute(&mut *tx)
        .await?;
    let count = sqlx::query_scalar!(r#"select count(*) as "n!" from plan"#)
        .fetch_one(&mut *tx)
        .await?;
    if count >= MAX_PLANS {
        return Err(Error::Limit(format!(
            "there are {count} plans, the most an instance may have; archive and reuse one"
        )));
    }
    if plan.is_default {
        sqlx::query!("update plan set is_default = false where is_default")
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query!(
        r#"insert into plan (plan_id, slug, name, description, price_minor, currency, billing_period, trial_days,
                             is_default, limits, archived_at, provider_price_id)
           values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, case when $11 then now() end, $12)"#,
        plan.id,
        plan.slug,
        plan.name,
        plan.description,
        plan.price_minor,
        plan.currency,
        plan.billing_period,
        plan.trial_days,
        plan.is_default,
        to_json(&plan.limits),
        plan.archived,
        plan.provider_price_id,
    )
    .execute(&mut *tx)
    .await
    .on_constraint("plan_slug_key", || {
        Error::invalid("slug", "a plan with this slug exists")
    })
    .on_constraint("plan_provider_price_key", price_taken)?;
    actor
        .audit(&mut tx, "plan_created", None, audit_detail(&plan))
        .await?;
    tx.commit().await?;
    forget(None);
    if plan.is_default {
        // Every user without an assignment is on it now.
        super::overage::reconcile_plan(ctx, actor, plan.id).await;
    }
    Ok(plan)
}

fn price_taken() -> Error {
    Error::invalid(
        "provider_price_id",
        "another plan has this price id: one price entitles to one plan",
    )
}

fn audit_detail(p: &Plan) -> serde_json::Value {
    serde_json::json!({
        "plan_id": p.id, "slug": p.slug, "name": p.name, "price_minor": p.price_minor,
        "currency": p.currency, "billing_period": p.billing_period, "trial_days": p.trial_days,
        "is_default": p.is_default, "archived": p.archived, "limits": to_json(&p.limits),
        "provider_price_id": p.provider_price_id,
    })
}

/// Changes a plan (any subset of its fields; `limits` merged: `null` removes a value); audited as
/// `plan_updated` with the plan before and after. Archiving keeps the users on it (new assignments are
/// refused); plans are never deleted. Lowering limits deletes nothing: new work over them is refused, and its
/// users left over `active_paper_runs` or `strategies` get a grace period ([`super::overage`], reconciled
/// after the commit).
///
/// # Errors
/// As [`create`], and [`Error::NotFound`].
pub async fn update(actor: &Actor, ctx: &Ctx, id: Uuid, input: &PlanInput) -> Result<Plan> {
    actor.admin_writer()?;
    let mut tx = ctx.db.begin().await?;
    // One plan change at a time (the default flag moves, the count is bounded).
    sqlx::query!("select pg_advisory_xact_lock(hashtextextended('plans', 0))")
        .execute(&mut *tx)
        .await?;
    let before = one(&mut tx, id).await?;
    let plan = merge(before.clone(), input)?;
    if plan.is_default && !before.is_default {
        sqlx::query!("update plan set is_default = false where is_default")
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query!(
        r#"update plan set slug = $2, name = $3, description = $4, price_minor = $5, currency = $6,
                  billing_period = $7, trial_days = $8, is_default = $9, limits = $10,
                  archived_at = case when not $11 then null else coalesce(archived_at, now()) end,
                  provider_price_id = $12
           where plan_id = $1"#,
        id,
        plan.slug,
        plan.name,
        plan.description,
        plan.price_minor,
        plan.currency,
        plan.billing_period,
        plan.trial_days,
        plan.is_default,
        to_json(&plan.limits),
        plan.archived,
        plan.provider_price_id,
    )
    .execute(&mut *tx)
    .await
    .on_constraint("plan_slug_key", || {
        Error::invalid("slug", "a plan with this slug exists")
    })
    .on_constraint("plan_provider_price_key", price_taken)?;
    actor
        .audit(
            &mut tx,
            "plan_updated",
            None,
            serde_json::json!({ "plan_id": id, "before": audit_detail(&before), "after": audit_detail(&plan) }),
        )
        .await?;
    tx.commit().await?;
    forget(None);
    super::overage::reconcile_plan(ctx, actor, id).await;
    Ok(plan)
}

/// Gives a user a plan (or the default plan), per-user overrides, a reason and an optional end, replacing
/// the previous assignment; audited as `plan_assigned` (subject: the user) with the previous plan. Nothing
/// of the user's is deleted when the new limits are lower: a user left over `active_paper_runs` or
/// `strategies` gets a grace period, and one back within them has the restrictions lifted, in the same
/// transaction ([`super::overage`]).
///
/// # Errors
/// [`Error::Unauthenticated`], [`Error::Forbidden`], [`Error::NotFound`] (user), [`Error::Invalid`] naming
/// the field (`plan` unknown or archived, `overrides.<limit>`, `reason`, `ends_at` in the past), database
/// errors.
pub async fn assign(actor: &Actor, ctx: &Ctx, user: Uuid, a: &Assignment) -> Result<UserPlan> {
    actor.admin_writer()?;
    let mut tx = ctx.db.begin().await?;
    let (out, emitted) = assign_in(actor, ctx, &mut tx, user, a).await?;
    tx.commit().await?;
    forget(Some(user));
    crate::notify::push(&ctx.jobs, &emitted).await;
    Ok(out)
}

/// [`assign`] inside the caller's transaction (billing assigns the plan a subscription entitles to in the
/// transaction that records the provider's event). The caller commits, then calls [`forget_user`] and pushes
/// the notifications returned (the over-limit notices, [`super::overage`]).
///
/// # Errors
/// As [`assign`].
pub async fn assign_in(
    actor: &Actor,
    ctx: &Ctx,
    tx: &mut PgConnection,
    user: Uuid,
    a: &Assignment,
) -> Result<(UserPlan, Vec<crate::notify::Emitted>)> {
    let admin = actor.admin_writer()?.map(|u| u.user_id);
    let mut overrides = LimitValues::new();
    apply(&mut overrides, "overrides", &a.overrides)?;
    let reason = check_text(
        "reason",
        a.reason.as_deref().unwrap_or(""),
        MAX_REASON,
        false,
    )?;
    if let Some(end) = a.ends_at
        && end <= Utc::now()
    {
        return Err(Error::invalid("ends_at", "must be in the future"));
    }
    // Before the user's row: a reconciliation holds this lock while it waits for that row (lock order). The
    // row lock does not block the key-share locks of inserts referencing the user (a paper start holding its
    // own lock, a step's fill notice).
    super::overage::lock_user(&mut *tx, user).await?;
    let exists = sqlx::query_scalar!(
        "select user_id from app_user where user_id = $1 for no key update",
        user
    )
    .fetch_optional(&mut *tx)
    .await?;
    if exists.is_none() {
        return Err(Error::NotFound);
    }
    let plan = match &a.plan {
        Some(key) if !key.trim().is_empty() => {
            let p = lookup(&mut *tx, key).await?;
            if p.archived {
                return Err(Error::invalid(
                    "plan",
                    format!("the plan `{}` is archived; choose another one", p.slug),
                ));
            }
            Some(p)
        }
        _ => None,
    };
    let before = limits_in(&mut *tx, &ctx.settings, user).await?;
    sqlx::query!(
        r#"insert into user_plan (user_id, plan_id, overrides, reason, assigned_by, ends_at, assigned_at)
           values ($1, $2, $3, $4, $5, $6, now())
           on conflict (user_id) do update set plan_id = $2, overrides = $3, reason = $4, assigned_by = $5,
               ends_at = $6, assigned_at = now()"#,
        user,
        plan.as_ref().map(|p| p.id),
        to_json(&overrides),
        reason,
        admin,
        a.ends_at,
    )
    .execute(&mut *tx)
    .await?;
    actor
        .audit(
            &mut *tx,
            "plan_assigned",
            Some(user),
            serde_json::json!({
                "plan": plan.as_ref().map(|p| p.slug.clone()),
                "previous_plan": before.plan.slug,
                "overrides": to_json(&overrides),
                "reason": reason,
                "ends_at": a.ends_at,
            }),
        )
        .await?;
    // In a savepoint: a failed reconciliation never undoes the assignment (the sweep repeats it).
    let reconciled = super::overage::reconcile_in_savepoint(ctx, &mut *tx, actor, user).await?;
    Ok((user_plan(&mut *tx, ctx, user).await?, reconciled.emitted))
}

/// Forgets the cached values of `user` in this process (after [`assign_in`] committed).
pub fn forget_user(user: Uuid) {
    forget(Some(user));
}

async fn user_plan(conn: &mut PgConnection, ctx: &Ctx, user: Uuid) -> Result<UserPlan> {
    let limits = limits_in(conn, &ctx.settings, user).await?;
    let used = usage(conn, user).await?;
    let plan = one(conn, limits.plan.id).await?;
    let row = sqlx::query!(
        "select overrides, reason from user_plan where user_id = $1 and (ends_at is null or ends_at > now())",
        user
    )
    .fetch_optional(&mut *conn)
    .await?;
    Ok(UserPlan {
        user_id: user,
        limits: Limit::ALL
            .into_iter()
            .map(|l| LimitRow {
                limit: l,
                label: l.label(),
                value: limits.get(l),
                source: limits.source(l),
                usage: used.get(&l).copied(),
            })
            .collect(),
        overrides: row
            .as_ref()
            .map(|r| parse_values(&r.overrides))
            .unwrap_or_default(),
        reason: row.map(|r| r.reason).filter(|r| !r.is_empty()),
        ends_at: limits.ends_at,
        overages: super::overage::open_for(conn, user).await?,
        plan: Plan { users: 0, ..plan },
    })
}

/// The actor's plan, effective limits and usage.
///
/// # Errors
/// [`Error::Unauthenticated`], database errors.
pub async fn mine(actor: &Actor, ctx: &Ctx) -> Result<UserPlan> {
    let user = actor.reader()?.user_id;
    let mut conn = ctx.db.acquire().await?;
    user_plan(&mut conn, ctx, user).await
}

/// A user's plan, effective limits and usage (admins).
///
/// # Errors
/// [`Error::Unauthenticated`], [`Error::Forbidden`], [`Error::NotFound`], database errors.
pub async fn of_user(actor: &Actor, ctx: &Ctx, user: Uuid) -> Result<UserPlan> {
    actor.admin()?;
    let mut conn = ctx.db.acquire().await?;
    user_plan(&mut conn, ctx, user).await
}
