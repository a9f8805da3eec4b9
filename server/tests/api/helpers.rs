//! Test harness: `spawn_app()` starts the application in-process against a fresh database.

use std::{
    collections::HashMap,
    net::TcpListener as StdListener,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use backend::{
    Actor, Ctx, Surface,
    auth::{AuthUser, Credential, RequestMeta, Role, Scope, users},
    settings::Settings,
};
use secrecy::ExposeSecret;
use sqlx::{Connection, Executor, PgConnection};
use tokio::sync::watch;
use uuid::Uuid;

pub const PG_ADMIN: &str = "postgres://postgres@127.0.0.1:5432/postgres";
pub const OPS_TOKEN: &str = "test-ops-token-7f3a9c2e5b1d8f4a6c0e2b9d";

/// A fresh, migrated database that is dropped when the value is dropped.
pub struct TestDb {
    pub name: String,
    pub url: String,
}

impl TestDb {
    pub async fn new() -> Self {
        let name = format!("vortex_test_{}", Uuid::new_v4().simple());
        let mut admin = PgConnection::connect(PG_ADMIN)
            .await
            .expect("postgres reachable on 127.0.0.1:5432");
        admin
            .execute(format!(r#"create database "{name}""#).as_str())
            .await
            .expect("create database");
        let url = format!("postgres://postgres@127.0.0.1:5432/{name}");
        let pool = sqlx::PgPool::connect(&url).await.expect("connect test db");
        backend::backtest::catalogue::migrate_and_seed(&pool)
            .await
            .expect("migrations apply");
        pool.close().await;
        Self { name, url }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs outside async context on a plain thread with its own runtime.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok(mut admin) = PgConnection::connect(PG_ADMIN).await {
                    let _ = admin
                        .execute(
                            format!(r#"drop database if exists "{name}" with (force)"#).as_str(),
                        )
                        .await;
                }
            });
        })
        .join();
    }
}

/// The base environment for a test instance.
pub fn base_env(db: &TestDb, namespace: &str) -> HashMap<String, String> {
    let mut env = HashMap::new();
    for (k, v) in [
        ("APP_ENV", "test"),
        ("BIND_ADDR", "127.0.0.1:0"),
        ("REDIS_URL", "redis://127.0.0.1:6379"),
        ("OPS_TOKEN", OPS_TOKEN),
        ("LOG_LEVEL", "info"),
        ("JOB_HEARTBEAT_SECS", "1"),
        ("JOB_MISSED_HEARTBEATS", "3"),
        ("JOB_LEASE_SECS", "4"),
        ("JOB_RECONCILE_SECS", "1"),
        ("HOUSEKEEPING_INTERVAL_SECS", "0"),
        // Notification windows in test time: coalesced messages go out within about two seconds.
        ("NOTIFY_TICK_SECS", "1"),
        ("NOTIFY_COALESCE_SECS", "1"),
    ] {
        env.insert(k.to_owned(), v.to_owned());
    }
    env.insert("DATABASE_URL".into(), db.url.clone());
    env.insert("REDIS_NAMESPACE".into(), namespace.to_owned());
    env
}

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub ctx: Ctx,
    shutdown: watch::Sender<bool>,
    _db: TestDb,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request")
    }

    /// Polls the job row until its status is one of `statuses` (or panics after `timeout`).
    pub async fn wait_for_job(
        &self,
        job_id: Uuid,
        statuses: &[&str],
        timeout: Duration,
    ) -> backend::jobs::store::JobRow {
        wait_for_job(&self.ctx.db, job_id, statuses, timeout).await
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

pub async fn wait_for_job(
    db: &sqlx::PgPool,
    job_id: Uuid,
    statuses: &[&str],
    timeout: Duration,
) -> backend::jobs::store::JobRow {
    let deadline = Instant::now() + timeout;
    loop {
        let row = backend::jobs::store::get(db, job_id)
            .await
            .expect("query")
            .expect("job exists");
        if statuses.contains(&row.status.as_str()) {
            return row;
        }
        assert!(
            Instant::now() < deadline,
            "job {job_id} still {} after {timeout:?}: {row:?}",
            row.status
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Options for [`spawn_app_with`].
#[derive(Default)]
pub struct Options {
    pub workers: bool,
    pub env: Vec<(&'static str, String)>,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(Options {
        workers: true,
        ..Options::default()
    })
    .await
}

pub async fn spawn_app_with(opts: Options) -> TestApp {
    spawn(opts, None).await
}

/// [`spawn_app_with`] on a manual notification clock (quiet hours, windows, the cap, digests), with
/// `NOTIFY_TICK_SECS=0` (the test moves the clock and calls `notify::tick::run_once` itself) and the default
/// 60-second coalescing window.
pub async fn spawn_app_with_clock(mut opts: Options, clock: backend::clock::Clock) -> TestApp {
    opts.env.insert(0, ("NOTIFY_TICK_SECS", "0".into()));
    opts.env.insert(0, ("NOTIFY_COALESCE_SECS", "60".into()));
    spawn(opts, Some(clock)).await
}

async fn spawn(opts: Options, clock: Option<backend::clock::Clock>) -> TestApp {
    if std::env::var_os("TEST_LOG").is_some() {
        backend::telemetry::init(
            "info",
            backend::settings::LogFormat::Pretty,
            backend::telemetry::LogTo::Stdout,
        );
    }
    let _ = backend::telemetry::prometheus();
    let db = TestDb::new().await;
    let namespace = format!("vortex-test-{}", Uuid::new_v4().simple());
    let mut env = base_env(&db, &namespace);
    // A known port, so links in emails point at this instance.
    let port = free_port();
    env.insert("BIND_ADDR".into(), format!("127.0.0.1:{port}"));
    env.insert("PUBLIC_URL".into(), format!("http://127.0.0.1:{port}"));
    for (k, v) in opts.env {
        env.insert(k.to_owned(), v);
    }
    let settings = Settings::from_map(&env).expect("test settings are valid");
    let mut ctx = Ctx::new(settings).expect("ctx");
    if let Some(clock) = clock {
        ctx = ctx.with_clock(clock);
    }
    let app = server::Application::build(ctx.clone()).await.expect("bind");
    let address = format!("http://127.0.0.1:{}", app.port());
    let (tx, rx) = watch::channel(false);
    tokio::spawn(app.run_until_stopped(rx.clone()));
    if opts.workers {
        tokio::spawn(backend::jobs::worker::run(ctx.clone(), rx));
    }
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    TestApp {
        address,
        client,
        ctx,
        shutdown: tx,
        _db: db,
    }
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A private `redis-server` that a test may stop and start.
pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
}

impl RedisServer {
    pub fn start(port: u16) -> Self {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed");
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not start on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            port,
            child: Some(child),
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The `vortex` binary built for these tests: `VORTEX_TEST_BIN` when set (a private copy, for runs that share a
/// target directory with other checkouts whose builds could replace `target/debug/vortex` meanwhile), else the
/// path the test runner names at run time (`NEXTEST_BIN_EXE_vortex`, `CARGO_BIN_EXE_vortex`), else the one
/// Cargo named at compile time.
pub fn vortex_bin() -> String {
    [
        "VORTEX_TEST_BIN",
        "NEXTEST_BIN_EXE_vortex",
        "CARGO_BIN_EXE_vortex",
    ]
    .iter()
    .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
    .unwrap_or_else(|| env!("CARGO_BIN_EXE_vortex").to_owned())
}

/// Runs the `vortex` command line against `app`'s database and Redis (nothing else in its environment):
/// (exit code, stdout, stderr).
pub fn vortex_cli(app: &TestApp, args: &[&str]) -> (i32, String, String) {
    vortex_cli_with(app, args, &[])
}

/// [`vortex_cli`] with more variables in its environment.
pub fn vortex_cli_with(
    app: &TestApp,
    args: &[&str],
    env: &[(&str, String)],
) -> (i32, String, String) {
    let s = &app.ctx.settings;
    let out = Command::new(vortex_bin())
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("APP_ENV", "test")
        .env("DATABASE_URL", s.database_url.expose_secret())
        .env("REDIS_URL", s.redis_url.expose_secret())
        .env("REDIS_NAMESPACE", &s.redis_namespace)
        .env("LOG_LEVEL", "warn")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .expect("run vortex");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A user inserted straight into the database (display name "Tess", time zone UTC) acting through an API
/// token of `scope`: the actor that action-level tests call backend actions with.
pub async fn api_actor(ctx: &Ctx, email: &str, role: Role, verified: bool, scope: Scope) -> Actor {
    let mut conn = ctx.db.acquire().await.unwrap();
    let id = users::insert(&mut conn, email, "Tess", "not-a-password-hash", role)
        .await
        .unwrap()
        .expect("new email");
    if verified {
        users::mark_verified(&mut conn, id).await.unwrap();
    }
    Actor::user(
        AuthUser {
            user_id: id,
            email: email.into(),
            display_name: "Tess".into(),
            role,
            email_verified: verified,
            time_zone: "UTC".into(),
            credential: Credential::ApiToken {
                token_id: Uuid::new_v4(),
                scope,
            },
        },
        Surface::Api,
        RequestMeta::new("127.0.0.1", "tests"),
        None,
    )
}

/// The mail provider's one-click unsubscribe (RFC 8058): a form POST of `List-Unsubscribe=One-Click` to `url`.
pub async fn one_click_unsubscribe(client: &reqwest::Client, url: &str) -> reqwest::Response {
    client
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap()
}
