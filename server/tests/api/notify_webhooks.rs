//! Notifications, step 3 (docs/design/notifications.md §6, §10): webhooks against real Postgres, Redis and
//! in-process workers, delivering to a local receiver ([`WebhookSink`]). The sink listens on 127.0.0.1, which
//! the SSRF guard refuses, so these instances allow-list exactly its `host:port` (`WEBHOOK_ALLOW_HOSTS`) and
//! nothing else on the loopback interface.

use std::time::{Duration, Instant};

use backend::{
    Actor, Error,
    auth::{Role, Scope},
    notify::{
        self, Event,
        webhook::{self, NewWebhook},
    },
};
use uuid::Uuid;

use crate::{
    helpers::{Options, TestApp, spawn_app_with},
    webhook_sink::WebhookSink,
};

async fn person(app: &TestApp, email: &str) -> Actor {
    crate::helpers::api_actor(&app.ctx, email, Role::Trader, true, Scope::ReadWrite).await
}

async fn app_with_sink(extra: Vec<(&'static str, String)>) -> (TestApp, WebhookSink) {
    let sink = WebhookSink::start().await;
    let mut env = vec![
        ("WEBHOOK_ALLOW_HOSTS", format!("127.0.0.1:{}", sink.port)),
        (
            "WEBHOOK_TEST_HOSTS",
            "loopback.test=127.0.0.1,rebind.test=127.0.0.1".to_owned(),
        ),
        ("WEBHOOK_TIMEOUT_SECS", "5".to_owned()),
        (
            "JOB_RETRY_WEBHOOK",
            "attempts=4,base_secs=0.2,max_secs=0.5".to_owned(),
        ),
    ];
    env.extend(extra);
    let app = spawn_app_with(Options { workers: true, env }).await;
    (app, sink)
}

async fn create(
    app: &TestApp,
    actor: &Actor,
    name: &str,
    kind: &str,
    url: String,
) -> webhook::Created {
    webhook::create(
        &app.ctx,
        actor,
        NewWebhook {
            name: name.into(),
            kind: kind.into(),
            url,
            categories: vec!["system".into()],
        },
    )
    .await
    .expect("webhook created")
}

/// Emits a `system.test` event for the actor and pushes its fan-out.
async fn emit_test(app: &TestApp, actor: &Actor) -> Uuid {
    let ctx = &app.ctx;
    let event = Event::sample("system.test", actor.user_id().unwrap()).unwrap();
    let mut tx = ctx.db.begin().await.unwrap();
    let e = notify::emit(&mut tx, &ctx.jobs, &ctx.clock, &event)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    notify::push(&ctx.jobs, &[e]).await;
    e.event_id
}

/// Waits until the delivery of `event_id` to `webhook_id` has one of `statuses`.
async fn wait_delivery(
    app: &TestApp,
    event_id: Uuid,
    webhook_id: Uuid,
    statuses: &[&str],
) -> (String, i32) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let row: Option<(String, i32)> = sqlx::query_as(
            "select status, attempts from notify_delivery where event_id = $1 and webhook_id = $2",
        )
        .bind(event_id)
        .bind(webhook_id)
        .fetch_optional(&app.ctx.db)
        .await
        .unwrap();
        if let Some(r) = &row
            && statuses.contains(&r.0.as_str())
        {
            return r.clone();
        }
        assert!(Instant::now() < deadline, "delivery still {row:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the owner has `n` in-app `notify.webhook_disabled` notifications.
async fn wait_disabled_notice(app: &TestApp, actor: &Actor, n: i64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got: i64 = sqlx::query_scalar(
            "select count(*) from notification where user_id = $1 and event_type = 'notify.webhook_disabled'",
        )
        .bind(actor.user_id().unwrap())
        .fetch_one(&app.ctx.db)
        .await
        .unwrap();
        if got == n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{got} webhook_disabled notices, want {n}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn webhook_state(app: &TestApp, id: Uuid) -> (Option<String>, i32) {
    sqlx::query_as(
        "select disabled_reason, consecutive_failures from notify_webhook where webhook_id = $1",
    )
    .bind(id)
    .fetch_one(&app.ctx.db)
    .await
    .unwrap()
}

#[tokio::test]
async fn webhook_slack_discord_and_generic_bodies_arrive_and_the_generic_one_verifies() {
    let (app, sink) = app_with_sink(vec![]).await;
    let wes = person(&app, "wes@example.org").await;
    let slack = create(&app, &wes, "team", "slack", sink.url("/slack/T0/B0/x9Qe")).await;
    let discord = create(&app, &wes, "guild", "discord", sink.url("/discord/1/abc")).await;
    let generic = create(&app, &wes, "mine", "generic", sink.url("/generic")).await;
    assert!(slack.secret.is_none() && discord.secret.is_none());
    let secret = generic.secret.clone().expect("generic secret shown once");
    assert!(secret.starts_with("whsec_"));
    assert_eq!(
        generic.webhook.url_hint,
        format!("http://127.0.0.1:{}/…/eric", sink.port)
    );

    // Listing never shows the URL or the secret.
    let listed = webhook::list(&app.ctx, &wes).await.unwrap();
    assert_eq!(listed.len(), 3);
    let json = serde_json::to_string(&listed).unwrap();
    assert!(!json.contains("/slack/T0/B0") && !json.contains("whsec_"));

    let event_id = emit_test(&app, &wes).await;
    for h in [&slack, &discord, &generic] {
        wait_delivery(&app, event_id, h.webhook.id, &["sent"]).await;
    }
    let got = sink.wait_for(3, Duration::from_secs(5)).await;
    assert_eq!(got.len(), 3, "one request per destination");
    let by_path = |p: &str| got.iter().find(|r| r.path.starts_with(p)).unwrap().clone();

    let s = by_path("/slack");
    let body = s.json();
    assert!(body["text"].as_str().unwrap().contains("Test notification"));
    assert_eq!(body["blocks"][0]["type"], "header");

    let d = by_path("/discord");
    assert_eq!(d.query.as_deref(), Some("wait=true"));
    let body = d.json();
    assert_eq!(body["allowed_mentions"], serde_json::json!({"parse": []}));
    assert!(body["content"].as_str().unwrap().chars().count() <= 2000);
    assert_eq!(body["embeds"].as_array().unwrap().len(), 1);

    let g = by_path("/generic");
    assert!(
        g.verifies(&secret),
        "signature verifies with the secret shown at creation"
    );
    assert!(!g.verifies(&backend::notify::webhook::sign::generate_secret()));
    let body = g.json();
    assert_eq!(body["type"], "system.test");
    assert_eq!(body["data"]["event_id"], serde_json::json!(event_id));
    assert_eq!(body["data"]["category"], "system");
    let delivery_id: Uuid = sqlx::query_scalar(
        "select delivery_id from notify_delivery where event_id = $1 and webhook_id = $2",
    )
    .bind(event_id)
    .bind(generic.webhook.id)
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    assert_eq!(
        g.header("webhook-id").unwrap(),
        format!("msg_{}", delivery_id.simple())
    );

    // The test action sends one more, now.
    let t = webhook::test(&app.ctx, &wes, generic.webhook.id)
        .await
        .unwrap();
    assert!(t.ok && t.http_status == Some(200));
    let got = sink.wait_for(4, Duration::from_secs(5)).await;
    assert!(got[3].verifies(&secret));

    // Audit entries for create and test; delete removes it.
    webhook::delete(&app.ctx, &wes, slack.webhook.id)
        .await
        .unwrap();
    let audits: i64 = sqlx::query_scalar(
        "select count(*) from audit_event where event in ('webhook_created', 'webhook_tested', 'webhook_deleted')",
    )
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    assert_eq!(audits, 5);
    assert_eq!(webhook::list(&app.ctx, &wes).await.unwrap().len(), 2);
}

#[tokio::test]
async fn webhook_a_500_then_200_is_retried_into_exactly_one_delivery() {
    let (app, sink) = app_with_sink(vec![]).await;
    let wes = person(&app, "wes@example.org").await;
    let h = create(&app, &wes, "mine", "generic", sink.url("/hook")).await;
    sink.script(&[(500, None)]);
    let event_id = emit_test(&app, &wes).await;
    let (_, attempts) = wait_delivery(&app, event_id, h.webhook.id, &["sent"]).await;
    assert_eq!(attempts, 2);
    let got = sink.received();
    assert_eq!(got.len(), 2);
    assert_eq!(
        got[0].header("webhook-id"),
        got[1].header("webhook-id"),
        "same id on a retry"
    );
    let secret = h.secret.unwrap();
    assert!(got.iter().all(|r| r.verifies(&secret)));
    let outcomes: Vec<String> = sqlx::query_scalar(
        "select a.outcome from notify_attempt a join notify_delivery d using (delivery_id)
         where d.event_id = $1 and d.channel = 'webhook' order by a.attempt_id",
    )
    .bind(event_id)
    .fetch_all(&app.ctx.db)
    .await
    .unwrap();
    assert_eq!(outcomes, ["retry", "ok"]);
    assert_eq!(webhook_state(&app, h.webhook.id).await, (None, 0));

    // During a rotation every message carries two signatures: the new secret's and the old one's.
    let new_secret = webhook::rotate_secret(&app.ctx, &wes, h.webhook.id)
        .await
        .unwrap();
    assert_ne!(new_secret, secret);
    let next = emit_test(&app, &wes).await;
    wait_delivery(&app, next, h.webhook.id, &["sent"]).await;
    let last = sink.received().pop().unwrap();
    assert_eq!(
        last.header("webhook-signature").unwrap().split(' ').count(),
        2
    );
    assert!(last.verifies(&new_secret) && last.verifies(&secret));
}

#[tokio::test]
async fn webhook_429_retry_after_is_honoured() {
    let (app, sink) = app_with_sink(vec![]).await;
    let wes = person(&app, "wes@example.org").await;
    let h = create(&app, &wes, "mine", "generic", sink.url("/hook")).await;
    sink.script(&[(429, Some(2))]);
    let event_id = emit_test(&app, &wes).await;
    wait_delivery(&app, event_id, h.webhook.id, &["sent"]).await;
    let got = sink.received();
    assert_eq!(got.len(), 2);
    let gap = got[1].at - got[0].at;
    assert!(gap >= Duration::from_secs(2), "retried after {gap:?}");
}

#[tokio::test]
async fn webhook_a_huge_hostile_error_body_is_read_only_up_to_4_kb_and_stored_printable() {
    let (app, sink) = app_with_sink(vec![]).await;
    let wes = person(&app, "wes@example.org").await;
    let h = create(&app, &wes, "mine", "generic", sink.url("/hook")).await;
    // NUL (Postgres refuses it in text) and a terminal escape, then 16 MB more.
    let mut body = b"bad\0request \x1b]52;c;cHduZWQ=\x07 ".to_vec();
    body.extend(std::iter::repeat_n(b'x', 16 << 20));
    sink.body(body);
    sink.always(400);
    let event_id = emit_test(&app, &wes).await;
    let (status, attempts) = wait_delivery(&app, event_id, h.webhook.id, &["failed"]).await;
    assert_eq!(
        (status.as_str(), attempts),
        ("failed", 1),
        "a 400 is the receiver's refusal"
    );
    let (error, job_status): (String, String) = sqlx::query_as(
        "select d.last_error, j.status from notify_delivery d
         join job j on j.kind = 'notify_webhook' and j.payload->>'delivery_id' = d.delivery_id::text
         where d.event_id = $1 and d.webhook_id = $2",
    )
    .bind(event_id)
    .bind(h.webhook.id)
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    assert!(
        error.starts_with("HTTP 400: bad request  ]52;c;cHduZWQ= "),
        "{error:?}"
    );
    assert!(!error.chars().any(|c| c.is_control()), "{error:?}");
    assert!(error.chars().count() <= 2000);
    assert_eq!(
        job_status, "done",
        "the user's endpoint never fails the job"
    );
}

#[tokio::test]
async fn webhook_410_disables_it_at_once() {
    let (app, sink) = app_with_sink(vec![]).await;
    let wes = person(&app, "wes@example.org").await;
    let h = create(&app, &wes, "team", "slack", sink.url("/slack")).await;
    sink.script(&[(410, None)]);
    let event_id = emit_test(&app, &wes).await;
    let (_, attempts) = wait_delivery(&app, event_id, h.webhook.id, &["failed"]).await;
    assert_eq!(attempts, 1, "a 410 is not retried");
    assert_eq!(
        webhook_state(&app, h.webhook.id).await,
        (Some("gone".into()), 1)
    );
    // Its owner is told, in-app (and by email once that channel delivers).
    wait_disabled_notice(&app, &wes, 1).await;
    // A disabled webhook receives nothing more.
    let again = emit_test(&app, &wes).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(sink.received().len(), 1);
    let n: i64 = sqlx::query_scalar(
        "select count(*) from notify_delivery where event_id = $1 and webhook_id is not null",
    )
    .bind(again)
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    assert_eq!(n, 0);

    // Enabling resets it; the next event is delivered.
    webhook::enable(&app.ctx, &wes, h.webhook.id).await.unwrap();
    assert_eq!(webhook_state(&app, h.webhook.id).await, (None, 0));
    let third = emit_test(&app, &wes).await;
    wait_delivery(&app, third, h.webhook.id, &["sent"]).await;
    assert_eq!(sink.received().len(), 2);
}

#[tokio::test]
async fn webhook_repeated_failures_disable_it() {
    let (app, sink) = app_with_sink(vec![("WEBHOOK_DISABLE_AFTER", "2".to_owned())]).await;
    let wes = person(&app, "wes@example.org").await;
    let h = create(&app, &wes, "mine", "generic", sink.url("/hook")).await;
    sink.always(400);
    let first = emit_test(&app, &wes).await;
    wait_delivery(&app, first, h.webhook.id, &["failed"]).await;
    assert_eq!(webhook_state(&app, h.webhook.id).await, (None, 1));
    // 5xx until the attempts run out counts as one failure too.
    sink.always(503);
    let second = emit_test(&app, &wes).await;
    let (_, attempts) = wait_delivery(&app, second, h.webhook.id, &["failed"]).await;
    assert_eq!(attempts, 4, "the JOB_RETRY_WEBHOOK budget");
    assert_eq!(
        webhook_state(&app, h.webhook.id).await,
        (Some("failing".into()), 2)
    );
    wait_disabled_notice(&app, &wes, 1).await;
    let job_failed: i64 = sqlx::query_scalar(
        "select count(*) from job where kind = 'notify_webhook' and status = 'failed'",
    )
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    assert_eq!(job_failed, 0, "a user's broken endpoint does not fail jobs");
}

#[tokio::test]
async fn webhook_ssrf_targets_are_refused_at_creation() {
    let (app, sink) = app_with_sink(vec![]).await;
    let wes = person(&app, "wes@example.org").await;
    let other = sink.port.wrapping_add(1).max(1024);
    for url in [
        format!("http://127.0.0.1:{other}/"),
        "http://10.0.0.5/".to_owned(),
        "http://169.254.169.254/latest/meta-data".to_owned(),
        format!("http://localhost:{other}/"),
        "http://[::ffff:127.0.0.1]/".to_owned(),
        "http://0x7f.1/".to_owned(),
        "http://loopback.test/".to_owned(),
        format!("http://user:pw@127.0.0.1:{}/", sink.port),
    ] {
        let err = webhook::create(
            &app.ctx,
            &wes,
            NewWebhook {
                name: "x".into(),
                kind: "generic".into(),
                url: url.clone(),
                categories: vec!["system".into()],
            },
        )
        .await
        .expect_err(&url);
        match err {
            Error::Invalid { field, .. } => assert_eq!(field, "url", "{url}"),
            e => panic!("{url}: {e:?}"),
        }
    }
    let n: i64 = sqlx::query_scalar("select count(*) from notify_webhook")
        .fetch_one(&app.ctx.db)
        .await
        .unwrap();
    assert_eq!(n, 0, "nothing stored");
    assert!(sink.received().is_empty());
}

#[tokio::test]
async fn webhook_destination_is_vetted_again_at_delivery() {
    let (app, sink) = app_with_sink(vec![]).await;
    let wes = person(&app, "wes@example.org").await;
    // rebind.test resolves to the sink's allow-listed address and port: accepted.
    let h = create(
        &app,
        &wes,
        "mine",
        "generic",
        format!("http://rebind.test:{}/hook", sink.port),
    )
    .await;
    // The connection goes to the vetted address (the name is pinned; `.test` has no DNS at all).
    let t = webhook::test(&app.ctx, &wes, h.webhook.id).await.unwrap();
    assert!(t.ok, "{t:?}");
    let got = sink.wait_for(1, Duration::from_secs(5)).await;
    assert_eq!(
        got[0].header("host"),
        Some(format!("rebind.test:{}", sink.port).as_str())
    );
    // Its DNS answer changes to a private address between creation and delivery.
    app.ctx
        .net
        .set_test_host("rebind.test", vec!["10.0.0.1".parse().unwrap()]);
    let event_id = emit_test(&app, &wes).await;
    let (_, attempts) = wait_delivery(&app, event_id, h.webhook.id, &["failed"]).await;
    assert_eq!(attempts, 1, "a refused destination is not retried");
    let (outcome, reason): (String, String) = sqlx::query_as(
        "select a.outcome, d.reason from notify_attempt a join notify_delivery d using (delivery_id)
         where d.event_id = $1 and d.channel = 'webhook'",
    )
    .bind(event_id)
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    assert_eq!(
        (outcome.as_str(), reason.as_str()),
        ("refused", "refused_destination")
    );
    assert_eq!(sink.received().len(), 1, "the delivery reached no address");
    assert_eq!(webhook_state(&app, h.webhook.id).await, (None, 1));
}

#[tokio::test]
async fn webhook_slack_rate_window_defers_without_spending_attempts() {
    let (app, sink) = app_with_sink(vec![]).await;
    let wes = person(&app, "wes@example.org").await;
    let h = create(&app, &wes, "team", "slack", sink.url("/slack")).await;
    let mut events = Vec::new();
    for _ in 0..3 {
        events.push(emit_test(&app, &wes).await);
    }
    for e in &events {
        let (_, attempts) = wait_delivery(&app, *e, h.webhook.id, &["sent"]).await;
        assert_eq!(attempts, 1);
    }
    let mut at: Vec<Instant> = sink.received().iter().map(|r| r.at).collect();
    assert_eq!(at.len(), 3);
    at.sort();
    assert!(
        at[2] - at[0] >= Duration::from_millis(1000),
        "Slack gets at most one message a second: {:?}",
        at[2] - at[0]
    );
    let attempts: Vec<i32> = sqlx::query_scalar(
        "select attempts from job where kind = 'notify_webhook' and status = 'done'",
    )
    .fetch_all(&app.ctx.db)
    .await
    .unwrap();
    assert_eq!(attempts, [1, 1, 1], "a deferral is not an attempt");
}
