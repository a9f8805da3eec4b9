//! Postgres and Redis: connection URLs (secrets), pool sizes and the Redis key namespace.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use url::Url;

use super::reader::Reader;

pub(super) struct Stores {
    pub database_url: Option<SecretString>,
    pub database_max_connections: u32,
    pub database_acquire_timeout: Duration,
    pub redis_url: Option<SecretString>,
    pub redis_pool_size: usize,
    pub redis_namespace: String,
}

/// `DATABASE_*`, `REDIS_*` (URLs required in production; development defaults to local servers).
pub(super) fn stores(r: &mut Reader<'_>, prod: bool) -> Stores {
    let database_url = r.secret("DATABASE_URL");
    let database_url = match database_url {
        Some(v) => Some(v),
        None if prod => {
            r.problem(
                "DATABASE_URL",
                "is required (postgres://user:password@host:5432/db)",
            );
            None
        }
        None => Some(SecretString::from(
            "postgres://postgres@127.0.0.1:5432/vortex",
        )),
    };
    if let Some(u) = &database_url {
        match Url::parse(u.expose_secret()) {
            Ok(parsed) if matches!(parsed.scheme(), "postgres" | "postgresql") => {}
            _ => r.problem("DATABASE_URL", "must be a postgres:// URL"),
        }
    }
    let database_max_connections = r.bounded("DATABASE_MAX_CONNECTIONS", 10u32, 1, 1000);
    let database_acquire_timeout = r.seconds("DATABASE_ACQUIRE_TIMEOUT_SECS", 2.0, 0.1, 30.0);

    let redis_url = match r.secret("REDIS_URL") {
        Some(v) => Some(v),
        None if prod => {
            r.problem("REDIS_URL", "is required (redis://host:6379)");
            None
        }
        None => Some(SecretString::from("redis://127.0.0.1:6379")),
    };
    if let Some(u) = &redis_url {
        match Url::parse(u.expose_secret()) {
            Ok(parsed) if matches!(parsed.scheme(), "redis" | "rediss") => {}
            _ => r.problem("REDIS_URL", "must be a redis:// or rediss:// URL"),
        }
    }
    let redis_pool_size = r.bounded("REDIS_POOL_SIZE", 16usize, 1, 1000);
    let redis_namespace = r.string("REDIS_NAMESPACE", "vortex");
    if !redis_namespace
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        r.problem(
            "REDIS_NAMESPACE",
            "may only contain letters, digits, '-', '_' and '.'",
        );
    }

    Stores {
        database_url,
        database_max_connections,
        database_acquire_timeout,
        redis_url,
        redis_pool_size,
        redis_namespace,
    }
}
