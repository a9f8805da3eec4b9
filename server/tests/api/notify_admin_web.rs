//! The admin notifications page (`/admin/notifications`, docs/notifications.md "For administrators"): an admin
//! looks a user up by email address, sees their deliveries, sends them a test notification (which arrives at
//! the SMTP sink) and clears the undeliverable mark of their address, all with plain HTML forms. A trader is
//! refused (403, as the admin REST API answers), an anonymous visitor is sent to sign in, and a post without
//! the CSRF token is refused.

use std::time::{Duration, Instant};

use reqwest::{Client, StatusCode};
use uuid::Uuid;

use crate::{
    auth::{browser, confirmed_user, csrf, location, page_text},
    helpers::{Options, TestApp, spawn_app_with},
    smtp::SmtpSink,
};

const PAGE: &str = "/admin/notifications";

/// A signed-up, confirmed and signed-in browser with `role`; returns it and the user's id.
async fn browser_user(app: &TestApp, email: &str, role: &str) -> (Client, Uuid) {
    let client = browser();
    let id = confirmed_user(app, &client, email, "Someone", Some(role)).await;
    (client, id)
}

async fn post(
    client: &Client,
    app: &TestApp,
    action: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let token = csrf(app, client, "/account").await;
    let mut form = fields.to_vec();
    form.push(("csrf", &token));
    client
        .post(app.url(action))
        .form(&form)
        .send()
        .await
        .unwrap()
}

async fn count(app: &TestApp, sql: &str, user: Uuid) -> i64 {
    sqlx::query_scalar(sql)
        .bind(user)
        .fetch_one(&app.ctx.db)
        .await
        .unwrap()
}

/// Waits for an email delivery of a `system.test` event to the user, other than `seen`, to reach `status`;
/// returns its id.
async fn test_delivery(app: &TestApp, user: Uuid, status: &str, seen: &[Uuid]) -> Uuid {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let row: Option<(Uuid, String)> = sqlx::query_as(
            "select d.delivery_id, d.status from notify_delivery d join notify_event e using (event_id)
             where d.user_id = $1 and d.channel = 'email' and e.event_type = 'system.test'
               and not (d.delivery_id = any($2))
             order by d.created_at desc limit 1",
        )
        .bind(user)
        .bind(seen)
        .fetch_optional(&app.ctx.db)
        .await
        .unwrap();
        if let Some((id, s)) = &row
            && s == status
        {
            return *id;
        }
        assert!(
            Instant::now() < deadline,
            "no {status} system.test email delivery: {row:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The audit entries of tests sent to the user.
async fn tests_sent(app: &TestApp, user: Uuid) -> i64 {
    count(
        app,
        "select count(*) from audit_event where user_id = $1 and event = 'notify_test_sent'",
        user,
    )
    .await
}

#[tokio::test]
async fn notify_admin_page_shows_a_users_deliveries_sends_a_test_and_clears_the_mark() {
    let sink = SmtpSink::start().await;
    let app = spawn_app_with(Options {
        workers: true,
        env: vec![("SMTP_URL", sink.url())],
    })
    .await;
    let (root, _) = browser_user(&app, "root@example.org", "admin").await;
    let (ann, ann_id) = browser_user(&app, "ann@example.org", "trader").await;
    let ann_page = format!("{PAGE}?email=ann%40example.org");

    // The account page links the admin page for admins only.
    assert!(
        page_text(&app, &root, "/account")
            .await
            .contains(r#"href="/admin/notifications""#)
    );
    assert!(
        !page_text(&app, &ann, "/account")
            .await
            .contains(r#"href="/admin/notifications""#)
    );

    // Looked up by address (any case): the account and its (so far mail-less) log.
    let html = page_text(&app, &root, &format!("{PAGE}?email=ANN%40Example.org")).await;
    assert!(
        html.contains(&format!(r#"data-user-id="{ann_id}""#)),
        "{html}"
    );
    assert!(html.contains(r#"id="deliverable""#), "{html}");
    let html = page_text(&app, &root, &format!("{PAGE}?email=nobody%40example.org")).await;
    assert!(html.contains(r#"id="no-such-user""#), "{html}");

    // Send a test by email: back to the page; it arrives at the SMTP sink and shows in the log.
    let resp = post(
        &root,
        &app,
        "/admin/notifications/test",
        &[
            ("user_id", &ann_id.to_string()),
            ("email", "ann@example.org"),
            ("channel", "email"),
        ],
    )
    .await;
    assert_eq!(
        location(&resp),
        "/admin/notifications?email=ann%40example.org&ok=admin_test_sent"
    );
    let delivery = test_delivery(&app, ann_id, "sent", &[]).await;
    let mail = sink
        .wait_for_text(
            "ann@example.org",
            &[&format!("n-{delivery}@"), "Test notification"],
            Duration::from_secs(20),
        )
        .await;
    assert!(mail.contains("sent by an administrator"), "{mail}");
    assert_eq!(tests_sent(&app, ann_id).await, 1);
    let html = page_text(&app, &root, &ann_page).await;
    let row = html
        .split("<tr ")
        .find(|r| r.contains(&format!(r#"data-delivery-id="{delivery}""#)))
        .unwrap_or_else(|| panic!("the delivery is listed: {html}"));
    assert!(row.contains(r#"data-status="sent""#), "{row}");
    assert!(
        row.contains("system.test") && row.contains("email"),
        "{row}"
    );

    // A channel that does not exist: back to the page with the field named; nothing sent.
    let resp = post(
        &root,
        &app,
        "/admin/notifications/test",
        &[
            ("user_id", &ann_id.to_string()),
            ("email", "ann@example.org"),
            ("channel", "pigeon"),
        ],
    )
    .await;
    assert_eq!(
        location(&resp),
        "/admin/notifications?email=ann%40example.org&error=admin_refused"
    );
    let html = page_text(&app, &root, &location(&resp)).await;
    assert!(html.contains(r#"data-field="channel""#), "{html}");
    assert_eq!(tests_sent(&app, ann_id).await, 1);

    // Without the CSRF token: 403, nothing sent.
    let resp = root
        .post(app.url("/admin/notifications/test"))
        .form(&[("user_id", ann_id.to_string()), ("channel", String::new())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert_eq!(tests_sent(&app, ann_id).await, 1);

    // An unknown user: 404.
    let resp = post(
        &root,
        &app,
        "/admin/notifications/test",
        &[
            ("user_id", &Uuid::new_v4().to_string()),
            ("email", "x@example.org"),
        ],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);

    // The undeliverable mark: shown, cleared by the button, which sends a test to the address.
    sqlx::query(
        "insert into mail_suppression (address, reason, smtp_code, smtp_message)
         values ('ann@example.org', 'rejected', 550, 'mailbox unavailable')",
    )
    .execute(&app.ctx.db)
    .await
    .unwrap();
    let html = page_text(&app, &root, &ann_page).await;
    assert!(html.contains(r#"id="undeliverable""#), "{html}");
    assert!(html.contains("mailbox unavailable"), "{html}");
    let resp = post(
        &root,
        &app,
        "/admin/notifications/clear-undeliverable",
        &[
            ("user_id", &ann_id.to_string()),
            ("email", "ann@example.org"),
        ],
    )
    .await;
    assert_eq!(
        location(&resp),
        "/admin/notifications?email=ann%40example.org&ok=admin_cleared"
    );
    assert_eq!(
        count(
            &app,
            "select count(*) from mail_suppression where address = (select email from app_user where user_id = $1)",
            ann_id
        )
        .await,
        0
    );
    let again = test_delivery(&app, ann_id, "sent", &[delivery]).await;
    sink.wait_for_text(
        "ann@example.org",
        &[&format!("n-{again}@")],
        Duration::from_secs(20),
    )
    .await;
    let html = page_text(&app, &root, &format!("{ann_page}&ok=admin_cleared")).await;
    assert!(html.contains(r#"id="deliverable""#), "{html}");
    assert!(
        html.contains("The undeliverable mark was cleared"),
        "{html}"
    );
    // Nothing to clear the second time.
    let resp = post(
        &root,
        &app,
        "/admin/notifications/clear-undeliverable",
        &[
            ("user_id", &ann_id.to_string()),
            ("email", "ann@example.org"),
        ],
    )
    .await;
    assert_eq!(
        location(&resp),
        "/admin/notifications?email=ann%40example.org&ok=admin_not_marked"
    );
    assert_eq!(
        count(
            &app,
            "select count(*) from audit_event where user_id = $1 and event = 'email_undeliverable_cleared'",
            ann_id
        )
        .await,
        1
    );
}

#[tokio::test]
async fn notify_admin_page_refuses_traders_and_sends_the_anonymous_to_sign_in() {
    let app = spawn_app_with(Options::default()).await;
    let (_, root_id) = browser_user(&app, "root@example.org", "admin").await;
    let (ann, ann_id) = browser_user(&app, "ann@example.org", "trader").await;

    // A trader: 403 for the page (with or without an address) and for both forms, as the REST API answers.
    for path in [PAGE.to_owned(), format!("{PAGE}?email=root%40example.org")] {
        let resp = ann.get(app.url(&path)).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{path}");
        let html = resp.text().await.unwrap();
        assert!(!html.contains(&root_id.to_string()), "{html}");
    }
    for action in [
        "/admin/notifications/test",
        "/admin/notifications/clear-undeliverable",
    ] {
        let resp = post(
            &ann,
            &app,
            action,
            &[
                ("user_id", &root_id.to_string()),
                ("email", "root@example.org"),
            ],
        )
        .await;
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{action}");
    }
    assert_eq!(tests_sent(&app, root_id).await, 0, "nothing was sent");
    assert_eq!(
        count(
            &app,
            "select count(*) from audit_event where event = 'email_undeliverable_cleared' and user_id = $1",
            root_id
        )
        .await,
        0
    );

    // Anonymous: the page sends to sign-in; a form post without a session is refused.
    let anon = browser();
    let resp = anon
        .get(app.url(&format!("{PAGE}?email=ann%40example.org")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert!(
        location(&resp).starts_with("/signin?next=/admin/notifications"),
        "{}",
        location(&resp)
    );
    let token = csrf(&app, &anon, "/signin").await;
    let resp = anon
        .post(app.url("/admin/notifications/test"))
        .form(&[("user_id", ann_id.to_string()), ("csrf", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert!(
        location(&resp).starts_with("/signin"),
        "{}",
        location(&resp)
    );
    assert_eq!(tests_sent(&app, ann_id).await, 0);
}
