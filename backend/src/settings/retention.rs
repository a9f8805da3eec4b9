//! How long housekeeping keeps ended sessions, audit events, failed sign-ins and sent mail.

use std::time::Duration;

use super::reader::Reader;

pub(super) struct Retention {
    pub session_retention: Duration,
    pub audit_retention: Duration,
    pub failed_signin_retention: Duration,
    pub mail_retention: Duration,
}

/// `SESSION_RETENTION_DAYS`, `AUDIT_RETENTION_DAYS`, `FAILED_SIGNIN_RETENTION_DAYS`, `MAIL_RETENTION_DAYS`.
pub(super) fn parse(r: &mut Reader<'_>) -> Retention {
    let days = |r: &mut Reader<'_>, var: &str, default: u64| {
        Duration::from_secs(r.bounded(var, default, 1, 36_500) * 86_400)
    };
    let session_retention = days(r, "SESSION_RETENTION_DAYS", 30);
    let audit_retention = days(r, "AUDIT_RETENTION_DAYS", 365);
    let failed_signin_retention = days(r, "FAILED_SIGNIN_RETENTION_DAYS", 30);
    let mail_retention = days(r, "MAIL_RETENTION_DAYS", 30);
    Retention {
        session_retention,
        audit_retention,
        failed_signin_retention,
        mail_retention,
    }
}
