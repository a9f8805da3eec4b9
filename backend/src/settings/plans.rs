//! Plans: what happens when a user is over a limit after their plan changed (docs/plans.md).

use super::reader::Reader;

/// The longest grace period `PLAN_GRACE_DAYS` may set.
pub const MAX_GRACE_DAYS: i64 = 90;

/// `PLAN_*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanSettings {
    /// Days a user over a limit after a plan change keeps full use of everything before the excess becomes
    /// read-only (`PLAN_GRACE_DAYS`, 0–90, default 7; 0 = at once).
    pub grace_days: i64,
}

impl PlanSettings {
    /// The grace period.
    pub fn grace(&self) -> chrono::Duration {
        chrono::Duration::days(self.grace_days)
    }
}

pub(super) fn parse(r: &mut Reader<'_>) -> PlanSettings {
    PlanSettings {
        grace_days: r.bounded("PLAN_GRACE_DAYS", 7i64, 0, MAX_GRACE_DAYS),
    }
}
