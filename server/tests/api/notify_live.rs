//! Notifications, step 5 (docs/design/notifications.md §7): the live stream `GET /api/events/notifications`
//! against the real app, Postgres `LISTEN/NOTIFY` and the fan-out: the first event is the unread count, a new
//! notification arrives as it commits, read marks update the count, the session is required, and a user's
//! sixth stream is refused with 429.

use std::time::{Duration, Instant};

use backend::{
    auth::{RequestMeta, Role, session, users},
    notify::{self, Channel, Event, event::SystemTest, fanout},
};
use reqwest::StatusCode;
use serde_json::Value;
use uuid::Uuid;

use crate::helpers::{Options, TestApp, spawn_app_with};

/// An SSE reader over a streaming response: collects `event:`/`data:` pairs.
pub struct EventStream {
    resp: reqwest::Response,
    buf: String,
}

impl EventStream {
    pub fn new(resp: reqwest::Response) -> Self {
        Self {
            resp,
            buf: String::new(),
        }
    }

    /// The next complete event (name, data, the raw block), waiting at most `within`. Comment-only blocks
    /// (heartbeats) are returned with the name `:comment`.
    pub async fn next(&mut self, within: Duration) -> Option<(String, Value, String)> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let mut name = String::new();
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        name = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim());
                    }
                }
                if name.is_empty() && data.is_empty() {
                    name = ":comment".into();
                }
                let json = serde_json::from_str(&data).unwrap_or(Value::Null);
                return Some((name, json, block));
            }
            let chunk = tokio::time::timeout_at(deadline, self.resp.chunk())
                .await
                .ok()?;
            match chunk {
                Ok(Some(bytes)) => self.buf.push_str(&String::from_utf8_lossy(&bytes)),
                _ => return None,
            }
        }
    }

    /// The next event that is not a heartbeat.
    pub async fn next_event(&mut self, within: Duration) -> Option<(String, Value, String)> {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            let e = self.next(left).await?;
            if e.0 != ":comment" {
                return Some(e);
            }
        }
    }
}

/// A client without a total timeout (streams outlive it).
pub fn stream_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

/// A user with a browser session: the user id and the `Cookie` header value.
async fn signed_in(app: &TestApp, email: &str) -> (Uuid, String) {
    let mut conn = app.ctx.db.acquire().await.unwrap();
    let id = users::insert(&mut conn, email, "Sam", "not-a-password-hash", Role::Trader)
        .await
        .unwrap()
        .unwrap();
    users::mark_verified(&mut conn, id).await.unwrap();
    drop(conn);
    let s = session::create(
        &app.ctx.db,
        &app.ctx.keys,
        &app.ctx.settings,
        id,
        &RequestMeta::new("127.0.0.1", "tests"),
    )
    .await
    .unwrap();
    (
        id,
        format!("{}={}", session::cookie_name(&app.ctx.settings), s.token),
    )
}

/// Emits an in-app `system.test` for `user_id` and fans it out in one transaction (as the fan-out job does).
pub async fn notify_in_app(ctx: &backend::Ctx, user_id: Uuid, note: &str) -> Uuid {
    let mut tx = ctx.db.begin().await.unwrap();
    let e = notify::emit(
        &mut tx,
        &ctx.jobs,
        &ctx.clock,
        &Event::SystemTest(SystemTest {
            user_id,
            sent_by: "self".into(),
            note: note.into(),
            channel: Some(Channel::InApp),
        }),
    )
    .await
    .unwrap();
    fanout::fan_out(&mut tx, &ctx.jobs, &ctx.clock, e.event_id)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    sqlx::query_scalar("select notification_id from notification where event_id = $1")
        .bind(e.event_id)
        .fetch_one(&ctx.db)
        .await
        .unwrap()
}

async fn open(app: &TestApp, client: &reqwest::Client, cookie: &str) -> reqwest::Response {
    client
        .get(app.url("/api/events/notifications"))
        .header("cookie", cookie)
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap()
}

/// Waits until the app's notification listener is connected (it starts with the app, asynchronously): its
/// connection's last statement is the `LISTEN`.
pub async fn wait_listening(db: &sqlx::PgPool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let n: i64 = sqlx::query_scalar(
            "select count(*) from pg_stat_activity where datname = current_database() and query ilike 'listen%vortex_notify%'",
        )
        .fetch_one(db)
        .await
        .unwrap();
        if n > 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the notification listener never connected"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_stream_sends_the_count_then_each_new_notification_and_read_marks_live() {
    let app = spawn_app_with(Options {
        workers: false,
        env: vec![("NOTIFY_SSE_HEARTBEAT_SECS", "1".into())],
    })
    .await;
    let (ann, cookie) = signed_in(&app, "ann@example.org").await;
    let (bob, _) = signed_in(&app, "bob@example.org").await;
    notify_in_app(&app.ctx, ann, "before the stream").await;
    let client = stream_client();

    // The listener is up before the stream opens (a stream that opens earlier gets a `resync` first).
    wait_listening(&app.ctx.db).await;
    let resp = open(&app, &client, &cookie).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let h = resp.headers();
    assert_eq!(h["content-type"], "text/event-stream");
    assert_eq!(h["cache-control"], "no-store");
    assert_eq!(h["x-accel-buffering"], "no");
    let mut s = EventStream::new(resp);
    let (name, data, raw) = s
        .next_event(Duration::from_secs(5))
        .await
        .expect("first event");
    assert_eq!(
        (name.as_str(), &data),
        ("unread", &serde_json::json!({ "unread": 1 }))
    );
    assert!(
        raw.contains("retry: 5000") || raw.contains("retry:5000"),
        "{raw}"
    );

    // Bob's notification says nothing to Ann's stream; Ann's arrives within a second of its commit.
    notify_in_app(&app.ctx, bob, "for bob").await;
    let t = Instant::now();
    let id = notify_in_app(&app.ctx, ann, "live one").await;
    let (name, data, _) = s
        .next_event(Duration::from_secs(5))
        .await
        .expect("the notification");
    let took = t.elapsed();
    assert_eq!(name, "notification", "{data}");
    assert_eq!(data["id"], id.to_string());
    assert_eq!(data["title"], "Test notification", "{data}");
    assert_eq!(data["url"], "/notifications");
    assert_eq!(data["unread"], 2);
    eprintln!("notification on the direct stream after {took:?}");
    assert!(took < Duration::from_secs(1), "arrived after {took:?}");

    // Read marks (from another tab, the API, …) update the count.
    let api_actor = backend::Actor::user(
        backend::auth::session::authenticate(
            &app.ctx.db,
            &app.ctx.keys,
            &app.ctx.settings,
            cookie.split_once('=').unwrap().1,
        )
        .await
        .unwrap()
        .unwrap(),
        backend::Surface::Web,
        RequestMeta::new("127.0.0.1", "tests"),
        None,
    );
    backend::notify::inapp::mark_all_read(&app.ctx, &api_actor, None)
        .await
        .unwrap();
    let (name, data, _) = s
        .next_event(Duration::from_secs(5))
        .await
        .expect("the count");
    assert_eq!(
        (name.as_str(), data["unread"].as_i64()),
        ("unread", Some(0))
    );

    // A heartbeat comment keeps the idle stream open.
    let beat = s.next(Duration::from_secs(3)).await.expect("a heartbeat");
    assert_eq!(beat.0, ":comment", "{}", beat.2);
}

#[tokio::test]
async fn the_stream_needs_a_session_and_a_user_gets_five() {
    let app = spawn_app_with(Options {
        workers: false,
        env: vec![],
    })
    .await;
    let client = stream_client();
    let resp = client
        .get(app.url("/api/events/notifications"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::UNAUTHORIZED,
        "no redirect to sign-in"
    );
    let resp = open(&app, &client, "vortex_session=forged").await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    // An API token is not a session.
    let resp = client
        .get(app.url("/api/events/notifications"))
        .bearer_auth("vxt_whatever")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);

    let (_, cookie) = signed_in(&app, "ann@example.org").await;
    let (_, other) = signed_in(&app, "bob@example.org").await;
    let mut open_streams = Vec::new();
    for _ in 0..5 {
        let resp = open(&app, &client, &cookie).await;
        assert_eq!(resp.status(), StatusCode::OK);
        let mut s = EventStream::new(resp);
        assert_eq!(
            s.next_event(Duration::from_secs(5)).await.unwrap().0,
            "unread"
        );
        open_streams.push(s);
    }
    let sixth = open(&app, &client, &cookie).await;
    assert_eq!(sixth.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(sixth.headers()["retry-after"], "30");
    // Another user is not affected.
    assert_eq!(open(&app, &client, &other).await.status(), StatusCode::OK);
    // Closing a tab frees its slot.
    drop(open_streams.pop());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let resp = open(&app, &client, &cookie).await;
        if resp.status() == StatusCode::OK {
            break;
        }
        assert!(Instant::now() < deadline, "the slot was never freed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_stream_outlives_the_request_timeout_and_ends_after_notify_sse_max_secs() {
    let app = spawn_app_with(Options {
        workers: false,
        env: vec![
            ("NOTIFY_SSE_MAX_SECS", "10".into()),
            // The request timeout bounds the handler, not the stream's body.
            ("REQUEST_TIMEOUT_SECS", "2".into()),
        ],
    })
    .await;
    let (_, cookie) = signed_in(&app, "ann@example.org").await;
    let client = stream_client();
    wait_listening(&app.ctx.db).await;
    let mut s = EventStream::new(open(&app, &client, &cookie).await);
    assert_eq!(
        s.next_event(Duration::from_secs(5)).await.unwrap().0,
        "unread"
    );
    let t = Instant::now();
    // Nothing but heartbeats, then the end of the stream after NOTIFY_SSE_MAX_SECS.
    let ended = s.next_event(Duration::from_secs(20)).await;
    assert!(ended.is_none(), "{ended:?}");
    let took = t.elapsed();
    assert!(
        took >= Duration::from_secs(8) && took < Duration::from_secs(15),
        "ended after {took:?}"
    );
}

#[tokio::test]
async fn a_lost_listener_connection_reconnects_and_tells_streams_to_resync() {
    let app = spawn_app_with(Options {
        workers: false,
        env: vec![],
    })
    .await;
    let (ann, cookie) = signed_in(&app, "ann@example.org").await;
    let client = stream_client();
    wait_listening(&app.ctx.db).await;
    let mut s = EventStream::new(open(&app, &client, &cookie).await);
    assert_eq!(
        s.next_event(Duration::from_secs(5)).await.unwrap().0,
        "unread"
    );

    // Postgres drops the process's listener connection (a failover, a restart, an idle reaper); it carries
    // both live channels (`vortex_notify`, `paper_run`).
    let killed: i64 = sqlx::query_scalar(
        "select count(*) from (select pg_terminate_backend(pid) from pg_stat_activity
           where datname = current_database() and query ilike 'listen%vortex_notify%') t",
    )
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    assert_eq!(killed, 1);
    let (name, data, _) = s
        .next_event(Duration::from_secs(10))
        .await
        .expect("a resync after the reconnect");
    assert_eq!(
        (name.as_str(), data["unread"].as_i64()),
        ("resync", Some(0))
    );
    // And live again.
    wait_listening(&app.ctx.db).await;
    let id = notify_in_app(&app.ctx, ann, "after the reconnect").await;
    let (name, data, _) = s
        .next_event(Duration::from_secs(5))
        .await
        .expect("live again");
    assert_eq!(
        (name.as_str(), data["id"].as_str()),
        ("notification", Some(id.to_string().as_str()))
    );
}

#[tokio::test]
async fn a_signed_out_session_gets_nothing_more_and_its_stream_ends() {
    let app = spawn_app_with(Options {
        workers: false,
        env: vec![],
    })
    .await;
    let (ann, cookie) = signed_in(&app, "ann@example.org").await;
    wait_listening(&app.ctx.db).await;
    let client = stream_client();
    let mut s = EventStream::new(open(&app, &client, &cookie).await);
    assert_eq!(
        s.next_event(Duration::from_secs(5)).await.unwrap().0,
        "unread"
    );
    let idle_before: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar("select last_seen_at from user_session where user_id = $1")
            .bind(ann)
            .fetch_one(&app.ctx.db)
            .await
            .unwrap();

    // Signed out elsewhere (the session row revoked), then a notification arrives.
    sqlx::query("update user_session set revoked_at = now() where user_id = $1")
        .bind(ann)
        .execute(&app.ctx.db)
        .await
        .unwrap();
    notify_in_app(&app.ctx, ann, "after sign-out").await;
    let next = s.next_event(Duration::from_secs(5)).await;
    assert!(
        next.is_none(),
        "the stream must end without the notification: {next:?}"
    );
    let idle_after: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar("select last_seen_at from user_session where user_id = $1")
            .bind(ann)
            .fetch_one(&app.ctx.db)
            .await
            .unwrap();
    assert_eq!(
        idle_before, idle_after,
        "the stream's checks are not activity"
    );
    // And a new stream is refused.
    assert_eq!(
        open(&app, &client, &cookie).await.status(),
        StatusCode::UNAUTHORIZED
    );
}
