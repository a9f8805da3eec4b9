//! The admin console's reads (docs/admin.md): the overview, the users list and one user, the pending sign-ups,
//! plans, jobs and kill switches. Each server function calls one read action of `backend::admin` (or the plans and paper actions),
//! which refuses everyone but admins (403; anonymous visitors are sent to sign in by the page). The changes are
//! HTML form posts handled in `server::routes::admin_forms`, each calling one backend action.

use leptos::{prelude::*, server_fn::codec::GetUrl};
use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// Users per page of the list.
pub const PAGE: i64 = 50;

/// One day's sign-ups.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DayView {
    pub day: String,
    pub signups: i64,
}

/// An active kill switch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SwitchView {
    pub id: String,
    /// `platform`, `user` or `run`.
    pub scope: String,
    /// The user or run it covers (empty for the platform).
    pub target: String,
    pub mode: String,
    pub reason: String,
    pub thrown_at: String,
}

/// The overview page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OverviewView {
    /// Accounts holding a seat (pending sign-ups not counted).
    pub users: i64,
    /// Sign-ups waiting for approval.
    pub pending_signups: i64,
    pub admins: i64,
    pub suspended: i64,
    pub signups: Vec<DayView>,
    pub backtests_queued: i64,
    pub backtests_running: i64,
    pub paper_runs_active: i64,
    pub paper_runs_paused: i64,
    pub jobs_queued: i64,
    pub jobs_running: i64,
    pub jobs_failed: i64,
    pub switches: Vec<SwitchView>,
    /// `open`, `invite`, `approval` or `closed`.
    pub signup_policy: String,
    pub banner: String,
    /// Admins must turn on two-factor sign-in before anything else.
    pub admin_two_factor_required: bool,
    /// One domain per line.
    pub signup_allowed_domains: String,
    pub signup_denied_domains: String,
    /// An invitation link just created (shown once).
    pub new_invite: Option<String>,
    pub form_error: Option<(String, String)>,
}

/// A user in the list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserRowView {
    pub id: String,
    pub email: String,
    pub display_name: String,
    pub role: String,
    pub verified: bool,
    pub suspended: bool,
    /// Waiting for sign-up approval.
    pub pending: bool,
    pub plan: String,
    pub created_at: String,
}

/// The users page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsersView {
    pub q: String,
    pub role: String,
    pub status: String,
    pub page: i64,
    pub total: i64,
    pub users: Vec<UserRowView>,
    pub form_error: Option<(String, String)>,
    /// What the last bulk action did ("3 suspended; 1 refused: …"), once, after `POST /admin/users/bulk`.
    pub bulk_result: Option<String>,
}

/// One limit of the user's plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LimitView {
    pub label: String,
    pub value: String,
    pub usage: String,
}

/// One audit entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditView {
    pub event: String,
    pub at: String,
    pub detail: String,
}

/// A plan to choose from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanChoice {
    pub slug: String,
    pub name: String,
}

/// The user page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserView {
    pub user: UserRowView,
    pub time_zone: String,
    /// The reason, end and start of a suspension, as the page words them.
    pub suspension: Option<String>,
    pub plan_name: String,
    pub plan_note: String,
    pub limits: Vec<LimitView>,
    /// Open overages (over a limit after a plan change), one sentence each, and what they restrict.
    pub overages: Vec<(String, Vec<String>)>,
    pub plans: Vec<PlanChoice>,
    pub sessions: i64,
    pub tokens: i64,
    pub active_paper_runs: i64,
    pub two_factor: bool,
    /// Notified of new sign-up requests.
    pub signup_approver: bool,
    /// The account waits for sign-up approval.
    pub signup_pending: bool,
    pub audit: Vec<AuditView>,
    pub form_error: Option<(String, String)>,
}

/// A sign-up waiting for approval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingSignupView {
    pub id: String,
    pub email: String,
    pub display_name: String,
    pub domain: String,
    pub reason: String,
    pub verified: bool,
    pub requested_at: String,
}

/// The pending sign-ups page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignupsView {
    pub signups: Vec<PendingSignupView>,
    /// Every request waiting (the list holds the oldest [`backend::admin::signups::MAX_LIST`]).
    pub waiting: i64,
    /// New applications are refused (with the usual answer) from this many waiting requests.
    pub max_pending: i64,
    /// The sign-up policy now (the page says when it is not `approval`).
    pub signup_policy: String,
    /// The administrators notified of new requests (empty: every active administrator).
    pub approvers: Vec<String>,
    pub form_error: Option<(String, String)>,
}

/// A plan as the plans page shows and edits it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanView {
    pub id: String,
    pub slug: String,
    pub name: String,
    pub description: String,
    pub price_minor: i64,
    pub currency: String,
    pub billing_period: String,
    pub trial_days: i32,
    /// The payment provider's price id (empty: not for sale through checkout).
    pub provider_price_id: String,
    pub is_default: bool,
    pub archived: bool,
    pub users: i64,
    /// Every limit in order: its value on this plan (`None`: the plan sets none, the instance's setting
    /// applies).
    pub limits: Vec<PlanLimitField>,
}

/// One limit as the plan editor shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanLimitField {
    /// The stable name (`concurrent_backtests`); the form field is `limit_<key>`.
    pub key: String,
    pub label: String,
    pub min: i64,
    pub max: i64,
    pub value: Option<i64>,
}

/// The plans page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlansView {
    pub plans: Vec<PlanView>,
    /// The new-plan form's limit fields (all empty).
    pub new_limits: Vec<PlanLimitField>,
    pub form_error: Option<(String, String)>,
}

/// A catalogue strategy in the admin list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CatalogueRowView {
    pub id: String,
    pub slug: String,
    pub name: String,
    pub description: String,
    pub published: bool,
    pub featured: bool,
    pub builtin: bool,
    pub version: i32,
    pub params: usize,
    pub updated_at: String,
}

/// The catalogue page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CatalogueView {
    pub entries: Vec<CatalogueRowView>,
    pub form_error: Option<(String, String)>,
}

/// One saved version of a catalogue strategy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CatalogueVersionView {
    pub version: i32,
    pub note: String,
    pub created_by: String,
    pub created_at: String,
}

/// One catalogue strategy: the newest source, its versions and its use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CatalogueEntryView {
    pub row: CatalogueRowView,
    pub source: String,
    pub versions: Vec<CatalogueVersionView>,
    pub strategies: i64,
    pub form_error: Option<(String, String)>,
}

/// One queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueView {
    pub queue: String,
    pub queued: i64,
    pub scheduled: i64,
    pub running: i64,
    pub failed: i64,
}

/// A job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobView {
    pub id: String,
    pub queue: String,
    pub kind: String,
    pub attempts: i32,
    pub worker: String,
    /// Lease end (running) or finish time (failed).
    pub at: String,
    pub error: String,
}

/// The jobs page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobsView {
    pub queues: Vec<QueueView>,
    pub running: Vec<JobView>,
    pub failed: Vec<JobView>,
    /// Waiting to run, soonest first (`at`: when due).
    pub waiting: Vec<JobView>,
    pub form_error: Option<(String, String)>,
}

/// One event of the audit log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEventView {
    pub id: i64,
    pub at: String,
    pub event: String,
    pub user_id: String,
    /// The user's address, or the address the event named (a failed sign-in for an unknown address).
    pub user: String,
    pub actor_id: String,
    pub actor: String,
    pub ip: String,
    pub detail: String,
}

/// The audit log page: the filter as typed, one page of events and the link to the next.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditPageView {
    pub user: String,
    pub actor: String,
    pub event: String,
    pub since: String,
    pub until: String,
    pub events: Vec<AuditEventView>,
    /// The query string of the next (older) page, when there is one.
    pub next: Option<String>,
    /// The query string of the filter (for the CSV link).
    pub query: String,
    /// The filter was refused: (field, message).
    pub filter_error: Option<(String, String)>,
    pub form_error: Option<(String, String)>,
}

/// A subscription as the admins' list shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubscriptionView {
    pub user_id: String,
    pub email: String,
    pub plan: String,
    /// The provider's state (`trialing`, `active`, `past_due`, …), or `checkout started`.
    pub status: String,
    pub period_end: String,
    pub cancel_at_period_end: bool,
    pub trial_end: String,
    pub customer_id: String,
    pub observed_at: String,
}

/// The last reconciliation with the payment provider.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReconcileRunView {
    pub started_at: String,
    pub finished_at: String,
    /// `running`, `ok`, `partial`, `failed` or `abandoned`.
    pub outcome: String,
    /// `schedule` or `admin`.
    pub trigger: String,
    pub events_seen: i32,
    pub events_processed: i32,
    pub events_duplicate: i32,
    pub subscriptions_synced: i32,
    pub subscriptions_failed: i32,
    /// Events created up to this time are still to be listed by the next run (empty: all listed).
    pub events_resume: String,
    pub errors: Vec<String>,
}

/// The subscriptions page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubscriptionsView {
    /// `PAYMENT_PROVIDER` is not `none`.
    pub billing_enabled: bool,
    /// (state, count), most common first.
    pub counts: Vec<(String, usize)>,
    pub subscriptions: Vec<SubscriptionView>,
    /// The newest reconciliation run, if any.
    pub reconcile: Option<ReconcileRunView>,
    /// A reconciliation is queued or running.
    pub reconcile_pending: bool,
    /// "every 24 h", or "only when asked" (`BILLING_RECONCILE_INTERVAL_SECS=0`).
    pub reconcile_schedule: String,
    /// A refused "Reconcile now" (field, message).
    pub form_error: Option<(String, String)>,
}

/// A stored series on the market-data page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MarketSeriesView {
    pub exchange: String,
    pub pair: String,
    pub timeframe: String,
    pub tracked: bool,
    pub first: String,
    pub last: String,
    pub candles: i64,
    /// "3 min", "2 h", "5 d" behind; empty without candles.
    pub lag: String,
    pub last_update: String,
    /// On the configured exchange (can be tracked and backfilled).
    pub fetchable: bool,
}

/// An ETL run on the market-data page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EtlRunView {
    pub symbol: String,
    pub timeframe: String,
    pub mode: String,
    pub range: String,
    pub chunks: String,
    pub candles: i64,
    pub status: String,
    pub error: String,
    pub created_at: String,
}

/// The market-data page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MarketAdminView {
    pub exchange: String,
    pub source: String,
    pub update_every: String,
    pub last_update: String,
    pub chunks_pending: i64,
    pub series: Vec<MarketSeriesView>,
    pub runs: Vec<EtlRunView>,
    pub timeframes: Vec<String>,
    pub form_error: Option<(String, String)>,
}

/// The kill switch page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KillView {
    pub switches: Vec<SwitchView>,
    pub form_error: Option<(String, String)>,
}

/// The maintenance banner an admin set (`None`: none), for every page (anyone may read it).
#[server(endpoint = "banner", input = GetUrl)]
pub async fn get_banner() -> Result<Option<String>, AppError> {
    ssr::banner().await
}

/// Whether the sign-up form asks for a reason (sign-up by approval; anyone may read it).
#[server(endpoint = "signup_needs_reason", input = GetUrl)]
pub async fn get_signup_needs_reason() -> Result<bool, AppError> {
    ssr::signup_needs_reason().await
}

/// The sign-ups waiting for approval (admins only).
#[server(endpoint = "admin_signups", input = GetUrl)]
pub async fn get_admin_signups() -> Result<SignupsView, AppError> {
    ssr::signups().await
}

/// The overview (admins only).
#[server(endpoint = "admin_overview", input = GetUrl)]
pub async fn get_admin_overview() -> Result<OverviewView, AppError> {
    ssr::overview().await
}

/// A page of users (admins only).
#[server(endpoint = "admin_users", input = GetUrl)]
pub async fn get_admin_users(
    q: String,
    role: String,
    status: String,
    page: i64,
) -> Result<UsersView, AppError> {
    ssr::users(q, role, status, page).await
}

/// One user (admins only).
#[server(endpoint = "admin_user", input = GetUrl)]
pub async fn get_admin_user(id: String) -> Result<UserView, AppError> {
    ssr::user(id).await
}

/// Every plan (admins only).
#[server(endpoint = "admin_plans", input = GetUrl)]
pub async fn get_admin_plans() -> Result<PlansView, AppError> {
    ssr::plans().await
}

/// Every catalogue strategy (admins only).
#[server(endpoint = "admin_catalogue", input = GetUrl)]
pub async fn get_admin_catalogue() -> Result<CatalogueView, AppError> {
    ssr::catalogue().await
}

/// One catalogue strategy with its versions (admins only).
#[server(endpoint = "admin_catalogue_entry", input = GetUrl)]
pub async fn get_admin_catalogue_entry(id: String) -> Result<CatalogueEntryView, AppError> {
    ssr::catalogue_entry(id).await
}

/// Queues, running and failed jobs (admins only).
#[server(endpoint = "admin_jobs", input = GetUrl)]
pub async fn get_admin_jobs() -> Result<JobsView, AppError> {
    ssr::jobs().await
}

/// A page of the audit log (admins only). Filters as typed; `before` from the previous page's next link.
#[server(endpoint = "admin_audit", input = GetUrl)]
pub async fn get_admin_audit(
    user: String,
    actor: String,
    event: String,
    since: String,
    until: String,
    before: String,
) -> Result<AuditPageView, AppError> {
    ssr::audit(user, actor, event, since, until, before).await
}

/// Every subscription with the provider's last reported state (admins only).
#[server(endpoint = "admin_subscriptions", input = GetUrl)]
pub async fn get_admin_subscriptions() -> Result<SubscriptionsView, AppError> {
    ssr::subscriptions().await
}

/// The market data kept updated, its coverage and the newest ETL runs (admins only).
#[server(endpoint = "admin_market", input = GetUrl)]
pub async fn get_admin_market() -> Result<MarketAdminView, AppError> {
    ssr::market().await
}

/// The active kill switches (admins only).
#[server(endpoint = "admin_kill", input = GetUrl)]
pub async fn get_admin_kill() -> Result<KillView, AppError> {
    ssr::kill().await
}

#[cfg(feature = "ssr")]
mod ssr {
    use backend::{
        Ctx,
        admin::{
            audit as admin_audit, jobs as admin_jobs, market as admin_market,
            overview as admin_overview, signups as admin_signups, users,
        },
        auth::{Role, users::format_time},
        backtest::catalogue,
        billing::actions as billing,
        paper::{actions as paper, kill::KillSwitch},
        plans::actions as plans,
    };
    use leptos::prelude::*;

    use super::*;
    use crate::api::{actor, notifications::ssr::take_cookie};

    fn form_error() -> Option<(String, String)> {
        take_cookie(backend::web::FORM_ERROR_COOKIE)
            .and_then(|json| serde_json::from_str::<(String, String)>(&json).ok())
    }

    fn tz_of(actor: &backend::Actor) -> String {
        actor
            .auth_user()
            .map_or_else(|| "UTC".to_owned(), |u| u.time_zone.clone())
    }

    fn switch(s: KillSwitch, tz: &str) -> SwitchView {
        SwitchView {
            id: s.switch_id.to_string(),
            target: s
                .user_id
                .map(|u| u.to_string())
                .or(s.paper_run_id.map(|r| r.to_string()))
                .unwrap_or_default(),
            scope: s.scope,
            mode: s.mode,
            reason: s.reason,
            thrown_at: format_time(s.thrown_at, tz),
        }
    }

    fn row(u: users::UserRow, tz: &str) -> UserRowView {
        UserRowView {
            id: u.user_id.to_string(),
            email: u.email,
            display_name: u.display_name,
            role: u.role.as_str().to_owned(),
            verified: u.email_verified,
            suspended: u.suspended,
            pending: u.pending,
            plan: u.plan,
            created_at: format_time(u.created_at, tz),
        }
    }

    pub async fn banner() -> Result<Option<String>, AppError> {
        let ctx = expect_context::<Ctx>();
        let b = backend::admin::settings::banner(&ctx).await?;
        Ok(Some(b).filter(|b| !b.is_empty()))
    }

    pub async fn signup_needs_reason() -> Result<bool, AppError> {
        let ctx = expect_context::<Ctx>();
        Ok(backend::admin::settings::signup_needs_approval(&ctx).await?)
    }

    pub async fn signups() -> Result<SignupsView, AppError> {
        let actor = actor().await?;
        let ctx = expect_context::<Ctx>();
        let list = admin_signups::list(&actor, &ctx).await?;
        let approvers = admin_signups::approvers(&actor, &ctx).await?;
        let settings = backend::admin::settings::current(&ctx).await?;
        let waiting = admin_signups::pending_count(&ctx.db).await?;
        let tz = tz_of(&actor);
        Ok(SignupsView {
            waiting,
            max_pending: admin_signups::MAX_PENDING,
            signups: list
                .into_iter()
                .map(|p| PendingSignupView {
                    id: p.user_id.to_string(),
                    email: p.email,
                    display_name: p.display_name,
                    domain: p.domain,
                    reason: p.reason,
                    verified: p.email_verified,
                    requested_at: format_time(p.requested_at, &tz),
                })
                .collect(),
            signup_policy: settings.signup_policy,
            approvers,
            form_error: form_error(),
        })
    }

    pub async fn overview() -> Result<OverviewView, AppError> {
        let actor = actor().await?;
        let ctx = expect_context::<Ctx>();
        let o = admin_overview::get(&actor, &ctx).await?;
        let settings = backend::admin::settings::current(&ctx).await?;
        let tz = tz_of(&actor);
        Ok(OverviewView {
            signup_policy: settings.signup_policy,
            banner: settings.banner,
            admin_two_factor_required: settings.admin_two_factor_required,
            signup_allowed_domains: settings.signup_allowed_domains.join("\n"),
            signup_denied_domains: settings.signup_denied_domains.join("\n"),
            new_invite: take_cookie(backend::admin::settings::INVITE_COOKIE),
            form_error: form_error(),
            users: o.users,
            pending_signups: o.pending_signups,
            admins: o.admins,
            suspended: o.suspended,
            signups: o
                .signups
                .into_iter()
                .map(|d| DayView {
                    day: d.day.to_string(),
                    signups: d.signups,
                })
                .collect(),
            backtests_queued: o.backtests_queued,
            backtests_running: o.backtests_running,
            paper_runs_active: o.paper_runs_active,
            paper_runs_paused: o.paper_runs_paused,
            jobs_queued: o.jobs.queued,
            jobs_running: o.jobs.running,
            jobs_failed: o.jobs.failed,
            switches: o.switches.into_iter().map(|s| switch(s, &tz)).collect(),
        })
    }

    pub async fn users(
        q: String,
        role: String,
        status: String,
        page: i64,
    ) -> Result<UsersView, AppError> {
        let actor = actor().await?;
        let ctx = expect_context::<Ctx>();
        let page = page.clamp(1, 10_000);
        let query = users::UserQuery {
            q: Some(q.clone()),
            role: Role::parse(role.trim()),
            status: users::Status::parse(status.trim()),
            limit: Some(PAGE),
            offset: Some((page - 1) * PAGE),
        };
        let found = users::list(&actor, &ctx, &query).await?;
        let tz = tz_of(&actor);
        Ok(UsersView {
            q,
            role: query.role.map(Role::as_str).unwrap_or_default().to_owned(),
            status: query
                .status
                .map(users::Status::as_str)
                .unwrap_or_default()
                .to_owned(),
            page,
            total: found.total,
            users: found.users.into_iter().map(|u| row(u, &tz)).collect(),
            form_error: form_error(),
            bulk_result: take_cookie(backend::web::BULK_RESULT_COOKIE),
        })
    }

    pub async fn user(id: String) -> Result<UserView, AppError> {
        let actor = actor().await?;
        let ctx = expect_context::<Ctx>();
        // Refuse non-admins before saying anything about the id.
        actor.admin().map_err(AppError::from)?;
        let id = uuid::Uuid::parse_str(id.trim()).map_err(|_| AppError::NotFound)?;
        let d = users::get(&actor, &ctx, id).await?;
        let all = plans::list(&actor, &ctx).await?;
        let tz = tz_of(&actor);
        let suspension = d.suspension.as_ref().map(|s| {
            format!(
                "Suspended since {}{}. Reason: {}",
                format_time(s.since, &tz),
                s.until
                    .map(|u| format!(" until {}", format_time(u, &tz)))
                    .unwrap_or_else(|| " until an admin lifts it".into()),
                s.reason.clone().unwrap_or_else(|| "(none given)".into())
            )
        });
        let plan_note = match (&d.plan.reason, d.plan.ends_at) {
            (Some(r), Some(e)) => format!("{r} (until {})", format_time(e, &tz)),
            (Some(r), None) => r.clone(),
            (None, Some(e)) => format!("until {}", format_time(e, &tz)),
            (None, None) => String::new(),
        };
        Ok(UserView {
            time_zone: d.time_zone.clone(),
            suspension,
            plan_name: d.plan.plan.name.clone(),
            plan_note,
            overages: d
                .plan
                .overages
                .iter()
                .map(|o| {
                    (
                        format!(
                            "Over {}: {} of {} ({}); {}",
                            o.label,
                            o.usage,
                            o.allowed,
                            o.plan,
                            if o.enforced_at.is_some() {
                                format!(
                                    "the grace period ended on {}: the newest beyond the limit are {}",
                                    format_time(o.grace_ends_at, &tz),
                                    if o.limit == backend::plans::Limit::ActivePaperRuns {
                                        "reduce-only"
                                    } else {
                                        "read-only"
                                    }
                                )
                            } else {
                                format!(
                                    "grace period until {} (found {})",
                                    format_time(o.grace_ends_at, &tz),
                                    format_time(o.started_at, &tz)
                                )
                            }
                        ),
                        o.restricted.iter().map(|r| r.name.clone()).collect(),
                    )
                })
                .collect(),
            limits: d
                .plan
                .limits
                .iter()
                .map(|l| LimitView {
                    label: l.label.to_owned(),
                    value: l
                        .value
                        .map_or_else(|| "unlimited".to_owned(), |v| v.to_string()),
                    usage: l.usage.map(|u| u.to_string()).unwrap_or_default(),
                })
                .collect(),
            plans: all
                .into_iter()
                .filter(|p| !p.archived)
                .map(|p| PlanChoice {
                    slug: p.slug,
                    name: p.name,
                })
                .collect(),
            sessions: d.sessions,
            tokens: d.tokens,
            active_paper_runs: d.active_paper_runs,
            two_factor: d.two_factor,
            signup_approver: d.signup_approver,
            signup_pending: d.signup_pending,
            audit: d
                .recent_audit
                .into_iter()
                .map(|a| AuditView {
                    event: a.event,
                    at: format_time(a.created_at, &tz),
                    detail: a.detail.to_string().chars().take(300).collect(),
                })
                .collect(),
            user: row(d.user, &tz),
            form_error: form_error(),
        })
    }

    pub async fn plans() -> Result<PlansView, AppError> {
        let actor = actor().await?;
        let ctx = expect_context::<Ctx>();
        let all = plans::list(&actor, &ctx).await?;
        Ok(PlansView {
            plans: all
                .into_iter()
                .map(|p| PlanView {
                    id: p.id.to_string(),
                    slug: p.slug,
                    name: p.name,
                    description: p.description,
                    price_minor: p.price_minor,
                    currency: p.currency,
                    billing_period: p.billing_period,
                    trial_days: p.trial_days,
                    provider_price_id: p.provider_price_id.unwrap_or_default(),
                    is_default: p.is_default,
                    archived: p.archived,
                    users: p.users,
                    limits: plan_limit_fields(Some(&p.limits)),
                })
                .collect(),
            new_limits: plan_limit_fields(None),
            form_error: form_error(),
        })
    }

    /// Every limit with its words, bounds and `values`' value (`None`: the new-plan form).
    fn plan_limit_fields(values: Option<&backend::plans::LimitValues>) -> Vec<PlanLimitField> {
        backend::plans::Limit::ALL
            .into_iter()
            .map(|l| {
                let (min, max) = l.bounds();
                PlanLimitField {
                    key: l.key().to_owned(),
                    label: l.label().to_owned(),
                    min,
                    max,
                    value: values.and_then(|v| v.get(&l).copied()),
                }
            })
            .collect()
    }

    pub async fn jobs() -> Result<JobsView, AppError> {
        let actor = actor().await?;
        let ctx = expect_context::<Ctx>();
        let o = admin_jobs::overview(&actor, &ctx, 100).await?;
        let tz = tz_of(&actor);
        Ok(JobsView {
            queues: o
                .queues
                .into_iter()
                .map(|q| QueueView {
                    queue: q.queue,
                    queued: q.queued,
                    scheduled: q.scheduled,
                    running: q.running,
                    failed: q.failed,
                })
                .collect(),
            running: o
                .running
                .into_iter()
                .map(|r| JobView {
                    id: r.job_id.to_string(),
                    queue: r.queue,
                    kind: r.kind,
                    attempts: r.attempts,
                    worker: r.worker.unwrap_or_default(),
                    at: r
                        .lease_until
                        .map(|t| format_time(t, &tz))
                        .unwrap_or_default(),
                    error: String::new(),
                })
                .collect(),
            failed: o.failed.into_iter().map(|j| job(j, &tz)).collect(),
            waiting: o.waiting.into_iter().map(|j| job(j, &tz)).collect(),
            form_error: form_error(),
        })
    }

    /// A failed job (`at`: when it finished) or a waiting one (`at`: when it is due).
    fn job(j: backend::jobs::store::JobRow, tz: &str) -> JobView {
        let at = if j.status == "queued" {
            Some(j.run_at)
        } else {
            j.finished_at
        };
        JobView {
            id: j.job_id.to_string(),
            queue: j.queue,
            kind: j.kind,
            attempts: j.attempts,
            worker: j.worker.unwrap_or_default(),
            at: at.map(|t| format_time(t, tz)).unwrap_or_default(),
            error: j.last_error.unwrap_or_default().chars().take(500).collect(),
        }
    }

    pub async fn audit(
        user: String,
        actor_q: String,
        event: String,
        since: String,
        until: String,
        before: String,
    ) -> Result<AuditPageView, AppError> {
        let actor = actor().await?;
        let ctx = expect_context::<Ctx>();
        // Refuse non-admins before looking anything up.
        actor.admin().map_err(AppError::from)?;
        let tz = tz_of(&actor);
        let input = admin_audit::FilterInput {
            user: user.trim(),
            actor: actor_q.trim(),
            event: event.trim(),
            since: since.trim(),
            until: until.trim(),
        };
        let query = crate::pages::admin::url_query(&[
            ("user", user.trim()),
            ("actor", actor_q.trim()),
            ("event", event.trim()),
            ("since", since.trim()),
            ("until", until.trim()),
        ]);
        let mut view = AuditPageView {
            user: user.clone(),
            actor: actor_q.clone(),
            event: event.clone(),
            since: since.clone(),
            until: until.clone(),
            events: vec![],
            next: None,
            query: query.clone(),
            filter_error: None,
            form_error: form_error(),
        };
        let filter = match admin_audit::parse_filter(&ctx, &input).await {
            Ok(f) => f,
            Err(backend::Error::Invalid { field, message }) => {
                view.filter_error = Some((field, message));
                return Ok(view);
            }
            Err(e) => return Err(e.into()),
        };
        let before = before.trim().parse::<i64>().ok().filter(|b| *b > 0);
        let page = admin_audit::page(&actor, &ctx, &filter, before, 100).await?;
        view.next = page.next_before.map(|b| {
            if query.is_empty() {
                format!("before={b}")
            } else {
                format!("{query}&before={b}")
            }
        });
        let id = |u: Option<uuid::Uuid>| u.map(|u| u.to_string()).unwrap_or_default();
        view.events = page
            .events
            .into_iter()
            .map(|e| AuditEventView {
                id: e.audit_event_id,
                at: format_time(e.created_at, &tz),
                user_id: id(e.user_id),
                user: e.user_email.or(e.subject_email).unwrap_or_default(),
                actor_id: id(e.actor_id),
                actor: e.actor_email.unwrap_or_default(),
                event: e.event,
                ip: e.ip,
                detail: e.detail.to_string().chars().take(300).collect(),
            })
            .collect();
        Ok(view)
    }

    pub async fn subscriptions() -> Result<SubscriptionsView, AppError> {
        let actor = actor().await?;
        let ctx = expect_context::<Ctx>();
        let rows = billing::admin_list(&actor, &ctx).await?;
        let rec = backend::billing::reconcile::overview(&actor, &ctx, 1).await?;
        let tz = tz_of(&actor);
        let time = |t: Option<chrono::DateTime<chrono::Utc>>| {
            t.map(|t| format_time(t, &tz)).unwrap_or_default()
        };
        let mut counts: Vec<(String, usize)> = vec![];
        let subscriptions: Vec<SubscriptionView> = rows
            .into_iter()
            .map(|r| {
                let s = r.state;
                let status = s
                    .status
                    .clone()
                    .unwrap_or_else(|| "checkout started".to_owned());
                match counts.iter_mut().find(|(k, _)| *k == status) {
                    Some((_, n)) => *n += 1,
                    None => counts.push((status.clone(), 1)),
                }
                SubscriptionView {
                    user_id: s.user_id.to_string(),
                    email: r.email,
                    plan: s.plan_name.or(s.plan_slug).unwrap_or_default(),
                    status,
                    period_end: time(s.current_period_end),
                    cancel_at_period_end: s.cancel_at_period_end,
                    trial_end: time(s.trial_end),
                    customer_id: s.customer_id,
                    observed_at: time(s.observed_at),
                }
            })
            .collect();
        counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let reconcile_schedule = match rec.interval_secs {
            0 => "only when asked".to_owned(),
            s if s % 3_600 == 0 => format!("every {} h", s / 3_600),
            s => format!("every {} min", s / 60),
        };
        Ok(SubscriptionsView {
            billing_enabled: ctx.settings.billing.enabled(),
            counts,
            subscriptions,
            reconcile: rec.runs.into_iter().next().map(|r| ReconcileRunView {
                started_at: format_time(r.started_at, &tz),
                finished_at: time(r.finished_at),
                outcome: r.outcome,
                trigger: r.trigger,
                events_seen: r.events_seen,
                events_processed: r.events_processed,
                events_duplicate: r.events_duplicate,
                subscriptions_synced: r.subscriptions_synced,
                subscriptions_failed: r.subscriptions_failed,
                events_resume: time(r.events_resume),
                errors: r.errors,
            }),
            reconcile_pending: rec.pending,
            reconcile_schedule,
            form_error: form_error(),
        })
    }

    /// "45 s", "3 min", "2 h", "5 d".
    fn ago(secs: i64) -> String {
        match secs {
            s if s < 120 => format!("{s} s"),
            s if s < 7200 => format!("{} min", s / 60),
            s if s < 172_800 => format!("{} h", s / 3600),
            s => format!("{} d", s / 86_400),
        }
    }

    pub async fn market() -> Result<MarketAdminView, AppError> {
        let actor = actor().await?;
        let ctx = expect_context::<Ctx>();
        let o = admin_market::overview(&actor, &ctx).await?;
        let tz = tz_of(&actor);
        let time = |t: Option<chrono::DateTime<chrono::Utc>>| {
            t.map(|t| format_time(t, &tz)).unwrap_or_default()
        };
        let last_update = match &o.last_update {
            None => "never run".to_owned(),
            Some(j) => match j.status.as_str() {
                "queued" => format!("queued for {}", format_time(j.run_at, &tz)),
                "running" => "running now".to_owned(),
                "done" => format!("done {}", time(j.finished_at)),
                other => format!(
                    "{other} {}: {}",
                    time(j.finished_at),
                    j.last_error
                        .clone()
                        .unwrap_or_default()
                        .chars()
                        .take(300)
                        .collect::<String>()
                ),
            },
        };
        Ok(MarketAdminView {
            exchange: o.exchange,
            source: o.source,
            update_every: if o.update_every_secs == 0 {
                "off".to_owned()
            } else {
                format!(
                    "every {}",
                    ago(i64::try_from(o.update_every_secs).unwrap_or(i64::MAX))
                )
            },
            last_update,
            chunks_pending: o.chunks_pending,
            series: o
                .series
                .into_iter()
                .map(|s| MarketSeriesView {
                    exchange: s.exchange,
                    pair: s.pair,
                    timeframe: s.timeframe,
                    tracked: s.tracked,
                    first: time(s.first),
                    last: time(s.last),
                    candles: s.candles,
                    lag: s.lag_secs.map(ago).unwrap_or_default(),
                    last_update: time(s.last_update),
                    fetchable: s.fetchable,
                })
                .collect(),
            runs: o
                .runs
                .into_iter()
                .map(|r| EtlRunView {
                    symbol: r.symbol,
                    timeframe: r.timeframe,
                    mode: r.mode,
                    range: format!(
                        "{} → {}",
                        format_time(r.range_from, &tz),
                        format_time(r.range_to, &tz)
                    ),
                    chunks: format!("{}/{}", r.chunks_done, r.chunks_total),
                    candles: r.candles_fetched,
                    status: r.status,
                    error: r.error.unwrap_or_default().chars().take(300).collect(),
                    created_at: format_time(r.created_at, &tz),
                })
                .collect(),
            timeframes: backend::market::Timeframe::ALL
                .iter()
                .map(|t| t.as_str().to_owned())
                .collect(),
            form_error: form_error(),
        })
    }

    pub async fn kill() -> Result<KillView, AppError> {
        let actor = actor().await?;
        let ctx = expect_context::<Ctx>();
        let all = paper::switches(&actor, &ctx, true).await?;
        let tz = tz_of(&actor);
        Ok(KillView {
            switches: all.into_iter().map(|s| switch(s, &tz)).collect(),
            form_error: form_error(),
        })
    }

    fn catalogue_row(e: catalogue::Entry, tz: &str) -> CatalogueRowView {
        CatalogueRowView {
            id: e.id.to_string(),
            slug: e.slug,
            name: e.name,
            description: e.description,
            published: e.published,
            featured: e.featured,
            builtin: e.builtin,
            version: e.version,
            params: e.params.len(),
            updated_at: format_time(e.updated_at, tz),
        }
    }

    pub async fn catalogue() -> Result<CatalogueView, AppError> {
        let actor = actor().await?;
        let ctx = expect_context::<Ctx>();
        let all = catalogue::list(&actor, &ctx).await?;
        let tz = tz_of(&actor);
        Ok(CatalogueView {
            entries: all.into_iter().map(|e| catalogue_row(e, &tz)).collect(),
            form_error: form_error(),
        })
    }

    pub async fn catalogue_entry(id: String) -> Result<CatalogueEntryView, AppError> {
        let actor = actor().await?;
        let ctx = expect_context::<Ctx>();
        // Refuse non-admins before saying anything about the id.
        actor.admin().map_err(AppError::from)?;
        let id = uuid::Uuid::parse_str(id.trim()).map_err(|_| AppError::NotFound)?;
        let d = catalogue::get(&actor, &ctx, id).await?;
        let tz = tz_of(&actor);
        let source = d.entry.source.clone();
        Ok(CatalogueEntryView {
            row: catalogue_row(d.entry, &tz),
            source,
            versions: d
                .versions
                .into_iter()
                .map(|v| CatalogueVersionView {
                    version: v.version,
                    note: v.note,
                    created_by: v.created_by.unwrap_or_default(),
                    created_at: format_time(v.created_at, &tz),
                })
                .collect(),
            strategies: d.strategies,
            form_error: form_error(),
        })
    }
}
