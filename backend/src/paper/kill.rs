//! Kill switches at three levels — the platform (admins, operators), a user (admins, or the trader for their
//! own runs) and a run (its owner, or admins) — in three modes: `reduce_only`, `halt`, `flatten` (see
//! [`engine::backtest::Gate`] for what each allows; protective stops keep working in all of them).
//!
//! The effective gate of a run's candle is the strictest of the run's own gate (pause, stop with flatten) and
//! the active switches of the platform, its owner and the run. Throwing or releasing takes an exclusive
//! advisory lock that every `paper_advance` step holds shared while it works: a change waits for the steps in
//! flight to commit and applies from the next candle of every affected run, including runs a worker holds
//! right now. Every change is audited (who, when, why) and emits `kill_switch.thrown` / `kill_switch.released`
//! to the users whose runs it affects.

use chrono::{DateTime, Utc};
use engine::backtest::Gate;
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use uuid::Uuid;

use super::{Error, Result};
use crate::notify::emit;
use crate::notify::event::{Event, KillSwitchChange};
use crate::{Actor, Ctx};

/// The advisory lock key shared by the steps and taken exclusively by switch (and plan gate) changes.
pub use crate::gates::LOCK_KEY;

/// Longest reason.
pub const MAX_REASON: usize = 500;

/// What a switch covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Platform,
    User(Uuid),
    Run(Uuid),
}

/// A switch as stored.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct KillSwitch {
    pub switch_id: Uuid,
    /// `platform`, `user` or `run`.
    pub scope: String,
    pub user_id: Option<Uuid>,
    pub paper_run_id: Option<Uuid>,
    /// `reduce_only`, `halt` or `flatten`.
    pub mode: String,
    pub reason: String,
    /// Thrown by an administrator (or the operator): only administrators release it.
    pub thrown_by_admin: bool,
    pub thrown_at: DateTime<Utc>,
    pub released_at: Option<DateTime<Utc>>,
    pub release_reason: Option<String>,
}

/// The mode of a switch: a gate that restricts (`reduce_only`, `halt`, `flatten`).
///
/// # Errors
/// [`Error::Invalid`] on `mode`.
pub fn parse_mode(text: &str) -> Result<Gate> {
    match Gate::parse(text) {
        Some(g @ (Gate::ReduceOnly | Gate::Halt | Gate::Flatten)) => Ok(g),
        _ => Err(Error::invalid(
            "mode",
            format!(
                "`{}` is not a mode; use reduce_only, halt or flatten",
                text.trim()
            ),
        )),
    }
}

fn check_reason(reason: &str) -> Result<String> {
    let r = reason.trim();
    if r.is_empty() {
        return Err(Error::invalid(
            "reason",
            "say why (it is shown to the traders it affects)",
        ));
    }
    if r.chars().count() > MAX_REASON
        || r.chars()
            .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
    {
        return Err(Error::invalid(
            "reason",
            format!(
                "at most {MAX_REASON} characters, no control characters but tab and line breaks"
            ),
        ));
    }
    Ok(r.to_owned())
}

/// Whether the actor acts as an administrator (or the operator) for this change, after checking it may make
/// it at all. A user's own switches (their account, their runs) need a writer; anything else an admin writer.
fn authorise(actor: &Actor, target_user: Option<Uuid>) -> Result<bool> {
    let mine = target_user.is_some() && actor.user_id() == target_user;
    if mine {
        actor.writer()?;
        // An admin acting on their own runs still acts as themselves.
        return Ok(false);
    }
    actor.admin_writer()?;
    Ok(true)
}

/// The owner of a run, if it exists and the actor may see it (its owner, or an admin).
async fn run_owner(conn: &mut PgConnection, actor: &Actor, run: Uuid) -> Result<Uuid> {
    let owner: Option<Uuid> =
        sqlx::query_scalar!("select user_id from paper_run where paper_run_id = $1", run)
            .fetch_optional(&mut *conn)
            .await?;
    match owner {
        Some(o) if actor.user_id() == Some(o) || actor.admin().is_ok() => Ok(o),
        _ => Err(Error::NotFound),
    }
}

/// Throws a switch (replacing the active one of the same scope and target); audited as `kill_switch_thrown`.
///
/// # Errors
/// [`Error::Invalid`] (`mode`, `reason`), [`Error::Forbidden`]/[`Error::Unauthenticated`], [`Error::NotFound`]
/// (a run that is not the actor's), [`Error::Conflict`] (a trader over an administrator's active switch of the
/// same scope and target), database errors.
pub(crate) async fn throw(
    ctx: &Ctx,
    actor: &Actor,
    scope: Scope,
    mode: &str,
    reason: &str,
) -> Result<KillSwitch> {
    let gate = parse_mode(mode)?;
    let reason = check_reason(reason)?;
    let mut tx = ctx.db.begin().await?;
    let (user, run) = match scope {
        Scope::Platform => (None, None),
        Scope::User(u) => (Some(u), None),
        Scope::Run(r) => (Some(run_owner(&mut tx, actor, r).await?), Some(r)),
    };
    let by_admin = authorise(actor, user)?;
    if let Scope::User(u) = scope {
        sqlx::query_scalar!("select 1 as one from app_user where user_id = $1", u)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(Error::NotFound)?;
    }
    sqlx::query!("select pg_advisory_xact_lock($1)", LOCK_KEY)
        .execute(&mut *tx)
        .await?;
    let kind = scope_name(scope);
    // A trader's switch never replaces one an administrator threw over the same account or run: only an
    // administrator lifts that (`release`), so replacing it would be a way around the rule.
    if !by_admin {
        let held = sqlx::query_scalar!(
            "select exists (select 1 from kill_switch
                 where released_at is null and thrown_by_admin and scope = $1
                   and user_id is not distinct from $2 and paper_run_id is not distinct from $3) as \"held!\"",
            kind,
            user,
            run,
        )
        .fetch_one(&mut *tx)
        .await?;
        if held {
            return Err(Error::Conflict(
                "an administrator's kill switch holds this already; only an administrator can replace or release it"
                    .into(),
            ));
        }
    }
    let now = ctx.clock.now();
    sqlx::query!(
        "update kill_switch set released_at = $4, released_by = $5, release_reason = 'replaced by a new switch'
         where released_at is null and scope = $1 and user_id is not distinct from $2
           and paper_run_id is not distinct from $3",
        kind,
        user,
        run,
        now,
        actor.user_id(),
    )
    .execute(&mut *tx)
    .await?;
    let id = Uuid::new_v4();
    sqlx::query!(
        "insert into kill_switch (switch_id, scope, user_id, paper_run_id, mode, reason, thrown_by, thrown_by_admin, thrown_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        id,
        kind,
        user,
        run,
        gate.as_str(),
        reason,
        actor.user_id(),
        by_admin,
        now,
    )
    .execute(&mut *tx)
    .await?;
    let switch = get(&mut tx, id).await?;
    actor
        .audit(
            &mut tx,
            "kill_switch_thrown",
            user,
            serde_json::json!({ "switch_id": id, "scope": kind, "paper_run_id": run, "mode": gate.as_str(), "reason": reason }),
        )
        .await?;
    let emitted = announce(ctx, &mut tx, &switch, true, by_admin).await?;
    tx.commit().await?;
    emit::push(&ctx.jobs, &emitted).await;
    Ok(switch)
}

/// Releases an active switch; audited as `kill_switch_released`. A switch an administrator threw is released by
/// administrators only; a trader releases their own.
///
/// # Errors
/// [`Error::NotFound`] (no such active switch the actor may see), [`Error::Forbidden`], [`Error::Invalid`]
/// (`reason`), database errors.
pub(crate) async fn release(
    ctx: &Ctx,
    actor: &Actor,
    switch_id: Uuid,
    reason: Option<&str>,
) -> Result<KillSwitch> {
    let reason = match reason.map(str::trim).filter(|r| !r.is_empty()) {
        Some(r) => Some(check_reason(r)?),
        None => None,
    };
    let mut tx = ctx.db.begin().await?;
    sqlx::query!("select pg_advisory_xact_lock($1)", LOCK_KEY)
        .execute(&mut *tx)
        .await?;
    let s = get(&mut tx, switch_id).await?;
    let visible = s.user_id.is_some() && s.user_id == actor.user_id() || actor.admin().is_ok();
    if s.released_at.is_some() || (!visible && s.scope != "platform") {
        return Err(Error::NotFound);
    }
    let by_admin = if s.thrown_by_admin || s.scope == "platform" {
        actor.admin_writer()?;
        true
    } else {
        authorise(actor, s.user_id)?
    };
    let now = ctx.clock.now();
    sqlx::query!(
        "update kill_switch set released_at = $2, released_by = $3, release_reason = $4 where switch_id = $1",
        switch_id,
        now,
        actor.user_id(),
        reason.as_deref(),
    )
    .execute(&mut *tx)
    .await?;
    let switch = get(&mut tx, switch_id).await?;
    actor
        .audit(
            &mut tx,
            "kill_switch_released",
            s.user_id,
            serde_json::json!({ "switch_id": switch_id, "scope": s.scope, "paper_run_id": s.paper_run_id, "reason": reason }),
        )
        .await?;
    let emitted = announce(ctx, &mut tx, &switch, false, by_admin).await?;
    tx.commit().await?;
    emit::push(&ctx.jobs, &emitted).await;
    Ok(switch)
}

fn scope_name(s: Scope) -> &'static str {
    match s {
        Scope::Platform => "platform",
        Scope::User(_) => "user",
        Scope::Run(_) => "run",
    }
}

async fn get(conn: &mut PgConnection, id: Uuid) -> Result<KillSwitch> {
    sqlx::query_as!(
        KillSwitch,
        "select switch_id, scope, user_id, paper_run_id, mode, reason, thrown_by_admin, thrown_at, released_at,
                release_reason
         from kill_switch where switch_id = $1",
        id
    )
    .fetch_optional(conn)
    .await?
    .ok_or(Error::NotFound)
}

/// Tells the affected users (those with live runs under the switch; the user or the run's owner) and every
/// live page of the affected runs.
async fn announce(
    ctx: &Ctx,
    conn: &mut PgConnection,
    s: &KillSwitch,
    thrown: bool,
    by_admin: bool,
) -> Result<Vec<emit::Emitted>> {
    let runs: Vec<(Uuid, Uuid)> = sqlx::query!(
        r#"select paper_run_id, user_id from paper_run
           where status in ('active', 'paused', 'stopping')
             and ($1 = 'platform' or ($1 = 'user' and user_id = $2) or ($1 = 'run' and paper_run_id = $3))"#,
        s.scope,
        s.user_id,
        s.paper_run_id,
    )
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(|r| (r.paper_run_id, r.user_id))
    .collect();
    let mut users: Vec<Uuid> = runs.iter().map(|r| r.1).collect();
    if let Some(u) = s.user_id {
        users.push(u);
    }
    users.sort_unstable();
    users.dedup();
    let events: Vec<Event> = users
        .into_iter()
        .map(|user_id| {
            let change = KillSwitchChange {
                user_id,
                switch_id: s.switch_id,
                scope: s.scope.clone(),
                run_id: s.paper_run_id,
                mode: s.mode.clone(),
                reason: if thrown {
                    s.reason.clone()
                } else {
                    s.release_reason.clone().unwrap_or_default()
                },
                by: if by_admin { "an administrator" } else { "you" }.to_owned(),
            };
            if thrown {
                Event::KillSwitchThrown(change)
            } else {
                Event::KillSwitchReleased(change)
            }
        })
        .collect();
    let ids: Vec<String> = runs.iter().map(|r| r.0.to_string()).collect();
    super::advance::notify_changed(conn, &ids).await?;
    Ok(emit::emit_many(conn, &ctx.jobs, &ctx.clock, &events).await?)
}

/// Active switches of the platform, of these users and of these runs: the strictest gate of each level; and
/// the runs under a plan gate (reduce-only: the excess of an enforced `active_paper_runs` overage,
/// [`crate::plans::overage`]), which is not a switch: no switch change puts it on or lifts it.
#[derive(Debug, Default)]
pub struct ActiveGates {
    pub platform: Option<Gate>,
    pub users: std::collections::HashMap<Uuid, Gate>,
    pub runs: std::collections::HashMap<Uuid, Gate>,
    pub plan: std::collections::HashSet<Uuid>,
}

impl ActiveGates {
    /// The effective gate of a run: the strictest of its own, the switches over it and its plan gate.
    pub fn effective(&self, own: Gate, user: Uuid, run: Uuid) -> Gate {
        [
            Some(own),
            self.platform,
            self.users.get(&user).copied(),
            self.runs.get(&run).copied(),
            self.plan.contains(&run).then_some(Gate::ReduceOnly),
        ]
        .into_iter()
        .flatten()
        .fold(Gate::Open, Gate::strictest)
    }
}

/// Reads the active switches and plan gates for a step (under the shared lock the step holds; a plan gate
/// change takes it exclusively, like a switch change).
///
/// # Errors
/// Database errors.
pub async fn active_gates(
    conn: &mut PgConnection,
    users: &[Uuid],
    runs: &[Uuid],
) -> sqlx::Result<ActiveGates> {
    sqlx::query!("select pg_advisory_xact_lock_shared($1)", LOCK_KEY)
        .execute(&mut *conn)
        .await?;
    let rows = sqlx::query!(
        "select scope, user_id, paper_run_id, mode from kill_switch
         where released_at is null and (scope = 'platform' or user_id = any($1) or paper_run_id = any($2))",
        users,
        runs,
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut g = ActiveGates {
        plan: crate::plans::overage::restricted_runs(conn, users).await?,
        ..ActiveGates::default()
    };
    for r in rows {
        let Some(mode) = Gate::parse(&r.mode) else {
            continue;
        };
        match (r.scope.as_str(), r.user_id, r.paper_run_id) {
            ("platform", _, _) => g.platform = Some(g.platform.map_or(mode, |p| p.strictest(mode))),
            ("user", Some(u), _) => {
                g.users.insert(u, mode);
            }
            ("run", _, Some(run)) => {
                g.runs.insert(run, mode);
            }
            _ => {}
        }
    }
    Ok(g)
}

/// Active switches that affect a user: the platform's, theirs and their runs'.
///
/// # Errors
/// Database errors.
pub async fn active_for(conn: &mut PgConnection, user: Uuid) -> sqlx::Result<Vec<KillSwitch>> {
    sqlx::query_as!(
        KillSwitch,
        "select switch_id, scope, user_id, paper_run_id, mode, reason, thrown_by_admin, thrown_at, released_at,
                release_reason
         from kill_switch where released_at is null and (scope = 'platform' or user_id = $1)
         order by thrown_at desc",
        user
    )
    .fetch_all(conn)
    .await
}

/// Every active switch (administrators).
///
/// # Errors
/// Database errors.
pub async fn active_all(conn: &mut PgConnection) -> sqlx::Result<Vec<KillSwitch>> {
    sqlx::query_as!(
        KillSwitch,
        "select switch_id, scope, user_id, paper_run_id, mode, reason, thrown_by_admin, thrown_at, released_at,
                release_reason
         from kill_switch where released_at is null order by thrown_at desc limit 1000",
    )
    .fetch_all(conn)
    .await
}
