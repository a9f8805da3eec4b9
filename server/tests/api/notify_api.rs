//! Notifications, step 4 (docs/design/notifications.md §8, §9): the REST API `/api/v1/notifications…` and the
//! admin tools over real HTTP with bearer tokens, real Postgres and Redis, in-process workers and a local
//! webhook receiver; the delivery-log and undeliverable-address actions; and `vortex notify …` as an operator
//! runs it.

use std::time::Duration;

use backend::{
    Actor, Error, Surface,
    auth::{AuthUser, Credential, RequestMeta, Role, Scope, api_token, users},
    notify::{self, Channel, Event, email, event::SystemTest, fanout},
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{
    helpers::{Options, TestApp, spawn_app_with, vortex_cli as vortex},
    webhook_sink::WebhookSink,
};

/// A verified user of `role` with an API token of `scope`: the user id and the token.
async fn user_with_token(app: &TestApp, email: &str, role: Role, scope: Scope) -> (Uuid, String) {
    let mut conn = app.ctx.db.acquire().await.unwrap();
    let id = users::insert(&mut conn, email, "Nia", "not-a-password-hash", role)
        .await
        .unwrap()
        .expect("new email");
    users::mark_verified(&mut conn, id).await.unwrap();
    drop(conn);
    let (_, secret) = api_token::create(&app.ctx.db, id, "tests", scope, None)
        .await
        .unwrap()
        .unwrap();
    (id, secret)
}

async fn token_for(app: &TestApp, user_id: Uuid, scope: Scope) -> String {
    api_token::create(&app.ctx.db, user_id, "another", scope, None)
        .await
        .unwrap()
        .unwrap()
        .1
}

async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = app.client.request(method, app.url(path)).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Emits a `system.test` for `user_id` and fans it out at once (in this transaction, without workers).
async fn notify_now(app: &TestApp, user_id: Uuid, note: &str, channel: Option<Channel>) -> Uuid {
    let ctx = &app.ctx;
    let mut tx = ctx.db.begin().await.unwrap();
    let e = notify::emit(
        &mut tx,
        &ctx.jobs,
        &ctx.clock,
        &Event::SystemTest(SystemTest {
            user_id,
            sent_by: "admin".into(),
            note: note.into(),
            channel,
        }),
    )
    .await
    .unwrap();
    fanout::fan_out(&mut tx, &ctx.jobs, &ctx.clock, e.event_id)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    e.event_id
}

async fn app(workers: bool, env: Vec<(&'static str, String)>) -> TestApp {
    spawn_app_with(Options { workers, env }).await
}

#[tokio::test]
async fn in_app_notifications_list_count_and_read_marks_over_rest() {
    let app = app(false, vec![]).await;
    let (ann, ann_rw) =
        user_with_token(&app, "ann@example.org", Role::Trader, Scope::ReadWrite).await;
    let ann_ro = token_for(&app, ann, Scope::Read).await;
    let (_, bob_rw) =
        user_with_token(&app, "bob@example.org", Role::Trader, Scope::ReadWrite).await;
    for i in 0..3 {
        notify_now(&app, ann, &format!("number {i}"), Some(Channel::InApp)).await;
    }

    let (s, page) = call(
        &app,
        Method::GET,
        "/api/v1/notifications?limit=2",
        &ann_ro,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{page}");
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["event_type"], "system.test");
    assert!(
        items[0]["body"].as_str().unwrap().contains("number 2"),
        "{page}"
    );
    assert_eq!(items[0]["url"], "/notifications");
    let next = page["next_before"].as_i64().expect("a next page");
    let (_, rest) = call(
        &app,
        Method::GET,
        &format!("/api/v1/notifications?before={next}"),
        &ann_ro,
        None,
    )
    .await;
    assert_eq!(rest["items"].as_array().unwrap().len(), 1);
    assert!(rest["next_before"].is_null());
    let (_, count) = call(
        &app,
        Method::GET,
        "/api/v1/notifications/unread-count",
        &ann_ro,
        None,
    )
    .await;
    assert_eq!(count, json!({ "unread": 3 }));
    // Bob sees none of Ann's.
    let (_, bobs) = call(&app, Method::GET, "/api/v1/notifications", &bob_rw, None).await;
    assert_eq!(bobs["items"], json!([]));

    let newest = items[0]["id"].as_str().unwrap().to_owned();
    let read = format!("/api/v1/notifications/{newest}/read");
    let (s, p) = call(&app, Method::POST, &read, &ann_ro, None).await;
    assert_eq!(
        (s, p["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden")),
        "read token cannot mark read"
    );
    let (s, _) = call(&app, Method::POST, &read, &bob_rw, None).await;
    assert_eq!(
        s,
        StatusCode::NOT_FOUND,
        "another user's notification is 404"
    );
    let (s, _) = call(
        &app,
        Method::POST,
        &format!("/api/v1/notifications/{}/read", Uuid::new_v4()),
        &ann_rw,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = call(
        &app,
        Method::POST,
        "/api/v1/notifications/not-a-uuid/read",
        &ann_rw,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    for _ in 0..2 {
        let (s, _) = call(&app, Method::POST, &read, &ann_rw, None).await;
        assert_eq!(s, StatusCode::NO_CONTENT, "idempotent");
    }
    let (_, unread) = call(
        &app,
        Method::GET,
        "/api/v1/notifications?unread=true",
        &ann_ro,
        None,
    )
    .await;
    assert_eq!(unread["items"].as_array().unwrap().len(), 2);

    // read-all up to the oldest: only that one.
    let oldest_seq = rest["items"][0]["seq"].as_i64().unwrap();
    let (s, marked) = call(
        &app,
        Method::POST,
        "/api/v1/notifications/read-all",
        &ann_rw,
        Some(json!({ "up_to": oldest_seq })),
    )
    .await;
    assert_eq!((s, marked), (StatusCode::OK, json!({ "marked": 1 })));
    let (s, p) = call(
        &app,
        Method::POST,
        "/api/v1/notifications/read-all",
        &ann_rw,
        Some(json!({ "up_to": 1, "everything": true })),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(p["field"], "everything", "unknown field named: {p}");
    let (s, p) = call(
        &app,
        Method::POST,
        "/api/v1/notifications/read-all",
        &ann_rw,
        Some(json!({ "up_to": -1 })),
    )
    .await;
    assert_eq!(
        (s, p["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("up_to")),
        "{p}"
    );
    let (s, _) = call(
        &app,
        Method::POST,
        "/api/v1/notifications/read-all",
        &ann_ro,
        Some(json!({})),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, marked) = call(
        &app,
        Method::POST,
        "/api/v1/notifications/read-all",
        &ann_rw,
        Some(json!({ "up_to": null })),
    )
    .await;
    assert_eq!(
        (s, marked),
        (StatusCode::OK, json!({ "marked": 1 })),
        "null is absent"
    );
    let (_, count) = call(
        &app,
        Method::GET,
        "/api/v1/notifications/unread-count",
        &ann_ro,
        None,
    )
    .await;
    assert_eq!(count, json!({ "unread": 0 }));

    // Bad queries name the parameter.
    for (q, field) in [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("before=-3", "before"),
        ("unread=maybe", "unread"),
    ] {
        let (s, p) = call(
            &app,
            Method::GET,
            &format!("/api/v1/notifications?{q}"),
            &ann_ro,
            None,
        )
        .await;
        assert_eq!(
            (s, p["field"].as_str()),
            (StatusCode::BAD_REQUEST, Some(field)),
            "{q}: {p}"
        );
    }
    let (s, _) = call(&app, Method::GET, "/api/v1/notifications", "vxt_nope", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn webhooks_over_rest_are_the_owners_and_need_a_confirmed_writer() {
    let sink = WebhookSink::start().await;
    let app = app(
        false,
        vec![("WEBHOOK_ALLOW_HOSTS", format!("127.0.0.1:{}", sink.port))],
    )
    .await;
    let (ann, ann_rw) =
        user_with_token(&app, "ann@example.org", Role::Trader, Scope::ReadWrite).await;
    let ann_ro = token_for(&app, ann, Scope::Read).await;
    let (_, bob_rw) =
        user_with_token(&app, "bob@example.org", Role::Trader, Scope::ReadWrite).await;
    let (_, viewer) =
        user_with_token(&app, "vic@example.org", Role::Viewer, Scope::ReadWrite).await;
    let generic = json!({
        "name": "Desk", "kind": "generic", "url": sink.url("/hook"), "categories": ["system", "backtests"],
    });

    for (token, why) in [(&viewer, "viewer"), (&ann_ro, "read-only token")] {
        let (s, p) = call(
            &app,
            Method::POST,
            "/api/v1/notifications/webhooks",
            token,
            Some(generic.clone()),
        )
        .await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{why}: {p}");
    }
    // Unconfirmed address: 403 email_unconfirmed.
    let mut conn = app.ctx.db.acquire().await.unwrap();
    let unconfirmed = users::insert(&mut conn, "una@example.org", "Una", "x", Role::Trader)
        .await
        .unwrap()
        .unwrap();
    drop(conn);
    let una = token_for(&app, unconfirmed, Scope::ReadWrite).await;
    let (s, p) = call(
        &app,
        Method::POST,
        "/api/v1/notifications/webhooks",
        &una,
        Some(generic.clone()),
    )
    .await;
    assert_eq!(
        (s, p["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("email_unconfirmed"))
    );

    let (s, created) = call(
        &app,
        Method::POST,
        "/api/v1/notifications/webhooks",
        &ann_rw,
        Some(generic.clone()),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    assert!(created["secret"].as_str().unwrap().starts_with("whsec_"));
    let id = created["webhook"]["id"].as_str().unwrap().to_owned();
    assert!(
        !created.to_string().contains(&sink.url("/hook"))
            && created["webhook"].get("url").is_none(),
        "the URL is never returned: {created}"
    );
    let (s, again) = call(
        &app,
        Method::POST,
        "/api/v1/notifications/webhooks",
        &ann_rw,
        Some(generic.clone()),
    )
    .await;
    assert_eq!(
        (s, again["code"].as_str()),
        (StatusCode::CONFLICT, Some("conflict"))
    );

    // Bad bodies name the field.
    for (body, field) in [
        (
            json!({ "name": "x", "kind": "teams", "url": sink.url("/"), "categories": ["system"] }),
            "kind",
        ),
        (
            json!({ "name": "x", "kind": "slack", "url": sink.url("/"), "categories": [] }),
            "categories",
        ),
        (
            json!({ "name": "x", "kind": "slack", "url": sink.url("/"), "categories": ["gossip"] }),
            "categories",
        ),
        (
            json!({ "name": "x", "kind": "slack", "url": "http://10.0.0.5/hook", "categories": ["system"] }),
            "url",
        ),
        (
            json!({ "name": "x", "kind": "slack", "url": "http://169.254.169.254/latest", "categories": ["system"] }),
            "url",
        ),
        (
            json!({ "name": "", "kind": "slack", "url": sink.url("/"), "categories": ["system"] }),
            "name",
        ),
        (
            json!({ "name": "x", "kind": "slack", "url": sink.url("/"), "categories": ["system"], "secret": "mine" }),
            "secret",
        ),
        (
            json!({ "name": "x", "kind": "slack", "categories": ["system"] }),
            "",
        ),
    ] {
        let (s, p) = call(
            &app,
            Method::POST,
            "/api/v1/notifications/webhooks",
            &ann_rw,
            Some(body.clone()),
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}: {p}");
        if !field.is_empty() {
            assert_eq!(p["field"], field, "{body}: {p}");
        }
    }

    let (s, list) = call(
        &app,
        Method::GET,
        "/api/v1/notifications/webhooks",
        &ann_ro,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let hooks = list["webhooks"].as_array().unwrap();
    assert_eq!(hooks.len(), 1, "refused bodies stored nothing: {list}");
    assert_eq!(
        hooks[0]["url_hint"],
        format!("http://127.0.0.1:{}/…/hook", sink.port)
    );
    assert!(hooks[0].get("url").is_none());
    let (_, bobs) = call(
        &app,
        Method::GET,
        "/api/v1/notifications/webhooks",
        &bob_rw,
        None,
    )
    .await;
    assert_eq!(bobs["webhooks"], json!([]));

    let base = format!("/api/v1/notifications/webhooks/{id}");
    for (method, path) in [
        (Method::DELETE, base.clone()),
        (Method::POST, format!("{base}/test")),
        (Method::POST, format!("{base}/enable")),
        (Method::POST, format!("{base}/rotate-secret")),
    ] {
        let (s, _) = call(&app, method.clone(), &path, &bob_rw, None).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{method} {path} by another user");
        let (s, _) = call(&app, method.clone(), &path, &ann_ro, None).await;
        assert_eq!(
            s,
            StatusCode::FORBIDDEN,
            "{method} {path} with a read token"
        );
    }

    let (s, t) = call(&app, Method::POST, &format!("{base}/test"), &ann_rw, None).await;
    assert_eq!(
        (s, t["ok"].as_bool(), t["http_status"].as_u64()),
        (StatusCode::OK, Some(true), Some(200)),
        "{t}"
    );
    let got = sink.wait_for(1, Duration::from_secs(5)).await;
    assert!(got[0].verifies(created["secret"].as_str().unwrap()));

    let (s, r) = call(
        &app,
        Method::POST,
        &format!("{base}/rotate-secret"),
        &ann_rw,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert!(r["secret"].as_str().unwrap().starts_with("whsec_"));
    assert_ne!(r["secret"], created["secret"]);

    // Disabled (as the job would), enabled again over REST.
    sqlx::query("update notify_webhook set disabled_at = now(), disabled_reason = 'failing' where webhook_id = $1")
        .bind(Uuid::parse_str(&id).unwrap())
        .execute(&app.ctx.db)
        .await
        .unwrap();
    let (s, enabled) = call(&app, Method::POST, &format!("{base}/enable"), &ann_rw, None).await;
    assert_eq!(s, StatusCode::OK, "{enabled}");
    assert!(
        enabled["disabled_at"].is_null() && enabled["disabled_reason"].is_null(),
        "{enabled}"
    );

    // Slack destinations are not signed: no secret to rotate.
    let (_, slack) = call(
        &app,
        Method::POST,
        "/api/v1/notifications/webhooks",
        &ann_rw,
        Some(json!({ "name": "Chat", "kind": "slack", "url": sink.url("/slack"), "categories": ["system"] })),
    )
    .await;
    assert!(slack["secret"].is_null(), "{slack}");
    let (s, p) = call(
        &app,
        Method::POST,
        &format!(
            "/api/v1/notifications/webhooks/{}/rotate-secret",
            slack["webhook"]["id"].as_str().unwrap()
        ),
        &ann_rw,
        None,
    )
    .await;
    assert_eq!(
        (s, p["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("kind"))
    );

    let (s, _) = call(&app, Method::DELETE, &base, &ann_rw, None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = call(&app, Method::DELETE, &base, &ann_rw, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let audit: Vec<String> = sqlx::query_scalar(
        "select event from audit_event where user_id = $1 and event like 'webhook_%' order by audit_event_id",
    )
    .bind(ann)
    .fetch_all(&app.ctx.db)
    .await
    .unwrap();
    assert_eq!(
        audit,
        [
            "webhook_created",
            "webhook_tested",
            "webhook_secret_rotated",
            "webhook_enabled",
            "webhook_created",
            "webhook_deleted"
        ]
    );
}

async fn delivery_status(app: &TestApp, token: &str, webhook: &str) -> Vec<Value> {
    let (s, page) = call(
        app,
        Method::GET,
        &format!("/api/v1/notifications/deliveries?webhook={webhook}"),
        token,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{page}");
    page["items"].as_array().unwrap().clone()
}

async fn wait_for_status(app: &TestApp, token: &str, webhook: &str, status: &str) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let items = delivery_status(app, token, webhook).await;
        if let Some(d) = items.iter().find(|d| d["status"] == status) {
            return d.clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no {status} delivery: {items:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn the_delivery_log_shows_a_failed_webhook_delivery_and_replay_sends_it_again() {
    let sink = WebhookSink::start().await;
    let app = app(
        true,
        vec![
            ("WEBHOOK_ALLOW_HOSTS", format!("127.0.0.1:{}", sink.port)),
            (
                "JOB_RETRY_WEBHOOK",
                "attempts=2,base_secs=0.2,max_secs=0.5".to_owned(),
            ),
        ],
    )
    .await;
    let (ann, ann_rw) =
        user_with_token(&app, "ann@example.org", Role::Trader, Scope::ReadWrite).await;
    let ann_ro = token_for(&app, ann, Scope::Read).await;
    let (_, bob_rw) =
        user_with_token(&app, "bob@example.org", Role::Trader, Scope::ReadWrite).await;
    let (_, created) = call(
        &app,
        Method::POST,
        "/api/v1/notifications/webhooks",
        &ann_rw,
        Some(json!({ "name": "Desk", "kind": "generic", "url": sink.url("/hook"), "categories": ["system"] })),
    )
    .await;
    let hook = created["webhook"]["id"].as_str().unwrap().to_owned();

    // The receiver refuses the first message for good (400): the delivery fails.
    sink.script(&[(400, None)]);
    let ctx = &app.ctx;
    let mut tx = ctx.db.begin().await.unwrap();
    let e = notify::emit(
        &mut tx,
        &ctx.jobs,
        &ctx.clock,
        &Event::SystemTest(SystemTest {
            user_id: ann,
            sent_by: "self".into(),
            note: "replay me".into(),
            channel: Some(Channel::Webhook),
        }),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    notify::push(&ctx.jobs, &[e]).await;
    let failed = wait_for_status(&app, &ann_ro, &hook, "failed").await;
    assert_eq!(failed["replayable"], true, "{failed}");
    assert_eq!(failed["channel"], "webhook");
    assert_eq!(failed["event_type"], "system.test");
    assert_eq!(failed["reason"], "http_4xx", "{failed}");
    let id = failed["id"].as_str().unwrap().to_owned();
    let first_id = sink.received()[0].header("webhook-id").unwrap().to_owned();

    // The log filters: by status, and a cursor past the last page is empty.
    let (_, by_status) = call(
        &app,
        Method::GET,
        "/api/v1/notifications/deliveries?status=failed",
        &ann_ro,
        None,
    )
    .await;
    assert_eq!(
        by_status["items"].as_array().unwrap().len(),
        1,
        "{by_status}"
    );
    let (_, sent) = call(
        &app,
        Method::GET,
        "/api/v1/notifications/deliveries?status=sent",
        &ann_ro,
        None,
    )
    .await;
    assert!(
        sent["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["status"] == "sent")
    );
    let (_, bobs) = call(
        &app,
        Method::GET,
        "/api/v1/notifications/deliveries",
        &bob_rw,
        None,
    )
    .await;
    assert_eq!(bobs["items"], json!([]), "another user's log is not shown");
    for (q, field) in [
        ("status=exploded", "status"),
        ("before=yesterday", "before"),
        ("limit=500", "limit"),
        ("webhook=12", "webhook"),
    ] {
        let (s, p) = call(
            &app,
            Method::GET,
            &format!("/api/v1/notifications/deliveries?{q}"),
            &ann_ro,
            None,
        )
        .await;
        assert_eq!(
            (s, p["field"].as_str()),
            (StatusCode::BAD_REQUEST, Some(field)),
            "{q}: {p}"
        );
    }

    let replay = format!("/api/v1/notifications/deliveries/{id}/replay");
    let (s, _) = call(&app, Method::POST, &replay, &bob_rw, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "another user's delivery");
    let (s, _) = call(&app, Method::POST, &replay, &ann_ro, None).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "read token");
    let (s, _) = call(
        &app,
        Method::POST,
        &format!("/api/v1/notifications/deliveries/{}/replay", Uuid::new_v4()),
        &ann_rw,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    sink.always(200);
    let (s, r) = call(&app, Method::POST, &replay, &ann_rw, None).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{r}");
    assert_eq!(r["delivery_id"], id.as_str());
    let sent = wait_for_status(&app, &ann_ro, &hook, "sent").await;
    assert_eq!(sent["id"], id.as_str());
    assert_eq!(sent["attempts"], 1, "a fresh budget: {sent}");
    let got = sink.wait_for(2, Duration::from_secs(5)).await;
    assert_eq!(
        got[1].header("webhook-id"),
        Some(first_id.as_str()),
        "the same webhook-id on replay"
    );
    let (s, p) = call(&app, Method::POST, &replay, &ann_rw, None).await;
    assert_eq!(
        (s, p["code"].as_str()),
        (StatusCode::CONFLICT, Some("conflict")),
        "only failed ones: {p}"
    );
    let n: i64 = sqlx::query_scalar(
        "select count(*) from audit_event where user_id = $1 and event = 'notify_replayed'",
    )
    .bind(ann)
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    assert_eq!(n, 1);
}

#[tokio::test]
async fn admins_read_a_users_delivery_log_and_send_a_test_on_one_channel() {
    let app = app(true, vec![]).await;
    let (ann, ann_rw) =
        user_with_token(&app, "ann@example.org", Role::Trader, Scope::ReadWrite).await;
    let (_, admin) = user_with_token(&app, "root@example.org", Role::Admin, Scope::ReadWrite).await;
    let log = format!("/api/v1/admin/users/{ann}/notification-deliveries");
    let test = format!("/api/v1/admin/users/{ann}/notifications/test");

    let (s, _) = call(&app, Method::GET, &log, &ann_rw, None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = call(&app, Method::POST, &test, &ann_rw, Some(json!({}))).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let nobody = Uuid::new_v4();
    let (s, _) = call(
        &app,
        Method::GET,
        &format!("/api/v1/admin/users/{nobody}/notification-deliveries"),
        &admin,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = call(
        &app,
        Method::POST,
        &format!("/api/v1/admin/users/{nobody}/notifications/test"),
        &admin,
        Some(json!({})),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, p) = call(
        &app,
        Method::POST,
        &test,
        &admin,
        Some(json!({ "channel": "pigeon" })),
    )
    .await;
    assert_eq!(
        (s, p["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("channel")),
        "{p}"
    );

    // In-app only: a notification, and no email delivery.
    let (s, sent) = call(
        &app,
        Method::POST,
        &test,
        &admin,
        Some(json!({ "channel": "inapp" })),
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{sent}");
    let event_id = Uuid::parse_str(sent["event_id"].as_str().unwrap()).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let (_, count) = call(
            &app,
            Method::GET,
            "/api/v1/notifications/unread-count",
            &ann_rw,
            None,
        )
        .await;
        if count["unread"] == 1 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the test never arrived in-app"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let deliveries: i64 =
        sqlx::query_scalar("select count(*) from notify_delivery where event_id = $1")
            .bind(event_id)
            .fetch_one(&app.ctx.db)
            .await
            .unwrap();
    assert_eq!(deliveries, 0, "a test of the in-app channel sends no mail");

    // Every channel (null is the same as absent): the email delivery shows in the admin's view of the log.
    let (s, _) = call(
        &app,
        Method::POST,
        &test,
        &admin,
        Some(json!({ "channel": null })),
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let page = loop {
        let (s, page) = call(&app, Method::GET, &log, &admin, None).await;
        assert_eq!(s, StatusCode::OK, "{page}");
        if page["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["channel"] == "email")
        {
            break page;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no email delivery: {page}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(page["items"][0]["event_type"], "system.test", "{page}");
    let audit: i64 = sqlx::query_scalar(
        "select count(*) from audit_event where user_id = $1 and event = 'notify_test_sent' and actor_id is not null",
    )
    .bind(ann)
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    assert_eq!(audit, 2);
}

fn actor(user_id: Uuid, email: &str, role: Role, credential: Credential) -> Actor {
    Actor::user(
        AuthUser {
            user_id,
            email: email.into(),
            display_name: "Nia".into(),
            role,
            email_verified: true,
            time_zone: "UTC".into(),
            credential,
        },
        Surface::Web,
        RequestMeta::new("127.0.0.1", "tests"),
        None,
    )
}

async fn mark_undeliverable(app: &TestApp, address: &str) {
    sqlx::query("insert into mail_suppression (address, reason, smtp_code) values (lower($1), 'rejected', 550) on conflict do nothing")
        .bind(address)
        .execute(&app.ctx.db)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_user_clears_their_undeliverable_address_three_times_a_day_viewers_included() {
    let app = app(false, vec![]).await;
    let (vic, _) = user_with_token(&app, "Vic@Example.org", Role::Viewer, Scope::ReadWrite).await;
    let session = actor(
        vic,
        "Vic@Example.org",
        Role::Viewer,
        Credential::Session("s".into()),
    );
    let read_only = actor(
        vic,
        "Vic@Example.org",
        Role::Viewer,
        Credential::ApiToken {
            token_id: Uuid::new_v4(),
            scope: Scope::Read,
        },
    );

    // Not marked: nothing to do, nothing counted.
    let c = email::clear_undeliverable(&app.ctx, &session)
        .await
        .unwrap();
    assert!(!c.cleared && c.test_event_id.is_none());
    for i in 0..3 {
        mark_undeliverable(&app, "vic@example.org").await;
        assert!(matches!(
            email::clear_undeliverable(&app.ctx, &read_only).await,
            Err(Error::Forbidden(_))
        ));
        let c = email::clear_undeliverable(&app.ctx, &session)
            .await
            .unwrap();
        assert!(c.cleared, "clear {i}");
        let ev: (String, Value) =
            sqlx::query_as("select event_type, payload from notify_event where event_id = $1")
                .bind(c.test_event_id.unwrap())
                .fetch_one(&app.ctx.db)
                .await
                .unwrap();
        assert_eq!(ev.0, "system.test");
        let left: i64 = sqlx::query_scalar("select count(*) from mail_suppression")
            .fetch_one(&app.ctx.db)
            .await
            .unwrap();
        assert_eq!(left, 0);
    }
    mark_undeliverable(&app, "vic@example.org").await;
    match email::clear_undeliverable(&app.ctx, &session).await {
        Err(Error::RateLimited { retry_after }) => assert!(retry_after > 80_000, "{retry_after}"),
        other => panic!("a fourth clear in a day: {other:?}"),
    }
    let audit: i64 = sqlx::query_scalar(
        "select count(*) from audit_event where user_id = $1 and event = 'email_undeliverable_cleared'",
    )
    .bind(vic)
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    assert_eq!(audit, 3);
}

#[tokio::test]
async fn the_operator_sends_a_test_reads_the_log_and_clears_an_address_from_the_command_line() {
    let app = app(true, vec![]).await;
    let (ann, _) = user_with_token(&app, "ann@example.org", Role::Trader, Scope::ReadWrite).await;

    let (code, _, err) = vortex(
        &app,
        &["notify", "deliveries", "--email", "nobody@example.org"],
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("no account"), "{err}");
    let (code, _, _) = vortex(
        &app,
        &[
            "notify",
            "test",
            "--email",
            "ann@example.org",
            "--channel",
            "pigeon",
        ],
    );
    assert_eq!(code, 2, "clap refuses an unknown channel");

    let (code, out, err) = vortex(
        &app,
        &[
            "notify",
            "test",
            "--email",
            "ANN@example.org",
            "--channel",
            "email",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("test notification"), "{out}");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let out = loop {
        let (code, out, err) = vortex(
            &app,
            &[
                "notify",
                "deliveries",
                "--email",
                "ann@example.org",
                "--limit",
                "5",
            ],
        );
        assert_eq!(code, 0, "{err}");
        if out.contains("system.test") {
            break out;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no delivery listed: {out}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(out.contains("email"), "{out}");
    let inapp: i64 = sqlx::query_scalar("select count(*) from notification where user_id = $1")
        .bind(ann)
        .fetch_one(&app.ctx.db)
        .await
        .unwrap();
    assert_eq!(inapp, 0, "an email-only test writes no in-app row");
    let audit: Option<Value> = sqlx::query_scalar(
        "select detail from audit_event where user_id = $1 and event = 'notify_test_sent' and actor_id is null",
    )
    .bind(ann)
    .fetch_optional(&app.ctx.db)
    .await
    .unwrap();
    assert_eq!(audit.expect("audited")["surface"], "cli");

    mark_undeliverable(&app, "ann@example.org").await;
    let (code, out, err) = vortex(
        &app,
        &[
            "notify",
            "clear-undeliverable",
            "--email",
            "ann@example.org",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("no longer marked undeliverable"), "{out}");
    let (code, out, _) = vortex(
        &app,
        &[
            "notify",
            "clear-undeliverable",
            "--email",
            "ann@example.org",
        ],
    );
    assert_eq!(code, 0);
    assert!(out.contains("was not marked"), "{out}");
    let cleared: i64 = sqlx::query_scalar(
        "select count(*) from audit_event where user_id = $1 and event = 'email_undeliverable_cleared'",
    )
    .bind(ann)
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    assert_eq!(cleared, 1);
}

#[tokio::test]
async fn preferences_over_rest_viewers_may_set_theirs_and_the_locks_hold() {
    let app = app(false, vec![]).await;
    let (vic, viewer) =
        user_with_token(&app, "vic@example.org", Role::Viewer, Scope::ReadWrite).await;
    let viewer_ro = token_for(&app, vic, Scope::Read).await;

    let (s, cat) = call(
        &app,
        Method::GET,
        "/api/v1/notifications/catalogue",
        &viewer_ro,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{cat}");
    let token_created = cat["types"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "security.token_created")
        .expect("security type listed");
    assert!(
        token_created["locked"]
            .as_array()
            .unwrap()
            .contains(&json!("email")),
        "{token_created}"
    );
    assert!(
        cat["channels"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == "webhook")
    );

    let (s, mut doc) = call(
        &app,
        Method::GET,
        "/api/v1/notifications/preferences",
        &viewer_ro,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{doc}");
    assert_eq!(doc["time_zone"], "UTC");
    doc["rules"] = json!([
        { "category": "backtests", "channel": "email", "mode": "off" },
        { "category": "system", "event_type": "system.test", "channel": "inapp", "mode": "immediate" },
    ]);
    doc["digest"] = json!({ "frequency": "weekly", "weekday": 5, "time": "07:30" });
    doc["quiet_hours"] =
        json!({ "enabled": true, "start": "22:00", "end": "06:00", "action": "defer" });

    let (s, _) = call(
        &app,
        Method::PUT,
        "/api/v1/notifications/preferences",
        &viewer_ro,
        Some(doc.clone()),
    )
    .await;
    assert_eq!(
        s,
        StatusCode::FORBIDDEN,
        "a read-only token cannot change preferences"
    );
    let (s, stored) = call(
        &app,
        Method::PUT,
        "/api/v1/notifications/preferences",
        &viewer,
        Some(doc.clone()),
    )
    .await;
    assert_eq!(
        s,
        StatusCode::OK,
        "a viewer may change their own preferences: {stored}"
    );
    assert_eq!(
        stored["digest"],
        json!({ "frequency": "weekly", "weekday": 5, "time": "07:30" })
    );
    assert_eq!(stored["rules"].as_array().unwrap().len(), 2, "{stored}");
    let (_, again) = call(
        &app,
        Method::GET,
        "/api/v1/notifications/preferences",
        &viewer,
        None,
    )
    .await;
    assert_eq!(again, stored);

    let mut bad = doc.clone();
    bad["rules"] = json!([
        { "category": "backtests", "mode": "immediate" },
        { "category": "security", "channel": "email", "mode": "off" },
    ]);
    let (s, p) = call(
        &app,
        Method::PUT,
        "/api/v1/notifications/preferences",
        &viewer,
        Some(bad),
    )
    .await;
    assert_eq!(
        (s, p["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("rules[1].mode")),
        "{p}"
    );
    let mut bad = doc.clone();
    bad["digest"]["weekday"] = json!(8);
    let (s, p) = call(
        &app,
        Method::PUT,
        "/api/v1/notifications/preferences",
        &viewer,
        Some(bad),
    )
    .await;
    assert_eq!(
        (s, p["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("digest.weekday")),
        "{p}"
    );
    let mut bad = doc.clone();
    bad["rules"][0]["colour"] = json!("red");
    let (s, p) = call(
        &app,
        Method::PUT,
        "/api/v1/notifications/preferences",
        &viewer,
        Some(bad),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        p["field"].as_str().unwrap().starts_with("rules[0]"),
        "unknown field named: {p}"
    );
    let mut bad = doc.clone();
    bad["rules"][0]["mode"] = json!("loudly");
    let (s, p) = call(
        &app,
        Method::PUT,
        "/api/v1/notifications/preferences",
        &viewer,
        Some(bad),
    )
    .await;
    assert_eq!(
        (s, p["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("rules[0].mode")),
        "{p}"
    );
    let resp = app
        .client
        .put(app.url("/api/v1/notifications/preferences"))
        .bearer_auth(&viewer)
        .body(doc.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // Nothing of the refused documents was stored.
    let (_, after) = call(
        &app,
        Method::GET,
        "/api/v1/notifications/preferences",
        &viewer,
        None,
    )
    .await;
    assert_eq!(after, stored);
    let audit: i64 = sqlx::query_scalar(
        "select count(*) from audit_event where user_id = $1 and event = 'notify_preferences_changed'",
    )
    .bind(vic)
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    assert_eq!(audit, 1);
}
