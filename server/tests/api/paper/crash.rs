//! Paper trading under process death and a Redis restart, with the real `vortex worker` binary: a worker
//! SIGKILLed at random points of its jobs, 20 times, and a Redis that comes back empty. Each candle's effect
//! must take place exactly once: every run ends where a backtest of its window ends, with one event per fill.

use std::{
    collections::HashMap,
    fmt::Write as _,
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use backend::{
    market::Timeframe,
    paper::actions::{self as act, Owner},
};
use secrecy::ExposeSecret;
use uuid::Uuid;

use super::{SMA, fills, new_run, series, shifted, start, state, strategy, trader};
use crate::helpers::{Options, RedisServer, TestApp, free_port, spawn_app_with, vortex_bin};

/// A `vortex` child process, SIGKILLed when dropped.
struct Proc(Child);

impl Proc {
    fn start(args: &[&str], env: &HashMap<String, String>) -> Self {
        Self::start_logged(args, env, None)
    }

    /// Like [`Proc::start`], with the process's log (stderr) in `log`.
    fn start_logged(args: &[&str], env: &HashMap<String, String>, log: Option<&Path>) -> Self {
        let stderr = log.map_or_else(Stdio::null, |p| {
            Stdio::from(std::fs::File::create(p).expect("worker log file"))
        });
        let child = Command::new(vortex_bin())
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(env)
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("start vortex");
        Self(child)
    }

    /// SIGKILL: no shutdown hook, no rollback message, the connection just drops.
    fn kill(mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Jobs of 100 candles per run (a series takes many commits), short leases (a killed worker's job is
/// claimable again within three seconds) and attempts that kills do not exhaust.
const ENV: &[(&str, &str)] = &[
    ("MARKET_DATA_URL", "http://127.0.0.1:9"),
    ("PAPER_WARMUP_BARS", "100"),
    ("PAPER_TICK_SECS", "3600"),
    ("PAPER_CATCHUP_CANDLES", "100"),
    ("PAPER_MAX_ACTIVE_RUNS", "20"),
    ("JOB_HEARTBEAT_SECS", "1"),
    ("JOB_MISSED_HEARTBEATS", "3"),
    ("JOB_LEASE_SECS", "3"),
    ("JOB_RECONCILE_SECS", "1"),
    // Each kill costs the job an attempt (set when it is enqueued); a job given up would make its series wait
    // ten minutes for the paper tick (no retry storm). Here twenty kills must not exhaust it.
    ("JOB_MAX_ATTEMPTS", "100"),
];

/// The environment of a worker process on `app`'s database and Redis namespace.
fn worker_env(app: &TestApp, redis_url: &str) -> HashMap<String, String> {
    let s = &app.ctx.settings;
    let mut env: HashMap<String, String> = ENV
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    for (k, v) in [
        ("APP_ENV", "test"),
        ("LOG_LEVEL", "warn"),
        ("HOUSEKEEPING_INTERVAL_SECS", "0"),
    ] {
        env.insert(k.into(), v.into());
    }
    env.insert("METRICS_ADDR".into(), format!("127.0.0.1:{}", free_port()));
    env.insert("DATABASE_URL".into(), s.database_url.expose_secret().into());
    env.insert("REDIS_URL".into(), redis_url.into());
    env.insert("REDIS_NAMESPACE".into(), s.redis_namespace.clone());
    env
}

/// Stores `candles` and, in the same transaction, enqueues the series' `paper_advance` (as the ETL does).
async fn store_and_hook(app: &TestApp, inst: i32, candles: &engine::candles::Candles) {
    let mut tx = app.ctx.db.begin().await.unwrap();
    backend::market::store::upsert_candles(&mut tx, inst, candles)
        .await
        .unwrap();
    backend::paper::feed::candles_stored(&app.ctx.jobs, &mut tx, inst, Timeframe::M5)
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

/// Claims of `paper_advance` jobs so far (each claim adds an attempt), and how many of them are done.
async fn claims(app: &TestApp) -> (i64, i64) {
    sqlx::query_as(
        "select coalesce(sum(attempts), 0)::bigint, count(*) filter (where status = 'done')
           from job where kind = 'paper_advance'",
    )
    .fetch_one(&app.ctx.db)
    .await
    .unwrap()
}

/// `paper_advance` jobs held by a live worker now.
async fn running(app: &TestApp) -> i64 {
    sqlx::query_scalar(
        "select count(*) from job where kind = 'paper_advance' and status = 'running' and lease_until > now()",
    )
    .fetch_one(&app.ctx.db)
    .await
    .unwrap()
}

/// A job row as [`diagnose`] prints it: status, attempts, worker, last error, and run_at, pushed_at and
/// lease_until in seconds from now.
type JobDump = (
    String,
    i32,
    Option<String>,
    Option<String>,
    Option<f64>,
    Option<f64>,
    Option<f64>,
);

/// What Postgres and Redis hold for the paper queue, and the tails of the workers' logs in `logs`: printed when
/// a round finds nothing to claim, so a failure on CI can be explained from its output alone.
async fn diagnose(app: &TestApp, logs: &Path) -> String {
    let mut out = String::new();
    let jobs: Vec<JobDump> = sqlx::query_as(
        "select status, attempts, worker, last_error,
                    extract(epoch from run_at - now())::float8,
                    extract(epoch from pushed_at - now())::float8,
                    extract(epoch from lease_until - now())::float8
               from job where kind = 'paper_advance' and status <> 'done' order by enqueued_at",
    )
    .fetch_all(&app.ctx.db)
    .await
    .unwrap();
    let _ = writeln!(
        out,
        "unfinished paper_advance jobs (status, attempts, worker, last_error, run_at, pushed_at, lease_until; seconds from now): {jobs:#?}"
    );
    let config = app.ctx.jobs.apalis_config("paper");
    let mut conn = app.ctx.redis.get().await.unwrap();
    let active: Vec<String> = deadpool_redis::redis::cmd("LRANGE")
        .arg(config.active_jobs_list())
        .arg(0)
        .arg(-1)
        .query_async(&mut *conn)
        .await
        .unwrap_or_default();
    let workers: Vec<(String, f64)> = deadpool_redis::redis::cmd("ZRANGE")
        .arg(config.workers_set())
        .arg(0)
        .arg(-1)
        .arg("WITHSCORES")
        .query_async(&mut *conn)
        .await
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "redis active list: {active:?}\nredis workers (name, last heartbeat): {workers:?}"
    );
    for (name, _) in &workers {
        let inflight: Vec<String> = deadpool_redis::redis::cmd("SMEMBERS")
            .arg(format!("{}:{name}", config.inflight_jobs_set()))
            .query_async(&mut *conn)
            .await
            .unwrap_or_default();
        let _ = writeln!(out, "inflight of {name}: {inflight:?}");
    }
    let mut files: Vec<_> = std::fs::read_dir(logs)
        .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    for f in files.iter().rev().take(3).rev() {
        let text = std::fs::read_to_string(f).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = &lines[lines.len().saturating_sub(40)..];
        let _ = writeln!(
            out,
            "--- {} (last {} lines)\n{}",
            f.display(),
            tail.len(),
            tail.join("\n")
        );
    }
    out
}

/// Candles processed by `run` so far.
async fn processed(app: &TestApp, run: Uuid) -> i64 {
    sqlx::query_scalar("select count(*) from paper_candle where paper_run_id = $1")
        .bind(run)
        .fetch_one(&app.ctx.db)
        .await
        .unwrap()
}

/// Waits until every run has processed the candle opening at `last` (ms).
async fn wait_caught_up(app: &TestApp, runs: &[Uuid], last: i64, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let behind: i64 = sqlx::query_scalar(
            "select count(*) from paper_run
              where paper_run_id = any($1) and (last_open_time is null or last_open_time < $2)",
        )
        .bind(runs)
        .bind(backend::market::to_datetime(last))
        .fetch_one(&app.ctx.db)
        .await
        .unwrap();
        if behind == 0 {
            return;
        }
        let jobs: Vec<(String, i32, Option<String>)> = sqlx::query_as(
            "select status, attempts, last_error from job where kind = 'paper_advance' and status <> 'done'",
        )
        .fetch_all(&app.ctx.db)
        .await
        .unwrap();
        assert!(
            Instant::now() < deadline,
            "{behind} runs never caught up; unfinished jobs: {jobs:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every run equals a backtest of its window, the runs (same strategy and settings) equal one another, and
/// each fill has exactly one event.
async fn assert_exactly_once(
    app: &TestApp,
    owner: &backend::Actor,
    runs: &[Uuid],
    expected_candles: i64,
) {
    let first = fills(app, runs[0]).await;
    assert!(first.len() >= 4, "the strategy traded: {first:?}");
    for &run in runs {
        let (rows, _, _, _) = state(app, run).await;
        assert_eq!(rows, expected_candles, "every candle once for run {run}");
        assert_eq!(
            fills(app, run).await,
            first,
            "run {run} filled like the others"
        );
        let (events, distinct): (i64, i64) = sqlx::query_as(
            "select count(*), count(distinct dedupe_key) from notify_event
              where paper_run_id = $1 and event_type = 'paper.fill'",
        )
        .bind(run)
        .fetch_one(&app.ctx.db)
        .await
        .unwrap();
        assert_eq!((events, distinct), (first.len() as i64, first.len() as i64));
    }
    let report = act::parity(owner, &app.ctx, Owner::Me, runs[0])
        .await
        .unwrap();
    assert!(report.differences.is_empty(), "{:#?}", report.differences);
}

/// A tiny deterministic generator (the seed is printed, so a failure can be replayed).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

#[tokio::test]
async fn paper_a_worker_sigkilled_20_times_at_random_points_leaves_each_candle_effect_exactly_once()
{
    let app = spawn_app_with(Options {
        workers: false,
        env: ENV.iter().map(|(k, v)| (*k, (*v).to_owned())).collect(),
    })
    .await;
    let (history, live) = shifted("ETH-BTC-5m.csv", 1000);
    let inst = series(&app, &history).await;
    let ann = trader(&app, "ann@example.org").await;
    let sid = strategy(&app, &ann, SMA).await;
    // Twenty runs on the series: a job commits 100 candles × 20 runs at a time. A run goes live from its
    // start time floored to the timeframe (5 minutes): the twenty start within one such window (a start in the
    // next would expect one candle less), so within its last minute wait for the next.
    let into = chrono::Utc::now().timestamp_millis().rem_euclid(300_000);
    if into > 240_000 {
        tokio::time::sleep(Duration::from_millis(
            u64::try_from(300_000 - into + 500).unwrap(),
        ))
        .await;
    }
    let mut runs = Vec::new();
    for _ in 0..20 {
        runs.push(start(&app, &ann, &new_run(sid, inst)).await);
    }
    let live_from: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar("select live_from from paper_run where paper_run_id = $1")
            .bind(runs[0])
            .fetch_one(&app.ctx.db)
            .await
            .unwrap();
    let distinct: i64 = sqlx::query_scalar(
        "select count(distinct live_from) from paper_run where paper_run_id = any($1)",
    )
    .bind(&runs)
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    assert_eq!(distinct, 1, "the twenty runs start in one 5-minute window");
    // 1,000 candles to begin with; whenever the workers have caught up between kills, 40 more arrive, so
    // every round finds a job to die in.
    // 1,000 candles to begin with (ten commits of 100 per job), 180 more whenever a round finds the workers
    // caught up: at most 4,420 of the file's 4,760.
    let live = live.slice(0..4420);
    let mut stored = 1000;
    store_and_hook(&app, inst, &live.slice(0..stored)).await;

    let redis = app.ctx.settings.redis_url.expose_secret().to_owned();
    let env = worker_env(&app, &redis);
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    eprintln!("kill schedule seed: {seed}");
    let mut rng = Lcg(seed);
    let logs = tempfile::tempdir().unwrap();
    let mut env = env;
    env.insert(
        "LOG_LEVEL".into(),
        "warn,backend::jobs=debug,apalis_redis=debug".into(),
    );
    let mut mid_job = 0;
    for round in 0..20 {
        let unfinished: i64 = sqlx::query_scalar(
            "select count(*) from job where kind = 'paper_advance' and status <> 'done'",
        )
        .fetch_one(&app.ctx.db)
        .await
        .unwrap();
        if unfinished == 0 {
            store_and_hook(&app, inst, &live.slice(stored..stored + 180)).await;
            stored += 180;
        }
        let (claimed_before, _) = claims(&app).await;
        let processed_before = processed(&app, runs[0]).await;
        let worker = Proc::start_logged(
            &["worker", "--queues", "paper=1"],
            &env,
            Some(&logs.path().join(format!("worker-{round:02}.log"))),
        );
        // Wait for this worker's claim, then kill it somewhere inside the job (or just after it).
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (claimed, _) = claims(&app).await;
            if claimed > claimed_before {
                break;
            }
            if Instant::now() >= deadline {
                panic!(
                    "round {round}: no claim\n{}",
                    diagnose(&app, logs.path()).await
                );
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        if round < 14 {
            // The first 1,000 candles make a long job (warm-up and ten commits): up to 150 ms into it.
            tokio::time::sleep(Duration::from_millis(rng.below(150))).await;
        } else {
            // Later jobs are short: after 0, 1 or 2 of their commits (100 candles × 20 runs each), then up
            // to 40 ms more (inside the next commit's work, between two, or just after the last).
            let commits = rng.below(3) as i64;
            let deadline = Instant::now() + Duration::from_secs(20);
            while processed(&app, runs[0]).await < processed_before + commits * 100
                && running(&app).await > 0
                && Instant::now() < deadline
            {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            tokio::time::sleep(Duration::from_millis(rng.below(40))).await;
        }
        let inside = running(&app).await > 0;
        worker.kill();
        mid_job += usize::from(inside);
    }
    let live = live.slice(0..stored);
    let expected = live
        .time
        .iter()
        .filter(|&&t| t >= live_from.timestamp_millis())
        .count() as i64;
    eprintln!("{mid_job} of 20 kills landed while a job was running");
    let took: Vec<(i32, f64)> = sqlx::query_as(
        "select attempts, extract(epoch from finished_at - started_at)::float8 from job
          where kind = 'paper_advance' and status = 'done' order by finished_at",
    )
    .fetch_all(&app.ctx.db)
    .await
    .unwrap();
    eprintln!("jobs done (attempts, seconds from first claim): {took:?}");
    assert!(
        mid_job >= 10,
        "most kills must land inside a job for this test to mean anything: {mid_job}"
    );
    let interrupted = took.iter().filter(|(attempts, _)| *attempts > 1).count();
    eprintln!("{interrupted} finished jobs had been killed at least once");
    // A worker that lives finishes the series.
    let _worker = Proc::start(&["worker", "--queues", "paper=1"], &env);
    wait_caught_up(
        &app,
        &runs,
        *live.time.last().unwrap(),
        Duration::from_secs(180),
    )
    .await;
    assert_exactly_once(&app, &ann, &runs, expected).await;
}

#[tokio::test]
async fn paper_a_redis_restart_mid_run_loses_no_candle_and_doubles_none() {
    let mut redis = RedisServer::start(free_port());
    let app = spawn_app_with(Options {
        workers: false,
        env: ENV
            .iter()
            .map(|(k, v)| (*k, (*v).to_owned()))
            .chain([("REDIS_URL", redis.url())])
            .collect(),
    })
    .await;
    let (history, live) = shifted("ETH-BTC-5m.csv", 1000);
    let inst = series(&app, &history).await;
    let ann = trader(&app, "ann@example.org").await;
    let sid = strategy(&app, &ann, SMA).await;
    let runs = vec![
        start(&app, &ann, &new_run(sid, inst)).await,
        start(&app, &ann, &new_run(sid, inst)).await,
    ];
    let live_from: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar("select live_from from paper_run where paper_run_id = $1")
            .bind(runs[0])
            .fetch_one(&app.ctx.db)
            .await
            .unwrap();
    let live = live.slice(0..300);
    let env = worker_env(&app, &redis.url());
    let worker = Proc::start(&["worker", "--queues", "paper=1"], &env);
    // The first half arrives and is processed.
    store_and_hook(&app, inst, &live.slice(0..150)).await;
    wait_caught_up(&app, &runs, live.time[149], Duration::from_secs(60)).await;
    // Redis goes away (and comes back empty): candles stored meanwhile are enqueued in Postgres only.
    redis.stop();
    store_and_hook(&app, inst, &live.slice(150..220)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (rows, _, _, _) = state(&app, runs[0]).await;
    let done_before: i64 = live
        .time
        .iter()
        .take(150)
        .filter(|&&t| t >= live_from.timestamp_millis())
        .count() as i64;
    assert_eq!(rows, done_before, "nothing processed without Redis");
    let port = redis.port;
    drop(redis);
    let _redis = RedisServer::start(port);
    store_and_hook(&app, inst, &live.slice(220..300)).await;
    wait_caught_up(
        &app,
        &runs,
        *live.time.last().unwrap(),
        Duration::from_secs(90),
    )
    .await;
    drop(worker);
    let expected = live
        .time
        .iter()
        .filter(|&&t| t >= live_from.timestamp_millis())
        .count() as i64;
    assert_exactly_once(&app, &ann, &runs, expected).await;
}
