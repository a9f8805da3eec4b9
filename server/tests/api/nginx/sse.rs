//! The live notification stream through nginx (`location ^~ /api/events/`): an event reaches the browser
//! within a second of its commit (nginx does not buffer it), heartbeats pass, and the per-user stream limit
//! answers 429 through the proxy.

use std::time::{Duration, Instant};

use backend::{
    Ctx,
    auth::{RequestMeta, Role, session, users},
    settings::Settings,
};
use reqwest::StatusCode;

use super::Stack;
use crate::notify_live::{EventStream, notify_in_app, wait_listening};

#[tokio::test]
async fn a_notification_arrives_through_nginx_within_a_second_and_the_sixth_stream_is_refused() {
    // The test signs the session cookie itself, so it shares the app's JWT secret.
    let stack = Stack::start_with(
        1,
        &[
            ("NOTIFY_SSE_HEARTBEAT_SECS", "2"),
            ("JWT_SECRET", "nginx-sse-test-secret-0123456789abcdef0123"),
        ],
    )
    .await;
    let ctx = Ctx::new(Settings::from_map(&stack.env).unwrap()).unwrap();
    let mut conn = ctx.db.acquire().await.unwrap();
    let user = users::insert(&mut conn, "ann@example.org", "Ann", "x", Role::Trader)
        .await
        .unwrap()
        .unwrap();
    drop(conn);
    let s = session::create(
        &ctx.db,
        &ctx.keys,
        &ctx.settings,
        user,
        &RequestMeta::new("127.0.0.1", "tests"),
    )
    .await
    .unwrap();
    let cookie = format!("{}={}", session::cookie_name(&ctx.settings), s.token);
    let client = stack.nginx.client_from("127.0.0.7");
    let open = || {
        client
            .get(stack.nginx.https("/api/events/notifications"))
            .header("cookie", &cookie)
            .header("accept", "text/event-stream")
            .header("accept-encoding", "gzip")
            .send()
    };

    let resp = open().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    assert!(
        resp.headers().get("content-encoding").is_none(),
        "not compressed"
    );
    let mut stream = EventStream::new(resp);
    let (name, data, _) = stream
        .next_event(Duration::from_secs(5))
        .await
        .expect("the first event through nginx");
    assert_eq!(
        (name.as_str(), data["unread"].as_i64()),
        ("unread", Some(0))
    );
    wait_listening(&ctx.db).await;

    let t = Instant::now();
    let id = notify_in_app(&ctx, user, "through nginx").await;
    let (name, data, _) = stream
        .next_event(Duration::from_secs(5))
        .await
        .expect("the notification through nginx");
    let took = t.elapsed();
    assert_eq!(name, "notification");
    assert_eq!(data["id"], id.to_string());
    assert!(
        took < Duration::from_secs(1),
        "buffered? arrived after {took:?}"
    );
    // A heartbeat passes nginx too (every 2 s here, 15 s by default).
    let beat = stream
        .next(Duration::from_secs(5))
        .await
        .expect("a heartbeat");
    assert_eq!(beat.0, ":comment", "{}", beat.2);

    let mut more = Vec::new();
    for _ in 0..4 {
        let r = open().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        more.push(r);
    }
    let sixth = open().await.unwrap();
    assert_eq!(sixth.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(sixth.headers()["retry-after"], "30");
}
