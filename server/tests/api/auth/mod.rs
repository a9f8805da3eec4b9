//! Accounts and access end to end: real HTTP, real Postgres, a real SMTP server, the real `vortex` binary for
//! `create-admin`.

use std::{
    process::{Command, Stdio},
    time::Duration,
};

use reqwest::{Client, StatusCode, redirect::Policy};

use crate::{
    helpers::{Options, TestApp, spawn_app_with, vortex_bin},
    smtp::{SmtpSink, link, token},
};

mod admin;
mod passwords;
mod sessions;
mod sign_up;
mod tokens;

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

/// Signs `client` up as `name` through the form (the address still to be confirmed).
pub(crate) async fn signed_up(app: &TestApp, client: &Client, email: &str, name: &str) {
    let resp = post_form(
        app,
        client,
        "/signup",
        "/auth/signup",
        &[
            ("email", email),
            ("display_name", name),
            ("password", PASSWORD),
        ],
    )
    .await;
    assert_eq!(location(&resp), "/signin?ok=check_email");
}

/// Signs `client` up as `name`, marks the address confirmed (and, with `role`, gives the account that role)
/// in the database, and signs in. Returns the user's id.
pub(crate) async fn confirmed_user(
    app: &TestApp,
    client: &Client,
    email: &str,
    name: &str,
    role: Option<&str>,
) -> uuid::Uuid {
    signed_up(app, client, email, name).await;
    let id = sqlx::query_scalar(
        "update app_user set email_verified_at = now(), role = coalesce($2, role) where email = $1
         returning user_id",
    )
    .bind(email)
    .bind(role)
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    assert_eq!(
        location(&sign_in(app, client, email, PASSWORD).await),
        "/account"
    );
    id
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
