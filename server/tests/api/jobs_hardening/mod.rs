//! Issue 11, jobs and metrics: retries with back-off scheduled from Postgres (a real SMTP outage), bounded
//! re-delivery when workers (re)connect, queue separation with the real binary, metrics a worker exposes and
//! the alert rules need, retention by housekeeping, and what `/ready` and `/status` tell strangers.

use std::{
    collections::HashMap,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use backend::{
    Ctx,
    jobs::{MAIL_QUEUE, store},
    mail::{outbox, templates::Rendered},
    settings::Settings,
};
use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use serde_json::Value;
use tokio::sync::watch;
use uuid::Uuid;

use crate::{
    helpers::{
        OPS_TOKEN, Options, TestApp, TestDb, base_env, free_port, spawn_app_with, vortex_bin,
        wait_for_job,
    },
    smtp::SmtpSink,
};

/// A `vortex` child process, killed when dropped.
struct Proc(Child);

impl Proc {
    fn start(args: &[&str], env: &HashMap<String, String>) -> Self {
        let child = Command::new(vortex_bin())
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(env)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start vortex");
        Self(child)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Queues one outbox email (a real row and a `send_email` job) and pushes it, as the account routes do.
async fn queue_mail(ctx: &Ctx, to: &str) -> (Uuid, Uuid) {
    let mut tx = ctx.db.begin().await.unwrap();
    let rendered = Rendered {
        subject: "Hello".into(),
        text: "Hello there.".into(),
        html: "<p>Hello there.</p>".into(),
        template: "test",
    };
    let (email, job) = outbox::queue(&mut tx, &ctx.jobs, "vortex.test", None, to, rendered, None)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    ctx.jobs.push(MAIL_QUEUE, job).await;
    (email, job)
}

async fn job(ctx: &Ctx, id: Uuid) -> store::JobRow {
    store::get(&ctx.db, id).await.unwrap().unwrap()
}

// ----------------------------------------------------------------------------------------------------------
// 15. Retries
// ----------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_60s_smtp_outage_is_waited_out_with_growing_back_off_and_the_mail_is_then_delivered_once()
{
    let mut sink = SmtpSink::start().await;
    let app = spawn_app_with(Options {
        workers: true,
        env: vec![
            ("SMTP_URL", sink.url()),
            // Short test schedule: 1 s, 2 s, 4 s, 8 s, 16 s, then 20 s (capped), 9 attempts.
            (
                "JOB_RETRY_MAIL",
                "attempts=9,base_secs=1,max_secs=20".into(),
            ),
        ],
    })
    .await;
    sink.stop();
    let outage_start = Instant::now();
    let (email, id) = queue_mail(&app.ctx, "ray@example.org").await;

    // Watch the attempts: (attempt number, seconds since the outage began, run_at the failure scheduled).
    let mut seen: Vec<(i32, f64)> = Vec::new();
    let mut scheduled: Vec<DateTime<Utc>> = Vec::new();
    let mut last = 0;
    let mut restarted = false;
    loop {
        let row = job(&app.ctx, id).await;
        if row.attempts != last {
            last = row.attempts;
            seen.push((row.attempts, outage_start.elapsed().as_secs_f64()));
        }
        if row.status == "queued" && row.attempts > 0 && scheduled.len() < row.attempts as usize {
            scheduled.push(row.run_at);
        }
        if !restarted && outage_start.elapsed() >= Duration::from_secs(60) {
            sink.restart().await;
            restarted = true;
            eprintln!(
                "SMTP sink back after {:.1}s",
                outage_start.elapsed().as_secs_f64()
            );
        }
        if row.status == "done" || row.status == "failed" {
            break;
        }
        assert!(
            outage_start.elapsed() < Duration::from_secs(150),
            "no delivery: {row:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let row = job(&app.ctx, id).await;
    eprintln!("retry schedule observed (attempt, seconds after the outage began):");
    for (n, t) in &seen {
        eprintln!("  attempt {n} at {t:6.2}s");
    }
    assert_eq!(row.status, "done", "the mail survived the outage: {row:?}");
    let during: Vec<f64> = seen
        .iter()
        .filter(|(_, t)| *t < 60.0)
        .map(|(_, t)| *t)
        .collect();
    assert!(
        during.len() >= 5 && during.len() <= 8,
        "about six attempts in the minute, not five in ten seconds: {seen:?}"
    );
    // The gaps grow (×2 with at most 20 % jitter) until the cap, and never come early.
    let gaps: Vec<f64> = during.windows(2).map(|w| w[1] - w[0]).collect();
    for (i, g) in gaps.iter().enumerate() {
        let nominal = (2f64.powi(i as i32)).min(20.0);
        assert!(
            *g >= nominal * 0.8 - 0.05 && *g <= nominal + 1.5,
            "gap {i} was {g:.2}s, expected 80–100 % of {nominal}s: {gaps:?}"
        );
    }
    for w in gaps.windows(2) {
        if w[0] < 16.0 {
            assert!(w[1] > w[0], "back-off must grow: {gaps:?}");
        }
    }
    // Delivered after the sink came back, exactly once, and the outbox row says so.
    assert!(seen.last().unwrap().1 >= 60.0);
    let messages = sink
        .wait_for("ray@example.org", 1, Duration::from_secs(5))
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(sink.messages().len(), 1, "{messages:?}");
    let status: String = sqlx::query_scalar("select status from email_outbox where email_id = $1")
        .bind(email)
        .fetch_one(&app.ctx.db)
        .await
        .unwrap();
    assert_eq!(status, "sent");
}

#[tokio::test]
async fn a_retry_is_neither_pushed_nor_claimed_before_its_run_at() {
    let app = spawn_app_with(Options::default()).await;
    // A mail job whose first attempt failed; its retry is due in 30 s.
    let id = Uuid::new_v4();
    sqlx::query(
        "insert into job (job_id, queue, kind, status, attempts, run_at) \
         values ($1, 'mail', 'send_email', 'queued', 1, now() + interval '30 seconds')",
    )
    .bind(id)
    .execute(&app.ctx.db)
    .await
    .unwrap();
    assert!(
        !app.ctx.jobs.push(MAIL_QUEUE, id).await,
        "not due: not pushed"
    );
    // Even a stale copy of its id in Redis cannot run it early: the claim is refused.
    let claim = store::claim(&app.ctx.db, id, "test-worker", Duration::from_secs(10))
        .await
        .unwrap();
    assert!(matches!(claim, store::Claim::NotDue), "{claim:?}");
    let row = job(&app.ctx, id).await;
    assert_eq!(
        (row.status.as_str(), row.attempts, row.pushed_at),
        ("queued", 1, None)
    );
    // Once due, it is pushed exactly once.
    sqlx::query("update job set run_at = now() where job_id = $1")
        .bind(id)
        .execute(&app.ctx.db)
        .await
        .unwrap();
    assert!(app.ctx.jobs.push(MAIL_QUEUE, id).await);
    assert!(!app.ctx.jobs.push(MAIL_QUEUE, id).await, "already in Redis");
}

#[tokio::test]
async fn a_dead_mail_job_is_redriven_with_vortex_jobs_retry_and_delivered() {
    let mut sink = SmtpSink::start().await;
    let db = TestDb::new().await;
    let mut env = base_env(&db, &format!("vortex-test-{}", Uuid::new_v4().simple()));
    env.insert("SMTP_URL".into(), sink.url());
    env.insert(
        "JOB_RETRY_MAIL".into(),
        "attempts=2,base_secs=0.2,max_secs=1".into(),
    );
    let ctx = Ctx::new(Settings::from_map(&env).unwrap()).unwrap();
    let (_stop, rx) = watch::channel(false);
    tokio::spawn(backend::jobs::worker::run(ctx.clone(), rx));
    sink.stop();
    let (_, id) = queue_mail(&ctx, "dead@example.org").await;
    let row = wait_for_job(&ctx.db, id, &["failed"], Duration::from_secs(20)).await;
    assert_eq!(row.attempts, 2);
    sink.restart().await;

    let out = Command::new(vortex_bin())
        .args(["jobs", "retry", &id.to_string()])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(&env)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("queued again"));
    let row = wait_for_job(&ctx.db, id, &["done"], Duration::from_secs(20)).await;
    assert_eq!(row.attempts, 1, "a fresh attempt budget");
    sink.wait_for("dead@example.org", 1, Duration::from_secs(5))
        .await;
}

// ----------------------------------------------------------------------------------------------------------
// 16. Reconnect storms
// ----------------------------------------------------------------------------------------------------------

/// How many tasks were ever pushed to `queue` in Redis (apalis keeps each task's data until vacuumed, and
/// every push is a fresh task).
fn pushes(namespace: &str, queue: &str) -> i64 {
    redis_cli(&["HLEN", &format!("{namespace}:jobs:{queue}:data")])
        .parse()
        .unwrap()
}

/// `redis-cli` against the shared test Redis.
fn redis_cli(args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-p", "6379"])
        .args(args)
        .output()
        .expect("redis-cli is installed");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[tokio::test]
async fn workers_that_start_and_reconnect_repeatedly_deliver_each_unfinished_job_once() {
    let app = spawn_app_with(Options::default()).await; // no workers yet
    let ns = app.ctx.settings.redis_namespace.clone();
    // 20 mail jobs enqueued while no worker runs (each pushed once by the enqueue)...
    let mut ids = Vec::new();
    for _ in 0..20 {
        let new = app.ctx.jobs.new_job(
            MAIL_QUEUE,
            "send_email",
            serde_json::json!({ "email_id": Uuid::new_v4() }),
        );
        ids.push(app.ctx.jobs.enqueue(&new).await.unwrap().unwrap());
    }
    // ...5 whose worker died (lease expired; pushed before the lease began)...
    let mut dead = Vec::new();
    for _ in 0..5 {
        let id = Uuid::new_v4();
        sqlx::query(
            "insert into job (job_id, queue, kind, payload, status, attempts, worker, lease_until, pushed_at) \
             values ($1, 'mail', 'send_email', $2, 'running', 1, 'worker-gone', now() - interval '1 minute', now() - interval '2 minutes')",
        )
        .bind(id)
        .bind(serde_json::json!({ "email_id": Uuid::new_v4() }))
        .execute(&app.ctx.db)
        .await
        .unwrap();
        dead.push(id);
    }
    // ...one held by a live worker elsewhere and one whose retry is due only in an hour: neither is pushed.
    let (held, waiting) = (Uuid::new_v4(), Uuid::new_v4());
    sqlx::query(
        "insert into job (job_id, queue, kind, status, attempts, worker, lease_until, pushed_at) \
         values ($1, 'mail', 'send_email', 'running', 1, 'worker-alive', now() + interval '1 hour', now() - interval '1 minute')",
    )
    .bind(held)
    .execute(&app.ctx.db)
    .await
    .unwrap();
    sqlx::query(
        "insert into job (job_id, queue, kind, status, attempts, run_at) \
         values ($1, 'mail', 'send_email', 'queued', 1, now() + interval '1 hour')",
    )
    .bind(waiting)
    .execute(&app.ctx.db)
    .await
    .unwrap();
    assert_eq!(pushes(&ns, MAIL_QUEUE), 20);

    // A rolling deploy: three workers start at once, then all are replaced, three times over.
    for round in 0..3 {
        let mut stops = Vec::new();
        for _ in 0..3 {
            let ctx = Ctx::new((*app.ctx.settings).clone()).unwrap();
            let (tx, rx) = watch::channel(false);
            tokio::spawn(backend::jobs::worker::run(ctx, rx));
            stops.push(tx);
        }
        if round == 0 {
            for id in ids.iter().chain(&dead) {
                app.wait_for_job(*id, &["done"], Duration::from_secs(30))
                    .await;
            }
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
        for s in stops {
            let _ = s.send(true);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    let total = pushes(&ns, MAIL_QUEUE);
    eprintln!("pushes to Redis: {total} for 25 deliverable jobs, 9 worker starts");
    assert_eq!(
        total, 25,
        "each unfinished job delivered once (20 queued + 5 expired leases)"
    );
    for id in ids.iter().chain(&dead) {
        let row = job(&app.ctx, *id).await;
        assert_eq!(row.status, "done");
    }
    for id in &ids {
        assert_eq!(job(&app.ctx, *id).await.attempts, 1);
    }
    assert_eq!(job(&app.ctx, held).await.status, "running");
    let w = job(&app.ctx, waiting).await;
    assert_eq!((w.status.as_str(), w.pushed_at), ("queued", None));
}

#[tokio::test]
async fn a_redis_that_lost_its_data_gets_the_queued_jobs_again_from_postgres() {
    let app = spawn_app_with(Options::default()).await;
    let ns = app.ctx.settings.redis_namespace.clone();
    let mut ids = Vec::new();
    for _ in 0..3 {
        let new = app.ctx.jobs.new_job(
            MAIL_QUEUE,
            "send_email",
            serde_json::json!({ "email_id": Uuid::new_v4() }),
        );
        ids.push(app.ctx.jobs.enqueue(&new).await.unwrap().unwrap());
    }
    // The queue's Redis keys vanish (this namespace only: other tests share the server).
    let keys = redis_cli(&["KEYS", &format!("{ns}:*")]);
    assert!(!keys.is_empty());
    for k in keys.lines() {
        redis_cli(&["DEL", k]);
    }
    assert_eq!(pushes(&ns, MAIL_QUEUE), 0);
    let (_tx, rx) = watch::channel(false);
    tokio::spawn(backend::jobs::worker::run(app.ctx.clone(), rx));
    for id in &ids {
        let row = app
            .wait_for_job(*id, &["done"], Duration::from_secs(20))
            .await;
        assert_eq!(row.attempts, 1);
    }
    assert_eq!(pushes(&ns, MAIL_QUEUE), 3);
}

// ----------------------------------------------------------------------------------------------------------
// 17. Queue separation (the real binary)
// ----------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_worker_started_with_queues_mail_runs_mail_but_never_a_backtest() {
    let db = TestDb::new().await;
    let mut env = base_env(&db, &format!("vortex-test-{}", Uuid::new_v4().simple()));
    let metrics_port = free_port();
    env.insert("METRICS_ADDR".into(), format!("127.0.0.1:{metrics_port}"));
    let ctx = Ctx::new(Settings::from_map(&env).unwrap()).unwrap();

    // A bad queue list is refused before anything starts.
    let out = Command::new(vortex_bin())
        .args(["worker", "--queues", "mail=4,emails"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(&env)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown queue `emails`"));

    let backtest = ctx
        .jobs
        .enqueue(&ctx.jobs.new_job(
            "backtest",
            "backtest",
            serde_json::json!({ "backtest_run_id": Uuid::new_v4() }),
        ))
        .await
        .unwrap()
        .unwrap();
    let mail = ctx
        .jobs
        .enqueue(&ctx.jobs.new_job(
            MAIL_QUEUE,
            "send_email",
            serde_json::json!({ "email_id": Uuid::new_v4() }),
        ))
        .await
        .unwrap()
        .unwrap();
    let mail_worker = Proc::start(&["worker", "--queues", "mail=4"], &env);
    wait_for_job(&ctx.db, mail, &["done"], Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let row = job(&ctx, backtest).await;
    assert_eq!(
        (row.status.as_str(), row.attempts),
        ("queued", 0),
        "{row:?}"
    );

    // 18: the worker's /metrics shows its job metrics, the build info and the recorder's upkeep.
    let deadline = Instant::now() + Duration::from_secs(15);
    let text = loop {
        let text = reqwest::get(format!("http://127.0.0.1:{metrics_port}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if text.contains("metrics_upkeep_runs_total") || Instant::now() > deadline {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(
        text.contains(r#"jobs_total{queue="mail",kind="send_email",status="done"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            r#"vortex_build_info{{version="{}",git_sha="#,
            env!("CARGO_PKG_VERSION")
        )),
        "{text}"
    );
    assert!(
        text.contains("metrics_upkeep_runs_total"),
        "upkeep runs: {text}"
    );
    assert!(!text.contains(r#"queue="backtest""#), "{text}");
    drop(mail_worker);

    // A backtest worker picks it up (and fails it: there is no such run).
    let _bt = Proc::start(&["worker", "--queues", "backtest=1"], &env);
    let row = wait_for_job(
        &ctx.db,
        backtest,
        &["failed", "done"],
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(row.attempts, 1);
}

// ----------------------------------------------------------------------------------------------------------
// 18. Metrics the alert rules use
// ----------------------------------------------------------------------------------------------------------

fn repo_file(rel: &str) -> String {
    std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(rel),
    )
    .unwrap()
}

/// Metric names used in the `expr:` of the alert rules (histogram series mapped to their base name).
fn alert_metrics() -> Vec<String> {
    let rules = repo_file("monitoring/alerts.yml");
    let mut exprs = String::new();
    let mut in_expr = false;
    for line in rules.lines() {
        let t = line.trim_start();
        if let Some(rest) = t.strip_prefix("expr:") {
            exprs.push_str(rest);
            exprs.push('\n');
            in_expr = rest.trim() == "|";
        } else if in_expr && !t.contains(':') {
            exprs.push_str(t);
            exprs.push('\n');
        } else {
            in_expr = false;
        }
    }
    // Drop strings, label matchers (`{…}`), `by (…)` groupings and ranges (`[…]`).
    let mut cleaned = String::new();
    let (mut braces, mut brackets, mut in_str) = (0, 0, false);
    for c in exprs.chars() {
        match c {
            '"' => in_str = !in_str,
            _ if in_str => {}
            '{' => braces += 1,
            '}' => braces -= 1,
            '[' => brackets += 1,
            ']' => brackets -= 1,
            _ if braces > 0 || brackets > 0 => {}
            _ => cleaned.push(c),
        }
    }
    while let Some(at) = cleaned.find("by (") {
        let close = at + cleaned[at..].find(')').unwrap();
        cleaned.replace_range(at..=close, " ");
    }
    // Identifiers with an underscore that are not function calls are metric names.
    let mut names: Vec<String> = Vec::new();
    let mut word = String::new();
    let mut chars = cleaned.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_alphanumeric() || c == '_' {
            word.push(c);
            if chars
                .peek()
                .is_some_and(|n| n.is_ascii_alphanumeric() || *n == '_')
            {
                continue;
            }
            let rest: String = chars.clone().collect();
            let is_call = rest.trim_start().starts_with('(');
            let w = std::mem::take(&mut word);
            if w.contains('_') && !is_call && !w.starts_with(|c: char| c.is_ascii_digit()) {
                let base = w.strip_suffix("_bucket").unwrap_or(&w).to_owned();
                if !names.contains(&base) {
                    names.push(base);
                }
            }
        }
    }
    names
}

#[tokio::test]
async fn every_metric_the_alert_rules_use_is_emitted_and_the_etl_reports_its_lag() {
    use server::mock_exchange::MockExchange;
    let names = alert_metrics();
    assert!(
        names.contains(&"market_data_lag_seconds".to_owned()),
        "{names:?}"
    );
    assert!(names.contains(&"jobs_pending".to_owned()), "{names:?}");

    let mock = MockExchange::load(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/market"),
    )
    .unwrap();
    let addr = mock.spawn(([127, 0, 0, 1], 0).into()).await.unwrap();
    let app = spawn_app_with(Options {
        workers: true,
        env: vec![
            ("MARKET_DATA_URL", format!("http://{addr}")),
            ("MARKET_CHUNK_CANDLES", "2000".into()),
            ("MARKET_PAGE_LIMIT", "500".into()),
            ("MARKET_UPDATE_INTERVAL_SECS", "0".into()),
            ("MARKET_MAX_RETRIES", "0".into()),
            ("JOB_RETRY_MARKET", "base_secs=0.2,max_secs=1".into()),
        ],
    })
    .await;
    // An ETL run through the market queue (a chunk job on a worker), whose first attempt meets a 500.
    let client = backend::market::binance::BinanceClient::new(&app.ctx.settings.market).unwrap();
    let now = client.server_time().await.unwrap();
    let req = backend::market::etl::RunRequest {
        pair: backend::market::Pair::parse("ETH/BTC").unwrap(),
        timeframe: engine::candles::Timeframe::M5,
        mode: backend::market::etl::Mode::Backfill,
        from: Some(server::cli::parse_time("--from", "2018-01-11", false).unwrap()),
        to: Some(server::cli::parse_time("--to", "2018-01-11", true).unwrap()),
    };
    let run = backend::market::etl::plan_run(&app.ctx, &req, now)
        .await
        .unwrap();
    mock.set_faults(server::mock_exchange::Faults {
        server_errors: 1,
        ..Default::default()
    });
    for id in backend::market::etl::enqueue_run(&app.ctx, &run)
        .await
        .unwrap()
    {
        let row = app
            .wait_for_job(id, &["done"], Duration::from_secs(30))
            .await;
        assert_eq!(row.attempts, 2, "one 500, one success after the back-off");
    }
    // A few requests, so the HTTP metrics exist.
    for path in ["/health", "/status", "/nope"] {
        app.get(path).await;
    }
    let text = app.get("/metrics").await.text().await.unwrap();
    let lag_line = text
        .lines()
        .find(|l| l.starts_with(r#"market_data_lag_seconds{instrument="ETHBTC",timeframe="5m"}"#))
        .unwrap_or_else(|| panic!("no lag metric after an ETL run:\n{text}"));
    let lag: f64 = lag_line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(
        lag > 86_400.0,
        "candles from 2018 are years behind the mock's clock: {lag_line}"
    );

    // Metrics from outside the app (node_exporter, the backup script's textfile, Prometheus itself).
    let backup_script = repo_file("scripts/backup.sh");
    for name in &names {
        let external = name.starts_with("node_")
            || (name.starts_with("vortex_backup_") && backup_script.contains(name.as_str()));
        if external {
            continue;
        }
        assert!(
            text.lines().any(|l| l.starts_with(name.as_str())),
            "alert metric `{name}` is never emitted:\n{text}"
        );
    }

    // Prometheus scrapes the workers too, on the port the compose file gives them.
    let prom = repo_file("monitoring/prometheus.yml");
    assert!(prom.contains("job_name: vortex-worker"), "{prom}");
    let compose = repo_file("docker-compose.prod.yml");
    assert!(compose.contains("METRICS_ADDR: 0.0.0.0:9100"));
    let worker_job = &prom[prom.find("job_name: vortex-worker").unwrap()..];
    assert!(
        worker_job.contains("names: [worker, worker-backtest]")
            && worker_job.contains("port: 9100"),
        "{prom}"
    );
}

// ----------------------------------------------------------------------------------------------------------
// 14. Retention
// ----------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn housekeeping_prunes_sessions_audit_mail_jobs_and_failed_sign_ins_past_their_retention() {
    let app = spawn_app_with(Options {
        workers: true,
        env: vec![
            ("SESSION_RETENTION_DAYS", "7".into()),
            ("AUDIT_RETENTION_DAYS", "90".into()),
            ("FAILED_SIGNIN_RETENTION_DAYS", "3".into()),
            ("MAIL_RETENTION_DAYS", "10".into()),
            ("JOB_RETENTION_DAYS", "5".into()),
        ],
    })
    .await;
    let db = &app.ctx.db;
    let user = Uuid::new_v4();
    sqlx::query(
        "insert into app_user (user_id, email, password_hash) values ($1, 'keep@example.org', 'x')",
    )
    .bind(user)
    .execute(db)
    .await
    .unwrap();
    let sid = |c: char| c.to_string().repeat(64);
    // Sessions: expired 8 days ago (pruned), revoked 8 days ago (pruned), expired 6 days ago (kept), live (kept).
    for (id, expires, revoked) in [
        (sid('a'), "now() - interval '8 days'", "null"),
        (
            sid('b'),
            "now() + interval '1 day'",
            "now() - interval '8 days'",
        ),
        (sid('c'), "now() - interval '6 days'", "null"),
        (sid('d'), "now() + interval '1 day'", "null"),
    ] {
        sqlx::query(&format!(
            "insert into user_session (session_id, user_id, expires_at, revoked_at) values ($1, $2, {expires}, {revoked})"
        ))
        .bind(id)
        .bind(user)
        .execute(db)
        .await
        .unwrap();
    }
    // One-time tokens: used 8 days ago (pruned), fresh (kept).
    for (hash, used) in [
        (vec![1u8], "now() - interval '8 days'"),
        (vec![2u8], "null"),
    ] {
        sqlx::query(&format!(
            "insert into user_token (token_hash, user_id, purpose, expires_at, used_at) values ($1, $2, 'verify_email', now() + interval '1 day', {used})"
        ))
        .bind(hash)
        .bind(user)
        .execute(db)
        .await
        .unwrap();
    }
    // Audit: 100 days old (pruned), 80 days (kept); failed sign-ins 4 days (pruned) and 2 days (kept).
    for (event, age) in [
        ("signed_in", "100 days"),
        ("signed_in", "80 days"),
        ("signin_failed", "4 days"),
        ("signin_failed", "2 days"),
    ] {
        sqlx::query(&format!(
            "insert into audit_event (user_id, event, created_at) values ($1, $2, now() - interval '{age}')"
        ))
        .bind(user)
        .bind(event)
        .execute(db)
        .await
        .unwrap();
    }
    // Mail: sent 11 days ago (pruned), sent 9 days ago (kept), queued 30 days ago (kept: not finished).
    for (status, age) in [
        ("sent", "11 days"),
        ("sent", "9 days"),
        ("queued", "30 days"),
    ] {
        let id = Uuid::new_v4();
        sqlx::query(
            "insert into email_outbox (email_id, to_address, template, subject, body_text, body_html, message_id, status) \
             values ($1, 'keep@example.org', 't', 's', 'b', 'h', $2, $3)",
        )
        .bind(id)
        .bind(format!("<{id}@test>"))
        .bind(status)
        .execute(db)
        .await
        .unwrap();
        // updated_at is set by a trigger on update; age it with the trigger off for this session.
        sqlx::query("alter table email_outbox disable trigger email_outbox_set_updated_at")
            .execute(db)
            .await
            .unwrap();
        sqlx::query(&format!(
            "update email_outbox set updated_at = now() - interval '{age}' where email_id = $1"
        ))
        .bind(id)
        .execute(db)
        .await
        .unwrap();
        sqlx::query("alter table email_outbox enable trigger email_outbox_set_updated_at")
            .execute(db)
            .await
            .unwrap();
    }
    // Password-check reservations: 31 days old (pruned), 20 days old (kept: the 30-day known-client window
    // outlasts a shorter failed-sign-in retention).
    sqlx::query(
        "insert into auth_attempt (kind, account, client, outcome, created_at) values \
         ('signin', 'keep@example.org', '127.0.0.1', 'failed', now() - interval '31 days'), \
         ('signin', 'keep@example.org', '127.0.0.1', 'succeeded', now() - interval '20 days')",
    )
    .execute(db)
    .await
    .unwrap();
    // Jobs: finished 6 days ago (pruned), 4 days ago (kept).
    sqlx::query(
        "insert into job (job_id, queue, kind, status, finished_at) values \
         ($1, 'default', 'x', 'done', now() - interval '6 days'), ($2, 'default', 'x', 'failed', now() - interval '4 days')",
    )
    .bind(Uuid::new_v4())
    .bind(Uuid::new_v4())
    .execute(db)
    .await
    .unwrap();

    let id = backend::jobs::housekeeping::enqueue(&app.ctx, None, false)
        .await
        .unwrap()
        .unwrap();
    app.wait_for_job(id, &["done"], Duration::from_secs(20))
        .await;

    let count = |sql: &'static str| async move {
        sqlx::query_scalar::<_, i64>(sql)
            .fetch_one(db)
            .await
            .unwrap()
    };
    let sessions: Vec<String> =
        sqlx::query_scalar("select session_id from user_session order by 1")
            .fetch_all(db)
            .await
            .unwrap();
    assert_eq!(sessions, vec![sid('c'), sid('d')]);
    assert_eq!(count("select count(*) from user_token").await, 1);
    assert_eq!(
        count("select count(*) from audit_event where event = 'signed_in'").await,
        1
    );
    assert_eq!(
        count("select count(*) from audit_event where event = 'signin_failed'").await,
        1
    );
    assert_eq!(count("select count(*) from email_outbox").await, 2);
    assert_eq!(
        count("select count(*) from email_outbox where status = 'queued'").await,
        1
    );
    assert_eq!(count("select count(*) from job where kind = 'x'").await, 1);
    assert_eq!(count("select count(*) from auth_attempt").await, 1);
    let pruned: Value = sqlx::query_scalar("select pruned from housekeeping_run where job_id = $1")
        .bind(id)
        .fetch_one(db)
        .await
        .unwrap();
    assert_eq!(
        pruned,
        serde_json::json!({"jobs": 1, "sessions": 2, "one_time_tokens": 1, "failed_signins": 1, "auth_attempts": 1, "audit_events": 1, "emails": 1})
    );
}

// ----------------------------------------------------------------------------------------------------------
// 12. /ready and /status
// ----------------------------------------------------------------------------------------------------------

async fn app_with_dead_postgres() -> TestApp {
    spawn_app_with(Options {
        env: vec![(
            "DATABASE_URL",
            format!("postgres://postgres@127.0.0.1:{}/nope", free_port()),
        )],
        ..Options::default()
    })
    .await
}

#[tokio::test]
async fn ready_tells_strangers_only_ready_or_not_and_operators_why() {
    let app = app_with_dead_postgres().await;
    let resp = app.get("/ready").await;
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    let text = resp.text().await.unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap(),
        serde_json::json!({"status": "not_ready"})
    );

    let resp = app
        .client
        .get(app.url("/ready"))
        .bearer_auth(OPS_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["failing"], serde_json::json!(["postgres"]));
    assert!(body["checks"]["postgres"]["error"].is_string(), "{body}");

    let resp = app
        .client
        .get(app.url("/ready"))
        .bearer_auth("not-the-token")
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        serde_json::json!({"status": "not_ready"})
    );
}

#[tokio::test]
async fn the_status_api_hides_error_texts_and_job_counts_from_anyone_but_admins() {
    let app = app_with_dead_postgres().await;
    let resp = app
        .client
        .get(app.url("/api/status"))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["dependencies"][0]["name"], "postgres");
    assert_eq!(body["dependencies"][0]["ok"], false);
    assert_eq!(body["dependencies"][0]["detail"], "unavailable", "{body}");
    assert!(body["jobs"].is_null(), "{body}");
    let html = app.get("/status").await.text().await.unwrap();
    assert!(!html.contains("job-counts"));
    assert!(
        !html.contains("127.0.0.1"),
        "no internal address on the page"
    );
}

#[tokio::test]
async fn admins_see_job_counts_and_error_details_on_the_status_api() {
    let app = spawn_app_with(Options::default()).await;
    let hash = backend::auth::password::hash(crate::auth::PASSWORD.into())
        .await
        .unwrap();
    let mut conn = app.ctx.db.acquire().await.unwrap();
    backend::auth::users::insert(
        &mut conn,
        "root@example.org",
        "",
        &hash,
        backend::auth::Role::Admin,
    )
    .await
    .unwrap();
    drop(conn);
    let c = crate::auth::browser();
    crate::auth::sign_in(&app, &c, "root@example.org", crate::auth::PASSWORD).await;
    let body: Value = c
        .get(app.url("/api/status"))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(body["jobs"]["queued"].is_number(), "{body}");
}

#[tokio::test]
async fn ready_is_not_reachable_through_nginx() {
    let app = spawn_app_with(Options::default()).await;
    let port: u16 = app.address.rsplit(':').next().unwrap().parse().unwrap();
    let nginx = crate::nginx::Nginx::start(&[port]);
    let client = nginx.client_from("127.0.0.1");
    for path in ["/ready", "/ready/", "/ready?verbose=1", "//ready"] {
        let resp = client.get(nginx.https(path)).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{path}");
    }
    let resp = client.get(nginx.https("/health")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        app.get("/ready").await.status(),
        StatusCode::OK,
        "the app itself still answers"
    );
}
