//! Storm control (docs/design/notifications.md §4.3, §10 "coalescing (and cap, dedupe)"), on a manual clock with
//! real workers and the SMTP sink: a burst of one kind is one message after its window, listing at most
//! `NOTIFY_DIGEST_MAX_ITEMS` and "and N more"; the same event emitted twice is one delivery; more distinct
//! messages than the hourly cap send the cap, then one "N more" when the hour ends; criticals bypass the cap
//! and quiet hours. A webhook gets the burst as one `notification.batch` body.

use std::time::Duration;

use backend::{
    clock::Clock,
    notify::{
        Channel, Mode,
        catalogue::find,
        prefs::{self, DigestDoc, Preferences, QuietAction, QuietHours, RuleDoc, RuleSource},
        release::{self, BatchKind, Candidate, Decision},
        schedule::Frequency,
        tick,
        webhook::{self, NewWebhook},
    },
};
use uuid::Uuid;

use crate::{
    helpers::{Options, TestApp, spawn_app_with_clock},
    notify_volume::{emit, failed, fanned_out, person, settled, subject, unfold, z},
    smtp::SmtpSink,
    webhook_sink::WebhookSink,
};

async fn app(clock: &Clock) -> (TestApp, SmtpSink) {
    let (app, sink, _) = app_with_hooks(clock).await;
    (app, sink)
}

async fn app_with_hooks(clock: &Clock) -> (TestApp, SmtpSink, WebhookSink) {
    let sink = SmtpSink::start().await;
    let hooks = WebhookSink::start().await;
    let app = spawn_app_with_clock(
        Options {
            workers: true,
            env: vec![
                ("SMTP_URL", sink.url()),
                ("WEBHOOK_ALLOW_HOSTS", format!("127.0.0.1:{}", hooks.port)),
            ],
        },
        clock.clone(),
    )
    .await;
    (app, sink, hooks)
}

async fn count(app: &TestApp, sql: &str, user: Uuid) -> i64 {
    sqlx::query_scalar(sql)
        .bind(user)
        .fetch_one(&app.ctx.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn notify_storm_a_burst_is_one_message_and_a_duplicate_one_delivery() {
    let t0 = z("2027-03-10T12:00:00Z");
    let clock = Clock::manual(t0);
    let (app, sink, hooks) = app_with_hooks(&clock).await;
    let ann = person(&app, "ann@example.org", "UTC").await;
    let uid = ann.user_id().unwrap();
    // Backtest notifications also to a generic webhook, immediately.
    let hook = webhook::create(
        &app.ctx,
        &ann,
        NewWebhook {
            name: "Desk".into(),
            kind: "generic".into(),
            url: hooks.url("/hook"),
            categories: vec!["backtests".into()],
        },
    )
    .await
    .unwrap();
    let mut doc = prefs::get(&app.ctx, &ann).await.unwrap();
    doc.rules = vec![RuleDoc {
        category: "backtests".into(),
        event_type: "*".into(),
        channel: "webhook".into(),
        mode: Mode::Immediate,
        paper_run_id: None,
        source: RuleSource::User,
    }];
    prefs::put(&app.ctx, &ann, doc).await.unwrap();

    // 100 failed runs of one sweep within a second.
    let sweep = Uuid::new_v4();
    for i in 0..100 {
        emit(&app, &failed(uid, sweep, &format!("Sweep {i:03}"))).await;
        clock.advance(chrono::Duration::milliseconds(10));
    }
    fanned_out(&app).await;
    assert_eq!(
        count(
            &app,
            "select count(*) from notify_delivery where user_id = $1 and status = 'pending'
               and reason = 'coalesced'",
            uid
        )
        .await,
        200
    );
    // One window per destination: the address and the webhook.
    assert_eq!(
        count(
            &app,
            "select count(distinct batch_id) from notify_delivery where user_id = $1 and status = 'pending'",
            uid
        )
        .await,
        2
    );
    // Within the window nothing goes out.
    clock.set(t0 + chrono::Duration::seconds(30));
    assert_eq!(tick::run_once(&app.ctx).await.unwrap().messages, 0);
    // After it: one message.
    clock.set(t0 + chrono::Duration::seconds(61));
    let t = tick::run_once(&app.ctx).await.unwrap();
    assert_eq!((t.batches, t.messages, t.released), (2, 2, 0));
    let mail = sink
        .wait_for("ann@example.org", 1, Duration::from_secs(30))
        .await;
    let mail = unfold(&mail[0]);
    assert_eq!(subject(&mail), "Backtest failed (100)");
    assert!(mail.contains("Sweep 000") && mail.contains("Sweep 049"));
    assert!(!mail.contains("Sweep 050") && !mail.contains("Sweep 099"));
    assert!(mail.contains("and 50 more"), "{mail}");
    assert!(mail.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"));
    assert_eq!(
        count(
            &app,
            "select count(*) from notify_delivery where user_id = $1 and status = 'batched'",
            uid
        )
        .await,
        200
    );
    // The webhook got one message listing the same, signed, with its delivery's webhook-id.
    let got = hooks.wait_for(1, Duration::from_secs(30)).await;
    let body = got[0].json();
    assert_eq!(body["type"], "notification.batch");
    assert_eq!(body["data"]["total"], 100);
    assert_eq!(body["data"]["more"], 50);
    assert_eq!(body["data"]["items"].as_array().unwrap().len(), 50);
    assert_eq!(body["data"]["items"][0]["type"], "backtest.failed");
    assert!(got[0].verifies(hook.secret.as_deref().unwrap()));
    let message_id: Uuid = sqlx::query_scalar(
        "select delivery_id from notify_delivery where user_id = $1 and is_batch_message and channel = 'webhook'",
    )
    .bind(uid)
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    assert_eq!(
        got[0].header("webhook-id"),
        Some(format!("msg_{}", message_id.simple()).as_str())
    );

    // The same event twice (one dedupe key): one event, one delivery, one mail (a window of one is sent as
    // itself).
    let again = failed(uid, Uuid::new_v4(), "Twice");
    let e1 = emit(&app, &again).await;
    let e2 = emit(&app, &again).await;
    assert_eq!(e1, e2);
    fanned_out(&app).await;
    clock.advance(chrono::Duration::seconds(61));
    let t = tick::run_once(&app.ctx).await.unwrap();
    assert_eq!((t.messages, t.released), (0, 2));
    let all = settled(&sink, "ann@example.org").await;
    assert_eq!(all.len(), 2, "{all:?}");
    assert!(all.iter().any(|m| subject(m).contains("Twice")));
    let rows: i64 = sqlx::query_scalar(
        "select count(*) from notify_delivery where event_id = $1 and channel = 'email'",
    )
    .bind(e1)
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    assert_eq!(rows, 1);
    assert_eq!(hooks.wait_for(2, Duration::from_secs(30)).await.len(), 2);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(hooks.received().len(), 2);

    // The same message three times (no dedupe key): the first at once, the repeats held for one message.
    let mut doc = prefs::get(&app.ctx, &ann).await.unwrap();
    doc.rules.push(RuleDoc {
        category: "account".into(),
        event_type: "notify.email_undeliverable".into(),
        channel: "email".into(),
        mode: Mode::Immediate,
        paper_run_id: None,
        source: RuleSource::User,
    });
    prefs::put(&app.ctx, &ann, doc).await.unwrap();
    let test = backend::notify::Event::sample("notify.email_undeliverable", uid).unwrap();
    for _ in 0..3 {
        emit(&app, &test).await;
        fanned_out(&app).await;
    }
    assert_eq!(
        count(
            &app,
            "select count(*) from notify_delivery where user_id = $1 and status = 'pending'
               and reason = 'coalesced'",
            uid
        )
        .await,
        2
    );
    sink.wait_for("ann@example.org", 3, Duration::from_secs(30))
        .await;
    clock.advance(chrono::Duration::seconds(61));
    assert_eq!(tick::run_once(&app.ctx).await.unwrap().messages, 1);
    let all = sink
        .wait_for("ann@example.org", 4, Duration::from_secs(30))
        .await;
    assert!(
        all.iter()
            .any(|m| subject(m) == "Notify email undeliverable (2)"),
        "{:?}",
        all.iter().map(|m| subject(m)).collect::<Vec<_>>()
    );
    assert_eq!(settled(&sink, "ann@example.org").await.len(), 4);
}

#[tokio::test]
async fn notify_storm_the_hourly_cap_holds_the_rest_for_one_more_message_and_criticals_bypass() {
    let t0 = z("2027-03-10T12:00:00Z");
    let clock = Clock::manual(t0);
    let (app, sink) = app(&clock).await;
    let bob = person(&app, "bob@example.org", "UTC").await;
    let uid = bob.user_id().unwrap();

    // 25 failures of distinct sweeps: 25 windows, flushed together.
    for i in 0..25 {
        emit(&app, &failed(uid, Uuid::new_v4(), &format!("Solo {i:02}"))).await;
    }
    fanned_out(&app).await;
    let t1 = clock.advance(chrono::Duration::seconds(61));
    let t = tick::run_once(&app.ctx).await.unwrap();
    assert_eq!((t.batches, t.released, t.messages), (25, 20, 0));
    sink.wait_for("bob@example.org", 20, Duration::from_secs(60))
        .await;
    assert_eq!(settled(&sink, "bob@example.org").await.len(), 20);
    assert_eq!(
        count(
            &app,
            "select count(*) from notify_delivery where user_id = $1 and status = 'pending' and reason = 'capped'",
            uid
        )
        .await,
        5
    );

    // At the cap, a critical still goes out at once, in quiet hours too; a non-critical waits for the cap.
    let mut quiet = Preferences {
        rules: vec![],
        quiet_hours: QuietHours {
            enabled: true,
            start: "00:00".into(),
            end: "23:59".into(),
            action: QuietAction::Defer,
        },
        digest: DigestDoc {
            frequency: Frequency::Daily,
            weekday: 1,
            time: "08:00".into(),
        },
        time_zone: String::new(),
    };
    let mut tx = app.ctx.db.begin().await.unwrap();
    let schedule = prefs::schedule_of(&mut tx, uid).await.unwrap().unwrap();
    let volume = &app.ctx.settings.notify;
    let candidate = |ty: &'static str, critical: bool| Candidate {
        user_id: uid,
        channel: Channel::Email,
        webhook_id: None,
        spec: find(ty).unwrap(),
        critical,
        mode: Mode::Immediate,
        event_type: ty,
        coalesce_key: None,
        occurred_at: t1,
        paper_run_id: None,
        payload: None,
    };
    let now = clock.now();
    assert_eq!(
        release::decide(
            &mut tx,
            volume,
            now,
            &schedule,
            &candidate("security.token_created", true)
        )
        .await
        .unwrap(),
        Decision::Queue
    );
    assert!(matches!(
        release::decide(&mut tx, volume, now, &schedule, &candidate("system.test", false))
            .await
            .unwrap(),
        Decision::Batch { kind: BatchKind::Cap, flush_at, .. } if flush_at == t1 + chrono::Duration::hours(1)
    ));
    tx.rollback().await.unwrap();
    prefs::put(&app.ctx, &bob, quiet.clone()).await.unwrap();
    let mut tx = app.ctx.db.begin().await.unwrap();
    let schedule = prefs::schedule_of(&mut tx, uid).await.unwrap().unwrap();
    assert!(schedule.in_quiet(now));
    assert_eq!(
        release::decide(
            &mut tx,
            volume,
            now,
            &schedule,
            &candidate("kill_switch.thrown", true)
        )
        .await
        .unwrap(),
        Decision::Queue
    );
    assert!(matches!(
        release::decide(
            &mut tx,
            volume,
            now,
            &schedule,
            &candidate("system.test", false)
        )
        .await
        .unwrap(),
        Decision::Batch {
            kind: BatchKind::Quiet,
            ..
        }
    ));
    tx.rollback().await.unwrap();
    quiet.quiet_hours.enabled = false;
    prefs::put(&app.ctx, &bob, quiet).await.unwrap();

    // Not before the hour is over…
    clock.set(t1 + chrono::Duration::minutes(59));
    assert_eq!(tick::run_once(&app.ctx).await.unwrap().messages, 0);
    // …then one "5 more" message.
    clock.set(t1 + chrono::Duration::hours(1) + chrono::Duration::seconds(1));
    assert_eq!(tick::run_once(&app.ctx).await.unwrap().messages, 1);
    let all = sink
        .wait_for("bob@example.org", 21, Duration::from_secs(30))
        .await;
    let more: Vec<String> = all
        .iter()
        .filter(|m| subject(m) == "5 more notifications")
        .map(|m| unfold(m))
        .collect();
    assert_eq!(
        more.len(),
        1,
        "{:?}",
        all.iter().map(|m| subject(m)).collect::<Vec<_>>()
    );
    assert!(more[0].contains("- Backtest failed: 5"), "{}", more[0]);
    assert!(more[0].contains("/notifications"));
    assert_eq!(settled(&sink, "bob@example.org").await.len(), 21);
}

#[tokio::test]
async fn notify_tick_tells_admins_once_about_a_job_that_gave_up() {
    let clock = Clock::manual(z("2027-03-10T12:00:00Z"));
    let (app, sink) = app(&clock).await;
    let admin = person(&app, "root@example.org", "UTC").await;
    let admin_id = admin.user_id().unwrap();
    sqlx::query("update app_user set role = 'admin' where user_id = $1")
        .bind(admin_id)
        .execute(&app.ctx.db)
        .await
        .unwrap();
    let trader = person(&app, "t@example.org", "UTC").await;
    let job_id = Uuid::new_v4();
    sqlx::query(
        "insert into job (job_id, queue, kind, status, attempts, last_error, finished_at)
         values ($1, 'market', 'market_update', 'failed', 5, $2, now())",
    )
    .bind(job_id)
    .bind(format!("exchange answered 503 {}", "x".repeat(900)))
    .execute(&app.ctx.db)
    .await
    .unwrap();
    assert_eq!(tick::run_once(&app.ctx).await.unwrap().jobs_dead, 1);
    assert_eq!(tick::run_once(&app.ctx).await.unwrap().jobs_dead, 0);
    fanned_out(&app).await;
    let (title, body): (String, String) = sqlx::query_as(
        "select title, body from notification where user_id = $1 and event_type = 'admin.job_dead'",
    )
    .bind(admin_id)
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    assert_eq!(title, "Job gave up: market_update (market)");
    assert!(body.contains(&job_id.to_string()) && body.chars().count() < 800);
    assert_eq!(
        count(
            &app,
            "select count(*) from notification where user_id = $1",
            trader.user_id().unwrap()
        )
        .await,
        0
    );
    // By email after the coalescing window (admin.job_dead coalesces), as itself.
    clock.advance(chrono::Duration::seconds(61));
    assert_eq!(tick::run_once(&app.ctx).await.unwrap().released, 1);
    let mail = sink
        .wait_for("root@example.org", 1, Duration::from_secs(30))
        .await;
    assert_eq!(subject(&mail[0]), "Job gave up: market_update (market)");
}
