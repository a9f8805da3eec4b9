//! Users as administrators see and manage them: the list (search and filters, paged), one user's detail, and
//! the changes: suspend (with a reason and an optional end), unsuspend, change role, force sign-out.
//!
//! Two guards protect the instance from locking itself out: an administrator cannot suspend or demote
//! themselves, and nobody can suspend or demote the last active administrator (the admin rows are locked while
//! this is decided, so two concurrent demotions cannot both pass).

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use sqlx::PgConnection;
use uuid::Uuid;

use super::event;
use crate::{
    Actor, Ctx,
    auth::{Role, api_token, audit, audit::event as auth_event, session},
    error::{Error, Result},
    paper::{
        actions::{self as paper, Owner},
        control::Command,
    },
    plans::actions as plans,
};

/// Longest suspension reason, in characters.
pub const MAX_REASON: usize = 500;
/// Longest search text, in characters.
pub const MAX_QUERY: usize = 254;
/// Most users one page lists.
pub const MAX_PAGE: i64 = 200;
/// The furthest offset a page may start at.
pub const MAX_OFFSET: i64 = 1_000_000;
/// The furthest a suspension end may lie ahead, in days.
pub const MAX_SUSPENSION_DAYS: i64 = 3650;
/// Audit entries the user detail shows.
pub const RECENT_AUDIT: i64 = 20;

/// A user's status as the filters name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Active,
    Suspended,
    Unverified,
    /// Waiting for sign-up approval (docs/admin.md#pending-sign-ups--adminsignups).
    Pending,
}

impl Status {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(Self::Active),
            "suspended" => Some(Self::Suspended),
            "unverified" => Some(Self::Unverified),
            "pending" => Some(Self::Pending),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Suspended => "suspended",
            Self::Unverified => "unverified",
            Self::Pending => "pending",
        }
    }
}

/// The list's filters (all optional) and page.
#[derive(Debug, Clone, Default)]
pub struct UserQuery {
    /// Part of the email address or display name (case-insensitive).
    pub q: Option<String>,
    pub role: Option<Role>,
    pub status: Option<Status>,
    /// 1..=[`MAX_PAGE`] (default 50).
    pub limit: Option<i64>,
    /// 0..=[`MAX_OFFSET`].
    pub offset: Option<i64>,
}

/// A suspension as the user and admins see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Suspension {
    pub since: DateTime<Utc>,
    /// `None` for an account disabled before suspensions had reasons.
    pub reason: Option<String>,
    /// When it ends by itself (at the next sign-in after it); `None`: until an administrator lifts it.
    pub until: Option<DateTime<Utc>>,
    pub by: Option<Uuid>,
}

impl Suspension {
    /// What the user is told when they try to sign in.
    pub fn message(&self) -> String {
        let reason = self
            .reason
            .as_deref()
            .map_or_else(String::new, |r| format!(" Reason: {r}"));
        let until = self.until.map_or_else(
            || " It lasts until an administrator lifts it.".to_owned(),
            |u| format!(" It ends on {} UTC.", u.format("%Y-%m-%d %H:%M")),
        );
        format!(
            "Your account is suspended.{reason}{until} Contact an administrator if you think this is a mistake."
        )
    }
}

/// One user in the list.
#[derive(Debug, Clone, Serialize)]
pub struct UserRow {
    pub user_id: Uuid,
    pub email: String,
    pub display_name: String,
    pub role: Role,
    pub email_verified: bool,
    pub suspended: bool,
    /// Waiting for sign-up approval.
    pub pending: bool,
    /// The slug of the user's plan (the default plan's when they have no assignment in force).
    pub plan: String,
    pub created_at: DateTime<Utc>,
}

/// A page of users.
#[derive(Debug, Clone, Serialize)]
pub struct UserPage {
    pub users: Vec<UserRow>,
    /// Users matching the filters (all pages).
    pub total: i64,
    pub limit: i64,
    pub offset: i64,
}

/// One user with what an administrator needs to decide.
#[derive(Debug, Clone, Serialize)]
pub struct UserDetail {
    pub user: UserRow,
    pub time_zone: String,
    pub suspension: Option<Suspension>,
    pub plan: plans::UserPlan,
    pub sessions: i64,
    pub tokens: i64,
    pub active_paper_runs: i64,
    /// Two-factor sign-in is on (an administrator can reset it: `account::two_factor::admin_reset`).
    pub two_factor: bool,
    /// An administrator notified of new sign-up requests ([`super::signups::set_approver`]).
    pub signup_approver: bool,
    /// The account waits for sign-up approval (`/admin/signups`).
    pub signup_pending: bool,
    pub recent_audit: Vec<audit::AuditRow>,
}

/// What [`suspend`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Suspended {
    pub sessions_ended: u64,
    pub tokens_revoked: u64,
    pub paper_runs_paused: u64,
}

fn page_bounds(q: &UserQuery) -> Result<(i64, i64)> {
    let limit = q.limit.unwrap_or(50);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(Error::invalid(
            "limit",
            format!("must be between 1 and {MAX_PAGE}"),
        ));
    }
    let offset = q.offset.unwrap_or(0);
    if !(0..=MAX_OFFSET).contains(&offset) {
        return Err(Error::invalid(
            "offset",
            format!("must be between 0 and {MAX_OFFSET}"),
        ));
    }
    Ok((limit, offset))
}

/// The users matching the filters, newest first (admins only).
///
/// # Errors
/// [`Error::Unauthenticated`], [`Error::Forbidden`], [`Error::Invalid`] (`q`, `limit`, `offset`), database.
pub async fn list(actor: &Actor, ctx: &Ctx, q: &UserQuery) -> Result<UserPage> {
    actor.admin()?;
    let (limit, offset) = page_bounds(q)?;
    let text = q.q.as_deref().map(str::trim).unwrap_or_default();
    if text.chars().count() > MAX_QUERY || text.chars().any(char::is_control) {
        return Err(Error::invalid(
            "q",
            format!("use at most {MAX_QUERY} characters, without control characters"),
        ));
    }
    // `%` and `_` are searched for as themselves.
    let pattern = (!text.is_empty()).then(|| {
        format!(
            "%{}%",
            text.replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        )
    });
    let role = q.role.map(Role::as_str);
    let status = q.status.map(Status::as_str);
    let rows = sqlx::query!(
        r#"select u.user_id, u.email, u.display_name, u.role, u.email_verified_at is not null as "verified!",
                  u.disabled_at is not null as "suspended!", u.created_at,
                  exists (select 1 from signup_request r where r.user_id = u.user_id) as "pending!",
                  coalesce(p.slug, d.slug) as "plan!", count(*) over () as "total!"
           from app_user u
           left join user_plan up on up.user_id = u.user_id and (up.ends_at is null or up.ends_at > now())
           left join plan p on p.plan_id = up.plan_id
           cross join (select slug from plan where is_default) d
           where ($1::text is null or u.email ilike $1 or u.display_name ilike $1)
             and ($2::text is null or u.role = $2)
             and ($3::text is null
                  or ($3 = 'suspended' and u.disabled_at is not null)
                  or ($3 = 'active' and u.disabled_at is null
                      and not exists (select 1 from signup_request r where r.user_id = u.user_id))
                  or ($3 = 'unverified' and u.email_verified_at is null)
                  or ($3 = 'pending' and exists (select 1 from signup_request r where r.user_id = u.user_id)))
           order by u.created_at desc, u.user_id
           limit $4 offset $5"#,
        pattern,
        role,
        status,
        limit,
        offset,
    )
    .fetch_all(&ctx.db)
    .await?;
    let total = match rows.first() {
        Some(r) => r.total,
        None if offset == 0 => 0,
        // Past the end: count without the page.
        None => {
            sqlx::query_scalar!(
                r#"select count(*) as "n!" from app_user u
               where ($1::text is null or u.email ilike $1 or u.display_name ilike $1)
                 and ($2::text is null or u.role = $2)
                 and ($3::text is null
                      or ($3 = 'suspended' and u.disabled_at is not null)
                      or ($3 = 'active' and u.disabled_at is null
                          and not exists (select 1 from signup_request r where r.user_id = u.user_id))
                      or ($3 = 'unverified' and u.email_verified_at is null)
                      or ($3 = 'pending' and exists (select 1 from signup_request r where r.user_id = u.user_id)))"#,
                pattern,
                role,
                status,
            )
            .fetch_one(&ctx.db)
            .await?
        }
    };
    Ok(UserPage {
        users: rows
            .into_iter()
            .map(|r| UserRow {
                user_id: r.user_id,
                email: r.email,
                display_name: r.display_name,
                role: Role::parse(&r.role).unwrap_or(Role::Viewer),
                email_verified: r.verified,
                suspended: r.suspended,
                pending: r.pending,
                plan: r.plan,
                created_at: r.created_at,
            })
            .collect(),
        total,
        limit,
        offset,
    })
}

/// One user's profile, suspension, plan and usage, session and token counts and recent audit entries (admins
/// only).
///
/// # Errors
/// [`Error::Unauthenticated`], [`Error::Forbidden`], [`Error::NotFound`], database.
pub async fn get(actor: &Actor, ctx: &Ctx, user_id: Uuid) -> Result<UserDetail> {
    actor.admin()?;
    let r = sqlx::query!(
        r#"select u.user_id, u.email, u.display_name, u.role, u.time_zone,
                  u.email_verified_at is not null as "verified!", u.created_at,
                  u.disabled_at, u.suspended_reason, u.suspended_until, u.suspended_by, u.signup_approver,
                  exists (select 1 from signup_request q where q.user_id = u.user_id) as "pending!",
                  (select count(*) from user_session s where s.user_id = u.user_id and s.revoked_at is null
                     and s.expires_at > now()) as "sessions!",
                  (select count(*) from api_token t where t.user_id = u.user_id and t.revoked_at is null
                     and (t.expires_at is null or t.expires_at > now())) as "tokens!",
                  (select count(*) from paper_run r where r.user_id = u.user_id and r.status = 'active')
                     as "runs!"
           from app_user u where u.user_id = $1"#,
        user_id,
    )
    .fetch_optional(&ctx.db)
    .await?
    .ok_or(Error::NotFound)?;
    let plan = plans::of_user(actor, ctx, user_id).await?;
    let recent_audit = audit::list(&ctx.db, Some(user_id), RECENT_AUDIT).await?;
    let suspension = r.disabled_at.map(|since| Suspension {
        since,
        reason: r.suspended_reason,
        until: r.suspended_until,
        by: r.suspended_by,
    });
    let two_factor = crate::account::two_factor::enabled(ctx, r.user_id).await?;
    Ok(UserDetail {
        two_factor,
        signup_approver: r.signup_approver,
        signup_pending: r.pending,
        user: UserRow {
            user_id: r.user_id,
            email: r.email,
            display_name: r.display_name,
            role: Role::parse(&r.role).unwrap_or(Role::Viewer),
            email_verified: r.verified,
            suspended: suspension.is_some(),
            pending: r.pending,
            plan: plan.plan.slug.clone(),
            created_at: r.created_at,
        },
        time_zone: r.time_zone,
        suspension,
        plan,
        sessions: r.sessions,
        tokens: r.tokens,
        active_paper_runs: r.runs,
        recent_audit,
    })
}

/// A reason as stored: trimmed, 1..=[`MAX_REASON`] characters, no control characters.
fn parse_reason(reason: &str) -> Result<String> {
    let r = reason.trim();
    if r.is_empty() {
        return Err(Error::invalid(
            "reason",
            "say why (the user is shown it when they try to sign in)",
        ));
    }
    if r.chars().count() > MAX_REASON || r.chars().any(char::is_control) {
        return Err(Error::invalid(
            "reason",
            format!("use at most {MAX_REASON} characters, on one line"),
        ));
    }
    Ok(r.to_owned())
}

/// A suspension's end: in the future, within [`MAX_SUSPENSION_DAYS`].
fn check_until(now: DateTime<Utc>, until: Option<DateTime<Utc>>) -> Result<()> {
    if let Some(u) = until {
        if u <= now {
            return Err(Error::invalid("until", "must be in the future"));
        }
        if u > now + chrono::Duration::days(MAX_SUSPENSION_DAYS) {
            return Err(Error::invalid(
                "until",
                format!("must be within {MAX_SUSPENSION_DAYS} days"),
            ));
        }
    }
    Ok(())
}

/// Locks the target user's row; their role and whether they are suspended.
async fn lock_user(conn: &mut PgConnection, user_id: Uuid) -> Result<(Role, bool, String)> {
    let r = sqlx::query!(
        r#"select role, disabled_at is not null as "disabled!", email from app_user
           where user_id = $1 for update"#,
        user_id,
    )
    .fetch_optional(conn)
    .await?
    .ok_or(Error::NotFound)?;
    Ok((
        Role::parse(&r.role).unwrap_or(Role::Viewer),
        r.disabled,
        r.email,
    ))
}

/// Refuses when `user_id` is the last active administrator (locks every active admin row first).
async fn not_last_admin(conn: &mut PgConnection, user_id: Uuid, doing: &str) -> Result<()> {
    let admins: Vec<Uuid> = sqlx::query_scalar!(
        "select user_id from app_user where role = 'admin' and disabled_at is null
         order by user_id for update",
    )
    .fetch_all(conn)
    .await?;
    if admins.iter().all(|a| *a == user_id) {
        return Err(Error::Conflict(format!(
            "cannot {doing} the last active administrator; make another account an admin first"
        )));
    }
    Ok(())
}

/// The acting administrator may not act on themselves this way.
fn not_self(actor: &Actor, user_id: Uuid, doing: &str) -> Result<()> {
    if actor.user_id() == Some(user_id) {
        return Err(Error::Conflict(format!(
            "you cannot {doing} your own account; ask another administrator"
        )));
    }
    Ok(())
}

/// Suspends a user: the account is disabled with `reason` (shown to the user at sign-in) until `until` (or
/// until an administrator lifts it), every session ends and every API token is revoked in the same
/// transaction, audited as `user_suspended`; then each active paper run of the user is paused through the paper
/// control action (audited as `paper_paused`; positions keep their protective exits). Suspending a suspended
/// user replaces the reason and end. Admins with a read-write credential only; not themselves, not the last
/// active administrator.
///
/// # Errors
/// [`Error::Unauthenticated`], [`Error::Forbidden`], [`Error::NotFound`], [`Error::Invalid`] (`reason`,
/// `until`), [`Error::Conflict`] (oneself, the last admin), database.
pub async fn suspend(
    actor: &Actor,
    ctx: &Ctx,
    user_id: Uuid,
    reason: &str,
    until: Option<DateTime<Utc>>,
) -> Result<Suspended> {
    suspend_with(actor, ctx, user_id, reason, until, Existing::Replace).await
}

/// What suspending an already suspended user does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Existing {
    /// Replace its reason and end (the user's page: the admin sees the suspension being changed).
    Replace,
    /// Refuse (bulk: the admin did not see each user's reason and end, so none is overwritten).
    Keep,
}

async fn suspend_with(
    actor: &Actor,
    ctx: &Ctx,
    user_id: Uuid,
    reason: &str,
    until: Option<DateTime<Utc>>,
    existing: Existing,
) -> Result<Suspended> {
    actor.admin_writer()?;
    let reason = parse_reason(reason)?;
    let now = ctx.clock.now();
    check_until(now, until)?;
    not_self(actor, user_id, "suspend")?;
    let mut tx = ctx.db.begin().await?;
    let (role, disabled, email) = lock_user(&mut tx, user_id).await?;
    // A suspension whose end has passed is lifted only at the user's next sign-in: it no longer counts, and
    // the new one starts now.
    let expired = disabled
        && sqlx::query_scalar!(
            r#"select coalesce(suspended_until <= $2, false) as "expired!" from app_user where user_id = $1"#,
            user_id,
            now,
        )
        .fetch_one(&mut *tx)
        .await?;
    let was_suspended = disabled && !expired;
    if was_suspended && existing == Existing::Keep {
        return Err(Error::Conflict(
            "already suspended; change or lift that suspension on the user's page".into(),
        ));
    }
    if role == Role::Admin {
        not_last_admin(&mut tx, user_id, "suspend").await?;
    }
    sqlx::query!(
        "update app_user set disabled_at = case when $6 then $2 else coalesce(disabled_at, $2) end,
             suspended_reason = $3, suspended_until = $4, suspended_by = $5
         where user_id = $1",
        user_id,
        now,
        reason,
        until,
        actor.user_id(),
        expired,
    )
    .execute(&mut *tx)
    .await?;
    let sessions_ended = session::revoke_all(&mut *tx, user_id, None).await?;
    let tokens_revoked = api_token::revoke_all(&mut *tx, user_id).await?;
    crate::account::email_change::void_pending(&mut tx, user_id).await?;
    actor
        .audit_email(
            &mut tx,
            event::USER_SUSPENDED,
            Some(user_id),
            Some(&email),
            json!({
                "reason": reason, "until": until, "again": was_suspended,
                "sessions_ended": sessions_ended, "tokens_revoked": tokens_revoked,
            }),
        )
        .await?;
    // The other administrators hear of it (the notification centre, and by email by default).
    let by = actor.auth_user().map_or_else(
        || "the operator".to_owned(),
        |a| crate::notify::unsubscribe::mask_email(&a.email),
    );
    let emitted = crate::notify::emit(
        &mut tx,
        &ctx.jobs,
        &ctx.clock,
        &crate::notify::Event::UserSuspended(crate::notify::event::UserSuspended {
            user_id,
            email: crate::notify::unsubscribe::mask_email(&email),
            by,
            reason: reason.clone(),
            until,
        }),
    )
    .await?;
    tx.commit().await?;
    crate::notify::push(&ctx.jobs, &[emitted]).await;
    let paper_runs_paused = pause_runs(actor, ctx, user_id).await?;
    Ok(Suspended {
        sessions_ended,
        tokens_revoked,
        paper_runs_paused,
    })
}

/// Pauses each active paper run of the user (a run that changed state meanwhile is left as it is). A run that
/// cannot be paused now is logged and left: the paper step holds every run of a suspended owner at `halt`
/// anyway, so the suspension does not depend on this loop finishing.
async fn pause_runs(actor: &Actor, ctx: &Ctx, user_id: Uuid) -> Result<u64> {
    let runs: Vec<Uuid> = sqlx::query_scalar!(
        "select paper_run_id from paper_run where user_id = $1 and status = 'active'",
        user_id,
    )
    .fetch_all(&ctx.db)
    .await?;
    let mut paused = 0;
    for run in runs {
        match paper::control(actor, ctx, Owner::User(user_id), run, Command::Pause).await {
            Ok(_) => paused += 1,
            Err(Error::Conflict(_) | Error::NotFound) => {}
            Err(e) => {
                tracing::warn!(paper_run_id = %run, error = %e, "could not pause a suspended user's paper run")
            }
        }
    }
    Ok(paused)
}

/// Lifts a suspension (the user can sign in again; their paused paper runs stay paused until they resume them);
/// audited as `user_unsuspended`.
///
/// # Errors
/// [`Error::Unauthenticated`], [`Error::Forbidden`], [`Error::NotFound`], [`Error::Conflict`] (not suspended),
/// database.
pub async fn unsuspend(actor: &Actor, ctx: &Ctx, user_id: Uuid) -> Result<()> {
    actor.admin_writer()?;
    let mut tx = ctx.db.begin().await?;
    let (_, suspended, email) = lock_user(&mut tx, user_id).await?;
    if !suspended {
        return Err(Error::Conflict("this account is not suspended".into()));
    }
    lift(&mut tx, user_id).await?;
    actor
        .audit_email(
            &mut tx,
            event::USER_UNSUSPENDED,
            Some(user_id),
            Some(&email),
            json!({ "expired": false }),
        )
        .await?;
    tx.commit().await?;
    Ok(())
}

async fn lift(conn: &mut PgConnection, user_id: Uuid) -> Result<()> {
    sqlx::query!(
        "update app_user set disabled_at = null, suspended_reason = null, suspended_until = null,
             suspended_by = null
         where user_id = $1",
        user_id,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// The suspension of the account with this id, if it is suspended (for sign-in). A suspension whose end has
/// passed is lifted here (audited as `user_unsuspended` with `expired`) and `None` is returned.
///
/// # Errors
/// Database errors.
pub(crate) async fn suspension_at_signin(
    ctx: &Ctx,
    actor: &Actor,
    user_id: Uuid,
) -> Result<Option<Suspension>> {
    let mut tx = ctx.db.begin().await?;
    let Some(r) = sqlx::query!(
        "select disabled_at, suspended_reason, suspended_until, suspended_by, email from app_user
         where user_id = $1 for update",
        user_id,
    )
    .fetch_optional(&mut *tx)
    .await?
    else {
        return Ok(None);
    };
    let Some(since) = r.disabled_at else {
        return Ok(None);
    };
    if let Some(until) = r.suspended_until
        && until <= ctx.clock.now()
    {
        lift(&mut tx, user_id).await?;
        actor
            .audit_email(
                &mut tx,
                event::USER_UNSUSPENDED,
                Some(user_id),
                Some(&r.email),
                json!({ "expired": true, "until": until }),
            )
            .await?;
        tx.commit().await?;
        return Ok(None);
    }
    Ok(Some(Suspension {
        since,
        reason: r.suspended_reason,
        until: r.suspended_until,
        by: r.suspended_by,
    }))
}

/// Changes a user's role (`admin`, `trader`, `viewer`); their sessions end so the new role starts with a fresh
/// sign-in; audited as `role_changed`. Not one's own role; not demoting the last active administrator. The same
/// role again changes nothing (`false`). Not the role of an account waiting for sign-up approval (decide the
/// request first).
///
/// # Errors
/// [`Error::Unauthenticated`], [`Error::Forbidden`], [`Error::NotFound`], [`Error::Conflict`], database.
pub async fn set_role(actor: &Actor, ctx: &Ctx, user_id: Uuid, role: Role) -> Result<bool> {
    actor.admin_writer()?;
    not_self(actor, user_id, "change the role of")?;
    let mut tx = ctx.db.begin().await?;
    let (old, _, email) = lock_user(&mut tx, user_id).await?;
    if super::signups::is_pending(&mut tx, user_id).await? {
        return Err(Error::Conflict(super::signups::PENDING_CHANGE.into()));
    }
    if old == role {
        return Ok(false);
    }
    if old == Role::Admin {
        not_last_admin(&mut tx, user_id, "demote").await?;
    }
    crate::auth::users::set_role(&mut tx, user_id, role).await?;
    let ended = session::revoke_all(&mut *tx, user_id, None).await?;
    actor
        .audit_email(
            &mut tx,
            auth_event::ROLE_CHANGED,
            Some(user_id),
            Some(&email),
            json!({ "from": old.as_str(), "to": role.as_str(), "by": actor.surface.as_str(), "sessions_ended": ended }),
        )
        .await?;
    tx.commit().await?;
    Ok(true)
}

/// Ends every browser session of a user (API tokens stay; suspend to revoke those too); audited as
/// `sessions_revoked_by_admin`. Returns how many ended.
///
/// # Errors
/// [`Error::Unauthenticated`], [`Error::Forbidden`], [`Error::NotFound`], database.
pub async fn sign_out_everywhere(actor: &Actor, ctx: &Ctx, user_id: Uuid) -> Result<u64> {
    actor.admin_writer()?;
    let mut tx = ctx.db.begin().await?;
    let (_, _, email) = lock_user(&mut tx, user_id).await?;
    let ended = session::revoke_all(&mut *tx, user_id, None).await?;
    crate::account::email_change::void_pending(&mut tx, user_id).await?;
    actor
        .audit_email(
            &mut tx,
            event::SESSIONS_REVOKED,
            Some(user_id),
            Some(&email),
            json!({ "sessions_ended": ended }),
        )
        .await?;
    tx.commit().await?;
    Ok(ended)
}

/// The id of the account with this email address (admins only), e.g. for a form that names a user by address.
///
/// # Errors
/// [`Error::Unauthenticated`], [`Error::Forbidden`], [`Error::Invalid`] (`email`), database.
pub async fn find_by_email(actor: &Actor, ctx: &Ctx, email: &str) -> Result<Uuid> {
    actor.admin()?;
    let email = email.trim();
    if email.is_empty() || email.chars().count() > 254 {
        return Err(Error::invalid("email", "give the user's email address"));
    }
    crate::auth::users::find_for_signin(&ctx.db, email)
        .await?
        .map(|(u, _)| u.user_id)
        .ok_or_else(|| Error::invalid("email", "no account has this email address"))
}

/// Most users one bulk request acts on.
pub const MAX_BULK: usize = 100;

/// How long one bulk request works before it reports the remaining users as not attempted: well inside the
/// web request timeout (30 s), so the answer always arrives and says exactly what was done.
pub const BULK_TIME: std::time::Duration = std::time::Duration::from_secs(20);

/// What [`bulk`] does to each user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BulkAction {
    /// [`suspend`] with this reason and end.
    Suspend {
        reason: String,
        until: Option<DateTime<Utc>>,
    },
    /// [`unsuspend`].
    Unsuspend,
    /// [`sign_out_everywhere`].
    SignOut,
}

impl BulkAction {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Suspend { .. } => "suspend",
            Self::Unsuspend => "unsuspend",
            Self::SignOut => "sign_out",
        }
    }

    /// How a summary says it was done ("3 suspended").
    pub fn done(&self) -> &'static str {
        match self {
            Self::Suspend { .. } => "suspended",
            Self::Unsuspend => "reinstated",
            Self::SignOut => "signed out everywhere",
        }
    }
}

/// What [`bulk`] did for one user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BulkOutcome {
    pub user_id: Uuid,
    /// `done` or `refused`.
    pub outcome: &'static str,
    /// Why it was refused: the error code (`conflict`, `not_found`, …) and its message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl BulkOutcome {
    pub fn is_done(&self) -> bool {
        self.outcome == "done"
    }
}

/// The users a bulk request names: 1..=[`MAX_BULK`] ids, each once.
fn check_bulk_ids(ids: &[Uuid]) -> Result<()> {
    if ids.is_empty() {
        return Err(Error::invalid("user_ids", "choose at least one user"));
    }
    if ids.len() > MAX_BULK {
        return Err(Error::invalid(
            "user_ids",
            format!("choose at most {MAX_BULK} users at a time"),
        ));
    }
    let mut seen = std::collections::HashSet::with_capacity(ids.len());
    if let Some(dup) = ids.iter().find(|id| !seen.insert(**id)) {
        return Err(Error::invalid(
            "user_ids",
            format!("{dup} is named more than once"),
        ));
    }
    Ok(())
}

/// Applies one action to several users (admins with a read-write credential only): each user goes through the
/// single action ([`suspend`], [`unsuspend`], [`sign_out_everywhere`]) with its own rules, transaction and
/// audit entry, so a refusal of one user (oneself, the last admin, not suspended, no such user) is reported
/// for that user and changes nothing for the others. Unlike the user's page, a bulk suspension never replaces
/// an existing one (refused: already suspended), and a bulk sign-out refuses oneself. The ids
/// (1..=[`MAX_BULK`], no repeats) and a suspension's reason and end are checked before anyone is changed.
/// Users not reached within [`BULK_TIME`] are reported `time_limit` (not attempted). One outcome per id, in
/// order.
///
/// # Errors
/// [`Error::Unauthenticated`], [`Error::Forbidden`], [`Error::Invalid`] (`user_ids`, `reason`, `until`).
pub async fn bulk(
    actor: &Actor,
    ctx: &Ctx,
    ids: &[Uuid],
    action: &BulkAction,
) -> Result<Vec<BulkOutcome>> {
    actor.admin_writer()?;
    check_bulk_ids(ids)?;
    if let BulkAction::Suspend { reason, until } = action {
        parse_reason(reason)?;
        check_until(ctx.clock.now(), *until)?;
    }
    let mut out = Vec::with_capacity(ids.len());
    let deadline = tokio::time::Instant::now() + BULK_TIME;
    for (i, &user_id) in ids.iter().enumerate() {
        if tokio::time::Instant::now() >= deadline {
            // (Checked before each user: one user's action may take a few seconds more, well inside the
            // web timeout.)
            // The rest is not attempted: a request must answer before the web timeout, and a half-known state
            // ("did the 60th user get suspended?") is worse than a clear list of what to submit again.
            let left = ids.len() - i;
            tracing::warn!(
                done = i,
                left,
                action = action.as_str(),
                "bulk user action stopped at its time limit"
            );
            out.extend(ids[i..].iter().map(|&user_id| BulkOutcome {
                user_id,
                outcome: "refused",
                code: Some("time_limit".to_owned()),
                message: Some(format!(
                    "not attempted: the request ran out of time after {i} users; submit the remaining {left} again"
                )),
            }));
            break;
        }
        let r = match action {
            BulkAction::Suspend { reason, until } => {
                suspend_with(actor, ctx, user_id, reason, *until, Existing::Keep)
                    .await
                    .map(drop)
            }
            BulkAction::Unsuspend => unsuspend(actor, ctx, user_id).await,
            // One's own sessions include the one making this request: signing oneself out is the account
            // page's "sign out everywhere", never a side effect of a selection.
            BulkAction::SignOut => match not_self(actor, user_id, "sign out (in bulk)") {
                Ok(()) => sign_out_everywhere(actor, ctx, user_id).await.map(drop),
                Err(e) => Err(e),
            },
        };
        out.push(match r {
            Ok(()) => BulkOutcome {
                user_id,
                outcome: "done",
                code: None,
                message: None,
            },
            Err(e) => {
                if matches!(e, Error::Db(_) | Error::Internal(_)) {
                    tracing::warn!(%user_id, action = action.as_str(), error = %e, "bulk user action failed");
                }
                BulkOutcome {
                    user_id,
                    outcome: "refused",
                    code: Some(e.code().to_owned()),
                    message: Some(match e {
                        Error::NotFound => "no such user".to_owned(),
                        e => e.message(),
                    }),
                }
            }
        });
    }
    Ok(out)
}

/// One line saying what [`bulk`] did: "3 suspended; 1 refused: you cannot suspend your own account; ask another
/// administrator". Refusals with the same message are counted together.
pub fn bulk_summary(action: &BulkAction, outcomes: &[BulkOutcome]) -> String {
    let done = outcomes.iter().filter(|o| o.is_done()).count();
    let mut reasons: Vec<(&str, usize)> = Vec::new();
    for o in outcomes.iter().filter(|o| !o.is_done()) {
        let m = o.message.as_deref().unwrap_or("refused");
        match reasons.iter_mut().find(|(r, _)| *r == m) {
            Some((_, n)) => *n += 1,
            None => reasons.push((m, 1)),
        }
    }
    let mut line = format!("{done} {}", action.done());
    if !reasons.is_empty() {
        let refused: usize = reasons.iter().map(|(_, n)| n).sum();
        let why = if reasons.len() == 1 {
            reasons[0].0.to_owned()
        } else {
            reasons
                .iter()
                .map(|(r, n)| format!("{r} ({n})"))
                .collect::<Vec<_>>()
                .join("; ")
        };
        line.push_str(&format!("; {refused} refused: {why}"));
    }
    line
}
