//! Background jobs: worker concurrency, heartbeats, leases and the retry schedule of each class of jobs.

use std::time::Duration;

use super::{reader::Reader, retention};

/// Background-job tuning. Heartbeat and orphan timeouts are set explicitly (see docs/architecture.md, "Jobs": the
/// apalis defaults disagree with their own documentation).
#[derive(Debug, Clone)]
pub struct JobSettings {
    /// Jobs handled concurrently by one worker process.
    pub concurrency: usize,
    /// How often a worker tells Redis it is alive.
    pub heartbeat: Duration,
    /// Missed heartbeats after which another worker takes over a dead worker's jobs.
    pub missed_heartbeats: u32,
    /// How long a claimed job's Postgres lease lasts without renewal; a crashed worker's job is re-run after it.
    pub lease: Duration,
    /// How often workers re-enqueue jobs that Postgres says are pending but Redis lost.
    pub reconcile_interval: Duration,
    /// Attempts before a job is marked failed (and can be re-driven by an operator).
    pub max_attempts: i32,
    /// How often the housekeeping job is scheduled (`0` disables the schedule).
    pub housekeeping_interval: Duration,
    /// Finished job rows older than this are pruned by housekeeping.
    pub job_retention: Duration,
    /// Retry schedules per job class (`JOB_RETRY_DEFAULT`, `_MAIL`, `_MARKET`, `_BACKTEST`).
    pub retry: RetryPolicies,
    /// Expired or revoked sessions (and used or expired one-time tokens) are pruned this long after they end.
    pub session_retention: Duration,
    /// Audit events older than this are pruned (failed sign-ins use `failed_signin_retention`).
    pub audit_retention: Duration,
    /// Failed sign-in audit rows older than this are pruned.
    pub failed_signin_retention: Duration,
    /// Sent or failed outbox emails are pruned this long after their last change.
    pub mail_retention: Duration,
}

/// How one class of jobs is retried: at most `max_attempts` attempts; after failed attempt `n` the job is due
/// again after `min(max_delay, base × 2^(n-1))`, shortened by up to 20 % at random (jitter, so jobs that
/// failed together do not retry together). The schedule lives in Postgres (`job.run_at`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    pub max_attempts: i32,
    pub base: Duration,
    pub max_delay: Duration,
}

/// Share of a retry delay that jitter may take away.
pub const RETRY_JITTER: f64 = 0.2;

impl RetryPolicy {
    /// The back-off before the attempt after failed attempt `attempt` (1-based), without jitter.
    pub fn nominal_delay(&self, attempt: i32) -> Duration {
        let exp = u32::try_from(attempt.saturating_sub(1).clamp(0, 30)).unwrap_or(0);
        let secs = self.base.as_secs_f64() * 2f64.powi(exp as i32);
        Duration::from_secs_f64(secs.min(self.max_delay.as_secs_f64()))
    }

    /// The back-off with jitter: uniformly between 80 % and 100 % of [`RetryPolicy::nominal_delay`].
    pub fn delay(&self, attempt: i32) -> Duration {
        use rand::Rng;
        let f = 1.0 - RETRY_JITTER * rand::rng().random::<f64>();
        self.nominal_delay(attempt).mul_f64(f)
    }
}

/// Retry schedules by job class. Mail keeps trying for about an hour (an SMTP outage must not lose mail);
/// backtests are deterministic and get few attempts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicies {
    /// Housekeeping and anything without a class of its own.
    pub default: RetryPolicy,
    /// `send_email`.
    pub mail: RetryPolicy,
    /// `market_chunk`, `market_update`.
    pub market: RetryPolicy,
    /// `backtest`.
    pub backtest: RetryPolicy,
    /// `notify_webhook`: a user's endpoint, retried for about a day. Its job rows get 3 more attempts than
    /// this budget, so only infrastructure errors (not the endpoint) ever fail the job.
    pub webhook: RetryPolicy,
}

impl RetryPolicies {
    /// The policy of a job kind.
    pub fn for_kind(&self, kind: &str) -> &RetryPolicy {
        match kind {
            "send_email" | "notify_email" => &self.mail,
            "market_chunk" | "market_update" => &self.market,
            "backtest" => &self.backtest,
            "notify_webhook" => &self.webhook,
            _ => &self.default,
        }
    }
}

/// `WORKER_CONCURRENCY`, `JOB_*`, `HOUSEKEEPING_INTERVAL_SECS` and the retention periods housekeeping applies.
pub(super) fn parse(r: &mut Reader<'_>) -> JobSettings {
    let explicit_attempts = if r.raw("JOB_MAX_ATTEMPTS").is_some() {
        Some(r.bounded("JOB_MAX_ATTEMPTS", 5i32, 1, 100))
    } else {
        None
    };
    let secs = Duration::from_secs;
    let retry = RetryPolicies {
        default: r.retry_policy(
            "JOB_RETRY_DEFAULT",
            RetryPolicy {
                max_attempts: 5,
                base: secs(5),
                max_delay: secs(300),
            },
            explicit_attempts,
        ),
        mail: r.retry_policy(
            "JOB_RETRY_MAIL",
            // 10 s, 20 s, 40 s … capped at 10 min: 12 attempts span about an hour.
            RetryPolicy {
                max_attempts: 12,
                base: secs(10),
                max_delay: secs(600),
            },
            explicit_attempts,
        ),
        market: r.retry_policy(
            "JOB_RETRY_MARKET",
            RetryPolicy {
                max_attempts: 6,
                base: secs(15),
                max_delay: secs(600),
            },
            explicit_attempts,
        ),
        backtest: r.retry_policy(
            "JOB_RETRY_BACKTEST",
            RetryPolicy {
                max_attempts: 3,
                base: secs(30),
                max_delay: secs(300),
            },
            explicit_attempts,
        ),
        webhook: r.retry_policy(
            "JOB_RETRY_WEBHOOK",
            // 30 s doubling, capped at 4 h: 15 attempts span about a day.
            RetryPolicy {
                max_attempts: 15,
                base: secs(30),
                max_delay: secs(14_400),
            },
            explicit_attempts,
        ),
    };
    let retention::Retention {
        session_retention,
        audit_retention,
        failed_signin_retention,
        mail_retention,
    } = retention::parse(r);
    JobSettings {
        retry,
        session_retention,
        audit_retention,
        failed_signin_retention,
        mail_retention,
        concurrency: r.bounded("WORKER_CONCURRENCY", 2usize, 1, 256),
        heartbeat: r.seconds("JOB_HEARTBEAT_SECS", 5.0, 1.0, 300.0),
        missed_heartbeats: r.bounded("JOB_MISSED_HEARTBEATS", 6u32, 2, 100),
        lease: r.seconds("JOB_LEASE_SECS", 60.0, 1.0, 3600.0),
        reconcile_interval: r.seconds("JOB_RECONCILE_SECS", 30.0, 0.5, 3600.0),
        max_attempts: retry.default.max_attempts,
        housekeeping_interval: r.seconds("HOUSEKEEPING_INTERVAL_SECS", 3600.0, 0.0, 604_800.0),
        job_retention: Duration::from_secs(
            r.bounded("JOB_RETENTION_DAYS", 14u64, 1, 3650) * 86_400,
        ),
    }
}

impl Reader<'_> {
    /// `JOB_RETRY_<CLASS>=attempts=12,base_secs=10,max_secs=600`: any subset of the keys overrides `default`.
    /// `JOB_MAX_ATTEMPTS`, when set, is the attempt budget of every class whose variable has no `attempts=`.
    pub(super) fn retry_policy(
        &mut self,
        var: &str,
        mut policy: RetryPolicy,
        max_attempts: Option<i32>,
    ) -> RetryPolicy {
        if let Some(n) = max_attempts {
            policy.max_attempts = n;
        }
        let Some(raw) = self.raw(var) else {
            return policy;
        };
        for item in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let Some((key, value)) = item.split_once('=') else {
                self.problem(
                    var,
                    format!("`{item}` is not key=value (attempts, base_secs, max_secs)"),
                );
                continue;
            };
            let value = value.trim();
            match key.trim() {
                "attempts" => match value.parse::<i32>() {
                    Ok(n) if (1..=100).contains(&n) => policy.max_attempts = n,
                    _ => self.problem(var, format!("attempts must be 1..=100 (got `{value}`)")),
                },
                k @ ("base_secs" | "max_secs") => match value.parse::<f64>() {
                    Ok(x) if (0.01..=86_400.0).contains(&x) => {
                        let d = Duration::from_secs_f64(x);
                        if k == "base_secs" {
                            policy.base = d;
                        } else {
                            policy.max_delay = d;
                        }
                    }
                    _ => self.problem(
                        var,
                        format!("{k} must be 0.01..=86400 seconds (got `{value}`)"),
                    ),
                },
                other => self.problem(
                    var,
                    format!("unknown key `{other}` (use attempts, base_secs, max_secs)"),
                ),
            }
        }
        if policy.max_delay < policy.base {
            self.problem(var, "max_secs must not be smaller than base_secs");
        }
        policy
    }
}
