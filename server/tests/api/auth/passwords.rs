//! Signing in and passwords: unknown accounts and wrong passwords look alike, repeated failures
//! lock the account until a reset, resets end every session, changing the password.

use std::time::{Duration, Instant};

use reqwest::StatusCode;

use super::{
    PASSWORD, app_with_mail, browser, csrf, location, post_form, session_status, sign_in,
    verified_user,
};
use crate::smtp::{link, token};

#[tokio::test]
async fn unknown_account_and_wrong_password_look_the_same_and_take_as_long() {
    let (app, sink) = app_with_mail().await;
    verified_user(&app, &sink, "eve@example.org").await;
    let mut wrong = Vec::new();
    let mut unknown = Vec::new();
    for _ in 0..3 {
        let c = browser();
        let token = csrf(&app, &c, "/signin").await;
        let attempt = async |email: &str| {
            let started = Instant::now();
            let resp = c
                .post(app.url("/auth/signin"))
                .form(&[
                    ("email", email),
                    ("password", "not the right one!"),
                    ("csrf", &token),
                ])
                .send()
                .await
                .unwrap();
            (resp, started.elapsed())
        };
        let (a, took) = attempt("eve@example.org").await;
        wrong.push(took);
        let (b, took) = attempt("nobody@example.org").await;
        unknown.push(took);
        assert_eq!(a.status(), b.status());
        assert_eq!(location(&a), location(&b));
        assert_eq!(location(&a), "/signin?error=invalid");
        assert_eq!(a.text().await.unwrap(), b.text().await.unwrap());
    }
    wrong.sort();
    unknown.sort();
    // Both run argon2 (a real hash or the dummy one): the unknown-account path is not measurably faster.
    assert!(
        unknown[1] * 2 >= wrong[1],
        "unknown {unknown:?} vs wrong {wrong:?}"
    );
}

#[tokio::test]
async fn repeated_failures_lock_the_account_with_429_until_a_password_reset() {
    let (app, sink) = app_with_mail().await;
    verified_user(&app, &sink, "fay@example.org").await;
    let c = browser();
    // Five free failures per account and client, then a delay that doubles with every further failure
    // (behaviour changed with issue 11: progressive delay per account + client instead of a hard lock).
    for _ in 0..5 {
        assert_eq!(
            location(&sign_in(&app, &c, "fay@example.org", "wrong password guess").await),
            "/signin?error=invalid"
        );
    }
    let locked = sign_in(&app, &c, "fay@example.org", PASSWORD).await;
    assert_eq!(locked.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = locked.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry > 0 && retry <= 900, "{retry}");

    // The owner is not locked out for good: a password reset reopens the account.
    post_form(
        &app,
        &c,
        "/forgot-password",
        "/auth/forgot-password",
        &[("email", "fay@example.org")],
    )
    .await;
    let mails = sink
        .wait_for("fay@example.org", 2, Duration::from_secs(15))
        .await;
    let reset = mails
        .iter()
        .find(|m| m.contains("/reset-password"))
        .unwrap();
    let t = token(&link(reset, "/reset-password"));
    let new_pw = "a brand new passphrase for fay";
    let resp = post_form(
        &app,
        &c,
        "/reset-password",
        "/auth/reset-password",
        &[("token", &t), ("password", new_pw)],
    )
    .await;
    assert_eq!(location(&resp), "/signin?ok=password_reset");
    assert_eq!(
        location(&sign_in(&app, &c, "fay@example.org", new_pw).await),
        "/account"
    );
}

#[tokio::test]
async fn password_reset_ends_every_session_and_its_link_is_single_use() {
    let (app, sink) = app_with_mail().await;
    let old_session = verified_user(&app, &sink, "gus@example.org").await;
    let c = browser();
    // Unknown addresses get the same answer and no email.
    let unknown = post_form(
        &app,
        &c,
        "/forgot-password",
        "/auth/forgot-password",
        &[("email", "ghost@example.org")],
    )
    .await;
    let known = post_form(
        &app,
        &c,
        "/forgot-password",
        "/auth/forgot-password",
        &[("email", "gus@example.org")],
    )
    .await;
    assert_eq!(location(&unknown), location(&known));
    let mails = sink
        .wait_for("gus@example.org", 2, Duration::from_secs(15))
        .await;
    assert!(
        !sink
            .messages()
            .iter()
            .any(|m| m.contains("To: ghost@example.org"))
    );
    let t = token(&link(
        mails
            .iter()
            .find(|m| m.contains("/reset-password"))
            .unwrap(),
        "/reset-password",
    ));

    let weak = post_form(
        &app,
        &c,
        "/reset-password",
        "/auth/reset-password",
        &[("token", &t), ("password", "short")],
    )
    .await;
    assert!(
        location(&weak).ends_with("error=password_short"),
        "{}",
        location(&weak)
    );
    let new_pw = "gus picks a long new phrase";
    let ok = post_form(
        &app,
        &c,
        "/reset-password",
        "/auth/reset-password",
        &[("token", &t), ("password", new_pw)],
    )
    .await;
    assert_eq!(location(&ok), "/signin?ok=password_reset");
    let reuse = post_form(
        &app,
        &c,
        "/reset-password",
        "/auth/reset-password",
        &[("token", &t), ("password", "yet another long phrase")],
    )
    .await;
    assert_eq!(location(&reuse), "/reset-password?error=invalid_token");

    assert_eq!(
        session_status(&app, &old_session).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        location(&sign_in(&app, &c, "gus@example.org", PASSWORD).await),
        "/signin?error=invalid"
    );
    assert_eq!(
        location(&sign_in(&app, &c, "gus@example.org", new_pw).await),
        "/account"
    );
    sink.wait_for("gus@example.org", 3, Duration::from_secs(15))
        .await; // "your password was changed"
}

#[tokio::test]
async fn changing_the_password_needs_the_current_one_and_can_sign_out_other_sessions() {
    let (app, sink) = app_with_mail().await;
    let laptop = verified_user(&app, &sink, "hal@example.org").await;
    let phone = browser();
    assert_eq!(
        location(&sign_in(&app, &phone, "hal@example.org", PASSWORD).await),
        "/account"
    );

    let wrong = post_form(
        &app,
        &laptop,
        "/account",
        "/account/password",
        &[
            ("current_password", "nope nope nope"),
            ("new_password", "hal has a new passphrase"),
        ],
    )
    .await;
    assert!(location(&wrong).starts_with("/account?error=current_password"));
    let ok = post_form(
        &app,
        &laptop,
        "/account",
        "/account/password",
        &[
            ("current_password", PASSWORD),
            ("new_password", "hal has a new passphrase"),
            ("sign_out_others", "on"),
        ],
    )
    .await;
    assert_eq!(location(&ok), "/account?ok=password");
    assert_eq!(
        session_status(&app, &laptop).await,
        StatusCode::OK,
        "this browser got a fresh session"
    );
    assert_eq!(
        session_status(&app, &phone).await,
        StatusCode::UNAUTHORIZED,
        "the other session ended at once"
    );
    let mails = sink
        .wait_for("hal@example.org", 2, Duration::from_secs(15))
        .await;
    assert!(mails.iter().any(|m| m.contains("password was changed")));
}
