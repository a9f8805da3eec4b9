//! The one clock for everything time-based in notifications (quiet hours, coalescing windows, the hourly cap,
//! digests): the system clock in production, a manual clock in tests, which set and advance it to drive
//! schedules deterministically (docs/design/notifications.md §0).
//!
//! Values read from this clock are *clock time*; the columns that store them say so. Job scheduling
//! (`job.run_at`, leases) stays in database time, so the two never mix.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};

/// The current time, from the system or from a manual clock. Cheap to clone; clones of a manual clock share
/// its time.
#[derive(Clone, Debug, Default)]
pub struct Clock(Source);

#[derive(Clone, Debug, Default)]
enum Source {
    #[default]
    System,
    Manual(Arc<Mutex<DateTime<Utc>>>),
}

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Self(Source::System)
    }

    /// A clock that stands still at `at` until [`Clock::set`] or [`Clock::advance`] moves it.
    pub fn manual(at: DateTime<Utc>) -> Self {
        Self(Source::Manual(Arc::new(Mutex::new(at))))
    }

    /// Whether this is a manual (test) clock.
    pub fn is_manual(&self) -> bool {
        matches!(self.0, Source::Manual(_))
    }

    /// The current time.
    pub fn now(&self) -> DateTime<Utc> {
        match &self.0 {
            Source::System => Utc::now(),
            Source::Manual(t) => *t.lock().unwrap_or_else(std::sync::PoisonError::into_inner),
        }
    }

    /// Sets a manual clock to `at`.
    ///
    /// # Panics
    /// On the system clock: production time cannot be set.
    pub fn set(&self, at: DateTime<Utc>) {
        match &self.0 {
            Source::System => panic!("the system clock cannot be set"),
            Source::Manual(t) => *t.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = at,
        }
    }

    /// Moves a manual clock forward by `by`; returns the new time.
    ///
    /// # Panics
    /// On the system clock.
    pub fn advance(&self, by: Duration) -> DateTime<Utc> {
        let now = self.now() + by;
        self.set(now);
        now
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_stands_still_until_moved_and_its_clones_share_it() {
        let t0 = DateTime::parse_from_rfc3339("2027-03-12T00:00:00Z")
            .unwrap()
            .to_utc();
        let c = Clock::manual(t0);
        let c2 = c.clone();
        assert_eq!(c.now(), t0);
        assert_eq!(
            c2.advance(Duration::minutes(15)),
            t0 + Duration::minutes(15)
        );
        assert_eq!(c.now(), t0 + Duration::minutes(15));
        c.set(t0);
        assert_eq!(c2.now(), t0);
        assert!(c.is_manual());
    }

    #[test]
    fn the_system_clock_follows_real_time() {
        let c = Clock::system();
        let before = Utc::now();
        let now = c.now();
        assert!(now >= before && now <= Utc::now());
        assert!(!c.is_manual());
    }
}
