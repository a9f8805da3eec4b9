//! Issue 11, accounts: no live one-time link in the mail outbox (the verification mail included) or
//! in nginx's access log.

use std::time::{Duration, Instant};

use super::nginx_stack;
use crate::{
    auth::{PASSWORD, app_with_mail, browser, location, post_form},
    smtp::{link, token},
};

#[tokio::test]
async fn sent_emails_keep_no_live_one_time_link_in_the_outbox() {
    let (app, sink) = app_with_mail().await;
    let c = browser();
    post_form(
        &app,
        &c,
        "/signup",
        "/auth/signup",
        &[
            ("email", "xia@example.org"),
            ("display_name", "Zorblax"),
            ("password", PASSWORD),
        ],
    )
    .await;
    let mails = sink
        .wait_for("xia@example.org", 1, Duration::from_secs(15))
        .await;
    let t = token(&link(&mails[0], "/verify-email"));
    assert_eq!(t.len(), 64);
    // The display name chosen at sign-up does not travel to the address being verified.
    assert!(!mails[0].contains("Zorblax"), "{}", mails[0]);
    let deadline = Instant::now() + Duration::from_secs(10);
    let (text, html) = loop {
        let (status, text, html): (String, String, String) = sqlx::query_as(
            "select status, body_text, body_html from email_outbox where to_address = 'xia@example.org'",
        )
        .fetch_one(&app.ctx.db)
        .await
        .unwrap();
        if status == "sent" {
            break (text, html);
        }
        assert!(Instant::now() < deadline, "not marked sent");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    for body in [&text, &html] {
        assert!(!body.contains(&t), "live token kept in the outbox");
        assert!(body.contains("token=redacted"), "{body}");
    }
    // The emailed link still works.
    let resp = post_form(
        &app,
        &c,
        &format!("/verify-email?token={t}"),
        "/auth/verify-email",
        &[("token", &t)],
    )
    .await;
    assert_eq!(location(&resp), "/signin?ok=verified");
}

#[tokio::test]
async fn nginx_keeps_one_time_tokens_out_of_its_access_log() {
    let (nginx, _app, _db) = nginx_stack().await;
    let client = nginx.client_from("127.0.0.9");
    let secret = "ab".repeat(32);
    for path in [
        format!("/reset-password?token={secret}"),
        format!("/verify-email?token={secret}"),
        format!("/verify-email?x=1&token={secret}"),
        "/signin?next=/strategies".to_owned(),
    ] {
        let resp = client.get(nginx.https(&path)).send().await.unwrap();
        assert!(resp.status().is_success() || resp.status().is_redirection());
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let log = nginx.file("logs/access.log");
        if log.lines().count() >= 4 {
            assert!(!log.contains(&secret), "token in the access log:\n{log}");
            assert!(log.contains("/reset-password") && log.contains("/verify-email"));
            assert!(
                log.contains("/signin?next=/strategies"),
                "other queries are still logged:\n{log}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "no access-log lines:\n{log}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
