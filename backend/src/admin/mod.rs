//! The admin console's actions (docs/admin.md): users (list, detail, suspend and unsuspend, change role, force
//! sign-out), the overview's figures, the audit log, the jobs view, the market data (ETL) page, the platform settings (sign-up policy, banner) and
//! the pending sign-ups (approve, reject, approvers). Every action asks the [`crate::Actor`] for
//! [`crate::Actor::admin`] (reads) or [`crate::Actor::admin_writer`] (changes) and writes its audit entry in the
//! same transaction as its effect; the admin pages, the admin REST API and the CLI call these and nothing else.
//!
//! Plans, kill switches and notification tools have their own actions (`crate::plans::actions`,
//! `crate::paper::actions`, `crate::notify::admin`), which the console calls as they are.

pub mod accounts;
pub mod audit;
pub mod jobs;
pub mod market;
pub mod overview;
pub mod settings;
pub mod signups;
pub mod users;

/// Audit event names of the admin actions (stable: operators filter on them).
pub mod event {
    pub const USER_SUSPENDED: &str = "user_suspended";
    pub const USER_UNSUSPENDED: &str = "user_unsuspended";
    pub const SESSIONS_REVOKED: &str = "sessions_revoked_by_admin";
    pub const JOB_RETRIED: &str = "job_retried";
    pub const SETTINGS_CHANGED: &str = "platform_settings_changed";
    pub const INVITE_CREATED: &str = "invite_created";
    pub const AUDIT_EXPORTED: &str = "audit_exported";
    pub const JOB_CANCELLED: &str = "job_cancelled";
    pub const SIGNUP_APPROVED: &str = "signup_approved";
    pub const SIGNUP_REJECTED: &str = "signup_rejected";
    pub const SIGNUP_APPROVER_CHANGED: &str = "signup_approver_changed";
}
