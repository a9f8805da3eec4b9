//! Redis connection pool (deadpool-redis) with every timeout set: deadpool's defaults have none, so a
//! black-holed Redis would hang request handlers forever.

use std::time::Duration;

use deadpool_redis::{Config, Pool, PoolConfig, Runtime, Timeouts};
use secrecy::ExposeSecret;

use crate::settings::Settings;

/// Builds the pool; connections are opened on first use.
///
/// # Errors
/// When `REDIS_URL` cannot be parsed.
pub fn pool(settings: &Settings) -> Result<Pool, deadpool_redis::CreatePoolError> {
    let mut cfg = Config::from_url(settings.redis_url.expose_secret());
    let mut pc = PoolConfig::new(settings.redis_pool_size);
    pc.timeouts = Timeouts {
        wait: Some(Duration::from_secs(1)),
        create: Some(Duration::from_secs(1)),
        recycle: Some(Duration::from_secs(1)),
    };
    cfg.pool = Some(pc);
    cfg.create_pool(Some(Runtime::Tokio1))
}

/// `PING` within `timeout`.
///
/// # Errors
/// A short description of why Redis is not usable.
pub async fn ping(pool: &Pool, timeout: Duration) -> Result<(), String> {
    let fut = async {
        let mut conn = pool
            .get()
            .await
            .map_err(|e| format!("no connection: {e}"))?;
        deadpool_redis::redis::cmd("PING")
            .query_async::<String>(&mut *conn)
            .await
            .map_err(|e| format!("PING failed: {e}"))
    };
    match tokio::time::timeout(timeout, fut).await {
        Ok(r) => r.map(|_| ()),
        Err(_) => Err(format!("no answer within {} ms", timeout.as_millis())),
    }
}

/// The answer of a rate-limit check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateCheck {
    /// Within the limit (counted).
    Allowed,
    /// Over the limit: seconds until the window ends.
    Over(u64),
    /// Redis did not answer (error or 500 ms timeout): the request could not be counted.
    Unchecked,
}

/// Counts one request of `subject` in the current one-minute window and says whether it is within `limit`.
/// The one mechanism behind [`rate_limit`] (cheap endpoints: fail open) and [`rate_limit_strict`] (expensive
/// endpoints: fail closed).
pub async fn check_rate(pool: &Pool, namespace: &str, subject: &str, limit: u64) -> RateCheck {
    check_rate_window(pool, namespace, subject, limit, 60).await
}

/// [`check_rate`] with a fixed window of `window_secs` seconds (at least 1) instead of a minute: e.g. one
/// request per second to a Slack webhook.
pub async fn check_rate_window(
    pool: &Pool,
    namespace: &str,
    subject: &str,
    limit: u64,
    window_secs: u64,
) -> RateCheck {
    let secs = window_secs.max(1);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let window = now / secs;
    let key = if secs == 60 {
        format!("{namespace}:ratelimit:{subject}:{window}")
    } else {
        format!("{namespace}:ratelimit:{subject}:{secs}s:{window}")
    };
    let fut = async {
        let mut conn = pool.get().await.map_err(|e| e.to_string())?;
        let (count,): (u64,) = deadpool_redis::redis::pipe()
            .atomic()
            .incr(&key, 1u64)
            .expire(&key, i64::try_from(secs * 2).unwrap_or(i64::MAX))
            .ignore()
            .query_async(&mut *conn)
            .await
            .map_err(|e| e.to_string())?;
        Ok::<u64, String>(count)
    };
    match tokio::time::timeout(Duration::from_millis(500), fut).await {
        Ok(Ok(count)) if count > limit => RateCheck::Over(secs - now % secs),
        Ok(Ok(_)) => RateCheck::Allowed,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, subject, "rate limit not checked: Redis error");
            RateCheck::Unchecked
        }
        Err(_) => {
            tracing::warn!(subject, "rate limit not checked: Redis timed out");
            RateCheck::Unchecked
        }
    }
}

/// Rate limit for cheap requests (the REST API's per-token limit). Returns `None` when allowed,
/// `Some(seconds)` to wait when over. Redis trouble allows the request (the limit protects capacity;
/// refusing every API call while Redis restarts would be worse), logged.
pub async fn rate_limit(pool: &Pool, namespace: &str, subject: &str, limit: u64) -> Option<u64> {
    match check_rate(pool, namespace, subject, limit).await {
        RateCheck::Over(wait) => Some(wait),
        RateCheck::Allowed | RateCheck::Unchecked => None,
    }
}

/// Why an expensive request was refused by [`rate_limit_strict`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Over the limit: seconds until the window ends (answer 429 with `Retry-After`).
    Over(u64),
    /// The limit could not be checked (answer 503 with `Retry-After`).
    Unavailable,
}

impl Refused {
    /// The action error: 429 over the limit, 503 (retry in 5 s) when the limit cannot be checked.
    pub fn into_error(self) -> crate::Error {
        match self {
            Refused::Over(retry_after) => crate::Error::RateLimited { retry_after },
            Refused::Unavailable => crate::Error::Unavailable {
                message: "request limits cannot be checked right now; try again shortly".into(),
                retry_after: 5,
            },
        }
    }
}

/// Rate limit for expensive requests (decision traces, exports): like [`rate_limit`], but when Redis cannot
/// count the request it is refused. An unbounded stream of expensive work while Redis is down is exactly
/// what the limit exists to prevent.
///
/// # Errors
/// [`Refused`] when over the limit or when Redis did not answer.
pub async fn rate_limit_strict(
    pool: &Pool,
    namespace: &str,
    subject: &str,
    limit: u64,
) -> Result<(), Refused> {
    match check_rate(pool, namespace, subject, limit).await {
        RateCheck::Allowed => Ok(()),
        RateCheck::Over(wait) => Err(Refused::Over(wait)),
        RateCheck::Unchecked => Err(Refused::Unavailable),
    }
}
