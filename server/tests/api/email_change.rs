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

    // Refusals name the field: a wrong password, another account's address, a malformed one.
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
    for taken in ["BOB@example.org", "not an address"] {
        let resp = post_form(
            &app,
            &ann.browser,
            "/account",
            "/account/email",
            &[("new_email", taken), ("current_password", PASSWORD)],
        )
        .await;
        assert_eq!(location(&resp), "/account?error=new_email#email", "{taken}");
    }

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
