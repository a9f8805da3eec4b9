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
