//! Issue 11, accounts: API tokens ending with a password reset or change, token creation and the
//! new-token cookie over HTTPS.

use std::time::Duration;

use backend::auth::{Role, password, session, users};
use reqwest::{Client, StatusCode, redirect::Policy};
use serde_json::Value;

use crate::{
    auth::{
        PASSWORD, app_with_mail, browser, location, page_text, post_form, shown_token, sign_in,
        verified_user,
    },
    helpers::{Options, TestApp, spawn_app_with},
    smtp::{link, token},
};

async fn create_token(app: &TestApp, c: &Client, name: &str, password: &str) -> reqwest::Response {
    post_form(
        app,
        c,
        "/account",
        "/account/tokens",
        &[
            ("name", name),
            ("scope", "read_write"),
            ("expires_in_days", ""),
            ("current_password", password),
        ],
    )
    .await
}

async fn me_status(app: &TestApp, secret: &str) -> StatusCode {
    Client::new()
        .get(app.url("/api/v1/me"))
        .bearer_auth(secret)
        .send()
        .await
        .unwrap()
        .status()
}

async fn latest_audit(app: &TestApp, event: &str) -> Value {
    sqlx::query_scalar(
        "select detail from audit_event where event = $1 order by audit_event_id desc limit 1",
    )
    .bind(event)
    .fetch_one(&app.ctx.db)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_password_reset_revokes_every_api_token_and_session_and_says_so() {
    let (app, sink) = app_with_mail().await;
    let c = verified_user(&app, &sink, "sol@example.org").await;
    assert_eq!(
        location(&create_token(&app, &c, "intruder's token", PASSWORD).await),
        "/account?ok=token_created#tokens"
    );
    let secret = shown_token(&app, &c).await;
    assert_eq!(me_status(&app, &secret).await, StatusCode::OK);

    let anon = browser();
    post_form(
        &app,
        &anon,
        "/forgot-password",
        "/auth/forgot-password",
        &[("email", "sol@example.org")],
    )
    .await;
    // The reset mail, whichever others (the verification, the new token's security notice) came before it.
    let mail = sink
        .wait_for_text(
            "sol@example.org",
            &["/reset-password"],
            Duration::from_secs(15),
        )
        .await;
    let t = token(&link(&mail, "/reset-password"));
    let ok = post_form(
        &app,
        &anon,
        "/reset-password",
        "/auth/reset-password",
        &[("token", &t), ("password", "sol takes the account back")],
    )
    .await;
    assert_eq!(location(&ok), "/signin?ok=password_reset");
    assert_eq!(
        me_status(&app, &secret).await,
        StatusCode::UNAUTHORIZED,
        "the token died with the reset"
    );
    assert_eq!(
        c.get(app.url("/api/session"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    let detail = latest_audit(&app, "password_reset").await;
    assert_eq!(detail["tokens_revoked"], 1, "{detail}");
    assert_eq!(detail["sessions_ended"], 1, "{detail}");
    let notice = sink
        .wait_for_text(
            "sol@example.org",
            &["password was reset"],
            Duration::from_secs(30),
        )
        .await;
    let unfolded = notice.replace("=\n", "");
    assert!(
        unfolded.contains("every API token was revoked"),
        "{unfolded}"
    );
}

#[tokio::test]
async fn changing_the_password_revokes_api_tokens_only_when_signing_out_everywhere() {
    let (app, sink) = app_with_mail().await;
    let c = verified_user(&app, &sink, "tam@example.org").await;
    create_token(&app, &c, "kept", PASSWORD).await;
    let kept = shown_token(&app, &c).await;
    let change = |from: &'static str, to: &'static str, everywhere: bool| {
        let c = c.clone();
        let app = &app;
        async move {
            let mut f = vec![("current_password", from), ("new_password", to)];
            if everywhere {
                f.push(("sign_out_others", "on"));
            }
            location(&post_form(app, &c, "/account", "/account/password", &f).await)
        }
    };
    assert_eq!(
        change(PASSWORD, "tam's second passphrase", false).await,
        "/account?ok=password"
    );
    assert_eq!(
        me_status(&app, &kept).await,
        StatusCode::OK,
        "kept without the box"
    );
    assert_eq!(
        latest_audit(&app, "password_changed").await["tokens_revoked"],
        0
    );

    create_token(&app, &c, "second", "tam's second passphrase").await;
    let second = shown_token(&app, &c).await;
    assert_eq!(
        change("tam's second passphrase", "tam's third passphrase", true).await,
        "/account?ok=password"
    );
    for secret in [&kept, &second] {
        assert_eq!(me_status(&app, secret).await, StatusCode::UNAUTHORIZED);
    }
    let detail = latest_audit(&app, "password_changed").await;
    assert_eq!(detail["tokens_revoked"], 2, "{detail}");
    assert_eq!(detail["sign_out_others"], true);
    // The mail of the second change says the tokens were revoked.
    sink.wait_for_text(
        "tam@example.org",
        &["password was changed", "every API token was revoked"],
        Duration::from_secs(30),
    )
    .await;
    // The account page offers the choice.
    assert!(
        page_text(&app, &c, "/account")
            .await
            .contains("revoke my API tokens")
    );
}

#[tokio::test]
async fn creating_a_token_needs_a_verified_address_and_the_current_password() {
    let (app, sink) = app_with_mail().await;
    // Signed up and signed in, but the address is not confirmed.
    let unverified = browser();
    post_form(
        &app,
        &unverified,
        "/signup",
        "/auth/signup",
        &[
            ("email", "uma@example.org"),
            ("display_name", ""),
            ("password", PASSWORD),
        ],
    )
    .await;
    assert_eq!(
        location(&sign_in(&app, &unverified, "uma@example.org", PASSWORD).await),
        "/account"
    );
    assert_eq!(
        location(&create_token(&app, &unverified, "t", PASSWORD).await),
        "/account?error=token_unverified#tokens"
    );

    let c = verified_user(&app, &sink, "val@example.org").await;
    assert_eq!(
        location(&create_token(&app, &c, "t", "").await),
        "/account?error=current_password#tokens"
    );
    assert_eq!(
        location(&create_token(&app, &c, "t", "not my password at all").await),
        "/account?error=current_password#tokens"
    );
    let n: i64 = sqlx::query_scalar("select count(*) from api_token")
        .fetch_one(&app.ctx.db)
        .await
        .unwrap();
    assert_eq!(n, 0);
    assert_eq!(
        location(&create_token(&app, &c, "t", PASSWORD).await),
        "/account?ok=token_created#tokens"
    );
    let html = page_text(&app, &c, "/account").await;
    assert!(html.contains(r#"name="current_password""#));
}

#[tokio::test]
async fn over_https_the_new_token_cookie_is_host_prefixed() {
    let app = spawn_app_with(Options {
        workers: false,
        env: vec![("PUBLIC_URL", "https://vortex.test".into())],
    })
    .await;
    let hash = password::hash_blocking(PASSWORD).unwrap();
    let mut conn = app.ctx.db.acquire().await.unwrap();
    let id = users::insert(&mut conn, "yan@example.org", "", &hash, Role::Trader)
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
        &backend::auth::RequestMeta::new("127.0.0.1", "test"),
    )
    .await
    .unwrap();
    // Secure cookies do not round-trip over this plain-HTTP client: carry them by hand.
    let c = Client::builder().redirect(Policy::none()).build().unwrap();
    let session_pair = format!("__Host-vortex_session={}", s.token);
    let page = c
        .get(app.url("/account"))
        .header("cookie", &session_pair)
        .send()
        .await
        .unwrap();
    let csrf_pair = page
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned())
        .find(|v| v.starts_with("__Host-vortex_csrf="))
        .unwrap();
    let html = page.text().await.unwrap();
    const META: &str = r#"name="csrf-token" content=""#;
    let start = html.find(META).unwrap() + META.len();
    let csrf = html[start..].split('"').next().unwrap().to_owned();
    let resp = c
        .post(app.url("/account/tokens"))
        .header("cookie", format!("{session_pair}; {csrf_pair}"))
        .form(&[
            ("name", "https"),
            ("scope", "read"),
            ("expires_in_days", "1"),
            ("current_password", PASSWORD),
            ("csrf", csrf.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&resp), "/account?ok=token_created#tokens");
    let cookie = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|v| v.contains("vxt_"))
        .expect("new-token cookie");
    assert!(
        cookie.starts_with("__Host-vortex_new_token=vxt_"),
        "{cookie}"
    );
    for attr in ["; Path=/;", "; HttpOnly", "; SameSite=Strict", "; Secure"] {
        assert!(cookie.contains(attr), "{attr} missing in {cookie}");
    }
    assert!(!cookie.contains("Domain="));
    // The page shows it once and deletes the cookie under the same name.
    let flash = cookie.split(';').next().unwrap().to_owned();
    let page = c
        .get(app.url("/account"))
        .header("cookie", format!("{session_pair}; {csrf_pair}; {flash}"))
        .send()
        .await
        .unwrap();
    let cleared = page
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|v| v.starts_with("__Host-vortex_new_token="))
        .expect("cleared");
    assert!(
        cleared.contains("Max-Age=0") && cleared.contains("; Secure"),
        "{cleared}"
    );
    assert!(
        page.text()
            .await
            .unwrap()
            .contains(flash.split('=').nth(1).unwrap())
    );
}
