//! Issue 11, accounts: the argon2 limit, reserved password checks, API tokens ending with a reset, token
//! creation, `next` after sign-in, one-time links in the outbox and nginx's log, the verification mail, the
//! new-token cookie and the start-up warm-up. Real server (in-process or the `vortex` binary), Postgres, Redis,
//! SMTP sink, nginx.
//!
//! The tests that read process-wide counters (`password::peak_in_flight`) need a process per test, as
//! `cargo nextest` runs them.

use std::{collections::HashMap, sync::Arc, time::Duration};

use backend::auth::{Role, password, session, users};
use reqwest::{Client, StatusCode, redirect::Policy};
use uuid::Uuid;

use crate::{
    auth::{PASSWORD, location},
    helpers::{TestDb, base_env},
    nginx::{Nginx, VortexProc},
};

mod hashing;
mod one_time_links;
mod sign_in;
mod tokens;

/// A browser client already carrying `cookie` (`name=value`) for `base`.
fn client_with_cookie(base: &str, cookie: &str) -> Client {
    let jar = Arc::new(reqwest::cookie::Jar::default());
    jar.add_cookie_str(&format!("{cookie}; Path=/"), &base.parse().unwrap());
    Client::builder()
        .cookie_provider(jar)
        .redirect(Policy::none())
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap()
}

/// `n` verified traders created directly in the database (one hash shared, so setup costs one argon2 run), each
/// with a signed-in session, as clients whose CSRF cookie and token are already fetched from `/account`.
pub(crate) async fn signed_in_users(
    ctx: &backend::Ctx,
    base: &str,
    n: usize,
) -> Vec<(Client, String, String)> {
    let hash = password::hash_blocking(PASSWORD).unwrap();
    let meta = backend::auth::RequestMeta::new("127.0.0.1", "test");
    let mut out = Vec::new();
    for i in 0..n {
        let email = format!("u{i}-{}@example.org", Uuid::new_v4().simple());
        let mut conn = ctx.db.acquire().await.unwrap();
        let id = users::insert(&mut conn, &email, "", &hash, Role::Trader)
            .await
            .unwrap()
            .unwrap();
        users::mark_verified(&mut conn, id).await.unwrap();
        drop(conn);
        let s = session::create(&ctx.db, &ctx.keys, &ctx.settings, id, &meta)
            .await
            .unwrap();
        let client = client_with_cookie(
            base,
            &format!("{}={}", session::cookie_name(&ctx.settings), s.token),
        );
        let html = client
            .get(format!("{base}/account"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        const META: &str = r#"name="csrf-token" content=""#;
        let start = html.find(META).expect("signed in: csrf meta tag") + META.len();
        let csrf = html[start..].split('"').next().unwrap().to_owned();
        out.push((client, email, csrf));
    }
    out
}

/// Fires one password change per client at once; returns (status, Location, Retry-After) of each.
pub(crate) async fn parallel_password_changes(
    base: &str,
    users: &[(Client, String, String)],
) -> Vec<(StatusCode, String, Option<u64>)> {
    futures::future::join_all(users.iter().enumerate().map(|(i, (client, _, csrf))| {
        let url = format!("{base}/account/password");
        let new = format!("a fresh passphrase number {i} for this test");
        async move {
            let resp = client
                .post(url)
                .form(&[
                    ("current_password", PASSWORD),
                    ("new_password", new.as_str()),
                    ("csrf", csrf.as_str()),
                ])
                .send()
                .await
                .unwrap();
            let retry = resp
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().parse::<u64>().unwrap());
            let (status, loc) = (resp.status(), location(&resp));
            // 503 from the hashing limit, not from anything else (a database pool timeout would say so).
            let body = resp.text().await.unwrap_or_default();
            assert!(
                status != StatusCode::SERVICE_UNAVAILABLE
                    || body.contains("password checks are running"),
                "{body}"
            );
            (status, loc, retry)
        }
    }))
    .await
}

/// nginx in front of one `vortex serve --no-worker`.
async fn nginx_stack() -> (Nginx, VortexProc, TestDb) {
    let db = TestDb::new().await;
    let mut env: HashMap<String, String> =
        base_env(&db, &format!("vortex-test-{}", Uuid::new_v4().simple()));
    env.insert("TRUSTED_PROXIES".into(), "127.0.0.1".into());
    let app = VortexProc::start(&["serve", "--no-worker"], &env).await;
    let nginx = Nginx::start(&[app.port]);
    (nginx, app, db)
}
