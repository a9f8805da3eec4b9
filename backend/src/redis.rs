//! Redis connection pool (deadpool-redis) with every timeout set: deadpool's defaults have none, so a
//! black-holed Redis would hang request handlers forever (RELIABILITY.md §1.6).

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

/// Counts one request of `subject` in the current one-minute window and says whether it is within `limit`.
/// Returns `Ok(None)` when allowed, `Ok(Some(seconds))` to wait when over. Redis trouble allows the request
/// (the limit protects capacity; refusing every API call while Redis restarts would be worse), logged.
pub async fn rate_limit(pool: &Pool, namespace: &str, subject: &str, limit: u64) -> Option<u64> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let window = now / 60;
    let key = format!("{namespace}:ratelimit:{subject}:{window}");
    let fut = async {
        let mut conn = pool.get().await.map_err(|e| e.to_string())?;
        let (count,): (u64,) = deadpool_redis::redis::pipe()
            .atomic()
            .incr(&key, 1u64)
            .expire(&key, 120)
            .ignore()
            .query_async(&mut *conn)
            .await
            .map_err(|e| e.to_string())?;
        Ok::<u64, String>(count)
    };
    match tokio::time::timeout(Duration::from_millis(500), fut).await {
        Ok(Ok(count)) if count > limit => Some(60 - now % 60),
        Ok(Ok(_)) => None,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "rate limit not checked: Redis error");
            None
        }
        Err(_) => {
            tracing::warn!("rate limit not checked: Redis timed out");
            None
        }
    }
}
