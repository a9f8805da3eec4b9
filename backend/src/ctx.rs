//! The shared context every handler, server function and job receives.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use sqlx::PgPool;

use crate::{auth::AuthKeys, clock::Clock, jobs::JobQueue, mail::Mailer, settings::Settings};

/// Handles to everything a request or job may need. Cheap to clone.
#[derive(Clone)]
pub struct Ctx {
    pub settings: Arc<Settings>,
    pub db: PgPool,
    pub redis: deadpool_redis::Pool,
    /// Shared (`Arc`), as are the other handles: a context is cloned for every page rendered and every server
    /// function called, and a clone should cost reference counts, not copies (issue 16).
    pub jobs: Arc<JobQueue>,
    pub mailer: Arc<Mailer>,
    pub keys: Arc<AuthKeys>,
    /// The clock of everything time-based in notifications: the system clock, or a manual one in tests
    /// ([`Ctx::with_clock`]).
    pub clock: Clock,
    /// Where webhooks may connect (SSRF guard; test host names are re-pointable in tests only).
    pub net: Arc<crate::notify::webhook::NetGuard>,
    /// The maintenance banner as last read, shown on every page ([`crate::admin::settings::banner`]).
    pub banner: Arc<TtlCell<String>>,
}

/// A value read from the database and kept for a short while, so that what every page shows does not cost a
/// query per page. Whoever changes the value in this process clears it ([`TtlCell::clear`]); other processes
/// see the change within the time to live (or at once, where a change signal clears it).
#[derive(Debug)]
pub struct TtlCell<T> {
    ttl: Duration,
    /// How many times it was cleared, and the value with when it was read.
    value: std::sync::Mutex<(u64, Option<(Instant, T)>)>,
}

impl<T: Clone> TtlCell<T> {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            value: std::sync::Mutex::new((0, None)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (u64, Option<(Instant, T)>)> {
        self.value
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The value if it is younger than the time to live.
    pub fn get(&self) -> Option<T> {
        self.lock()
            .1
            .as_ref()
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, x)| x.clone())
    }

    /// Taken before reading the value from the database, for [`TtlCell::set`].
    pub fn stamp(&self) -> u64 {
        self.lock().0
    }

    /// Keeps `x`, read after [`TtlCell::stamp`] gave `stamp`, unless the cell was cleared since (a read that
    /// began before a change must not outlive the clearing that announced it).
    pub fn set(&self, x: T, stamp: u64) {
        let mut v = self.lock();
        if v.0 == stamp {
            v.1 = Some((Instant::now(), x));
        }
    }

    pub fn clear(&self) {
        let mut v = self.lock();
        v.0 += 1;
        v.1 = None;
    }
}

/// One dependency's readiness.
#[derive(Debug, Clone)]
pub struct Check {
    pub name: &'static str,
    pub error: Option<String>,
    pub latency_ms: u64,
}

/// All dependencies' readiness.
#[derive(Debug, Clone)]
pub struct Readiness {
    pub checks: Vec<Check>,
}

impl Readiness {
    pub fn is_ready(&self) -> bool {
        self.checks.iter().all(|c| c.error.is_none())
    }
}

/// Readiness probes answer within this time even when a dependency hangs.
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(1500);

/// How long a web process shows the maintenance banner it read before reading it again (a change made in
/// another process shows within this).
pub const BANNER_TTL: Duration = Duration::from_secs(2);

impl Ctx {
    /// Builds the context from validated settings. Connections are opened lazily.
    ///
    /// # Errors
    /// When a connection URL cannot be parsed.
    pub fn new(settings: Settings) -> anyhow::Result<Self> {
        use anyhow::Context as _;
        let db = crate::db::pool(&settings).context("DATABASE_URL")?;
        let redis = crate::redis::pool(&settings).context("REDIS_URL")?;
        let mailer = Mailer::new(&settings).context("SMTP_URL")?;
        let jobs = JobQueue::new(db.clone(), &settings);
        let keys = Arc::new(AuthKeys::from_settings(&settings));
        let net = Arc::new(crate::notify::webhook::NetGuard::from_settings(&settings));
        // One limit per process; the first context built (there is one per process outside tests) sets it.
        crate::auth::password::configure(
            settings.password_hash_concurrency,
            settings.password_hash_wait,
        );
        Ok(Self {
            keys,
            settings: Arc::new(settings),
            db,
            redis,
            jobs: Arc::new(jobs),
            mailer: Arc::new(mailer),
            clock: Clock::system(),
            net,
            banner: Arc::new(TtlCell::new(BANNER_TTL)),
        })
    }

    /// The same context with another clock (tests: a manual clock they set and advance).
    #[must_use]
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Pings Postgres and Redis concurrently, each bounded by [`PROBE_TIMEOUT`].
    pub async fn readiness(&self) -> Readiness {
        async fn timed<F: std::future::Future<Output = Result<(), String>>>(
            name: &'static str,
            f: F,
        ) -> Check {
            let start = Instant::now();
            let error = f.await.err();
            let latency_ms = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
            Check {
                name,
                error,
                latency_ms,
            }
        }
        let (pg, rd) = tokio::join!(
            timed("postgres", crate::db::ping(&self.db, PROBE_TIMEOUT)),
            timed("redis", crate::redis::ping(&self.redis, PROBE_TIMEOUT)),
        );
        Readiness {
            checks: vec![pg, rd],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_that_began_before_a_clear_is_not_kept() {
        let cell = TtlCell::new(Duration::from_secs(60));
        let stamp = cell.stamp();
        cell.set("old", stamp);
        assert_eq!(cell.get(), Some("old"));
        // A read starts, the value changes and the cell is cleared, the read ends with the old value.
        let stamp = cell.stamp();
        cell.clear();
        cell.set("old", stamp);
        assert_eq!(cell.get(), None);
        let stamp = cell.stamp();
        cell.set("new", stamp);
        assert_eq!(cell.get(), Some("new"));
    }
}
