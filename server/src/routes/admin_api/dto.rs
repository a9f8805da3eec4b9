//! The request and response types of the admin users and jobs API. Inputs are strict
//! (`deny_unknown_fields`); a value out of its bounds is 400 naming the field.

use backend::{
    Error,
    admin::{jobs, users},
    auth::Role,
    jobs::store::JobRow,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::routes::{
    api::{AuditEvent, AuditEvents},
    contract,
    plans_api::dto::UserPlanOut,
};

/// The filters and page of `GET /api/v1/admin/users`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserListQuery {
    /// Part of the email address or display name (case-insensitive).
    #[serde(default, deserialize_with = "contract::de_plain_text::<_, 254>")]
    #[param(max_length = 254, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")]
    q: Option<String>,
    /// `admin`, `trader` or `viewer`.
    #[serde(default)]
    #[param(pattern = "^(admin|trader|viewer)$")]
    role: Option<String>,
    /// `active`, `suspended`, `unverified` (email address not confirmed) or `pending` (waiting for sign-up
    /// approval).
    #[serde(default)]
    #[param(pattern = "^(active|suspended|unverified|pending)$")]
    status: Option<String>,
    /// Users per page (1–200, default 50).
    #[serde(default, deserialize_with = "contract::de_range::<_, 1, 200>")]
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
    /// Users to skip (0–1000000).
    #[serde(default, deserialize_with = "contract::de_range::<_, 0, 1_000_000>")]
    #[param(minimum = 0, maximum = 1_000_000)]
    offset: Option<i64>,
}

impl UserListQuery {
    /// The action's query.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming `role` or `status`.
    pub fn into_query(self) -> Result<users::UserQuery, Error> {
        let role =
            match self.role.as_deref() {
                None => None,
                Some(r) => Some(Role::parse(r).ok_or_else(|| {
                    Error::invalid("role", "must be one of admin, trader, viewer")
                })?),
            };
        let status = match self.status.as_deref() {
            None => None,
            Some(s) => Some(users::Status::parse(s).ok_or_else(|| {
                Error::invalid(
                    "status",
                    "must be one of active, suspended, unverified, pending",
                )
            })?),
        };
        Ok(users::UserQuery {
            q: self.q,
            role,
            status,
            limit: self.limit,
            offset: self.offset,
        })
    }
}

/// A user in the list.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserOut {
    pub user_id: Uuid,
    pub email: String,
    pub display_name: String,
    /// `admin`, `trader` or `viewer`.
    #[schema(example = "trader")]
    pub role: String,
    pub email_verified: bool,
    pub suspended: bool,
    /// Waiting for sign-up approval (cannot sign in; holds no seat).
    pub signup_pending: bool,
    /// The slug of the user's plan.
    #[schema(example = "free")]
    pub plan: String,
    pub created_at: DateTime<Utc>,
}

impl From<users::UserRow> for UserOut {
    fn from(u: users::UserRow) -> Self {
        Self {
            user_id: u.user_id,
            email: u.email,
            display_name: u.display_name,
            role: u.role.as_str().to_owned(),
            email_verified: u.email_verified,
            suspended: u.suspended,
            signup_pending: u.pending,
            plan: u.plan,
            created_at: u.created_at,
        }
    }
}

/// One page of users.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserPageOut {
    pub users: Vec<UserOut>,
    /// Users matching the filters, over all pages.
    pub total: i64,
    pub limit: i64,
    pub offset: i64,
}

impl From<users::UserPage> for UserPageOut {
    fn from(p: users::UserPage) -> Self {
        Self {
            users: p.users.into_iter().map(UserOut::from).collect(),
            total: p.total,
            limit: p.limit,
            offset: p.offset,
        }
    }
}

/// A suspension.
#[derive(Debug, Serialize, ToSchema)]
pub struct SuspensionOut {
    pub since: DateTime<Utc>,
    /// Shown to the user at sign-in (absent for an account disabled without a reason).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When it ends (absent: until an admin lifts it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<DateTime<Utc>>,
    /// The admin who suspended (absent: the operator, or an account since deleted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by: Option<Uuid>,
}

/// A user with what an admin needs to decide.
#[derive(Serialize, ToSchema)]
pub struct UserDetailOut {
    pub user: UserOut,
    pub time_zone: String,
    /// Present while the user is suspended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suspension: Option<SuspensionOut>,
    /// Plan, effective limits and usage.
    pub plan: UserPlanOut,
    /// Live browser sessions.
    pub sessions: i64,
    /// Live API tokens.
    pub tokens: i64,
    pub active_paper_runs: i64,
    /// An administrator notified of new sign-up requests (`PUT …/signup-approver`).
    pub signup_approver: bool,
    /// The account waits for sign-up approval (`/api/v1/admin/signups`).
    pub signup_pending: bool,
    /// The newest audit entries about the user.
    pub recent_audit: Vec<AuditEvent>,
}

impl From<users::UserDetail> for UserDetailOut {
    fn from(d: users::UserDetail) -> Self {
        Self {
            plan: UserPlanOut::from(&d.plan),
            user: UserOut::from(d.user),
            time_zone: d.time_zone,
            suspension: d.suspension.map(|s| SuspensionOut {
                since: s.since,
                reason: s.reason,
                until: s.until,
                by: s.by,
            }),
            sessions: d.sessions,
            tokens: d.tokens,
            active_paper_runs: d.active_paper_runs,
            signup_approver: d.signup_approver,
            signup_pending: d.signup_pending,
            recent_audit: AuditEvents::from(d.recent_audit).events,
        }
    }
}

/// `POST /api/v1/admin/users/{id}/suspend`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"reason": "Chargeback under review", "until": "2030-01-31T00:00:00Z"}))]
pub struct SuspendIn {
    /// Shown to the user when they try to sign in; at least one visible character, one line.
    #[schema(
        min_length = 1,
        max_length = 500,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub reason: String,
    /// When the suspension ends by itself (in the future, within 10 years); absent: until an admin lifts it.
    #[serde(default)]
    pub until: Option<DateTime<Utc>>,
}

/// The action of `POST /api/v1/admin/users/bulk`.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BulkActionName {
    Suspend,
    Unsuspend,
    SignOut,
}

/// `POST /api/v1/admin/users/bulk`: one action for up to 100 users.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"action": "suspend", "user_ids": ["5f0c6f2e-8a55-4d43-9a51-2f1f0c9b7e11"], "reason": "Chargeback under review"}))]
pub struct BulkIn {
    pub action: BulkActionName,
    /// 1 to 100 user ids, each once.
    #[schema(min_items = 1, max_items = 100)]
    pub user_ids: Vec<Uuid>,
    /// For `suspend` (required): shown to the users when they try to sign in. Ignored by the other actions.
    #[serde(default)]
    #[schema(max_length = 500)]
    pub reason: Option<String>,
    /// For `suspend`: when the suspensions end by themselves (in the future, within 10 years). Ignored by the
    /// other actions.
    #[serde(default)]
    pub until: Option<DateTime<Utc>>,
}

impl BulkIn {
    pub fn action(&self) -> users::BulkAction {
        match self.action {
            BulkActionName::Suspend => users::BulkAction::Suspend {
                reason: self.reason.clone().unwrap_or_default(),
                until: self.until,
            },
            BulkActionName::Unsuspend => users::BulkAction::Unsuspend,
            BulkActionName::SignOut => users::BulkAction::SignOut,
        }
    }
}

/// What the bulk action did for one user.
#[derive(Debug, Serialize, ToSchema)]
pub struct BulkResultOut {
    pub user_id: Uuid,
    /// `done` or `refused`.
    #[schema(pattern = "^(done|refused)$")]
    pub outcome: String,
    /// For a refusal: the error code the single action answers with (`conflict`, `not_found`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// For a refusal: why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The answer of `POST /api/v1/admin/users/bulk`: one result per id, in the request's order.
#[derive(Debug, Serialize, ToSchema)]
pub struct BulkOut {
    pub action: BulkActionName,
    pub done: usize,
    pub refused: usize,
    /// A sentence saying what happened, as the console shows it.
    pub summary: String,
    pub results: Vec<BulkResultOut>,
}

/// What a suspension (or a forced sign-out) ended.
#[derive(Debug, Serialize, ToSchema)]
pub struct SuspendedOut {
    pub sessions_ended: u64,
    pub tokens_revoked: u64,
    pub paper_runs_paused: u64,
}

impl From<users::Suspended> for SuspendedOut {
    fn from(s: users::Suspended) -> Self {
        Self {
            sessions_ended: s.sessions_ended,
            tokens_revoked: s.tokens_revoked,
            paper_runs_paused: s.paper_runs_paused,
        }
    }
}

/// `PATCH /api/v1/admin/users/{id}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleChange {
    /// `admin`, `trader` or `viewer`.
    #[schema(pattern = "^(admin|trader|viewer)$", example = "viewer")]
    pub role: String,
}

impl RoleChange {
    /// The role asked for.
    ///
    /// # Errors
    /// [`Error::Invalid`] on `role`.
    pub fn role(&self) -> Result<Role, Error> {
        Role::parse(&self.role)
            .ok_or_else(|| Error::invalid("role", "must be one of admin, trader, viewer"))
    }
}

/// One queue's depth.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueueOut {
    pub queue: String,
    pub queued: i64,
    /// Waiting for a later time (retries, scheduled work).
    pub scheduled: i64,
    pub running: i64,
    /// Gave up in the last 7 days.
    pub failed: i64,
}

/// A job.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobOut {
    pub job_id: Uuid,
    pub queue: String,
    pub kind: String,
    pub status: String,
    pub attempts: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worker: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lease_until: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    /// When the job is (or was) due.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_at: Option<DateTime<Utc>>,
}

/// The jobs view.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobsOut {
    pub queues: Vec<QueueOut>,
    pub running: Vec<JobOut>,
    pub failed: Vec<JobOut>,
    /// Waiting to run, soonest first (these can be cancelled).
    pub waiting: Vec<JobOut>,
}

impl From<JobRow> for JobOut {
    fn from(j: JobRow) -> Self {
        Self {
            job_id: j.job_id,
            queue: j.queue,
            kind: j.kind,
            status: j.status,
            attempts: j.attempts,
            worker: j.worker,
            last_error: j.last_error,
            started_at: j.started_at,
            lease_until: None,
            finished_at: j.finished_at,
            run_at: Some(j.run_at),
        }
    }
}

impl From<jobs::Overview> for JobsOut {
    fn from(o: jobs::Overview) -> Self {
        Self {
            queues: o
                .queues
                .into_iter()
                .map(|q| QueueOut {
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
                .map(|r| JobOut {
                    job_id: r.job_id,
                    queue: r.queue,
                    kind: r.kind,
                    status: "running".into(),
                    attempts: r.attempts,
                    worker: r.worker,
                    last_error: None,
                    started_at: r.started_at,
                    lease_until: r.lease_until,
                    finished_at: None,
                    run_at: None,
                })
                .collect(),
            failed: o.failed.into_iter().map(JobOut::from).collect(),
            waiting: o.waiting.into_iter().map(JobOut::from).collect(),
        }
    }
}
