//! Issue 11, items 16 and 17: bounded re-delivery when workers (re)connect, a Redis that lost its
//! data, and queue separation with the real binary.

use std::{
    collections::HashMap,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use backend::{Ctx, jobs::MAIL_QUEUE, settings::Settings};
use tokio::sync::watch;
use uuid::Uuid;

use super::job;
use crate::helpers::{
    Options, TestDb, base_env, free_port, spawn_app_with, vortex_bin, wait_for_job,
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

/// A process that marked a job pushed in Postgres and died before the push reached Redis (a worker SIGKILLed
/// right after committing a job and its follow-up): when no worker holds a fetched task, the reconciler pushes
/// it again within seconds, not after the minute a delivery lost behind a busy queue is given.
#[tokio::test]
async fn a_job_marked_pushed_whose_push_never_reached_redis_is_delivered_within_seconds() {
    let app = spawn_app_with(Options {
        workers: false,
        env: vec![("JOB_RECONCILE_SECS", "1".to_owned())],
    })
    .await;
    let ns = app.ctx.settings.redis_namespace.clone();
    let (_tx, rx) = watch::channel(false);
    tokio::spawn(backend::jobs::worker::run(app.ctx.clone(), rx));
    // One job through the queue first, so its Redis keys exist (a queue whose keys vanished is another path).
    let first = app.ctx.jobs.new_job(
        MAIL_QUEUE,
        "send_email",
        serde_json::json!({ "email_id": Uuid::new_v4() }),
    );
    let first = app.ctx.jobs.enqueue(&first).await.unwrap().unwrap();
    app.wait_for_job(first, &["done"], Duration::from_secs(20))
        .await;
    let before = pushes(&ns, MAIL_QUEUE);
    // Taken for a push that never happened.
    let lost = Uuid::new_v4();
    sqlx::query(
        "insert into job (job_id, queue, kind, payload, status, attempts, pushed_at) \
         values ($1, 'mail', 'send_email', $2, 'queued', 0, now())",
    )
    .bind(lost)
    .bind(serde_json::json!({ "email_id": Uuid::new_v4() }))
    .execute(&app.ctx.db)
    .await
    .unwrap();
    let started = Instant::now();
    let row = app
        .wait_for_job(lost, &["done"], Duration::from_secs(50))
        .await;
    let took = started.elapsed();
    eprintln!("delivered {took:?} after the lost push");
    assert_eq!(row.attempts, 1);
    // 10 s after the mark (and the next 1 s pass), not the minute a queue with busy workers waits.
    assert!(
        took < Duration::from_secs(40),
        "delivered after {took:?}: the 60 s backstop, not the drained-queue check"
    );
    assert_eq!(pushes(&ns, MAIL_QUEUE), before + 1, "pushed once");
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
