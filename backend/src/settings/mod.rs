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

use std::{
    collections::HashMap, fmt, net::SocketAddr, path::PathBuf, str::FromStr, time::Duration,
};

use secrecy::{ExposeSecret, SecretString};
use url::Url;

/// Which kind of deployment this process is part of.
/// Default number of password hashes/verifications a process runs at once (4 × 19 MiB = 76 MiB).
pub const DEFAULT_HASH_CONCURRENCY: usize = 4;
/// Default longest wait for a password-hashing slot before the request is refused as busy.
pub const DEFAULT_HASH_WAIT: Duration = Duration::from_secs(2);

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

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Pretty,
}

impl FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "json" => Ok(Self::Json),
            "pretty" | "text" => Ok(Self::Pretty),
            _ => Err("must be json or pretty".into()),
        }
    }
}

/// An IP network (`10.0.0.0/8`, `::1/128`, or a bare address) used for the trusted-proxy list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    pub addr: std::net::IpAddr,
    pub prefix: u8,
}

impl IpNet {
    /// Whether `ip` lies inside this network.
    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        use std::net::IpAddr;
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u32::MAX << (32 - u32::from(self.prefix))
                };
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u128::MAX << (128 - u32::from(self.prefix))
                };
                u128::from(net) & mask == u128::from(ip) & mask
            }
            (IpAddr::V6(_), IpAddr::V4(v4)) => {
                self.contains(std::net::IpAddr::V6(v4.to_ipv6_mapped()))
            }
            (IpAddr::V4(_), IpAddr::V6(v6)) => v6
                .to_ipv4_mapped()
                .is_some_and(|v4| self.contains(std::net::IpAddr::V4(v4))),
        }
    }
}

impl FromStr for IpNet {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: std::net::IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("`{s}` is not an IP address or CIDR network"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("`{s}` has an invalid prefix length (0..={max})"))?,
            None => max,
        };
        Ok(Self { addr, prefix })
    }
}

/// How email leaves the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailTransport {
    /// Send through `SMTP_URL` (the only choice in production).
    Smtp,
    /// Write each message as an `.eml` file into `MAIL_FILE_DIR` (development).
    File,
    /// Log recipient, subject and the text part (development only; links in mail are secrets).
    Log,
}

impl FromStr for MailTransport {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "smtp" => Ok(Self::Smtp),
            "file" => Ok(Self::File),
            "log" => Ok(Self::Log),
            _ => Err("must be smtp, file or log".into()),
        }
    }
}

/// Background-job tuning. Heartbeat and orphan timeouts are set explicitly (see RELIABILITY.md §1.4: the
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
}

impl RetryPolicies {
    /// The policy of a job kind.
    pub fn for_kind(&self, kind: &str) -> &RetryPolicy {
        match kind {
            "send_email" => &self.mail,
            "market_chunk" | "market_update" => &self.market,
            "backtest" => &self.backtest,
            _ => &self.default,
        }
    }
}

/// Market data sources and ETL (see `backend::market`).
#[derive(Debug, Clone)]
pub struct MarketSettings {
    /// Base URL of a Binance-compatible REST API (`GET /api/v3/klines`, `GET /api/v3/time`).
    pub data_url: Url,
    /// The exchange name candles fetched from `data_url` are stored under.
    pub exchange: String,
    /// Timeout of one HTTP request to the source.
    pub http_timeout: Duration,
    /// Candles per ETL chunk (one chunk = one job = one transaction).
    pub chunk_candles: u32,
    /// Candles per request (the source's page size; Binance allows up to 1000).
    pub page_limit: u32,
    /// Retries of one request on 429/418/5xx/network errors before the chunk's attempt fails.
    pub max_retries: u32,
    /// Longest `Retry-After` honoured inside one attempt; longer waits fail the attempt (the job retries later).
    pub max_retry_wait: Duration,
    /// How often tracked series are updated from the source (`0` disables the schedule).
    pub update_interval: Duration,
    /// Largest CSV file accepted by the browser upload (bytes).
    pub upload_limit_bytes: usize,
}

/// Backtests run by workers (see `backend::backtest`).
#[derive(Debug, Clone)]
pub struct BacktestSettings {
    /// Queued plus running backtests one user may have at a time (subscription plans will set this per plan).
    pub max_concurrent: i64,
    /// REST API requests per user per minute (`API_RATE_LIMIT_PER_MINUTE`).
    pub api_rate_per_minute: u64,
    /// Most candles one backtest may load (bounds a worker's memory: ~56 bytes per candle while it runs).
    pub max_bars: i64,
    /// Points of the equity curve stored with a result (longer curves are thinned, keeping each bucket's low).
    pub equity_points: usize,
    /// Most memory one backtest or "why here?" trace may need, in bytes (`BACKTEST_MEMORY_BUDGET_MB`); also what
    /// the backtests a worker process runs at once may need together (see `backend::backtest::budget`).
    pub memory_budget_bytes: u64,
    // --- issue 11 (web): exports and strategy quotas ---
    /// Exports (trades CSV, result JSON, HTML report) streamed at once by one web process
    /// (`EXPORT_MAX_CONCURRENT`); more answer 503 with `Retry-After`.
    pub export_max_concurrent: usize,
    /// Exports one user may start per minute (`EXPORT_RATE_LIMIT_PER_MINUTE`); refused (503) when Redis
    /// cannot count them.
    pub export_rate_per_minute: u64,
    /// Strategies one user may own, archived ones included (`STRATEGY_QUOTA`).
    pub strategy_quota: i64,
    /// Saved versions one user may have across all strategies (`STRATEGY_VERSION_QUOTA`).
    pub version_quota: i64,
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
    pub smtp_url: Option<SecretString>,
    pub mail_from: String,
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

/// One thing wrong with the configuration. `Display` gives `VARIABLE: what is wrong`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    pub variable: String,
    pub message: String,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.variable, self.message)
    }
}

/// All problems found, so an operator can fix them in one go.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration:\n{}", self.0.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n"))]
pub struct ConfigErrors(pub Vec<ConfigProblem>);

/// Minimum length in bytes of a signing/encryption secret in production.
pub const MIN_SECRET_BYTES: usize = 32;

/// Reads `.env` into the process environment when not in production or test. Existing variables win.
/// Returns the path that was read, if any.
pub fn load_dotenv() -> Option<PathBuf> {
    match std::env::var("APP_ENV").ok().map(|v| v.parse::<AppEnv>()) {
        None | Some(Ok(AppEnv::Development)) => dotenvy::dotenv().ok(),
        _ => None,
    }
}

struct Reader<'a> {
    env: &'a HashMap<String, String>,
    problems: Vec<ConfigProblem>,
}

impl Reader<'_> {
    fn problem(&mut self, var: &str, msg: impl Into<String>) {
        self.problems.push(ConfigProblem {
            variable: var.into(),
            message: msg.into(),
        });
    }

    fn raw(&self, var: &str) -> Option<String> {
        self.env
            .get(var)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    fn string(&self, var: &str, default: &str) -> String {
        self.raw(var).unwrap_or_else(|| default.to_owned())
    }

    fn parsed<T: FromStr>(&mut self, var: &str, default: T) -> T
    where
        T::Err: fmt::Display,
    {
        match self.raw(var) {
            None => default,
            Some(v) => match v.parse::<T>() {
                Ok(x) => x,
                Err(e) => {
                    self.problem(var, format!("invalid value `{v}`: {e}"));
                    default
                }
            },
        }
    }

    fn bounded<T>(&mut self, var: &str, default: T, min: T, max: T) -> T
    where
        T: FromStr + PartialOrd + Copy + fmt::Display,
        T::Err: fmt::Display,
    {
        let v = self.parsed(var, default);
        if v < min || v > max {
            self.problem(var, format!("must be between {min} and {max} (got {v})"));
            default
        } else {
            v
        }
    }

    fn seconds(&mut self, var: &str, default: f64, min: f64, max: f64) -> Duration {
        Duration::from_secs_f64(self.bounded(var, default, min, max))
    }

    /// `JOB_RETRY_<CLASS>=attempts=12,base_secs=10,max_secs=600`: any subset of the keys overrides `default`.
    /// `JOB_MAX_ATTEMPTS`, when set, is the attempt budget of every class whose variable has no `attempts=`.
    fn retry_policy(
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

    /// A secret from `VAR` or from the file named by `VAR_FILE`. Never echoes the value.
    fn secret(&mut self, var: &str) -> Option<SecretString> {
        let file_var = format!("{var}_FILE");
        let direct = self.env.get(var).filter(|v| !v.is_empty()).cloned();
        let file = self.raw(&file_var);
        match (direct, file) {
            (Some(_), Some(_)) => {
                self.problem(var, format!("set either {var} or {file_var}, not both"));
                None
            }
            (Some(v), None) => Some(SecretString::from(v)),
            (None, Some(path)) => match std::fs::read_to_string(&path) {
                Ok(content) => {
                    // Files written by `echo` end in a newline; it is never part of the secret.
                    let value = content.trim_end_matches(['\r', '\n']).to_owned();
                    if value.is_empty() {
                        self.problem(&file_var, format!("file `{path}` is empty"));
                        None
                    } else {
                        Some(SecretString::from(value))
                    }
                }
                Err(e) => {
                    self.problem(
                        &file_var,
                        format!("cannot read file `{path}`: {}", e.kind()),
                    );
                    None
                }
            },
            (None, None) => None,
        }
    }
}

/// Words that mark a value as a placeholder copied from documentation rather than a real secret.
const PLACEHOLDER_WORDS: &[&str] = &[
    "changeme",
    "change-me",
    "change_me",
    "replaceme",
    "replace-me",
    "replace_me",
    "secret",
    "example",
    "password",
    "passw0rd",
    "placeholder",
    "default",
    "dummy",
    "insecure",
    "todo",
    "xxx",
    "12345",
    "qwerty",
    "letmein",
    "your-",
    "your_",
    "<",
    ">",
];

/// Why a secret value is weak, if it is. The returned text never contains the value.
pub fn secret_weakness(value: &str, min_len: usize) -> Option<String> {
    let lower = value.to_ascii_lowercase();
    if PLACEHOLDER_WORDS.iter().any(|w| lower.contains(w)) {
        return Some("looks like a placeholder; generate a random value (see SECRETS.md)".into());
    }
    let distinct: std::collections::HashSet<char> = value.chars().collect();
    if distinct.len() <= 3 {
        return Some(
            "is made of repeated characters; generate a random value (see SECRETS.md)".into(),
        );
    }
    // Runs like "abcdef..." or "123456..." are as guessable as repeats.
    let bytes = value.as_bytes();
    if bytes.len() >= 8 && bytes.windows(2).all(|w| w[1] == w[0].wrapping_add(1)) {
        return Some("is a character sequence; generate a random value (see SECRETS.md)".into());
    }
    if value.len() < min_len {
        return Some(format!(
            "is {} bytes long; at least {min_len} random bytes are required (see SECRETS.md)",
            value.len()
        ));
    }
    None
}

fn url_password(url: &SecretString) -> Option<String> {
    Url::parse(url.expose_secret())
        .ok()
        .and_then(|u| u.password().map(str::to_owned))
}

impl Settings {
    /// Loads settings from the process environment.
    ///
    /// # Errors
    /// Every problem found, one per variable, without secret values.
    pub fn from_env() -> Result<Self, ConfigErrors> {
        Self::from_map(&std::env::vars().collect())
    }

    /// Loads settings from a map of variables (used by tests and by [`Settings::from_env`]).
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

        let bind_addr: SocketAddr = r.parsed("BIND_ADDR", SocketAddr::from(([127, 0, 0, 1], 3000)));
        let metrics_addr = match r.raw("METRICS_ADDR") {
            None => None,
            Some(v) => match v.parse::<SocketAddr>() {
                Ok(a) => Some(a),
                Err(_) => {
                    r.problem(
                        "METRICS_ADDR",
                        format!("`{v}` is not an address like 0.0.0.0:9100"),
                    );
                    None
                }
            },
        };
        let public_url = match r.raw("PUBLIC_URL") {
            Some(v) => match Url::parse(&v) {
                Ok(u) if u.scheme() == "http" || u.scheme() == "https" => Some(u),
                Ok(_) => {
                    r.problem("PUBLIC_URL", "must be an http:// or https:// URL");
                    None
                }
                Err(e) => {
                    r.problem("PUBLIC_URL", format!("is not a valid URL: {e}"));
                    None
                }
            },
            None if prod => {
                r.problem(
                    "PUBLIC_URL",
                    "is required in production (e.g. https://vortex.example.org)",
                );
                None
            }
            None => Url::parse(&format!("http://{bind_addr}")).ok(),
        };
        if let Some(u) = &public_url
            && prod
            && u.scheme() != "https"
        {
            r.problem("PUBLIC_URL", "must use https:// in production");
        }

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

        let jwt_secret = match r.secret("JWT_SECRET") {
            Some(v) => Some(v),
            None if prod => {
                r.problem(
                    "JWT_SECRET",
                    "is required (at least 32 random bytes, see SECRETS.md)",
                );
                None
            }
            None => {
                // Development convenience: a fresh random key per process (sessions end at restart).
                Some(SecretString::from(random_token(48)))
            }
        };
        let ops_token = r.secret("OPS_TOKEN");
        let smtp_url = r.secret("SMTP_URL");
        if let Some(u) = &smtp_url {
            match Url::parse(u.expose_secret()) {
                Ok(parsed) if matches!(parsed.scheme(), "smtp" | "smtps") => {
                    // Plain SMTP only to a relay on this host; otherwise TLS (smtps://) or STARTTLS required.
                    let local = matches!(
                        parsed.host_str(),
                        Some("localhost" | "127.0.0.1" | "::1" | "[::1]")
                    );
                    let tls = parsed.scheme() == "smtps"
                        || parsed
                            .query_pairs()
                            .any(|(k, v)| k == "tls" && v == "required");
                    if prod && !tls && !local {
                        r.problem("SMTP_URL", "must use smtps:// or ?tls=required in production (credentials would travel in clear text)");
                    }
                }
                _ => r.problem("SMTP_URL", "must be an smtp:// or smtps:// URL"),
            }
        } else if prod {
            r.problem(
                "SMTP_URL",
                "is required in production (smtps://user:password@host:465)",
            );
        }
        let mail_from = r.string("MAIL_FROM", "Vortex <no-reply@localhost>");
        if mail_from.parse::<lettre::message::Mailbox>().is_err() {
            r.problem(
                "MAIL_FROM",
                "is not a valid mailbox (e.g. `Vortex <no-reply@example.org>`)",
            );
        }
        let default_transport = if smtp_url.is_some() || prod {
            MailTransport::Smtp
        } else {
            MailTransport::Log
        };
        let mail_transport = r.parsed("MAIL_TRANSPORT", default_transport);
        if prod && mail_transport != MailTransport::Smtp {
            r.problem("MAIL_TRANSPORT", "must be smtp in production");
        }
        if mail_transport == MailTransport::Smtp && smtp_url.is_none() && !prod {
            r.problem("SMTP_URL", "is required when MAIL_TRANSPORT=smtp");
        }
        let mail_file_dir = PathBuf::from(r.string("MAIL_FILE_DIR", "target/mail"));
        let session_idle =
            Duration::from_secs(r.bounded("SESSION_IDLE_MINUTES", 30u64, 1, 1440) * 60);
        let session_absolute =
            Duration::from_secs(r.bounded("SESSION_ABSOLUTE_HOURS", 12u64, 1, 720) * 3600);
        let password_hash_concurrency = r.bounded(
            "PASSWORD_HASH_CONCURRENCY",
            DEFAULT_HASH_CONCURRENCY,
            1,
            256,
        );
        let password_hash_wait = Duration::from_millis(r.bounded(
            "PASSWORD_HASH_WAIT_MS",
            u64::try_from(DEFAULT_HASH_WAIT.as_millis()).unwrap_or(2000),
            0,
            60_000,
        ));

        let log_level = r.string("LOG_LEVEL", "info");
        if tracing_subscriber::EnvFilter::try_new(&log_level).is_err() {
            r.problem(
                "LOG_LEVEL",
                "is not a valid filter (e.g. `info` or `info,sqlx=warn`)",
            );
        }
        let default_format = if prod {
            LogFormat::Json
        } else {
            LogFormat::Pretty
        };
        let log_format = r.parsed("LOG_FORMAT", default_format);

        let mut cors_allowed_origins = Vec::new();
        for origin in r
            .string("CORS_ALLOWED_ORIGINS", "")
            .split(',')
            .map(str::trim)
        {
            if origin.is_empty() {
                continue;
            }
            match Url::parse(origin) {
                Ok(u) if u.path() == "/" && u.query().is_none() && u.host_str().is_some() => {
                    cors_allowed_origins.push(u.origin().ascii_serialization());
                }
                _ => r.problem(
                    "CORS_ALLOWED_ORIGINS",
                    format!("`{origin}` is not an origin (scheme://host[:port])"),
                ),
            }
        }
        if prod
            && cors_allowed_origins
                .iter()
                .any(|o| o.starts_with("http://"))
        {
            r.problem(
                "CORS_ALLOWED_ORIGINS",
                "must list only https:// origins in production",
            );
        }
        let mut trusted_proxies = Vec::new();
        for p in r
            .string("TRUSTED_PROXIES", "")
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            match p.parse::<IpNet>() {
                Ok(n) => trusted_proxies.push(n),
                Err(e) => r.problem("TRUSTED_PROXIES", e),
            }
        }
        let request_timeout = r.seconds("REQUEST_TIMEOUT_SECS", 30.0, 1.0, 600.0);
        let body_limit_bytes = r.bounded("BODY_LIMIT_BYTES", 2 * 1024 * 1024usize, 1024, 1 << 30);
        let form_max_fields = r.bounded("FORM_MAX_FIELDS", 1000usize, 10, 1_000_000);
        let site_root = PathBuf::from(r.string("SITE_ROOT", "target/site"));

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
        };
        let days = |r: &mut Reader<'_>, var: &str, default: u64| {
            Duration::from_secs(r.bounded(var, default, 1, 36_500) * 86_400)
        };
        let session_retention = days(&mut r, "SESSION_RETENTION_DAYS", 30);
        let audit_retention = days(&mut r, "AUDIT_RETENTION_DAYS", 365);
        let failed_signin_retention = days(&mut r, "FAILED_SIGNIN_RETENTION_DAYS", 30);
        let mail_retention = days(&mut r, "MAIL_RETENTION_DAYS", 30);
        let jobs = JobSettings {
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
        };
        let market_url_raw = r.string("MARKET_DATA_URL", "https://api.binance.com");
        let data_url = match Url::parse(&market_url_raw) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {
                if u.query().is_some() || !u.username().is_empty() {
                    r.problem(
                        "MARKET_DATA_URL",
                        "must be a plain base URL without credentials or query",
                    );
                }
                Some(u)
            }
            _ => {
                r.problem(
                    "MARKET_DATA_URL",
                    "must be an http:// or https:// base URL (e.g. https://api.binance.com)",
                );
                None
            }
        };
        let market_exchange = r.string("MARKET_DATA_EXCHANGE", "binance");
        if !(1..=32).contains(&market_exchange.len())
            || !market_exchange
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c))
        {
            r.problem(
                "MARKET_DATA_EXCHANGE",
                "must be 1–32 lower-case letters, digits, '-', '_' or '.'",
            );
        }
        let market = MarketSettings {
            data_url: data_url
                .unwrap_or_else(|| Url::parse("https://api.binance.com").expect("static URL")),
            exchange: market_exchange,
            http_timeout: r.seconds("MARKET_HTTP_TIMEOUT_SECS", 20.0, 0.5, 300.0),
            chunk_candles: r.bounded("MARKET_CHUNK_CANDLES", 5000u32, 10, 100_000),
            page_limit: r.bounded("MARKET_PAGE_LIMIT", 1000u32, 1, 1000),
            max_retries: r.bounded("MARKET_MAX_RETRIES", 4u32, 0, 20),
            max_retry_wait: r.seconds("MARKET_MAX_RETRY_WAIT_SECS", 60.0, 0.0, 3600.0),
            update_interval: r.seconds("MARKET_UPDATE_INTERVAL_SECS", 3600.0, 0.0, 604_800.0),
            upload_limit_bytes: r.bounded(
                "MARKET_UPLOAD_LIMIT_BYTES",
                50 * 1024 * 1024usize,
                1024,
                1 << 31,
            ),
        };
        let backtest = BacktestSettings {
            max_concurrent: r.bounded("BACKTEST_MAX_CONCURRENT", 3i64, 1, 1000),
            api_rate_per_minute: r.bounded("API_RATE_LIMIT_PER_MINUTE", 600u64, 1, 1_000_000),
            max_bars: r.bounded("BACKTEST_MAX_BARS", 5_000_000i64, 1000, 100_000_000),
            equity_points: r.bounded("BACKTEST_EQUITY_POINTS", 5000usize, 100, 1_000_000),
            memory_budget_bytes: r.bounded("BACKTEST_MEMORY_BUDGET_MB", 1024u64, 16, 1 << 20)
                * 1024
                * 1024,
            export_max_concurrent: r.bounded("EXPORT_MAX_CONCURRENT", 4usize, 1, 1000),
            export_rate_per_minute: r.bounded("EXPORT_RATE_LIMIT_PER_MINUTE", 20u64, 1, 100_000),
            strategy_quota: r.bounded("STRATEGY_QUOTA", 200i64, 1, 1_000_000),
            version_quota: r.bounded("STRATEGY_VERSION_QUOTA", 5000i64, 1, 100_000_000),
        };
        if prod && market.data_url.scheme() != "https" {
            r.problem("MARKET_DATA_URL", "must use https:// in production");
        }

        if jobs.lease < jobs.heartbeat * 3 {
            r.problem("JOB_LEASE_SECS", "must be at least 3 × JOB_HEARTBEAT_SECS");
        }

        // Production hardening: no weak, placeholder or shared secrets.
        if prod {
            let mut named: Vec<(&str, String)> = Vec::new();
            if let Some(s) = &jwt_secret {
                named.push(("JWT_SECRET", s.expose_secret().to_owned()));
            }
            if let Some(s) = &ops_token {
                named.push(("OPS_TOKEN", s.expose_secret().to_owned()));
            }
            for (var, value) in &named {
                if let Some(why) = secret_weakness(value, MIN_SECRET_BYTES) {
                    r.problem(var, why);
                }
            }
            // Passwords inside connection URLs: no placeholders (their length is the provider's business).
            for (var, url) in [
                ("DATABASE_URL", &database_url),
                ("REDIS_URL", &redis_url),
                ("SMTP_URL", &smtp_url),
            ] {
                if let Some(pw) = url.as_ref().and_then(url_password) {
                    if let Some(why) = secret_weakness(&pw, 12) {
                        r.problem(var, format!("password {why}"));
                    }
                    named.push((var, pw));
                }
            }
            for i in 0..named.len() {
                for j in (i + 1)..named.len() {
                    if named[i].1 == named[j].1 {
                        let (a, b) = (named[i].0, named[j].0);
                        r.problem(
                            b,
                            format!("reuses the value of {a}; every secret must be distinct"),
                        );
                    }
                }
            }
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
            smtp_url,
            mail_from,
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
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    hex(&buf)
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn retry_policies_have_per_class_defaults_overrides_and_clear_errors() {
        let s = Settings::from_map(&env(&[])).unwrap();
        let r = s.jobs.retry;
        assert_eq!(r.for_kind("send_email").max_attempts, 12);
        assert_eq!(r.for_kind("backtest").max_attempts, 3);
        assert_eq!(r.for_kind("housekeeping").max_attempts, 5);
        // 10 s doubling, capped at 10 min: about an hour over 12 attempts.
        let mail = r.mail;
        let total: f64 = (1..12).map(|a| mail.nominal_delay(a).as_secs_f64()).sum();
        assert_eq!(mail.nominal_delay(1), Duration::from_secs(10));
        assert_eq!(mail.nominal_delay(3), Duration::from_secs(40));
        assert_eq!(mail.nominal_delay(9), Duration::from_secs(600));
        assert!((3000.0..4000.0).contains(&total), "{total}");
        for a in 1..12 {
            let d = mail.delay(a);
            assert!(d <= mail.nominal_delay(a) && d >= mail.nominal_delay(a).mul_f64(0.8));
        }

        let s = Settings::from_map(&env(&[
            ("JOB_RETRY_MAIL", "attempts=3, base_secs=0.5"),
            ("JOB_MAX_ATTEMPTS", "7"),
        ]))
        .unwrap();
        assert_eq!(s.jobs.retry.mail.max_attempts, 3);
        assert_eq!(s.jobs.retry.mail.base, Duration::from_millis(500));
        assert_eq!(
            s.jobs.retry.market.max_attempts, 7,
            "JOB_MAX_ATTEMPTS fills the rest"
        );

        let e = Settings::from_map(&env(&[(
            "JOB_RETRY_BACKTEST",
            "tries=2,base_secs=9,max_secs=1",
        )]))
        .unwrap_err()
        .to_string();
        assert!(e.contains("JOB_RETRY_BACKTEST: unknown key `tries`"), "{e}");
        assert!(
            e.contains("max_secs must not be smaller than base_secs"),
            "{e}"
        );
    }

    const GOOD_JWT: &str = "q8Zr3LkP0vN2xW7mB5tY9cF1hJ4sD6gA";
    const GOOD_OPS: &str = "Tn4Vb8Xc2Zq6Wm0Er5Ty7Ui9Op3As1Df";

    fn prod_base() -> Vec<(&'static str, &'static str)> {
        vec![
            ("APP_ENV", "production"),
            ("PUBLIC_URL", "https://vortex.example.org"),
            (
                "DATABASE_URL",
                "postgres://vortex:Hq7m2Lx9Pz4Kw8Rt@db:5432/vortex",
            ),
            ("REDIS_URL", "redis://redis:6379"),
            (
                "SMTP_URL",
                "smtps://mailer:Zy6Uv3Nw9Bq2Cs5D@smtp.mail.net:465",
            ),
            ("JWT_SECRET", GOOD_JWT),
            ("OPS_TOKEN", GOOD_OPS),
        ]
    }

    fn with(
        base: Vec<(&'static str, &'static str)>,
        k: &'static str,
        v: &'static str,
    ) -> HashMap<String, String> {
        let mut m = env(&base);
        m.insert(k.into(), v.into());
        m
    }

    fn problems_for(m: &HashMap<String, String>) -> Vec<ConfigProblem> {
        Settings::from_map(m).err().map(|e| e.0).unwrap_or_default()
    }

    #[test]
    fn development_defaults_need_no_variables() {
        let s = Settings::from_map(&HashMap::new()).expect("defaults are valid");
        assert_eq!(s.app_env, AppEnv::Development);
        assert_eq!(s.bind_addr.to_string(), "127.0.0.1:3000");
        assert_eq!(s.log_format, LogFormat::Pretty);
        assert_eq!(
            s.allowed_origins(),
            vec!["http://127.0.0.1:3000".to_owned()]
        );
    }

    #[test]
    fn a_strong_production_configuration_is_accepted() {
        let s = Settings::from_map(&env(&prod_base())).expect("valid");
        assert!(s.is_production());
        assert_eq!(s.log_format, LogFormat::Json);
    }

    #[test]
    fn production_refuses_a_placeholder_jwt_secret_without_printing_it() {
        let m = with(prod_base(), "JWT_SECRET", "changeme");
        let err = Settings::from_map(&m).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("JWT_SECRET"), "{text}");
        assert!(!text.contains("changeme"), "secret value leaked: {text}");
    }

    #[test]
    fn production_refuses_short_repeated_and_sequential_secrets() {
        for bad in [
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "abcdefghijklmnopqrstuvwxyz",
            "Xk29fLq0",
        ] {
            let m = with(prod_base(), "JWT_SECRET", bad);
            let p = problems_for(&m);
            assert!(p.iter().any(|p| p.variable == "JWT_SECRET"), "{bad}: {p:?}");
            assert!(p.iter().all(|p| !p.message.contains(bad)));
        }
    }

    #[test]
    fn production_refuses_a_secret_reused_for_two_purposes() {
        let m = with(prod_base(), "OPS_TOKEN", GOOD_JWT);
        let p = problems_for(&m);
        assert!(
            p.iter()
                .any(|p| p.variable == "OPS_TOKEN" && p.message.contains("JWT_SECRET")),
            "{p:?}"
        );
    }

    #[test]
    fn production_refuses_missing_secrets_and_plain_http() {
        let mut m = env(&prod_base());
        m.remove("JWT_SECRET");
        m.insert("PUBLIC_URL".into(), "http://vortex.example.org".into());
        let vars: Vec<String> = problems_for(&m).into_iter().map(|p| p.variable).collect();
        assert!(vars.contains(&"JWT_SECRET".to_owned()));
        assert!(vars.contains(&"PUBLIC_URL".to_owned()));
    }

    #[test]
    fn production_refuses_placeholder_database_passwords() {
        let m = with(
            prod_base(),
            "DATABASE_URL",
            "postgres://vortex:changeme@db/vortex",
        );
        let p = problems_for(&m);
        assert!(p.iter().any(|p| p.variable == "DATABASE_URL"), "{p:?}");
    }

    #[test]
    fn secrets_can_come_from_files_and_trailing_newlines_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jwt");
        std::fs::write(&path, format!("{GOOD_JWT}\n")).unwrap();
        let mut m = env(&prod_base());
        m.remove("JWT_SECRET");
        m.insert("JWT_SECRET_FILE".into(), path.display().to_string());
        let s = Settings::from_map(&m).expect("valid");
        assert_eq!(s.jwt_secret.expose_secret(), GOOD_JWT);
    }

    #[test]
    fn setting_a_secret_twice_or_from_a_missing_file_is_an_error() {
        let m = with(prod_base(), "JWT_SECRET_FILE", "/nonexistent/jwt");
        assert!(problems_for(&m).iter().any(|p| p.variable == "JWT_SECRET"));
        let mut m = env(&prod_base());
        m.remove("JWT_SECRET");
        m.insert("JWT_SECRET_FILE".into(), "/nonexistent/jwt".into());
        assert!(
            problems_for(&m)
                .iter()
                .any(|p| p.variable == "JWT_SECRET_FILE")
        );
    }

    #[test]
    fn malformed_values_name_their_variable() {
        let m = env(&[
            ("BIND_ADDR", "localhost"),
            ("DATABASE_URL", "mysql://x"),
            ("LOG_FORMAT", "xml"),
            ("WORKER_CONCURRENCY", "0"),
            ("CORS_ALLOWED_ORIGINS", "not a url"),
            ("TRUSTED_PROXIES", "10.0.0.0/99"),
        ]);
        let vars: Vec<String> = problems_for(&m).into_iter().map(|p| p.variable).collect();
        for v in [
            "BIND_ADDR",
            "DATABASE_URL",
            "LOG_FORMAT",
            "WORKER_CONCURRENCY",
            "CORS_ALLOWED_ORIGINS",
            "TRUSTED_PROXIES",
        ] {
            assert!(vars.contains(&v.to_owned()), "{v} missing from {vars:?}");
        }
    }

    #[test]
    fn market_data_settings_have_defaults_and_are_validated() {
        let s = Settings::from_map(&HashMap::new()).unwrap();
        assert_eq!(s.market.data_url.as_str(), "https://api.binance.com/");
        assert_eq!(s.market.exchange, "binance");
        assert_eq!(s.market.page_limit, 1000);
        let s = Settings::from_map(&env(&[
            ("MARKET_DATA_URL", "http://127.0.0.1:9100"),
            ("MARKET_UPDATE_INTERVAL_SECS", "0"),
        ]))
        .unwrap();
        assert_eq!(s.market.data_url.port(), Some(9100));
        assert!(s.market.update_interval.is_zero());
        for (var, bad) in [
            ("MARKET_DATA_URL", "ftp://x"),
            ("MARKET_DATA_URL", "not a url"),
            ("MARKET_DATA_URL", "https://u:p@api.binance.com"),
            ("MARKET_DATA_EXCHANGE", "Binance!"),
            ("MARKET_PAGE_LIMIT", "5000"),
            ("MARKET_CHUNK_CANDLES", "1"),
        ] {
            let p = problems_for(&env(&[(var, bad)]));
            assert!(p.iter().any(|p| p.variable == var), "{var}={bad}: {p:?}");
        }
        let p = problems_for(&with(prod_base(), "MARKET_DATA_URL", "http://mock:9100"));
        assert!(p.iter().any(|p| p.variable == "MARKET_DATA_URL"), "{p:?}");
    }

    #[test]
    fn ip_networks_match_addresses() {
        let n: IpNet = "10.0.0.0/8".parse().unwrap();
        assert!(n.contains("10.1.2.3".parse().unwrap()));
        assert!(!n.contains("11.0.0.1".parse().unwrap()));
        let one: IpNet = "127.0.0.1".parse().unwrap();
        assert!(one.contains("127.0.0.1".parse().unwrap()));
        assert!(one.contains("::ffff:127.0.0.1".parse().unwrap()));
        let v6: IpNet = "fd00::/8".parse().unwrap();
        assert!(v6.contains("fd12::1".parse().unwrap()));
    }
}
