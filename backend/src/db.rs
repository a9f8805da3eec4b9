//! Postgres: the connection pool, the embedded migrations and a readiness probe.
//!
//! The pool's acquire timeout is short (2 s by default, `DATABASE_ACQUIRE_TIMEOUT_SECS`), so a database outage
//! turns into fast 503 responses instead of requests hanging for sqlx's default 30 s.

use std::time::Duration;

use secrecy::ExposeSecret;
use sqlx::{
    PgPool,
    postgres::{PgConnectOptions, PgPoolOptions},
};

use crate::settings::Settings;

/// Every migration in `migrations/`, embedded in the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// Builds the pool lazily: no connection is opened until first use, so the web process starts (and reports
/// not-ready) while Postgres is down.
///
/// # Errors
/// When `DATABASE_URL` cannot be parsed.
pub fn pool(settings: &Settings) -> Result<PgPool, sqlx::Error> {
    let options: PgConnectOptions = settings.database_url.expose_secret().parse()?;
    let options = options.application_name("vortex");
    Ok(PgPoolOptions::new()
        .max_connections(settings.database_max_connections)
        .min_connections(0)
        .acquire_timeout(settings.database_acquire_timeout)
        .idle_timeout(Duration::from_secs(300))
        .max_lifetime(Duration::from_secs(1800))
        .test_before_acquire(true)
        .connect_lazy_with(options))
}

/// Runs pending migrations: the schema only (`vortex migrate` also seeds the strategy catalogue, by
/// `backtest::catalogue::migrate_and_seed`).
///
/// # Errors
/// When the database is unreachable or a migration fails (the failing migration is rolled back).
pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    MIGRATOR.run(pool).await
}

/// `select 1` within `timeout`.
///
/// # Errors
/// A short description of why Postgres is not usable.
pub async fn ping(pool: &PgPool, timeout: Duration) -> Result<(), String> {
    match tokio::time::timeout(
        timeout,
        sqlx::query_scalar!(r#"select 1 as "one!""#).fetch_one(pool),
    )
    .await
    {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(describe(&e)),
        Err(_) => Err(format!("no answer within {} ms", timeout.as_millis())),
    }
}

/// Whether an error means "the database is unavailable right now" (503) rather than a bug (500).
pub fn is_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => true,
        // 57P01 admin shutdown, 57P03 cannot connect now (sqlx#2763)
        sqlx::Error::Database(db) => {
            matches!(db.code().as_deref(), Some("57P01" | "57P02" | "57P03"))
        }
        _ => false,
    }
}

/// An error description without connection strings.
pub fn describe(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::PoolTimedOut => "timed out waiting for a connection".into(),
        sqlx::Error::Io(io) => format!("I/O error: {}", io.kind()),
        sqlx::Error::Database(db) => format!("database error {}", db.code().unwrap_or_default()),
        other => other.to_string(),
    }
}
