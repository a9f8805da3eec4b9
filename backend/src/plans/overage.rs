//! Over quota after a plan change (docs/plans.md, "Over your plan's limits"): a grace period, then read-only
//! for the excess, never killing open work.
//!
//! Two limits can be left exceeded by a lower plan, a lower override or an override that ended:
//! [`Limit::ActivePaperRuns`] and [`Limit::Strategies`] (the others are checked per request). When a user's
//! usage of one is above its value, [`reconcile_in`] records an open overage (`plan_overage`: one per user and
//! limit) with the end of its grace period (`PLAN_GRACE_DAYS` later, by the application's [`crate::clock`])
//! and tells the trader (`billing.over_limit`, stage `grace`). Nothing changes during the grace. Once it has
//! ended (and the user is still over), the excess — the newest runs or strategies beyond the limit — is
//! restricted (stage `enforced`):
//!
//! * **paper runs**: a reduce-only gate whose source is the plan, read by every `paper_advance` step next to
//!   the kill switches ([`restricted_runs`], `paper::kill::ActiveGates`, under the lock of [`crate::gates`]):
//!   the run keeps processing candles, exits, stops and targets work, no new entries. It is not a kill
//!   switch: the switch UI and API neither list nor release it, and releasing a switch never lifts it.
//!   Stopping a run is always allowed.
//! * **strategies**: read-only ([`check_strategy`], called by the actions that edit a strategy, submit a
//!   backtest or start a paper run from it: [`Error::PlanReadOnly`]). Viewing, exporting, archiving and deleting
//!   stay allowed.
//!
//! Overages are opened, re-counted and resolved (stage `resolved`: the user is within the limit again, every
//! restriction lifted) by the action that changed the limit or the usage — in a savepoint of the transaction
//! that assigns a plan or an override (also billing's), right after the commit of a stopped run or a deleted
//! strategy (a failed reconciliation never undoes the user's action; the sweep repeats it) —, right after the commit of a plan
//! edited or made the default and of a `paper_advance` step that stopped or failed a run, and by the scheduled
//! sweep ([`sweep`], every `HOUSEKEEPING_INTERVAL_SECS`) for what happens without an action (an assignment
//! that ended, a setting lowered) and as the backstop. The sweep also enforces grace periods that ended. Every
//! change is audited: `plan_overage_started`, `plan_overage_enforced`, `plan_overage_restricted` (the restricted
//! set changed while enforced) and `plan_overage_resolved`, with the user as subject.
//!
//! Only the database is read: never the payment provider.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use uuid::Uuid;

use super::{Limit, limits_in};
use crate::{
    Actor, Ctx, Surface,
    error::{Error, PlanRefusal, Result},
    jobs::{DEFAULT_QUEUE, JobCtx, JobError, JobKind, Schedule},
    notify::{
        self, Emitted,
        event::{BillingOverLimit, Event, OVER_LIMIT_NAMES},
    },
};

/// The limits a plan change can leave exceeded (each counts what the user keeps).
pub const TRACKED: [Limit; 2] = [Limit::ActivePaperRuns, Limit::Strategies];

/// One run or strategy an enforced overage restricts.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Restricted {
    /// The paper run's or the strategy's id.
    pub id: Uuid,
    /// Words for people: the strategy's name, or "<strategy> on <symbol> <timeframe>" for a run.
    pub name: String,
}

/// An open overage: the user is over `limit` (or was when it was last looked at).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Overage {
    pub id: Uuid,
    pub limit: Limit,
    pub label: String,
    /// The usage and the limit's value as last seen.
    pub usage: i64,
    pub allowed: i64,
    /// The plan's name as last seen.
    pub plan: String,
    pub started_at: DateTime<Utc>,
    /// When the excess becomes (or became) read-only.
    pub grace_ends_at: DateTime<Utc>,
    /// When it became read-only (`None`: still in the grace period).
    pub enforced_at: Option<DateTime<Utc>>,
    /// The restricted runs or strategies (empty during the grace), newest first.
    pub restricted: Vec<Restricted>,
}

/// The user's open overages, with the names of what they restrict.
///
/// # Errors
/// Database errors.
pub async fn open_for(conn: &mut PgConnection, user: Uuid) -> Result<Vec<Overage>> {
    let rows = sqlx::query!(
        r#"select overage_id, limit_key, usage, allowed, plan_name, started_at, grace_ends_at, enforced_at,
                  restricted_ids
           from plan_overage where user_id = $1 and resolved_at is null order by started_at, limit_key"#,
        user,
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let Some(limit) = Limit::parse(&r.limit_key) else {
            continue;
        };
        out.push(Overage {
            id: r.overage_id,
            limit,
            label: limit.label().to_owned(),
            usage: r.usage,
            allowed: r.allowed,
            plan: r.plan_name,
            started_at: r.started_at,
            grace_ends_at: r.grace_ends_at,
            enforced_at: r.enforced_at,
            restricted: names(conn, limit, &r.restricted_ids, i64::MAX).await?,
        });
    }
    Ok(out)
}

/// The names of `ids` (runs or strategies, per `limit`), in the order given, at most `max`.
async fn names(
    conn: &mut PgConnection,
    limit: Limit,
    ids: &[Uuid],
    max: i64,
) -> Result<Vec<Restricted>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<(Uuid, String)> = if limit == Limit::ActivePaperRuns {
        sqlx::query!(
            r#"select r.paper_run_id as "id!", s.name || ' on ' || i.symbol || ' ' || r.timeframe as "name!"
               from unnest($1::uuid[]) with ordinality as x (id, n)
               join paper_run r on r.paper_run_id = x.id
               join strategy s on s.strategy_id = r.strategy_id
               join instrument i on i.instrument_id = r.instrument_id
               order by x.n limit $2"#,
            ids,
            max,
        )
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .map(|r| (r.id, r.name))
        .collect()
    } else {
        sqlx::query!(
            r#"select s.strategy_id as "id!", s.name as "name!"
               from unnest($1::uuid[]) with ordinality as x (id, n)
               join strategy s on s.strategy_id = x.id
               order by x.n limit $2"#,
            ids,
            max,
        )
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .map(|r| (r.id, r.name))
        .collect()
    };
    Ok(rows
        .into_iter()
        .map(|(id, name)| Restricted { id, name })
        .collect())
}

/// The user's current usage of a tracked limit.
async fn usage_of(conn: &mut PgConnection, user: Uuid, limit: Limit) -> Result<i64> {
    match limit {
        Limit::ActivePaperRuns => super::active_paper_runs(conn, user).await,
        _ => super::strategies(conn, user).await,
    }
}

/// Most runs or strategies one overage restricts (the table's bound; far above any plan's excess in practice).
pub const MAX_RESTRICTED: i64 = 100_000;

/// The excess: the `n` most recently started live runs, or the `n` most recently created strategies (at most
/// [`MAX_RESTRICTED`]).
async fn excess(conn: &mut PgConnection, user: Uuid, limit: Limit, n: i64) -> Result<Vec<Uuid>> {
    if n <= 0 {
        return Ok(Vec::new());
    }
    let n = n.min(MAX_RESTRICTED);
    Ok(if limit == Limit::ActivePaperRuns {
        sqlx::query_scalar!(
            "select paper_run_id from paper_run
             where user_id = $1 and status in ('active', 'paused', 'stopping')
             order by created_at desc, paper_run_id desc limit $2",
            user,
            n,
        )
        .fetch_all(&mut *conn)
        .await?
    } else {
        sqlx::query_scalar!(
            "select strategy_id from strategy where user_id = $1
             order by created_at desc, strategy_id desc limit $2",
            user,
            n,
        )
        .fetch_all(&mut *conn)
        .await?
    })
}

/// What one reconciliation of one limit found (for the event and the audit entry).
struct Change<'a> {
    id: Uuid,
    limit: Limit,
    stage: &'a str,
    usage: i64,
    allowed: Option<i64>,
    plan: &'a str,
    grace_ends_at: DateTime<Utc>,
    restricted: &'a [Uuid],
}

impl Change<'_> {
    async fn event(&self, conn: &mut PgConnection, user: Uuid) -> Result<Event> {
        let named = names(
            conn,
            self.limit,
            self.restricted,
            i64::try_from(OVER_LIMIT_NAMES).unwrap_or(20),
        )
        .await?;
        Ok(Event::BillingOverLimit(BillingOverLimit {
            user_id: user,
            overage_id: self.id,
            stage: self.stage.to_owned(),
            limit: self.limit.key().to_owned(),
            label: self.limit.label().to_owned(),
            usage: self.usage,
            allowed: self.allowed,
            plan: self.plan.to_owned(),
            grace_ends_at: self.grace_ends_at,
            restricted: named.into_iter().map(|r| r.name).collect(),
            restricted_count: self.restricted.len(),
        }))
    }

    fn detail(&self) -> serde_json::Value {
        serde_json::json!({
            "overage_id": self.id, "limit": self.limit.key(), "usage": self.usage, "allowed": self.allowed,
            "plan": self.plan, "grace_ends_at": self.grace_ends_at, "restricted": self.restricted,
        })
    }
}

/// What [`reconcile_in`] changed.
#[derive(Debug, Default)]
pub struct Reconciled {
    /// Notifications to push once the transaction committed ([`notify::push`]).
    pub emitted: Vec<Emitted>,
    /// Runs whose plan gate was put on or lifted.
    pub runs_changed: Vec<Uuid>,
}

/// Brings the user's overages up to date with their effective limits and usage, inside the caller's
/// transaction (after the change that may have moved either): opens an overage when the user is over a tracked
/// limit, enforces it once its grace period ended, keeps the restricted set equal to the current excess and
/// resolves it when the user is within the limit again. Audited as `actor` (subject: the user); the caller
/// commits, then pushes [`Reconciled::emitted`]. One reconciliation per user at a time ([`lock_user`], held
/// until the transaction ends). Lock order: a caller that also locks the user's row (plan assignment) takes
/// [`lock_user`] first; the audit and notice inserts wait for a key-share lock on the user's row. The gate lock
/// of [`crate::gates`] is not taken (a step may hold it shared while it waits for the same row key-share lock
/// to insert a fill notice): a plan gate put on or lifted applies from the first step that starts after the
/// commit, at the latest the run's next candle.
///
/// # Errors
/// Database errors. A user that no longer exists has nothing to reconcile.
pub async fn reconcile_in(
    ctx: &Ctx,
    conn: &mut PgConnection,
    actor: &Actor,
    user: Uuid,
) -> Result<Reconciled> {
    lock_user(conn, user).await?;
    // The lock of a paper run start (paper::start): the usage counted here does not move under us.
    sqlx::query!(
        "select pg_advisory_xact_lock(hashtextextended('paper:' || $1::uuid::text, 0))",
        user,
    )
    .execute(&mut *conn)
    .await?;
    let limits = match limits_in(conn, &ctx.settings, user).await {
        Ok(l) => l,
        Err(Error::NotFound) => return Ok(Reconciled::default()),
        Err(e) => return Err(e),
    };
    let now = ctx.clock.now();
    let mut out = Reconciled::default();
    let mut events = Vec::new();
    for limit in TRACKED {
        let usage = usage_of(conn, user, limit).await?;
        let value = limits.get(limit);
        let open = sqlx::query!(
            r#"select overage_id, allowed, grace_ends_at, enforced_at, restricted_ids
               from plan_overage where user_id = $1 and limit_key = $2 and resolved_at is null for update"#,
            user,
            limit.key(),
        )
        .fetch_optional(&mut *conn)
        .await?;
        let over = value.filter(|&v| usage > v);
        let plan = limits.plan.name.as_str();
        match (over, open) {
            (None, None) => {}
            (None, Some(o)) => {
                sqlx::query!(
                    "update plan_overage set resolved_at = greatest($2, started_at), usage = $3, allowed = $4, plan_name = $5,
                         restricted_ids = '{}'
                     where overage_id = $1",
                    o.overage_id,
                    now,
                    usage,
                    value.unwrap_or(o.allowed),
                    plan,
                )
                .execute(&mut *conn)
                .await?;
                let c = Change {
                    id: o.overage_id,
                    limit,
                    stage: "resolved",
                    usage,
                    allowed: value,
                    plan,
                    grace_ends_at: o.grace_ends_at,
                    restricted: &[],
                };
                let mut detail = c.detail();
                detail["lifted"] = serde_json::json!(o.restricted_ids);
                actor
                    .audit(&mut *conn, "plan_overage_resolved", Some(user), detail)
                    .await?;
                events.push(c.event(conn, user).await?);
                if limit == Limit::ActivePaperRuns {
                    out.runs_changed.extend(o.restricted_ids);
                }
            }
            (Some(allowed), None) => {
                let id = Uuid::new_v4();
                let grace_ends_at = now + ctx.settings.plans.grace();
                let enforce = grace_ends_at <= now;
                let restricted = if enforce {
                    excess(conn, user, limit, usage - allowed).await?
                } else {
                    Vec::new()
                };
                sqlx::query!(
                    "insert into plan_overage (overage_id, user_id, limit_key, usage_at_start, allowed_at_start,
                         usage, allowed, plan_name, started_at, grace_ends_at, enforced_at, restricted_ids)
                     values ($1, $2, $3, $4, $5, $4, $5, $6, $7, $8, $9, $10)",
                    id,
                    user,
                    limit.key(),
                    usage,
                    allowed,
                    plan,
                    now,
                    grace_ends_at,
                    enforce.then_some(now),
                    &restricted,
                )
                .execute(&mut *conn)
                .await?;
                let c = Change {
                    id,
                    limit,
                    stage: if enforce { "enforced" } else { "grace" },
                    usage,
                    allowed: Some(allowed),
                    plan,
                    grace_ends_at,
                    restricted: &restricted,
                };
                actor
                    .audit(&mut *conn, "plan_overage_started", Some(user), c.detail())
                    .await?;
                if enforce {
                    actor
                        .audit(&mut *conn, "plan_overage_enforced", Some(user), c.detail())
                        .await?;
                    if limit == Limit::ActivePaperRuns {
                        out.runs_changed.extend(&restricted);
                    }
                }
                events.push(c.event(conn, user).await?);
            }
            (Some(allowed), Some(o)) => {
                // A further cut while enforced gets a grace of its own for the extra excess (and a notice):
                // until it ends, the excess of the limit already enforced stays restricted, `allowed` keeps
                // that limit (the lowest one enforced) and `grace_ends_at` is after `enforced_at` ("pending").
                let grace = ctx.settings.plans.grace();
                let pending = o.enforced_at.is_some_and(|e| o.grace_ends_at > e);
                let new_cut = o.enforced_at.is_some() && !pending && allowed < o.allowed;
                let (level, grace_ends_at, enforced_now, stage) = if new_cut && now + grace > now {
                    (o.allowed, now + grace, false, Some("grace"))
                } else if pending && o.grace_ends_at > now {
                    (allowed.max(o.allowed), o.grace_ends_at, false, None)
                } else if pending || (new_cut || o.enforced_at.is_none()) && o.grace_ends_at <= now
                {
                    // The grace (the first one, or a further cut's) ended, or a cut without grace.
                    (allowed, o.grace_ends_at.min(now), true, Some("enforced"))
                } else {
                    // In the first grace (a further cut only updates the notice) or enforced as before.
                    let stage = (o.enforced_at.is_none() && allowed < o.allowed).then_some("grace");
                    (allowed, o.grace_ends_at, false, stage)
                };
                let due = o.enforced_at.is_some() || enforced_now;
                let restricted = if due {
                    excess(conn, user, limit, usage - level).await?
                } else {
                    Vec::new()
                };
                sqlx::query!(
                    "update plan_overage set usage = $2, allowed = $3, plan_name = $4,
                         enforced_at = case when $8 then greatest($6, started_at)
                                            when $5 then coalesce(enforced_at, greatest($6, started_at)) end,
                         restricted_ids = $7, grace_ends_at = greatest($9, started_at)
                     where overage_id = $1",
                    o.overage_id,
                    usage,
                    level,
                    plan,
                    due,
                    now,
                    &restricted,
                    enforced_now,
                    grace_ends_at,
                )
                .execute(&mut *conn)
                .await?;
                let c = Change {
                    id: o.overage_id,
                    limit,
                    stage: stage.unwrap_or("enforced"),
                    usage,
                    allowed: Some(allowed),
                    plan,
                    grace_ends_at,
                    restricted: &restricted,
                };
                if enforced_now {
                    actor
                        .audit(&mut *conn, "plan_overage_enforced", Some(user), c.detail())
                        .await?;
                } else if stage == Some("grace") && o.enforced_at.is_some() {
                    let mut detail = c.detail();
                    detail["previous_allowed"] = serde_json::json!(o.allowed);
                    actor
                        .audit(&mut *conn, "plan_overage_cut", Some(user), detail)
                        .await?;
                } else if due && sorted(&restricted) != sorted(&o.restricted_ids) {
                    let mut detail = c.detail();
                    detail["before"] = serde_json::json!(o.restricted_ids);
                    actor
                        .audit(&mut *conn, "plan_overage_restricted", Some(user), detail)
                        .await?;
                }
                if stage.is_some() {
                    events.push(c.event(conn, user).await?);
                }
                if limit == Limit::ActivePaperRuns {
                    let before: HashSet<Uuid> = o.restricted_ids.iter().copied().collect();
                    let after: HashSet<Uuid> = restricted.iter().copied().collect();
                    out.runs_changed
                        .extend(before.symmetric_difference(&after).copied());
                }
            }
        }
    }
    if !out.runs_changed.is_empty() {
        // Not under the gate lock (see above): the steps read the gates again for every candle.
        crate::gates::run_ids_changed(conn, &out.runs_changed).await?;
    }
    // A disabled (suspended) account is not mailed about its plan (the audit entries above stay).
    let disabled = sqlx::query_scalar!(
        r#"select disabled_at is not null as "disabled!" from app_user where user_id = $1"#,
        user,
    )
    .fetch_optional(&mut *conn)
    .await?
    .unwrap_or(true);
    if !disabled {
        out.emitted = notify::emit::emit_many(conn, &ctx.jobs, &ctx.clock, &events).await?;
    }
    Ok(out)
}

/// Serialises the reconciliations of `user` (an advisory lock until the transaction ends). Take it before any
/// row lock of the same transaction that a reconciliation may also wait for (the user's row).
///
/// # Errors
/// Database errors.
pub async fn lock_user(conn: &mut PgConnection, user: Uuid) -> Result<()> {
    sqlx::query!(
        "select pg_advisory_xact_lock(hashtextextended('plan_overage:' || $1::uuid::text, 0))",
        user,
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// [`reconcile_in`] in a savepoint of the caller's transaction: a failure (e.g. a deadlock victim) is logged
/// and rolled back to the savepoint, so it cannot undo the caller's action; the sweep repeats the work.
///
/// # Errors
/// Database errors of the savepoint itself.
pub async fn reconcile_in_savepoint(
    ctx: &Ctx,
    conn: &mut PgConnection,
    actor: &Actor,
    user: Uuid,
) -> Result<Reconciled> {
    use sqlx::Connection as _;
    let mut sp = conn.begin().await?;
    match reconcile_in(ctx, &mut sp, actor, user).await {
        Ok(r) => {
            sp.commit().await?;
            Ok(r)
        }
        Err(e) => {
            sp.rollback().await?;
            tracing::warn!(%user, error = %e, "plan overage not reconciled; the next sweep will");
            Ok(Reconciled::default())
        }
    }
}

fn sorted(ids: &[Uuid]) -> Vec<Uuid> {
    let mut v = ids.to_vec();
    v.sort_unstable();
    v
}

/// [`reconcile_in`] in its own transaction, pushing the notifications after the commit.
///
/// # Errors
/// As [`reconcile_in`].
pub async fn reconcile(ctx: &Ctx, actor: &Actor, user: Uuid) -> Result<()> {
    let mut tx = ctx.db.begin().await?;
    let r = reconcile_in(ctx, &mut tx, actor, user).await?;
    tx.commit().await?;
    notify::push(&ctx.jobs, &r.emitted).await;
    Ok(())
}

/// [`reconcile`] for a change that is already committed (a plan edited, a strategy created): failures are
/// logged, and the sweep repeats the work.
pub async fn reconcile_after(ctx: &Ctx, actor: &Actor, user: Uuid) {
    if let Err(e) = reconcile(ctx, actor, user).await {
        tracing::warn!(%user, error = %e, "plan overage not reconciled; the next sweep will");
    }
}

/// What a [`sweep`] looked at.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Swept {
    /// Users reconciled (over a tracked limit, or with an open overage).
    pub users: usize,
    /// Users whose reconciliation failed (logged; tried again by the next sweep).
    pub failed: usize,
}

/// Candidates read per page (keyset pagination on the user id).
const PAGE: i64 = 200;

/// How long one sweep job works before it hands the rest to a continuation job (so the `default` queue and
/// the database are never held by one long pass).
const SWEEP_BUDGET: std::time::Duration = std::time::Duration::from_secs(60);

/// How long a plan edit reconciles its users inline before it hands the rest to a job.
const INLINE_BUDGET: std::time::Duration = std::time::Duration::from_secs(2);

/// Reconciles every user who is over a tracked limit or has an open overage (as the system, surface `job`):
/// opens the overages that changes outside the actions left (a plan edited, an assignment that ended, a
/// setting lowered), enforces those whose grace period ended, and resolves those no longer over. Keyset pages
/// of [`PAGE`] users, for at most [`SWEEP_BUDGET`]; the rest is enqueued as a continuation job.
///
/// # Errors
/// Database errors of the candidate query (each user's own failure is logged and counted).
pub async fn sweep(ctx: &Ctx) -> Result<Swept> {
    sweep_from(ctx, None, None).await
}

async fn sweep_from(ctx: &Ctx, plan: Option<Uuid>, after: Option<Uuid>) -> Result<Swept> {
    let (swept, rest) =
        reconcile_candidates(ctx, &Actor::system(Surface::Job), plan, after, SWEEP_BUDGET).await?;
    if let Some(after) = rest {
        enqueue_rest(ctx, plan, after).await?;
    }
    Ok(swept)
}

/// After a plan's limits or the default plan changed (committed): reconciles the users on that plan who are
/// over a tracked limit or have an open overage, audited as `actor`, for at most [`INLINE_BUDGET`] (the
/// request waits for that much); the rest is left to a job. Failures are logged; the sweep repeats the work.
pub async fn reconcile_plan(ctx: &Ctx, actor: &Actor, plan: Uuid) {
    match reconcile_candidates(ctx, actor, Some(plan), None, INLINE_BUDGET).await {
        Ok((s, rest)) => {
            if s.failed > 0 {
                tracing::warn!(%plan, failed = s.failed, "some plan overages not reconciled; the next sweep will");
            }
            if let Some(after) = rest
                && let Err(e) = enqueue_rest(ctx, Some(plan), after).await
            {
                tracing::warn!(%plan, error = %e, "plan overages: the rest not enqueued; the next sweep will");
            }
        }
        Err(e) => {
            tracing::warn!(%plan, error = %e, "plan overages not reconciled; the next sweep will");
        }
    }
}

/// Reconciles the users (of `plan`, or all; after `after` in user id order) over a tracked limit or with an
/// open overage, page by page, until none is left (`None`) or `budget` is spent (`Some`: the last user done).
async fn reconcile_candidates(
    ctx: &Ctx,
    actor: &Actor,
    plan: Option<Uuid>,
    mut after: Option<Uuid>,
    budget: std::time::Duration,
) -> Result<(Swept, Option<Uuid>)> {
    let began = std::time::Instant::now();
    let instance = |l| super::instance_default(&ctx.settings, l);
    let mut out = Swept::default();
    loop {
        let users = sqlx::query_scalar!(
            r#"with eff as (
                   select u.user_id, p.plan_id,
                          coalesce((up.overrides->>'active_paper_runs')::bigint,
                                   (p.limits->>'active_paper_runs')::bigint, $1) as runs,
                          coalesce((up.overrides->>'strategies')::bigint, (p.limits->>'strategies')::bigint, $2)
                              as strategies
                   from app_user u
                   left join user_plan up on up.user_id = u.user_id and (up.ends_at is null or up.ends_at > now())
                   join plan p on p.plan_id = coalesce(up.plan_id, (select plan_id from plan where is_default))
                   where ($4::uuid is null or u.user_id > $4)
               )
               select eff.user_id as "user_id!" from eff
               where ($3::uuid is null or eff.plan_id = $3)
                 and (eff.runs < (select count(*) from paper_run r
                                  where r.user_id = eff.user_id and r.status in ('active', 'paused', 'stopping'))
                      or eff.strategies < (select count(*) from strategy s where s.user_id = eff.user_id)
                      or exists (select 1 from plan_overage o where o.user_id = eff.user_id and o.resolved_at is null))
               order by eff.user_id limit $5"#,
            instance(Limit::ActivePaperRuns),
            instance(Limit::Strategies),
            plan,
            after,
            PAGE,
        )
        .fetch_all(&ctx.db)
        .await?;
        let last_page = users.len() < usize::try_from(PAGE).unwrap_or(usize::MAX);
        for user in users {
            if began.elapsed() >= budget {
                return Ok((out, after));
            }
            out.users += 1;
            if let Err(e) = reconcile(ctx, actor, user).await {
                out.failed += 1;
                tracing::warn!(%user, error = %e, "plan overage: this user failed; the next sweep retries");
            }
            after = Some(user);
        }
        if last_page {
            return Ok((out, None));
        }
    }
}

/// The job kind of the sweep.
pub const KIND: &str = "plan_overage_sweep";

/// Scheduled every `HOUSEKEEPING_INTERVAL_SECS` (off when 0) by the workers that serve the `default` queue.
pub const JOB: JobKind = JobKind {
    schedule: Some(Schedule {
        every: |s| s.jobs.housekeeping_interval,
        enqueue: |ctx| Box::pin(enqueue(ctx)),
        at_start: None,
    }),
    ..JobKind::new(KIND, DEFAULT_QUEUE, |job| Box::pin(run(job)))
};

/// A sweep job's payload: the whole sweep (`{}`), or the rest of one (of one plan's users, after a user).
#[derive(Debug, Default, Serialize, Deserialize)]
struct SweepJob {
    #[serde(default)]
    plan: Option<Uuid>,
    #[serde(default)]
    after: Option<Uuid>,
}

/// Enqueues a sweep (at most one pending at a time).
///
/// # Errors
/// Database errors.
pub async fn enqueue(ctx: &Ctx) -> sqlx::Result<Option<Uuid>> {
    let mut job = ctx.jobs.new_job(DEFAULT_QUEUE, KIND, serde_json::json!({}));
    job.dedupe_key = Some("plan_overage_sweep:scheduled".into());
    ctx.jobs.enqueue(&job).await
}

/// Enqueues the rest of a sweep (or of a plan's reconciliation) after `after`.
async fn enqueue_rest(ctx: &Ctx, plan: Option<Uuid>, after: Uuid) -> Result<()> {
    let mut job = ctx.jobs.new_job(
        DEFAULT_QUEUE,
        KIND,
        serde_json::to_value(SweepJob {
            plan,
            after: Some(after),
        })
        .unwrap_or_default(),
    );
    job.dedupe_key = Some(format!(
        "plan_overage_sweep:rest:{}:{after}",
        plan.map_or_else(|| "all".to_owned(), |p| p.to_string())
    ));
    ctx.jobs.enqueue(&job).await?;
    Ok(())
}

async fn run(job: &JobCtx) -> Result<(), JobError> {
    let p: SweepJob = job.payload()?;
    let swept = sweep_from(&job.ctx, p.plan, p.after)
        .await
        .map_err(|e| JobError::Retry(anyhow::Error::new(e)))?;
    tracing::info!(
        users = swept.users,
        failed = swept.failed,
        "plan overage sweep"
    );
    let tx = job.ctx.db.begin().await?;
    job.complete(tx).await?;
    Ok(())
}

/// Paper runs among `users`' whose plan gate is on (reduce-only: an enforced `active_paper_runs` overage
/// restricts them). Read by each step next to the kill switches, under the same shared lock.
///
/// # Errors
/// Database errors.
pub async fn restricted_runs(
    conn: &mut PgConnection,
    users: &[Uuid],
) -> sqlx::Result<HashSet<Uuid>> {
    Ok(sqlx::query_scalar!(
        r#"select unnest(restricted_ids) as "id!" from plan_overage
           where user_id = any($1) and limit_key = 'active_paper_runs' and resolved_at is null
             and enforced_at is not null"#,
        users,
    )
    .fetch_all(conn)
    .await?
    .into_iter()
    .collect())
}

/// The enforced overage that restricts this paper run, if any (the run page says why it is reduce-only).
///
/// # Errors
/// Database errors.
pub async fn run_restriction(conn: &mut PgConnection, run: Uuid) -> Result<Option<Overage>> {
    restriction(conn, Limit::ActivePaperRuns, run).await
}

/// The enforced overage that makes this strategy read-only, if any.
///
/// # Errors
/// Database errors.
pub async fn strategy_restriction(
    conn: &mut PgConnection,
    strategy: Uuid,
) -> Result<Option<Overage>> {
    restriction(conn, Limit::Strategies, strategy).await
}

async fn restriction(conn: &mut PgConnection, limit: Limit, id: Uuid) -> Result<Option<Overage>> {
    let row = sqlx::query!(
        r#"select overage_id, usage, allowed, plan_name, started_at, grace_ends_at, enforced_at
           from plan_overage
           where limit_key = $1 and resolved_at is null and enforced_at is not null
             and restricted_ids @> array[$2::uuid]"#,
        limit.key(),
        id,
    )
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(|r| Overage {
        id: r.overage_id,
        limit,
        label: limit.label().to_owned(),
        usage: r.usage,
        allowed: r.allowed,
        plan: r.plan_name,
        started_at: r.started_at,
        grace_ends_at: r.grace_ends_at,
        enforced_at: r.enforced_at,
        restricted: Vec::new(),
    }))
}

/// [`check_strategy`] inside the transaction that inserts a backtest or paper run of `strategy`, under a
/// key-share lock on the strategy's row: a permanent delete that committed first makes it
/// [`Error::NotFound`] (not a foreign-key error), one that comes later waits for this transaction.
///
/// # Errors
/// [`Error::NotFound`], [`Error::PlanReadOnly`], database errors.
pub async fn check_strategy_for_use(
    conn: &mut PgConnection,
    user: Uuid,
    strategy: Uuid,
) -> Result<()> {
    sqlx::query_scalar!(
        "select 1 as one from strategy where strategy_id = $1 and user_id = $2 for key share",
        strategy,
        user,
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(Error::NotFound)?;
    check_strategy(conn, strategy).await
}

/// Refuses to change or run `strategy` while an enforced overage makes it read-only: editing its source,
/// submitting a backtest of it, starting a paper run from it. A read of the overage table; no provider call.
///
/// # Errors
/// [`Error::PlanReadOnly`], database errors.
pub async fn check_strategy(conn: &mut PgConnection, strategy: Uuid) -> Result<()> {
    match strategy_restriction(conn, strategy).await? {
        None => Ok(()),
        Some(o) => Err(Error::PlanReadOnly(Box::new(PlanRefusal {
            limit: o.limit.key().to_owned(),
            usage: o.usage,
            value: o.allowed,
            message: format!(
                "{}: this strategy is read-only: you have {} strategies and your plan ({}) allows {}, and the \
                 grace period ended on {}. You can view, export, archive or delete it, but not edit it, backtest it \
                 or start paper runs from it. Delete strategies you no longer need (archived ones count), or move \
                 to a larger plan or ask an administrator for a higher limit; it is writable again as soon as you \
                 are within the limit (your plan and usage: /account/plan).",
                o.limit.label(),
                o.usage,
                o.plan,
                o.allowed,
                o.grace_ends_at.format("%Y-%m-%d %H:%M UTC"),
            ),
        }))),
    }
}
