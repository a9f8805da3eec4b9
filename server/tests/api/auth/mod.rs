//! Accounts and access end to end: real HTTP, real Postgres, a real SMTP server, the real `vortex` binary for
//! `create-admin`.

use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use base64::Engine;
use reqwest::{Client, StatusCode, redirect::Policy};
use serde_json::Value;
use uuid::Uuid;

use crate::{
    helpers::{Options, TestApp, spawn_app_with, vortex_bin},
    smtp::{SmtpSink, link, token},
};

pub(crate) const PASSWORD: &str = "correct horse battery staple";

pub(crate) async fn app_with_mail() -> (TestApp, SmtpSink) {
    app_with_mail_env(Vec::new()).await
}

pub(crate) async fn app_with_mail_env(mut env: Vec<(&'static str, String)>) -> (TestApp, SmtpSink) {
    let sink = SmtpSink::start().await;
    env.push(("SMTP_URL", sink.url()));
    let app = spawn_app_with(Options { workers: true, env }).await;
    (app, sink)
}

pub(crate) fn browser() -> Client {
    Client::builder()
        .cookie_store(true)
        .redirect(Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

/// The CSRF token rendered into a page (and the cookie it belongs to lands in the client's cookie store).
pub(crate) async fn csrf(app: &TestApp, client: &Client, path: &str) -> String {
    csrf_in(&page_text(app, client, path).await)
}

/// The token in a page's `csrf-token` meta tag.
fn csrf_in(html: &str) -> String {
    const META: &str = r#"name="csrf-token" content=""#;
    let start = html.find(META).expect("csrf meta tag") + META.len();
    html[start..].split('"').next().unwrap().to_owned()
}

pub(crate) async fn post_form(
    app: &TestApp,
    client: &Client,
    page: &str,
    action: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let token = csrf(app, client, page).await;
    let mut form: Vec<(&str, &str)> = fields.to_vec();
    form.push(("csrf", &token));
    client
        .post(app.url(action))
        .form(&form)
        .send()
        .await
        .unwrap()
}

pub(crate) fn location(resp: &reqwest::Response) -> String {
    resp.headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

async fn sign_up(app: &TestApp, client: &Client, email: &str, password: &str) -> reqwest::Response {
    post_form(
        app,
        client,
        "/signup",
        "/auth/signup",
        &[
            ("email", email),
            ("display_name", "Ann"),
            ("password", password),
        ],
    )
    .await
}

pub(crate) async fn sign_in(
    app: &TestApp,
    client: &Client,
    email: &str,
    password: &str,
) -> reqwest::Response {
    post_form(
        app,
        client,
        "/signin",
        "/auth/signin",
        &[("email", email), ("password", password)],
    )
    .await
}

/// Signs up, verifies through the emailed link and signs in. Returns the signed-in client.
pub(crate) async fn verified_user(app: &TestApp, sink: &SmtpSink, email: &str) -> Client {
    let client = browser();
    assert_eq!(
        location(&sign_up(app, &client, email, PASSWORD).await),
        "/signin?ok=check_email"
    );
    let mail = sink.wait_for(email, 1, Duration::from_secs(15)).await;
    let t = token(&link(&mail[0], "/verify-email"));
    let resp = post_form(
        app,
        &client,
        &format!("/verify-email?token={t}"),
        "/auth/verify-email",
        &[("token", &t)],
    )
    .await;
    assert_eq!(location(&resp), "/signin?ok=verified");
    let resp = sign_in(app, &client, email, PASSWORD).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&resp), "/account");
    client
}

/// The HTML of a page as this browser sees it.
pub(crate) async fn page_text(app: &TestApp, client: &Client, path: &str) -> String {
    client
        .get(app.url(path))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The API token secret shown once on the account page after creating it.
pub(crate) async fn shown_token(app: &TestApp, client: &Client) -> String {
    let page = page_text(app, client, "/account").await;
    let start = page.find("vxt_").expect("token shown once");
    page[start..]
        .chars()
        .take_while(|ch| ch.is_ascii_alphanumeric() || *ch == '_')
        .collect()
}

async fn session_status(app: &TestApp, client: &Client) -> StatusCode {
    client
        .get(app.url("/api/session"))
        .send()
        .await
        .unwrap()
        .status()
}

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

#[tokio::test]
async fn sessions_end_after_idle_and_absolute_timeouts() {
    let (app, sink) = app_with_mail().await;
    let c = verified_user(&app, &sink, "ida@example.org").await;
    assert_eq!(session_status(&app, &c).await, StatusCode::OK);
    sqlx::query("update user_session set last_seen_at = now() - interval '31 minutes'")
        .execute(&app.ctx.db)
        .await
        .unwrap();
    assert_eq!(session_status(&app, &c).await, StatusCode::UNAUTHORIZED);

    let c = browser();
    sign_in(&app, &c, "ida@example.org", PASSWORD).await;
    assert_eq!(session_status(&app, &c).await, StatusCode::OK);
    sqlx::query("update user_session set expires_at = now() - interval '1 second'")
        .execute(&app.ctx.db)
        .await
        .unwrap();
    assert_eq!(session_status(&app, &c).await, StatusCode::UNAUTHORIZED);
}

fn session_cookie(resp: &reqwest::Response) -> String {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|v| v.starts_with("vortex_session=") || v.starts_with("__Host-vortex_session="))
        .expect("session cookie set")
}

#[tokio::test]
async fn tampered_session_tokens_are_rejected() {
    let (app, sink) = app_with_mail().await;
    verified_user(&app, &sink, "jo@example.org").await;
    let c = browser();
    let resp = sign_in(&app, &c, "jo@example.org", PASSWORD).await;
    let cookie = session_cookie(&resp);
    let jwt = cookie
        .split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
        .to_owned();
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let parts: Vec<&str> = jwt.split('.').collect();
    let claims: Value = serde_json::from_slice(&b64.decode(parts[1]).unwrap()).unwrap();

    let with = |token: &str| {
        let client = Client::new();
        let url = app.url("/api/session");
        let token = token.to_owned();
        async move {
            client
                .get(url)
                .header("cookie", format!("vortex_session={token}"))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(with(&jwt).await, StatusCode::OK, "the genuine token works");

    let none_header = b64.encode(br#"{"alg":"none","typ":"JWT"}"#);
    assert_eq!(
        with(&format!("{none_header}.{}.", parts[1])).await,
        StatusCode::UNAUTHORIZED,
        "alg none"
    );
    let hs512 = b64.encode(br#"{"alg":"HS512","typ":"JWT"}"#);
    assert_eq!(
        with(&format!("{hs512}.{}.{}", parts[1], parts[2])).await,
        StatusCode::UNAUTHORIZED,
        "other alg"
    );

    let sign = |claims: &Value, key: &[u8], alg: jsonwebtoken::Algorithm| {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(alg),
            claims,
            &jsonwebtoken::EncodingKey::from_secret(key),
        )
        .unwrap()
    };
    let wrong_key = sign(
        &claims,
        b"0123456789abcdef0123456789abcdef-wrong",
        jsonwebtoken::Algorithm::HS256,
    );
    assert_eq!(
        with(&wrong_key).await,
        StatusCode::UNAUTHORIZED,
        "wrong key"
    );

    let mut edited = claims.clone();
    edited["sub"] = Value::String(Uuid::new_v4().to_string());
    let edited_payload = b64.encode(serde_json::to_vec(&edited).unwrap());
    assert_eq!(
        with(&format!("{}.{edited_payload}.{}", parts[0], parts[2])).await,
        StatusCode::UNAUTHORIZED,
        "edited claims"
    );

    let mut expired = claims.clone();
    expired["exp"] = Value::from(chrono::Utc::now().timestamp() - 3600);
    expired["nbf"] = Value::from(chrono::Utc::now().timestamp() - 7200);
    expired["iat"] = Value::from(chrono::Utc::now().timestamp() - 7200);
    // Signed with the real key, so only expiry can make it fail.
    let key = real_jwt_key(&app);
    assert_eq!(
        with(&sign(&claims, &key, jsonwebtoken::Algorithm::HS256)).await,
        StatusCode::OK,
        "real key re-signs validly"
    );
    assert_eq!(
        with(&sign(&expired, &key, jsonwebtoken::Algorithm::HS256)).await,
        StatusCode::UNAUTHORIZED,
        "expired"
    );
    let mut wrong_aud = claims.clone();
    wrong_aud["aud"] = Value::String("someone-else".into());
    assert_eq!(
        with(&sign(&wrong_aud, &key, jsonwebtoken::Algorithm::HS256)).await,
        StatusCode::UNAUTHORIZED,
        "audience"
    );
}

/// The session key as the app derives it from JWT_SECRET (see backend::auth::AuthKeys).
fn real_jwt_key(app: &TestApp) -> Vec<u8> {
    use hmac::{KeyInit, Mac};
    use secrecy::ExposeSecret;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(
        app.ctx.settings.jwt_secret.expose_secret().as_bytes(),
    )
    .unwrap();
    mac.update(b"vortex/session-jwt/v1");
    mac.finalize().into_bytes().to_vec()
}

#[tokio::test]
async fn cross_site_and_tokenless_form_posts_are_refused() {
    let (app, sink) = app_with_mail().await;
    let c = verified_user(&app, &sink, "kim@example.org").await;
    let token = csrf(&app, &c, "/account").await;
    let form = [("display_name", "Hacked"), ("time_zone", "UTC")];

    let no_token = c
        .post(app.url("/account/profile"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(no_token.status(), StatusCode::FORBIDDEN);
    let with_token: Vec<(&str, &str)> = form
        .iter()
        .copied()
        .chain([("csrf", token.as_str())])
        .collect();
    let cross_site = c
        .post(app.url("/account/profile"))
        .header("sec-fetch-site", "cross-site")
        .form(&with_token)
        .send()
        .await
        .unwrap();
    assert_eq!(cross_site.status(), StatusCode::FORBIDDEN);
    let foreign = c
        .post(app.url("/account/profile"))
        .header("origin", "https://evil.example")
        .form(&with_token)
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), StatusCode::FORBIDDEN);
    let forged: Vec<(&str, &str)> = form
        .iter()
        .copied()
        .chain([("csrf", "forged-token")])
        .collect();
    assert_eq!(
        c.post(app.url("/account/profile"))
            .form(&forged)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::FORBIDDEN
    );
    let name: String = sqlx::query_scalar("select display_name from app_user")
        .fetch_one(&app.ctx.db)
        .await
        .unwrap();
    assert_eq!(name, "Ann", "nothing changed");

    let ok = c
        .post(app.url("/account/profile"))
        .header("origin", app.address.as_str())
        .form(&[
            ("display_name", "Kim"),
            ("time_zone", "Europe/Zurich"),
            ("csrf", token.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&ok), "/account?ok=profile");
    let (name, tz): (String, String) =
        sqlx::query_as("select display_name, time_zone from app_user")
            .fetch_one(&app.ctx.db)
            .await
            .unwrap();
    assert_eq!((name.as_str(), tz.as_str()), ("Kim", "Europe/Zurich"));
}

#[tokio::test]
async fn api_tokens_are_shown_once_scoped_and_never_work_as_a_session() {
    let (app, sink) = app_with_mail().await;
    let c = verified_user(&app, &sink, "lee@example.org").await;
    let created = post_form(
        &app,
        &c,
        "/account",
        "/account/tokens",
        &[
            ("name", "laptop script"),
            ("scope", "read"),
            ("expires_in_days", "30"),
            ("current_password", PASSWORD),
        ],
    )
    .await;
    assert_eq!(location(&created), "/account?ok=token_created#tokens");
    let secret = shown_token(&app, &c).await;
    assert_eq!(secret.len(), 68);
    let again = page_text(&app, &c, "/account").await;
    assert!(!again.contains(&secret), "shown only once");
    let stored: i64 =
        sqlx::query_scalar("select count(*) from api_token where token_prefix = left($1, 10)")
            .bind(&secret)
            .fetch_one(&app.ctx.db)
            .await
            .unwrap();
    assert_eq!(stored, 1);
    let plain: i64 = sqlx::query_scalar(
        "select count(*) from api_token where encode(token_hash, 'escape') like '%' || $1 || '%'",
    )
    .bind(&secret)
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    assert_eq!(plain, 0, "only a hash is stored");

    let api = Client::new();
    let me = api
        .get(app.url("/api/v1/me"))
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), StatusCode::OK);
    assert_eq!(me.json::<Value>().await.unwrap()["token_scope"], "read");
    // Read scope cannot write.
    let patch = api
        .patch(app.url("/api/v1/me"))
        .bearer_auth(&secret)
        .json(&serde_json::json!({"display_name": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(patch.status(), StatusCode::FORBIDDEN);
    // The token is not a session and the session is not a token.
    let as_cookie = api
        .get(app.url("/api/session"))
        .header("cookie", format!("vortex_session={secret}"))
        .send()
        .await
        .unwrap();
    assert_eq!(as_cookie.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        c.get(app.url("/api/v1/me")).send().await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );

    // Revoke: the token stops working at once.
    let id: Uuid = sqlx::query_scalar("select api_token_id from api_token")
        .fetch_one(&app.ctx.db)
        .await
        .unwrap();
    let revoked = post_form(
        &app,
        &c,
        "/account",
        &format!("/account/tokens/{id}/revoke"),
        &[],
    )
    .await;
    assert_eq!(location(&revoked), "/account?ok=token_revoked#tokens");
    assert_eq!(
        api.get(app.url("/api/v1/me"))
            .bearer_auth(&secret)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn read_write_tokens_can_update_the_profile_but_never_assign_privileged_fields() {
    let (app, sink) = app_with_mail().await;
    let c = verified_user(&app, &sink, "max@example.org").await;
    post_form(
        &app,
        &c,
        "/account",
        "/account/tokens",
        &[
            ("name", "rw"),
            ("scope", "read_write"),
            ("expires_in_days", ""),
            ("current_password", PASSWORD),
        ],
    )
    .await;
    let secret = shown_token(&app, &c).await;
    let api = Client::new();
    let patch_me = |body: reqwest::Body, content_type: &'static str| {
        api.patch(app.url("/api/v1/me"))
            .bearer_auth(&secret)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let json = |v: Value| reqwest::Body::from(v.to_string());
    let ok = patch_me(
        json(serde_json::json!({"display_name": "Max"})),
        "application/json",
    )
    .await
    .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    let escalate = patch_me(
        json(serde_json::json!({"role": "admin"})),
        "application/json",
    )
    .await
    .unwrap();
    assert_eq!(escalate.status(), StatusCode::BAD_REQUEST);
    let body: Value = escalate.json().await.unwrap();
    assert!(body["detail"].as_str().unwrap().contains("role"), "{body}");
    let role: String = sqlx::query_scalar("select role from app_user")
        .fetch_one(&app.ctx.db)
        .await
        .unwrap();
    assert_eq!(role, "trader");
    let not_json = patch_me("display_name=x".into(), "application/x-www-form-urlencoded")
        .await
        .unwrap();
    assert_eq!(not_json.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let bad_tz = patch_me(
        json(serde_json::json!({"time_zone": "Mars/Base"})),
        "application/json",
    )
    .await
    .unwrap();
    assert_eq!(bad_tz.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn one_trader_cannot_touch_another_traders_tokens_or_sessions() {
    let (app, sink) = app_with_mail().await;
    let a = verified_user(&app, &sink, "nia@example.org").await;
    let b = verified_user(&app, &sink, "oz@example.org").await;
    post_form(
        &app,
        &a,
        "/account",
        "/account/tokens",
        &[
            ("name", "a-token"),
            ("scope", "read"),
            ("expires_in_days", "30"),
            ("current_password", PASSWORD),
        ],
    )
    .await;
    let a_token: Uuid = sqlx::query_scalar("select api_token_id from api_token")
        .fetch_one(&app.ctx.db)
        .await
        .unwrap();
    let resp = post_form(
        &app,
        &b,
        "/account",
        &format!("/account/tokens/{a_token}/revoke"),
        &[],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let live: i64 = sqlx::query_scalar("select count(*) from api_token where revoked_at is null")
        .fetch_one(&app.ctx.db)
        .await
        .unwrap();
    assert_eq!(live, 1);

    let a_sid: String = sqlx::query_scalar("select s.session_id from user_session s join app_user u using (user_id) where u.email = 'nia@example.org'")
        .fetch_one(&app.ctx.db)
        .await
        .unwrap();
    let public = backend::auth::session::public_id(&a_sid);
    let resp = post_form(
        &app,
        &b,
        "/account",
        &format!("/account/sessions/{public}/revoke"),
        &[],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(session_status(&app, &a).await, StatusCode::OK);
    let b_page = page_text(&app, &b, "/account").await;
    assert!(!b_page.contains("a-token") && !b_page.contains(&public));
}

#[tokio::test]
async fn a_user_can_revoke_their_own_other_session() {
    let (app, sink) = app_with_mail().await;
    let laptop = verified_user(&app, &sink, "pia@example.org").await;
    let phone = browser();
    sign_in(&app, &phone, "pia@example.org", PASSWORD).await;
    let sids: Vec<String> =
        sqlx::query_scalar("select session_id from user_session order by created_at")
            .fetch_all(&app.ctx.db)
            .await
            .unwrap();
    let phone_public = backend::auth::session::public_id(&sids[1]);
    let resp = post_form(
        &app,
        &laptop,
        "/account",
        &format!("/account/sessions/{phone_public}/revoke"),
        &[],
    )
    .await;
    assert_eq!(location(&resp), "/account?ok=session_revoked#sessions");
    assert_eq!(session_status(&app, &phone).await, StatusCode::UNAUTHORIZED);
    assert_eq!(session_status(&app, &laptop).await, StatusCode::OK);
}

pub(crate) fn create_admin(app: &TestApp, email: &str, password: &str) -> (i32, String) {
    let mut child = Command::new(vortex_bin())
        .args(["create-admin", "--email", email])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("APP_ENV", "test")
        .env("DATABASE_URL", db_url(app))
        .env("LOG_LEVEL", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{password}\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn db_url(app: &TestApp) -> String {
    use secrecy::ExposeSecret;
    app.ctx.settings.database_url.expose_secret().to_owned()
}

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

#[tokio::test]
async fn over_https_the_session_cookie_is_host_prefixed_secure_httponly_and_lax() {
    let sink = SmtpSink::start().await;
    let app = spawn_app_with(Options {
        workers: true,
        env: vec![
            ("SMTP_URL", sink.url()),
            ("PUBLIC_URL", "https://vortex.test".into()),
        ],
    })
    .await;
    // Create the user directly (the https cookies would not round-trip over this plain-HTTP test client).
    let hash = backend::auth::password::hash(PASSWORD.into())
        .await
        .unwrap();
    let mut conn = app.ctx.db.acquire().await.unwrap();
    backend::auth::users::insert(
        &mut conn,
        "sam@example.org",
        "",
        &hash,
        backend::auth::Role::Trader,
    )
    .await
    .unwrap();
    drop(conn);
    let c = Client::builder().redirect(Policy::none()).build().unwrap();
    let page = c.get(app.url("/signin")).send().await.unwrap();
    let csrf_cookie = page.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        csrf_cookie.starts_with("__Host-vortex_csrf=")
            && csrf_cookie.contains("; Secure")
            && csrf_cookie.contains("HttpOnly")
    );
    let token = csrf_in(&page.text().await.unwrap());
    let cookie_pair = csrf_cookie.split(';').next().unwrap().to_owned();
    let resp = c
        .post(app.url("/auth/signin"))
        .header("cookie", cookie_pair)
        .form(&[
            ("email", "sam@example.org"),
            ("password", PASSWORD),
            ("csrf", token.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let session = session_cookie(&resp);
    assert!(session.starts_with("__Host-vortex_session="), "{session}");
    for attr in ["; Path=/", "; HttpOnly", "; SameSite=Lax", "; Secure"] {
        assert!(session.contains(attr), "{attr} missing in {session}");
    }
    assert!(!session.contains("Domain="));
    assert_eq!(resp.headers()["cache-control"], "no-store");
}
