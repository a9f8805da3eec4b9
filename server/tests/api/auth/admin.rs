//! `vortex create-admin` (the real binary) reads the password from stdin; admin routes are admin
//! only.

use reqwest::{Client, StatusCode};
use serde_json::Value;

use super::{
    PASSWORD, app_with_mail, browser, create_admin, location, post_form, session_status,
    shown_token, sign_in, verified_user,
};

#[tokio::test]
async fn create_admin_reads_the_password_from_stdin_and_admin_routes_are_admin_only() {
    let (app, sink) = app_with_mail().await;
    let (code, out) = create_admin(&app, "root@example.org", "password1234");
    assert_ne!(code, 0);
    assert!(out.contains("too common"), "{out}");
    let (code, out) = create_admin(&app, "root@example.org", "an admin passphrase of length");
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("created admin root@example.org"));

    let admin = browser();
    assert_eq!(
        location(
            &sign_in(
                &app,
                &admin,
                "root@example.org",
                "an admin passphrase of length"
            )
            .await
        ),
        "/account"
    );
    post_form(
        &app,
        &admin,
        "/account",
        "/account/tokens",
        &[
            ("name", "ops"),
            ("scope", "read"),
            ("expires_in_days", "1"),
            ("current_password", "an admin passphrase of length"),
        ],
    )
    .await;
    let admin_token = shown_token(&app, &admin).await;

    let trader = verified_user(&app, &sink, "quin@example.org").await;
    post_form(
        &app,
        &trader,
        "/account",
        "/account/tokens",
        &[
            ("name", "t"),
            ("scope", "read"),
            ("expires_in_days", "1"),
            ("current_password", PASSWORD),
        ],
    )
    .await;
    let trader_token = shown_token(&app, &trader).await;

    let api = Client::new();
    assert_eq!(
        api.get(app.url("/api/v1/admin/audit"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        api.get(app.url("/api/v1/admin/audit"))
            .bearer_auth(&trader_token)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::FORBIDDEN
    );
    let all: Value = api
        .get(app.url("/api/v1/admin/audit"))
        .bearer_auth(&admin_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let users: std::collections::HashSet<String> = all["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["user_id"].as_str().map(str::to_owned))
        .collect();
    assert!(users.len() >= 2, "admin sees everyone's events");
    let own: Value = api
        .get(app.url("/api/v1/me/audit"))
        .bearer_auth(&trader_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let events = own["events"].as_array().unwrap();
    assert!(
        events.iter().all(|e| e["user_id"] == events[0]["user_id"]),
        "a trader sees only their own events"
    );
    let signin = events
        .iter()
        .find(|e| e["event"] == "signin_succeeded")
        .expect("sign-in recorded");
    assert_eq!(signin["ip"], "127.0.0.1");

    // Promoting an existing trader: role changes, their sessions end (privilege change), it is audited.
    let (code, out) = create_admin(&app, "quin@example.org", "");
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        session_status(&app, &trader).await,
        StatusCode::UNAUTHORIZED
    );
    let role: String =
        sqlx::query_scalar("select role from app_user where email = 'quin@example.org'")
            .fetch_one(&app.ctx.db)
            .await
            .unwrap();
    assert_eq!(role, "admin");
    let audited: i64 =
        sqlx::query_scalar("select count(*) from audit_event where event = 'role_changed'")
            .fetch_one(&app.ctx.db)
            .await
            .unwrap();
    assert_eq!(audited, 2);
}
