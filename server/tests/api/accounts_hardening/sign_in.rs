//! Issue 11, accounts: reserved password checks (parallel wrong-password sign-ins, a stranger's
//! failures), `next` after sign-in, and nginx's per-client limit on state-changing posts.

use std::time::Duration;

use reqwest::{Client, StatusCode};

use super::nginx_stack;
use crate::{
    auth::{
        PASSWORD, app_with_mail, app_with_mail_env, browser, location, post_form, verified_user,
    },
    helpers::TestApp,
};

/// A form post from `client` claiming (through the trusted proxy 127.0.0.1) to come from `ip`.
async fn post_from(
    app: &TestApp,
    client: &Client,
    ip: &str,
    page: &str,
    action: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let csrf = crate::auth::csrf(app, client, page).await;
    let mut form: Vec<(&str, &str)> = fields.to_vec();
    form.push(("csrf", &csrf));
    client
        .post(app.url(action))
        .header("x-forwarded-for", ip)
        .form(&form)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn parallel_wrong_password_sign_ins_cannot_exceed_the_limit() {
    let (app, sink) = app_with_mail().await;
    verified_user(&app, &sink, "pat@example.org").await;
    let c = browser();
    let csrf = crate::auth::csrf(&app, &c, "/signin").await;
    let results = futures::future::join_all((0..30).map(|i| {
        let c = c.clone();
        let url = app.url("/auth/signin");
        let csrf = csrf.clone();
        async move {
            let pw = format!("wrong guess number {i}");
            let resp = c
                .post(url)
                .form(&[
                    ("email", "pat@example.org"),
                    ("password", pw.as_str()),
                    ("csrf", csrf.as_str()),
                ])
                .send()
                .await
                .unwrap();
            (
                resp.status(),
                location(&resp),
                resp.headers().contains_key("retry-after"),
            )
        }
    }))
    .await;
    let checked = results
        .iter()
        .filter(|(_, l, _)| l == "/signin?error=invalid")
        .count();
    // Refused before argon2: 429 (limit) or 503 (every hashing slot busy), both with Retry-After.
    let refused = results
        .iter()
        .filter(|(s, _, r)| {
            (*s == StatusCode::TOO_MANY_REQUESTS || *s == StatusCode::SERVICE_UNAVAILABLE) && *r
        })
        .count();
    eprintln!("30 parallel wrong sign-ins: {checked} checked, {refused} refused");
    assert_eq!(checked + refused, 30, "{results:?}");
    assert!(
        checked as i64 <= backend::auth::rate_limit::FREE_FAILURES_PER_CLIENT,
        "{checked} guesses were checked: {results:?}"
    );
    let failed: i64 = sqlx::query_scalar(
        "select count(*) from auth_attempt where account = 'pat@example.org' and outcome = 'failed'",
    )
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    assert_eq!(failed, checked as i64);
}

#[tokio::test]
async fn a_strangers_failures_and_reset_requests_do_not_lock_the_owner_out() {
    let (app, sink) = app_with_mail_env(vec![("TRUSTED_PROXIES", "127.0.0.1".into())]).await;
    verified_user(&app, &sink, "ria@example.org").await;
    let stranger = browser();
    for _ in 0..12 {
        let r = post_from(
            &app,
            &stranger,
            "203.0.113.7",
            "/signin",
            "/auth/signin",
            &[
                ("email", "ria@example.org"),
                ("password", "guessing away here"),
            ],
        )
        .await;
        assert!(
            location(&r) == "/signin?error=invalid" || r.status() == StatusCode::TOO_MANY_REQUESTS
        );
    }
    let last = post_from(
        &app,
        &stranger,
        "203.0.113.7",
        "/signin",
        "/auth/signin",
        &[("email", "ria@example.org"), ("password", PASSWORD)],
    )
    .await;
    assert_eq!(
        last.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "the stranger is slowed down"
    );
    // The owner, from their own address, signs in at once.
    let owner = browser();
    let r = post_from(
        &app,
        &owner,
        "198.51.100.2",
        "/signin",
        "/auth/signin",
        &[("email", "ria@example.org"), ("password", PASSWORD)],
    )
    .await;
    assert_eq!(location(&r), "/account", "the owner is not locked out");

    // Three forgot-password posts by the stranger do not use up the owner's reset quota.
    for _ in 0..4 {
        post_from(
            &app,
            &stranger,
            "203.0.113.7",
            "/forgot-password",
            "/auth/forgot-password",
            &[("email", "ria@example.org")],
        )
        .await;
    }
    let mine = post_from(
        &app,
        &owner,
        "198.51.100.2",
        "/forgot-password",
        "/auth/forgot-password",
        &[("email", "ria@example.org")],
    )
    .await;
    assert_eq!(location(&mine), "/forgot-password?ok=sent");
    // 3 stranger resets + the owner's reset (besides the verification and sign-in notices)
    let resets = sink
        .wait_for_n_with(
            "ria@example.org",
            "/reset-password",
            4,
            Duration::from_secs(20),
        )
        .await;
    assert_eq!(resets.len(), 4);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        sink.messages()
            .iter()
            .filter(|m| m.contains("/reset-password"))
            .count(),
        4,
        "the fourth stranger request was refused"
    );
}

#[tokio::test]
async fn next_after_sign_in_stays_on_this_site_for_every_bypass_spelling() {
    let (app, sink) = app_with_mail().await;
    verified_user(&app, &sink, "wes@example.org").await;
    for (next, want) in [
        ("/strategies?tab=mine", "/strategies?tab=mine"),
        ("/%2F/evil.example", "/%2F/evil.example"),
        ("//evil.example", "/account"),
        ("/\\evil.example", "/account"),
        ("\\/evil.example", "/account"),
        ("/\t/evil.example", "/account"),
        ("/\n/evil.example", "/account"),
        ("/\r\n/evil.example", "/account"),
        ("\u{1}//evil.example", "/account"),
        ("/.//evil.example", "/account"),
        ("https:evil.example", "/account"),
        ("https://evil.example/", "/account"),
        ("javascript:alert(document.domain)", "/account"),
        ("/signin", "/account"),
        // A control character used to give a 500 without a cookie; non-ASCII came back garbled.
        ("/back\u{7}tests", "/back%07tests"),
        ("/strategies/zürich", "/strategies/z%C3%BCrich"),
    ] {
        let c = browser();
        let resp = post_form(
            &app,
            &c,
            "/signin",
            "/auth/signin",
            &[
                ("email", "wes@example.org"),
                ("password", PASSWORD),
                ("next", next),
            ],
        )
        .await;
        assert_eq!(resp.status(), StatusCode::SEE_OTHER, "{next:?}");
        assert_eq!(location(&resp), want, "{next:?}");
        assert!(
            resp.headers()
                .get_all("set-cookie")
                .iter()
                .any(|v| v.to_str().unwrap().starts_with("vortex_session=")),
            "signed in with {next:?}"
        );
    }
}

#[tokio::test]
async fn nginx_rate_limits_state_changing_posts_outside_auth_per_client() {
    let (nginx, _app, _db) = nginx_stack().await;
    let client = nginx.client_from("127.0.0.7");
    let mut statuses = Vec::new();
    for _ in 0..60 {
        let resp = client
            .post(nginx.https("/account/profile"))
            .form(&[("display_name", "x")])
            .send()
            .await
            .unwrap();
        let by_nginx = resp
            .headers()
            .get("content-security-policy")
            .is_some_and(|v| v.to_str().unwrap().starts_with("default-src 'none'"));
        statuses.push((resp.status(), by_nginx));
    }
    let limited = statuses
        .iter()
        .filter(|(s, n)| *s == StatusCode::TOO_MANY_REQUESTS && *n)
        .count();
    assert!(limited > 0, "{statuses:?}");
    // Password changes and token creation (argon2 behind them) are held tighter.
    let mut pw = Vec::new();
    for _ in 0..10 {
        pw.push(
            client
                .post(nginx.https("/account/password"))
                .form(&[("current_password", "x")])
                .send()
                .await
                .unwrap()
                .status(),
        );
    }
    assert!(pw.contains(&StatusCode::TOO_MANY_REQUESTS), "{pw:?}");
    // Reading pages is not limited by it, and another client is served.
    for _ in 0..10 {
        assert_ne!(
            client
                .get(nginx.https("/signin"))
                .send()
                .await
                .unwrap()
                .status(),
            StatusCode::TOO_MANY_REQUESTS
        );
    }
    let other = nginx.client_from("127.0.0.8");
    assert_ne!(
        other
            .post(nginx.https("/account/profile"))
            .form(&[("display_name", "x")])
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::TOO_MANY_REQUESTS
    );
}
