//! The real `vortex` binary as separate processes: JSON logs carrying request ids into jobs, and a worker
//! killed with SIGKILL in the middle of a job (housekeeping, and a backtest while it stores its result).

use std::{
    collections::HashMap,
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use sqlx::Connection;
use uuid::Uuid;

use crate::helpers::{OPS_TOKEN, TestDb, base_env, free_port, vortex_bin, wait_for_job};

/// A running `vortex` process whose stdout (JSON log lines) is collected.
pub(crate) struct Proc {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Proc {
    pub(crate) fn start(args: &[&str], env: &HashMap<String, String>) -> Self {
        let mut child = Command::new(vortex_bin())
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(env)
            .env("LOG_FORMAT", "json")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start vortex");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let out = child.stdout.take().unwrap();
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        Self { child, lines }
    }

    fn logs(&self) -> Vec<serde_json::Value> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    async fn wait_for_log(
        &self,
        what: &str,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(l) = self.logs().into_iter().find(&pred) {
                return l;
            }
            assert!(
                Instant::now() < deadline,
                "no log line for {what}; got:\n{}",
                self.lines.lock().unwrap().join("\n")
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub(crate) fn sigkill(&mut self) {
        self.child.kill().expect("SIGKILL");
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `vortex serve` on a free port of `db`, once it answers `/health`: the process and its base URL.
async fn serving(db: &TestDb) -> (Proc, String) {
    let mut env = base_env(db, &format!("vortex-test-{}", Uuid::new_v4().simple()));
    let port = free_port();
    env.insert("BIND_ADDR".into(), format!("127.0.0.1:{port}"));
    let server = Proc::start(&["serve"], &env);
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while client.get(format!("{base}/health")).send().await.is_err() {
        assert!(Instant::now() < deadline, "server did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (server, base)
}

#[tokio::test]
async fn a_request_id_appears_in_the_request_logs_and_in_the_logs_of_the_job_it_enqueued() {
    let db = TestDb::new().await;
    let (server, base) = serving(&db).await;
    let client = reqwest::Client::new();
    let rid = format!("trace-{}", Uuid::new_v4().simple());
    let resp = client
        .post(format!("{base}/ops/jobs/housekeeping"))
        .bearer_auth(OPS_TOKEN)
        .header("x-request-id", &rid)
        .header("cookie", "session=super-secret-cookie")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let job_id = resp.json::<serde_json::Value>().await.unwrap()["job_id"]
        .as_str()
        .unwrap()
        .to_owned();

    let request_line = server
        .wait_for_log("request", |l| {
            l["message"] == "request" && l["span"]["request_id"] == rid.as_str()
        })
        .await;
    assert_eq!(request_line["status"], 202);
    let job_line = server
        .wait_for_log("job done", |l| {
            l["message"] == "job done" && l["span"]["job_id"] == job_id.as_str()
        })
        .await;
    assert_eq!(job_line["span"]["request_id"], rid.as_str(), "{job_line}");

    let all = server.lines.lock().unwrap().join("\n");
    assert!(!all.contains("super-secret-cookie"), "cookie logged");
    assert!(!all.contains(OPS_TOKEN), "token logged");
}

#[tokio::test]
async fn a_server_stopped_by_sigterm_has_written_every_log_line_when_it_exits() {
    // The log is written by a thread of its own, in batches (backend::telemetry): nothing logged before
    // the process ends is lost, up to its last line.
    let db = TestDb::new().await;
    let (mut server, base) = serving(&db).await;
    let client = reqwest::Client::new();
    let rid = format!("flush-{}", Uuid::new_v4().simple());
    for i in 0..200 {
        let resp = client
            .get(format!("{base}/health"))
            .header("x-request-id", format!("{rid}-{i}"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    }
    let status = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exited = tokio::task::spawn_blocking(move || {
        let status = server.child.wait().unwrap();
        (status, server)
    });
    let (status, server) = tokio::time::timeout(Duration::from_secs(30), exited)
        .await
        .expect("the server stops")
        .unwrap();
    assert!(status.success(), "{status}");
    // Its stdout is closed: the reader has everything once it caught up.
    let logged = |l: &serde_json::Value| {
        l["span"]["request_id"]
            .as_str()
            .is_some_and(|r| r.starts_with(&format!("{rid}-")))
            && l["message"] == "request"
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.logs().iter().filter(|l| logged(l)).count() < 200 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let logs = server.logs();
    assert_eq!(
        logs.iter().filter(|l| logged(l)).count(),
        200,
        "every request's line"
    );
    assert!(
        logs.iter()
            .any(|l| l["message"] == "SIGTERM received; shutting down"),
        "{logs:?}"
    );
    // Its very last line, logged just before the process writes out what its log thread holds and exits.
    assert_eq!(
        logs.last().unwrap()["message"],
        "vortex stopped",
        "{logs:?}"
    );
}

#[tokio::test]
async fn a_worker_killed_mid_job_leaves_the_effect_happening_exactly_once_after_a_new_worker_starts()
 {
    let db = TestDb::new().await;
    let namespace = format!("vortex-test-{}", Uuid::new_v4().simple());
    let env = base_env(&db, &namespace);
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    let settings = backend::settings::Settings::from_map(&env).unwrap();
    let ctx = backend::Ctx::new(settings).unwrap();

    // Something for housekeeping to prune, so its effect is visible.
    let old = Uuid::new_v4();
    sqlx::query("insert into job (job_id, queue, kind, status, finished_at) values ($1, 'default', 'x', 'done', now() - interval '60 days')")
        .bind(old)
        .execute(&pool)
        .await
        .unwrap();

    // Hold a lock that stops the job halfway through its transaction (after pruning, before recording).
    let mut blocker = sqlx::PgConnection::connect(&db.url).await.unwrap();
    sqlx::query("begin").execute(&mut blocker).await.unwrap();
    sqlx::query("lock table housekeeping_run in access exclusive mode")
        .execute(&mut blocker)
        .await
        .unwrap();

    let job = backend::jobs::housekeeping::enqueue(&ctx, None, false)
        .await
        .unwrap()
        .unwrap();
    let mut first = Proc::start(&["worker"], &env);
    wait_for_job(&pool, job, &["running"], Duration::from_secs(20)).await;
    // Wait until the job's transaction is blocked on our lock, i.e. truly mid-job.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "select count(*) from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        if waiting > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "job never reached the lock");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    first.sigkill();
    sqlx::query("rollback").execute(&mut blocker).await.unwrap();

    // The killed worker's half-done transaction never committed.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let runs: i64 = sqlx::query_scalar("select count(*) from housekeeping_run")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(runs, 0);
    assert!(
        backend::jobs::store::get(&pool, old)
            .await
            .unwrap()
            .is_some(),
        "prune was rolled back"
    );

    let _second = Proc::start(&["worker"], &env);
    let row = wait_for_job(&pool, job, &["done"], Duration::from_secs(30)).await;
    assert_eq!(row.attempts, 2, "one killed attempt, one successful");
    // Give duplicate deliveries (the dead worker's orphaned inflight set) time to arrive and be ignored.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let runs: Vec<(Uuid, i64)> = sqlx::query_as("select job_id, jobs_pruned from housekeeping_run")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(runs, vec![(job, 1)], "effect happened exactly once");
    assert!(
        backend::jobs::store::get(&pool, old)
            .await
            .unwrap()
            .is_none()
    );
    pool.close().await;
}

#[tokio::test]
async fn a_worker_process_serves_health_and_its_job_metrics_on_metrics_addr() {
    let db = TestDb::new().await;
    let mut env = base_env(&db, &format!("vortex-test-{}", Uuid::new_v4().simple()));
    let port = free_port();
    env.insert("METRICS_ADDR".into(), format!("127.0.0.1:{port}"));
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    let ctx = backend::Ctx::new(backend::settings::Settings::from_map(&env).unwrap()).unwrap();
    let _worker = Proc::start(&["worker"], &env);
    let job = backend::jobs::housekeeping::enqueue(&ctx, None, false)
        .await
        .unwrap()
        .unwrap();
    wait_for_job(&pool, job, &["done"], Duration::from_secs(20)).await;
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let health = client.get(format!("{base}/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    // The worker counts the job after its commit, so the row can say `done` a moment before the counter does.
    let line = r#"jobs_total{queue="default",kind="housekeeping",status="done"} 1"#;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let text = loop {
        let text = client
            .get(format!("{base}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if text.contains(line) || std::time::Instant::now() > deadline {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(text.contains(line), "{text}");
    assert!(text.contains("# HELP jobs_total"), "{text}");
    pool.close().await;
}

/// A user, the `macd` strategy and the ETH/BTC 5m candles, created directly through the backend.
async fn backtest_fixture(pool: &sqlx::PgPool) -> (Uuid, Uuid, i32) {
    let user = Uuid::new_v4();
    sqlx::query(
        "insert into app_user (user_id, email, password_hash, email_verified_at) values ($1, 'kim@example.org', 'x', now())",
    )
    .bind(user)
    .execute(pool)
    .await
    .unwrap();
    let strategy = backend::backtest::strategies::create(
        pool,
        user,
        backend::backtest::strategies::NewStrategy {
            template: Some("macd".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/market/ETH-BTC-5m.csv");
    let imported = backend::market::csv_import::import_file(
        pool,
        &path,
        &backend::market::csv_import::ImportOptions {
            exchange: "demo".into(),
            pair: backend::market::Pair::parse("ETH/BTC").unwrap(),
            timeframe: None,
            skip_bad_rows: false,
        },
    )
    .await
    .unwrap();
    (user, strategy, imported.instrument_id)
}

/// Waits until a backend of this database waits for a lock while running a statement that starts with `query`;
/// returns its pid.
async fn blocked_on(pool: &sqlx::PgPool, query: &str) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let pid: Option<i32> = sqlx::query_scalar(
            r#"select pid from pg_stat_activity
               where datname = current_database() and wait_event_type = 'Lock'
                 and ltrim(query) like $1 || '%'"#,
        )
        .bind(query)
        .fetch_optional(pool)
        .await
        .unwrap();
        if let Some(pid) = pid {
            return pid;
        }
        assert!(
            Instant::now() < deadline,
            "nothing ever waited in `{query}`"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_worker_killed_while_storing_a_backtest_result_leaves_exactly_one_result_after_a_new_worker_runs_it()
 {
    let db = TestDb::new().await;
    let namespace = format!("vortex-test-{}", Uuid::new_v4().simple());
    let env = base_env(&db, &namespace);
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    let ctx = backend::Ctx::new(backend::settings::Settings::from_map(&env).unwrap()).unwrap();
    let (user, strategy, instrument) = backtest_fixture(&pool).await;

    // Stop the job at the start of its final transaction: inserting the result waits for this table lock.
    let mut table_lock = sqlx::PgConnection::connect(&db.url).await.unwrap();
    sqlx::query("begin").execute(&mut table_lock).await.unwrap();
    sqlx::query("lock table backtest_result in share mode")
        .execute(&mut table_lock)
        .await
        .unwrap();

    let created = backend::backtest::runs::create(
        &ctx,
        user,
        &backend::backtest::runs::NewRun {
            strategy_id: strategy,
            version: None,
            params: vec![],
            instrument_ids: vec![instrument],
            timeframe: "5m".into(),
            from: "2018-01-11".into(),
            to: "2018-01-20".into(),
            initial_cash: 10_000.0,
            fee: 0.001,
            slippage_bps: 0.0,
            fill: "next_open".into(),
        },
        None,
    )
    .await
    .unwrap();
    let run = created.run_ids[0];
    let job: Uuid =
        sqlx::query_scalar("select job_id from backtest_run where backtest_run_id = $1")
            .bind(run)
            .fetch_one(&pool)
            .await
            .unwrap();

    let mut first = Proc::start(&["worker"], &env);
    blocked_on(&pool, "insert into backtest_result").await;
    // Now hold the run row (compatible with the result's foreign-key check, not with updating the row) and let
    // the result and its trades be inserted: the job then waits in `update backtest_run set status = 'done'`,
    // the last statement before the job row is marked done.
    let mut row_lock = sqlx::PgConnection::connect(&db.url).await.unwrap();
    sqlx::query("begin").execute(&mut row_lock).await.unwrap();
    sqlx::query("select 1 from backtest_run where backtest_run_id = $1 for no key update")
        .bind(run)
        .execute(&mut row_lock)
        .await
        .unwrap();
    sqlx::query("rollback")
        .execute(&mut table_lock)
        .await
        .unwrap();
    let pid = blocked_on(&pool, "update backtest_run set status = 'done'").await;
    // That transaction has written the result and the trades.
    let written: Vec<String> = sqlx::query_scalar(
        r#"select c.relname::text from pg_locks l join pg_class c on c.oid = l.relation
           where l.pid = $1 and l.mode = 'RowExclusiveLock' and c.relname in ('backtest_result', 'backtest_trade_chunk')
           order by 1"#,
    )
    .bind(pid)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(written, ["backtest_result", "backtest_trade_chunk"]);

    first.sigkill();
    sqlx::query("rollback")
        .execute(&mut row_lock)
        .await
        .unwrap();

    // Nothing of the killed attempt was committed.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let results: i64 = sqlx::query_scalar("select count(*) from backtest_result")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(results, 0);
    let status: String =
        sqlx::query_scalar("select status from backtest_run where backtest_run_id = $1")
            .bind(run)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(status, "running");

    let _second = Proc::start(&["worker"], &env);
    let row = wait_for_job(&pool, job, &["done"], Duration::from_secs(30)).await;
    assert_eq!(row.attempts, 2, "one killed attempt, one successful");
    // Give duplicate deliveries (the dead worker's orphaned inflight set) time to arrive and be ignored.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (status, trade_count): (String, i32) =
        sqlx::query_as("select status, trade_count from backtest_run where backtest_run_id = $1")
            .bind(run)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(status, "done");
    let results: Vec<Uuid> =
        sqlx::query_scalar("select job_id from backtest_result where backtest_run_id = $1")
            .bind(run)
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(results, [job], "exactly one result");
    let (trades, distinct): (i64, i64) = sqlx::query_as(
        "select count(*), count(distinct seq) from backtest_trade where backtest_run_id = $1",
    )
    .bind(run)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(trade_count > 0);
    assert_eq!(
        (trades, distinct),
        (i64::from(trade_count), i64::from(trade_count))
    );
    pool.close().await;
}
