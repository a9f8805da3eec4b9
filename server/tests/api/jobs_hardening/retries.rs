//! Issue 11, item 15: retries with back-off scheduled from Postgres (a real SMTP outage), no retry
//! before its `run_at`, and redriving a dead job with `vortex jobs retry`.

use std::{
    process::Command,
    time::{Duration, Instant},
};

use backend::{
    Ctx,
    jobs::{MAIL_QUEUE, store},
    mail::{outbox, templates::Rendered},
    settings::Settings,
};
use chrono::{DateTime, Utc};
use tokio::sync::watch;
use uuid::Uuid;

use super::job;
use crate::{
    helpers::{Options, TestDb, base_env, spawn_app_with, vortex_bin, wait_for_job},
    smtp::SmtpSink,
};

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
    // Growth: an observed gap carries up to ~1.5 s of poll and scheduling latency on a busy machine, which
    // can hide one doubling (1 s late, then 2 s with −20 % jitter), never two.
    for w in gaps.windows(3) {
        if w[0] < 8.0 {
            assert!(w[2] > w[0], "back-off must grow: {gaps:?}");
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
