//! Changing the account's email address end to end: the link goes to the new address, the change happens only
//! when it is used (once), the old address is told, the address stays unique, and it is audited.

use std::time::Duration;

use reqwest::StatusCode;

use crate::{
    auth::{PASSWORD, app_with_mail, browser, location, post_form, sign_in},
    plans::person,
    smtp::{link, token},
};

#[tokio::test]
async fn email_change_is_confirmed_from_the_new_address_and_the_old_one_is_told() {
    let (app, sink) = app_with_mail().await;
    let ann = person(&app, "ann@example.org", "trader").await;
    let bob = person(&app, "bob@example.org", "trader").await;

    // Refusals name the field: a wrong password, a malformed address.
    let resp = post_form(
        &app,
        &ann.browser,
        "/account",
        "/account/email",
        &[
            ("new_email", "ann.new@example.org"),
            ("current_password", "not my password at all"),
        ],
    )
    .await;
    assert_eq!(location(&resp), "/account?error=current_password#email");
    let resp = post_form(
        &app,
        &ann.browser,
        "/account",
        "/account/email",
        &[
            ("new_email", "not an address"),
            ("current_password", PASSWORD),
        ],
    )
    .await;
    assert_eq!(location(&resp), "/account?error=new_email#email");
    // Another account's address: the same answer as a free one (whether an address has an account is not the
    // requester's to learn); its owner gets a notice without a link, and nothing changes.
    let before = sink
        .messages()
        .iter()
        .filter(|m| m.contains("To: bob@example.org"))
        .count();
    let resp = post_form(
        &app,
        &ann.browser,
        "/account",
        "/account/email",
        &[
            ("new_email", "BOB@example.org"),
            ("current_password", PASSWORD),
        ],
    )
    .await;
    assert_eq!(location(&resp), "/account?ok=email_change_sent#email");
    let notice = sink
        .wait_for("bob@example.org", before + 1, Duration::from_secs(20))
        .await;
    let notice = &notice[before..];
    assert!(
        notice[0].contains("Request to use your email address on another Vortex account"),
        "{}",
        notice[0]
    );
    assert!(
        !notice[0].contains("/confirm-email-change"),
        "no link to take the address"
    );
    let pending: i64 = sqlx::query_scalar("select count(*) from email_change where user_id = $1")
        .bind(ann.id)
        .fetch_one(&app.ctx.db)
        .await
        .unwrap();
    assert_eq!(pending, 0, "no change requested");
    // The requester's own trail (theirs to read) does not tell either; the owner's trail keeps what happened.
    let ann_trail: Vec<String> = sqlx::query_scalar(
        "select event || ' ' || detail::text from audit_event where user_id = $1
         and event in ('verification_requested', 'email_change_requested') order by audit_event_id",
    )
    .bind(ann.id)
    .fetch_all(&app.ctx.db)
    .await
    .unwrap();
    assert!(
        ann_trail
            .iter()
            .all(|e| !e.contains("taken") && !e.contains("refused")),
        "{ann_trail:?}"
    );
    let bob_trail: i64 = sqlx::query_scalar(
        "select count(*) from audit_event where user_id = $1 and event = 'email_change_address_taken'",
    )
    .bind(bob.id)
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    assert_eq!(bob_trail, 1);

    let resp = post_form(
        &app,
        &ann.browser,
        "/account",
        "/account/email",
        &[
            ("new_email", "ann.new@example.org"),
            ("current_password", PASSWORD),
        ],
    )
    .await;
    assert_eq!(location(&resp), "/account?ok=email_change_sent#email");
    let mail = sink
        .wait_for("ann.new@example.org", 1, Duration::from_secs(20))
        .await;
    let t = token(&link(&mail[0], "/confirm-email-change"));
    // Nothing changed yet.
    let email: String = sqlx::query_scalar("select email from app_user where user_id = $1")
        .bind(ann.id)
        .fetch_one(&app.ctx.db)
        .await
        .unwrap();
    assert_eq!(email, "ann@example.org");

    // The link works (from any browser), once.
    let other = browser();
    let page = format!("/confirm-email-change?token={t}");
    let resp = post_form(
        &app,
        &other,
        &page,
        "/auth/confirm-email-change",
        &[("token", &t)],
    )
    .await;
    assert_eq!(location(&resp), "/account?ok=email_changed");
    let resp = post_form(
        &app,
        &other,
        &page,
        "/auth/confirm-email-change",
        &[("token", &t)],
    )
    .await;
    assert!(location(&resp).contains("error=invalid_token"), "{resp:?}");
    let email: String = sqlx::query_scalar("select email from app_user where user_id = $1")
        .bind(ann.id)
        .fetch_one(&app.ctx.db)
        .await
        .unwrap();
    assert_eq!(email, "ann.new@example.org");

    // The old address is told; the new one signs in, the old one no longer does.
    sink.wait_for_text(
        "ann@example.org",
        &["was changed to"],
        Duration::from_secs(20),
    )
    .await;
    let resp = sign_in(&app, &browser(), "ann.new@example.org", PASSWORD).await;
    assert_eq!(location(&resp), "/account");
    let resp = sign_in(&app, &browser(), "ann@example.org", PASSWORD).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert!(location(&resp).starts_with("/signin?error="), "{resp:?}");
    let audits: i64 = sqlx::query_scalar(
        "select count(*) from audit_event where event = 'email_changed' and user_id = $1
           and detail::text not like '%ann@example.org%'",
    )
    .bind(ann.id)
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    assert_eq!(audits, 1);
    let _ = bob;
}

/// Asks (as `who`, signed in on `browser`) to move the account to `new_email`; returns the link's token.
async fn request_change(
    app: &crate::helpers::TestApp,
    sink: &crate::smtp::SmtpSink,
    who: &reqwest::Client,
    new_email: &str,
) -> String {
    let resp = post_form(
        app,
        who,
        "/account",
        "/account/email",
        &[("new_email", new_email), ("current_password", PASSWORD)],
    )
    .await;
    assert_eq!(location(&resp), "/account?ok=email_change_sent#email");
    let mail = sink
        .wait_for_text(
            new_email,
            &["/confirm-email-change"],
            Duration::from_secs(20),
        )
        .await;
    token(&link(&mail, "/confirm-email-change"))
}

/// Mails a password-reset link to `email`; returns its token.
async fn reset_link(
    app: &crate::helpers::TestApp,
    sink: &crate::smtp::SmtpSink,
    email: &str,
) -> String {
    let c = browser();
    post_form(
        app,
        &c,
        "/forgot-password",
        "/auth/forgot-password",
        &[("email", email)],
    )
    .await;
    let mail = sink
        .wait_for_text(email, &["/reset-password"], Duration::from_secs(20))
        .await;
    token(&link(&mail, "/reset-password"))
}

async fn confirm_change(app: &crate::helpers::TestApp, t: &str) -> String {
    let page = format!("/confirm-email-change?token={t}");
    location(
        &post_form(
            app,
            &browser(),
            &page,
            "/auth/confirm-email-change",
            &[("token", t)],
        )
        .await,
    )
    .to_owned()
}

async fn email_of(app: &crate::helpers::TestApp, id: uuid::Uuid) -> String {
    sqlx::query_scalar("select email from app_user where user_id = $1")
        .bind(id)
        .fetch_one(&app.ctx.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_password_reset_voids_a_pending_email_change() {
    let (app, sink) = app_with_mail().await;
    let ann = person(&app, "cat@example.org", "trader").await;
    // Whoever had the session asks to move the account to their own address...
    let t = request_change(&app, &sink, &ann.browser, "intruder@example.org").await;
    // (a sign-in waiting for its second code, started with the old password)
    sqlx::query(
        "insert into signin_challenge (challenge_hash, user_id, expires_at)
         values (repeat('c', 64), $1, now() + interval '5 minutes')",
    )
    .bind(ann.id)
    .execute(&app.ctx.db)
    .await
    .unwrap();
    // ...the owner resets the password ("I was compromised")...
    let r = reset_link(&app, &sink, "cat@example.org").await;
    let resp = post_form(
        &app,
        &browser(),
        "/reset-password",
        "/auth/reset-password",
        &[("token", &r), ("password", "cat picks a long new phrase")],
    )
    .await;
    assert_eq!(location(&resp), "/signin?ok=password_reset");
    // ...and the old link no longer moves the account.
    assert!(
        confirm_change(&app, &t)
            .await
            .contains("error=invalid_token"),
        "the pending change survived the reset"
    );
    assert_eq!(email_of(&app, ann.id).await, "cat@example.org");
    let challenges: i64 =
        sqlx::query_scalar("select count(*) from signin_challenge where user_id = $1")
            .bind(ann.id)
            .fetch_one(&app.ctx.db)
            .await
            .unwrap();
    assert_eq!(challenges, 0, "the reset ends pending sign-ins");
}

#[tokio::test]
async fn a_password_change_and_an_admin_sign_out_void_a_pending_email_change() {
    let (app, sink) = app_with_mail().await;
    let dan = person(&app, "dan@example.org", "trader").await;
    let t = request_change(&app, &sink, &dan.browser, "intruder2@example.org").await;
    let resp = post_form(
        &app,
        &dan.browser,
        "/account",
        "/account/password",
        &[
            ("current_password", PASSWORD),
            ("new_password", "dan picks a long new phrase"),
            ("sign_out_others", "on"),
        ],
    )
    .await;
    assert!(location(&resp).contains("ok="), "{resp:?}");
    assert!(
        confirm_change(&app, &t)
            .await
            .contains("error=invalid_token")
    );
    assert_eq!(email_of(&app, dan.id).await, "dan@example.org");
}

#[tokio::test]
async fn an_email_change_voids_the_old_reset_links() {
    let (app, sink) = app_with_mail().await;
    let eve = person(&app, "eve@example.org", "trader").await;
    // A reset link mailed to the old address before the change...
    let r = reset_link(&app, &sink, "eve@example.org").await;
    let t = request_change(&app, &sink, &eve.browser, "eve.new@example.org").await;
    assert_eq!(confirm_change(&app, &t).await, "/account?ok=email_changed");
    // ...no longer works once the account moved to the new address.
    let resp = post_form(
        &app,
        &browser(),
        "/reset-password",
        "/auth/reset-password",
        &[("token", &r), ("password", "eve picks a long new phrase")],
    )
    .await;
    assert_eq!(location(&resp), "/reset-password?error=invalid_token");
    let resp = sign_in(&app, &browser(), "eve.new@example.org", PASSWORD).await;
    assert_eq!(location(&resp), "/account");
}
