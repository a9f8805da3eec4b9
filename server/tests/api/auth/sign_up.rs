//! Signing up: confirmation by email, the verification email, a second sign-up with one address,
//! weak passwords and bad emails, and emails waiting out an SMTP outage.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;

use super::{
    PASSWORD, app_with_mail, browser, location, post_form, session_status, sign_up, verified_user,
};
use crate::smtp::{link, token};

#[tokio::test]
async fn sign_up_confirm_by_email_sign_in_and_sign_out() {
    let (app, sink) = app_with_mail().await;
    let client = verified_user(&app, &sink, "ann@example.org").await;
    let me: Value = client
        .get(app.url("/api/session"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["email"], "ann@example.org");
    assert_eq!(me["email_verified"], true);
    assert_eq!(me["role"], "trader");
    let page = client.get(app.url("/account")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("ann@example.org") && html.contains("this device"),
        "{html}"
    );

    let resp = post_form(&app, &client, "/account", "/auth/signout", &[]).await;
    assert_eq!(location(&resp), "/signin?ok=signed_out");
    assert_eq!(
        session_status(&app, &client).await,
        StatusCode::UNAUTHORIZED
    );
    // The account page now sends visitors to sign in.
    let resp = client.get(app.url("/account")).send().await.unwrap();
    assert!(resp.status().is_redirection());
    assert!(location(&resp).starts_with("/signin"));

    let stored: String =
        sqlx::query_scalar("select password_hash from app_user where email = 'ann@example.org'")
            .fetch_one(&app.ctx.db)
            .await
            .unwrap();
    assert!(stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
    let events: Vec<String> =
        sqlx::query_scalar("select event from audit_event order by audit_event_id")
            .fetch_all(&app.ctx.db)
            .await
            .unwrap();
    assert_eq!(
        events,
        ["signup", "email_verified", "signin_succeeded", "signout"]
    );
}

#[tokio::test]
async fn the_verification_email_renders_both_parts_and_its_link_works_once() {
    let (app, sink) = app_with_mail().await;
    let client = browser();
    sign_up(&app, &client, "bo@example.org", PASSWORD).await;
    let mail = &sink
        .wait_for("bo@example.org", 1, Duration::from_secs(15))
        .await[0];
    assert!(
        mail.contains("Content-Type: text/plain") && mail.contains("Content-Type: text/html"),
        "{mail}"
    );
    assert!(mail.contains("Message-ID: <email-"), "{mail}");
    let t = token(&link(mail, "/verify-email"));
    let first = post_form(
        &app,
        &client,
        "/verify-email",
        "/auth/verify-email",
        &[("token", &t)],
    )
    .await;
    assert_eq!(location(&first), "/signin?ok=verified");
    let again = post_form(
        &app,
        &client,
        "/verify-email",
        "/auth/verify-email",
        &[("token", &t)],
    )
    .await;
    assert_eq!(location(&again), "/verify-email?error=invalid_token");
}

#[tokio::test]
async fn signing_up_twice_with_one_address_reveals_nothing_and_warns_the_owner() {
    let (app, sink) = app_with_mail().await;
    let first = sign_up(&app, &browser(), "cy@example.org", PASSWORD).await;
    let second = sign_up(
        &app,
        &browser(),
        "CY@example.org",
        "another long passphrase here",
    )
    .await;
    assert_eq!(first.status(), second.status());
    assert_eq!(location(&first), location(&second));
    let mails = sink
        .wait_for("cy@example.org", 2, Duration::from_secs(15))
        .await;
    assert!(
        mails.iter().any(|m| m.contains("Sign-up attempt")),
        "{mails:?}"
    );
    let users: i64 = sqlx::query_scalar("select count(*) from app_user")
        .fetch_one(&app.ctx.db)
        .await
        .unwrap();
    assert_eq!(users, 1);
}

#[tokio::test]
async fn weak_passwords_and_bad_emails_are_refused_with_a_reason() {
    let (app, _sink) = app_with_mail().await;
    for (email, pw, code) in [
        ("d@example.org", "short", "password_short"),
        ("d@example.org", "password123456", "password_common"),
        ("d@example.org", "zzzzzzzzzzzzzzzz", "password_repetitive"),
        ("not-an-email", PASSWORD, "email"),
    ] {
        let resp = sign_up(&app, &browser(), email, pw).await;
        assert_eq!(location(&resp), format!("/signup?error={code}"), "{pw}");
    }
    let users: i64 = sqlx::query_scalar("select count(*) from app_user")
        .fetch_one(&app.ctx.db)
        .await
        .unwrap();
    assert_eq!(users, 0);
}

#[tokio::test]
async fn emails_wait_out_an_smtp_outage_and_are_delivered_exactly_once() {
    let (app, mut sink) = app_with_mail().await;
    sink.stop();
    let c = browser();
    sign_up(&app, &c, "ray@example.org", PASSWORD).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (attempts, status): (i32, String) =
            sqlx::query_as("select attempts, status from email_outbox")
                .fetch_one(&app.ctx.db)
                .await
                .unwrap();
        if attempts >= 1 {
            assert_eq!(status, "queued");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no delivery attempt during the outage"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    sink.restart().await;
    sink.wait_for("ray@example.org", 1, Duration::from_secs(30))
        .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        sink.wait_for("ray@example.org", 1, Duration::from_secs(1))
            .await
            .len(),
        1,
        "exactly once"
    );
    let (status, sent): (String, bool) =
        sqlx::query_as("select status, sent_at is not null from email_outbox")
            .fetch_one(&app.ctx.db)
            .await
            .unwrap();
    assert_eq!((status.as_str(), sent), ("sent", true));
}
