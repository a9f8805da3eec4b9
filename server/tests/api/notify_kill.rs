//! Exactly-once delivery with a worker SIGKILLed mid-delivery (docs/design/notifications.md §4.4): the real
//! `vortex worker` binary sends a notification, the receiving end withholds its answer, the worker is killed
//! while it waits, and a second worker finishes the delivery.
//!
//! * Email: the SMTP sink withholds the `250` after `DATA`; the dropped connection discards the message (the
//!   relay never accepted it), so the second worker's send is the only one stored, with the deterministic
//!   `Message-ID`.
//! * Webhook: the receiver processed the request but its answer never arrived; the second attempt carries the
//!   same `webhook-id` (and body), which is what receivers deduplicate on.

use std::time::{Duration, Instant};

use backend::{
    Actor, Ctx,
    auth::{Role, Scope},
    notify::{
        self, Event,
        webhook::{self, NewWebhook},
    },
    settings::Settings,
};
use uuid::Uuid;

use crate::{
    helpers::{TestDb, base_env},
    processes::Proc,
    smtp::{SmtpSink, header},
    webhook_sink::WebhookSink,
};

async fn person(ctx: &Ctx, email: &str) -> Actor {
    crate::helpers::api_actor(ctx, email, Role::Trader, true, Scope::ReadWrite).await
}

async fn emit_test(ctx: &Ctx, user_id: Uuid) -> Uuid {
    let event = Event::sample("system.test", user_id).unwrap();
    let mut tx = ctx.db.begin().await.unwrap();
    let e = notify::emit(&mut tx, &ctx.jobs, &ctx.clock, &event)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    notify::push(&ctx.jobs, &[e]).await;
    e.event_id
}

/// The delivery of `event_id` on `channel` once its status is `want` (its id and attempts).
async fn delivery(ctx: &Ctx, event_id: Uuid, channel: &str, want: &str) -> (Uuid, i32) {
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let row: Option<(Uuid, String, i32)> = sqlx::query_as(
            "select delivery_id, status, attempts from notify_delivery where event_id = $1 and channel = $2",
        )
        .bind(event_id)
        .bind(channel)
        .fetch_optional(&ctx.db)
        .await
        .unwrap();
        if let Some((id, status, attempts)) = &row
            && status == want
        {
            return (*id, *attempts);
        }
        assert!(
            Instant::now() < deadline,
            "{channel} delivery: {row:?}, want {want}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn notif_kill_an_email_held_at_the_relay_when_its_worker_dies_is_sent_once_by_the_next_worker()
 {
    let db = TestDb::new().await;
    let sink = SmtpSink::start().await;
    let mut env = base_env(&db, &format!("vortex-test-{}", Uuid::new_v4().simple()));
    env.insert("SMTP_URL".into(), sink.url());
    let ctx = Ctx::new(Settings::from_map(&env).unwrap()).unwrap();
    let kit = person(&ctx, "kit@example.org").await;

    sink.hold_next();
    let event_id = emit_test(&ctx, kit.user_id().unwrap()).await;
    let mut first = Proc::start(&["worker"], &env);
    until("the relay to hold the message", || sink.held() == 1).await;
    first.sigkill();
    assert!(sink.messages().is_empty(), "the relay never accepted it");

    let _second = Proc::start(&["worker"], &env);
    let (delivery_id, _) = delivery(&ctx, event_id, "email", "sent").await;
    // Give a duplicate (the dead worker's orphaned job delivery) time to arrive and be ignored.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mails = sink.messages();
    assert_eq!(mails.len(), 1, "exactly one message: {mails:?}");
    let id = header(&mails[0], "Message-ID").unwrap();
    assert!(id.starts_with(&format!("<n-{delivery_id}@")), "{id}");
    let job_attempts: i32 = sqlx::query_scalar(
        "select attempts from job where kind = 'notify_email' and payload->>'delivery_id' = $1",
    )
    .bind(delivery_id.to_string())
    .fetch_one(&ctx.db)
    .await
    .unwrap();
    assert_eq!(job_attempts, 2, "one killed attempt, one that sent");
    let outbox: Vec<String> =
        sqlx::query_scalar("select status from email_outbox where delivery_id = $1")
            .bind(delivery_id)
            .fetch_all(&ctx.db)
            .await
            .unwrap();
    assert_eq!(outbox, ["sent"], "one outbox row, sent");
}

#[tokio::test]
async fn notif_kill_a_webhook_whose_answer_was_lost_is_retried_with_the_same_webhook_id() {
    let db = TestDb::new().await;
    let sink = WebhookSink::start().await;
    let mut env = base_env(&db, &format!("vortex-test-{}", Uuid::new_v4().simple()));
    env.insert(
        "WEBHOOK_ALLOW_HOSTS".into(),
        format!("127.0.0.1:{}", sink.port),
    );
    env.insert("WEBHOOK_TIMEOUT_SECS".into(), "30".into());
    let ctx = Ctx::new(Settings::from_map(&env).unwrap()).unwrap();
    let kit = person(&ctx, "kit@example.org").await;
    let created = webhook::create(
        &ctx,
        &kit,
        NewWebhook {
            name: "desk".into(),
            kind: "generic".into(),
            url: sink.url("/hook"),
            categories: vec!["system".into()],
        },
    )
    .await
    .expect("webhook created");

    sink.hold_next();
    let event_id = emit_test(&ctx, kit.user_id().unwrap()).await;
    let mut first = Proc::start(&["worker"], &env);
    until("the receiver to get the request", || {
        sink.received().len() == 1
    })
    .await;
    first.sigkill();

    let _second = Proc::start(&["worker"], &env);
    let got = sink.wait_for(2, Duration::from_secs(40)).await;
    let (_, attempts) = delivery(&ctx, event_id, "webhook", "sent").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let got_now = sink.received();
    assert_eq!(got_now.len(), 2, "one lost answer, one retry, nothing more");
    let ids: Vec<&str> = got
        .iter()
        .map(|r| r.header("webhook-id").unwrap())
        .collect();
    assert_eq!(ids[0], ids[1], "the retry carries the same webhook-id");
    assert_eq!(got[0].body, got[1].body, "and the same body");
    let secret = created
        .secret
        .as_deref()
        .expect("a generic webhook has a secret");
    assert!(got.iter().all(|r| r.verifies(secret)), "both signed");
    // A receiver deduplicating on webhook-id processed it once.
    let mut distinct = ids.clone();
    distinct.dedup();
    assert_eq!(distinct.len(), 1);
    assert!(attempts >= 1, "{attempts}");
    let sent: i64 = sqlx::query_scalar(
        "select count(*) from notify_delivery where event_id = $1 and channel = 'webhook' and status = 'sent'",
    )
    .bind(event_id)
    .fetch_one(&ctx.db)
    .await
    .unwrap();
    assert_eq!(sent, 1);
}
