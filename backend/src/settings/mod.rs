//! Typed configuration, read from environment variables and validated before anything starts.
//!
//! * Every variable is documented in `backend.env.example` (the single reference for operators).
//! * Every secret may also be given as `NAME_FILE` (a path whose content is the value), which is how Docker
//!   and Kubernetes secrets are mounted. Setting both `NAME` and `NAME_FILE` is an error.
//! * Errors name the variable and say what is wrong; they never print a secret's value.
//! * With `APP_ENV=production` weak configurations are refused: missing secrets, placeholder values, secrets
//!   shorter than 32 bytes, one value reused for two secrets, a non-HTTPS `PUBLIC_URL`.
//!
//! A `.env` file is read only when `APP_ENV` is unset or `development` (see [`load_dotenv`]).

mod auth;
mod backtest;
mod billing;
mod database;
mod jobs;
mod mail;
mod market;
mod notify;
mod paper;
mod plans;
mod problems;
mod reader;
mod retention;
mod web;
mod webhook;

use std::{
    collections::HashMap, fmt, net::SocketAddr, path::PathBuf, str::FromStr, time::Duration,
};

use secrecy::{ExposeSecret, SecretString};
use url::Url;

pub use auth::{DEFAULT_HASH_CONCURRENCY, DEFAULT_HASH_WAIT};
pub use backtest::BacktestSettings;
pub use billing::{
    BillingSettings, MAX_WEBHOOK_SECRETS, MIN_EVENT_RETENTION_DAYS, PaymentProvider,
    RECONCILE_INTERVAL_SECS,
};
pub use jobs::{JobSettings, RETRY_JITTER, RetryPolicies, RetryPolicy};
pub use mail::MailTransport;
pub use market::MarketSettings;
pub use notify::NotifySettings;
pub use notify::NotifySseSettings;
pub use paper::PaperSettings;
pub use plans::{MAX_GRACE_DAYS, PlanSettings};
pub use problems::{ConfigErrors, ConfigProblem, MIN_SECRET_BYTES, secret_weakness};
pub use web::{IpNet, LogFormat};
pub use webhook::{AllowEntry, WebhookSettings};

use reader::Reader;

/// Which kind of deployment this process is part of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppEnv {
    Development,
    Test,
    Production,
}

impl FromStr for AppEnv {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "development" | "dev" => Ok(Self::Development),
            "test" => Ok(Self::Test),
            "production" | "prod" => Ok(Self::Production),
            _ => Err("must be one of development, test, production".into()),
        }
    }
}

impl fmt::Display for AppEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Development => "development",
            Self::Test => "test",
            Self::Production => "production",
        })
    }
}

/// Everything the process needs, parsed and validated.
#[derive(Clone)]
pub struct Settings {
    pub app_env: AppEnv,
    pub bind_addr: SocketAddr,
    /// Where `vortex worker` serves `/health`, `/ready` and `/metrics` (none when unset).
    pub metrics_addr: Option<SocketAddr>,
    pub public_url: Url,
    pub database_url: SecretString,
    pub database_max_connections: u32,
    pub database_acquire_timeout: Duration,
    pub redis_url: SecretString,
    pub redis_pool_size: usize,
    /// Prefix for every Redis key this deployment uses, so several deployments (or tests) share one Redis.
    pub redis_namespace: String,
    pub jwt_secret: SecretString,
    /// Bearer token for the operator endpoints under `/ops`; `None` disables them.
    pub ops_token: Option<SecretString>,
    /// Signs one-click unsubscribe links; `None`: a key derived from `jwt_secret`.
    pub unsubscribe_secret: Option<SecretString>,
    pub smtp_url: Option<SecretString>,
    pub mail_from: String,
    /// The sender of subscription mail (notifications); `None`: [`Settings::mail_from`].
    pub mail_from_notifications: Option<String>,
    pub mail_transport: MailTransport,
    pub mail_file_dir: PathBuf,
    /// A session ends after this much inactivity.
    pub session_idle: Duration,
    /// A session ends this long after sign-in, active or not.
    pub session_absolute: Duration,
    /// Argon2 hashes/verifications one process runs at once (19 MiB each; `PASSWORD_HASH_CONCURRENCY`).
    pub password_hash_concurrency: usize,
    /// Longest wait for a free hashing slot before a request is answered 503 (`PASSWORD_HASH_WAIT_MS`).
    pub password_hash_wait: Duration,
    pub log_level: String,
    pub log_format: LogFormat,
    pub cors_allowed_origins: Vec<String>,
    pub trusted_proxies: Vec<IpNet>,
    pub request_timeout: Duration,
    pub body_limit_bytes: usize,
    /// Most fields one URL-encoded form post may carry (`FORM_MAX_FIELDS`); more are refused with 413 before
    /// any handler parses them.
    pub form_max_fields: usize,
    /// Directory with the built site (`pkg/vortex.js`, `pkg/vortex_bg.wasm`, `pkg/vortex.css`, public files).
    pub site_root: PathBuf,
    pub jobs: JobSettings,
    pub market: MarketSettings,
    pub backtest: BacktestSettings,
    pub webhook: WebhookSettings,
    pub notify: NotifySettings,
    /// `NOTIFY_SSE_*`: live in-app updates.
    pub notify_sse: NotifySseSettings,
    /// `PAPER_*`: paper trading.
    pub paper: PaperSettings,
    /// `PAYMENT_PROVIDER`, `STRIPE_*`: payments (docs/billing.md).
    pub billing: BillingSettings,
    /// `PLAN_GRACE_DAYS`: over a plan's limits (docs/plans.md).
    pub plans: PlanSettings,
    /// `SENTRY_DSN` / `SENTRY_DSN_FILE`: where panics, 5xx answers and failed jobs are reported (a Sentry or
    /// GlitchTip project's DSN); unset: not reported (only logged).
    pub sentry_dsn: Option<SecretString>,
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Secrets are SecretString and print as [REDACTED]; URLs with credentials are not printed at all.
        f.debug_struct("Settings")
            .field("app_env", &self.app_env)
            .field("bind_addr", &self.bind_addr)
            .field("public_url", &self.public_url.as_str())
            .field("database_max_connections", &self.database_max_connections)
            .field("redis_namespace", &self.redis_namespace)
            .field("log_level", &self.log_level)
            .field("log_format", &self.log_format)
            .field("site_root", &self.site_root)
            .finish_non_exhaustive()
    }
}

/// Reads `.env` into the process environment when not in production or test. Existing variables win.
/// Returns the path that was read, if any.
pub fn load_dotenv() -> Option<PathBuf> {
    match std::env::var("APP_ENV").ok().map(|v| v.parse::<AppEnv>()) {
        None | Some(Ok(AppEnv::Development)) => dotenvy::dotenv().ok(),
        _ => None,
    }
}

impl Settings {
    /// Loads settings from the process environment.
    ///
    /// # Errors
    /// Every problem found, one per variable, without secret values.
    pub fn from_env() -> Result<Self, ConfigErrors> {
        Self::from_map(&std::env::vars().collect())
    }

    /// Loads settings from a map of variables (used by tests and by [`Settings::from_env`]). Each section
    /// parses its own variables (see the modules of `settings`); problems are collected, not returned early.
    ///
    /// # Errors
    /// Every problem found, one per variable, without secret values.
    pub fn from_map(env: &HashMap<String, String>) -> Result<Self, ConfigErrors> {
        let mut r = Reader {
            env,
            problems: Vec::new(),
        };
        let app_env: AppEnv = r.parsed("APP_ENV", AppEnv::Development);
        let prod = app_env == AppEnv::Production;

        let web::Addresses {
            bind_addr,
            metrics_addr,
            public_url,
        } = web::addresses(&mut r, prod);
        let database::Stores {
            database_url,
            database_max_connections,
            database_acquire_timeout,
            redis_url,
            redis_pool_size,
            redis_namespace,
        } = database::stores(&mut r, prod);
        let (jwt_secret, ops_token) = auth::secrets(&mut r, prod);
        let unsubscribe_secret = r.secret("UNSUBSCRIBE_SECRET");
        let mail::Mail {
            smtp_url,
            mail_from,
            mail_from_notifications,
            mail_transport,
            mail_file_dir,
        } = mail::parse(&mut r, prod);
        let auth::Sessions {
            session_idle,
            session_absolute,
            password_hash_concurrency,
            password_hash_wait,
        } = auth::sessions(&mut r);
        let (log_level, log_format) = web::logging(&mut r, prod);
        let web::Http {
            cors_allowed_origins,
            trusted_proxies,
            request_timeout,
            body_limit_bytes,
            form_max_fields,
            site_root,
        } = web::http(&mut r, prod);
        let jobs = jobs::parse(&mut r);
        let market = market::parse(&mut r);
        let backtest = backtest::parse(&mut r);
        let webhook = webhook::parse(&mut r, app_env);
        let notify = notify::parse(&mut r);
        let notify_sse = notify::parse_sse(&mut r);
        let paper = paper::parse(&mut r);
        let billing = billing::parse(&mut r, prod);
        let plans = plans::parse(&mut r);
        let sentry_dsn = r
            .secret("SENTRY_DSN")
            .filter(|d| !d.expose_secret().trim().is_empty());
        if let Some(d) = &sentry_dsn
            && d.expose_secret()
                .trim()
                .parse::<sentry::types::Dsn>()
                .is_err()
        {
            r.problem(
                "SENTRY_DSN",
                "must be a DSN such as https://<public key>@<host>/<project id> (from the project's settings)",
            );
        }
        if prod && market.data_url.scheme() != "https" {
            r.problem("MARKET_DATA_URL", "must use https:// in production");
        }

        if jobs.lease < jobs.heartbeat * 3 {
            r.problem("JOB_LEASE_SECS", "must be at least 3 × JOB_HEARTBEAT_SECS");
        }

        if prod {
            problems::production_secrets(
                &mut r,
                &jwt_secret,
                &ops_token,
                &unsubscribe_secret,
                &database_url,
                &redis_url,
                &smtp_url,
            );
        }

        if !r.problems.is_empty() {
            return Err(ConfigErrors(r.problems));
        }
        // All required values are present when there are no problems.
        let (Some(public_url), Some(database_url), Some(redis_url), Some(jwt_secret)) =
            (public_url, database_url, redis_url, jwt_secret)
        else {
            return Err(ConfigErrors(vec![ConfigProblem {
                variable: "APP_ENV".into(),
                message: "incomplete configuration".into(),
            }]));
        };
        Ok(Self {
            app_env,
            bind_addr,
            metrics_addr,
            public_url,
            database_url,
            database_max_connections,
            database_acquire_timeout,
            redis_url,
            redis_pool_size,
            redis_namespace,
            jwt_secret,
            ops_token,
            unsubscribe_secret,
            smtp_url,
            mail_from,
            mail_from_notifications,
            mail_transport,
            mail_file_dir,
            session_idle,
            session_absolute,
            password_hash_concurrency,
            password_hash_wait,
            log_level,
            log_format,
            cors_allowed_origins,
            trusted_proxies,
            request_timeout,
            body_limit_bytes,
            form_max_fields,
            site_root,
            jobs,
            market,
            backtest,
            webhook,
            notify,
            notify_sse,
            paper,
            billing,
            plans,
            sentry_dsn,
        })
    }

    /// The origins CORS admits: the configured list, or only `PUBLIC_URL`'s origin.
    pub fn allowed_origins(&self) -> Vec<String> {
        if self.cors_allowed_origins.is_empty() {
            vec![self.public_url.origin().ascii_serialization()]
        } else {
            self.cors_allowed_origins.clone()
        }
    }

    pub fn is_production(&self) -> bool {
        self.app_env == AppEnv::Production
    }

    /// Cookies get `Secure` and the `__Host-` prefix whenever the public URL is HTTPS (always in production).
    pub fn secure_cookies(&self) -> bool {
        self.public_url.scheme() == "https"
    }
}

/// A URL-safe random token of `bytes` random bytes (hex encoded).
pub fn random_token(bytes: usize) -> String {
    use rand::RngCore;
    // Every request makes one (the CSP nonce): the random bytes of the usual sizes stay on the stack.
    let mut small = [0u8; 64];
    let mut large = Vec::new();
    let buf: &mut [u8] = if bytes <= small.len() {
        &mut small[..bytes]
    } else {
        large.resize(bytes, 0);
        &mut large
    };
    rand::rng().fill_bytes(buf);
    hex(buf)
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    s
}

#[cfg(test)]
mod tests;
