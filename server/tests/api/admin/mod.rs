//! The admin console (docs/admin.md) against the real server, Postgres and Redis.
//!
//! * [`users`]: the admin users REST API: suspend (sessions end, tokens stop working, paper runs pause, the
//!   user sees the reason at sign-in), unsuspend, an end that lifts itself, role changes, the self and
//!   last-admin guards, list filters and validation, and every admin route refused for traders, viewers and
//!   anonymous callers.
//! * [`pages`]: the admin pages and their forms: each action through its form, CSRF-less posts refused,
//!   traders and viewers get 403 and anonymous visitors are sent to sign in.
//! * [`settings`]: closing sign-up and the maintenance banner.
//! * [`signups`]: sign-up by approval: the reason on the form, pending accounts (no sign-in, no seat), the
//!   approvers' email, approving and rejecting (the applicant's mail, the cool-off), the approver flag, the
//!   two-factor reset over REST, and every new route refused for traders, viewers, anonymous callers and
//!   read-only tokens.
//! * [`accounts`]: an admin resends the confirmation email, downloads a user's data and deletes the account
//!   (only after an export).
//! * [`audit`]: the audit log viewer (filters, pages, the CSV download and its cap), cancelling waiting jobs
//!   and the subscriptions list.
//! * [`bulk`]: bulk suspend, lift and sign-out from the users list and over REST: refusals per user, the
//!   request's validation, and who may do it.
//! * [`market`]: the market-data page and API: tracking series, "update now", backfills and their refusals.
//! * [`catalogue`]: the strategy catalogue: seeded built-ins, entries authored, versioned, published, hidden
//!   and featured through the API and the console's forms; traders create from published entries only.

mod accounts;
mod audit;
mod bulk;
mod catalogue;
mod market;
mod pages;
mod settings;
mod signups;
mod users;

use backend::{
    Actor, Surface,
    auth::{AuthUser, Credential, RequestMeta, Role, Scope},
};
use reqwest::{Client, Method, StatusCode};
use serde_json::Value;
use uuid::Uuid;

use crate::{
    auth::csrf,
    helpers::{Options, TestApp, spawn_app_with},
};

pub(super) use crate::plans::{Person, person};

/// The person acting through the backend directly (as their read-write token would).
pub(super) fn actor_of(p: &Person, role: Role) -> Actor {
    Actor::user(
        AuthUser {
            user_id: p.id,
            email: p.email.clone(),
            display_name: "Person".into(),
            role,
            email_verified: true,
            time_zone: "UTC".into(),
            credential: Credential::ApiToken {
                token_id: Uuid::new_v4(),
                scope: Scope::ReadWrite,
            },
        },
        Surface::Api,
        RequestMeta::new("127.0.0.1", "tests"),
        None,
    )
}

pub(super) async fn app() -> TestApp {
    spawn_app_with(Options {
        workers: false,
        env: vec![
            ("MARKET_DATA_URL", "http://127.0.0.1:9".into()),
            ("PAPER_WARMUP_BARS", "100".into()),
            ("PAPER_TICK_SECS", "3600".into()),
        ],
    })
    .await
}

pub(super) async fn rest(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = app.client.request(method, app.url(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// A form post from `client` with the CSRF token of its session.
pub(super) async fn form_post(
    client: &Client,
    app: &TestApp,
    action: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let token = csrf(app, client, "/account").await;
    let mut form = fields.to_vec();
    form.push(("csrf", &token));
    client
        .post(app.url(action))
        .form(&form)
        .send()
        .await
        .unwrap()
}

/// A count from `sql` (a `select count(*)` with its one parameter, if any, bound to `id`).
pub(super) async fn count(app: &TestApp, sql: &str, id: Option<Uuid>) -> i64 {
    let mut q = sqlx::query_scalar(sql);
    if let Some(id) = id {
        q = q.bind(id);
    }
    q.fetch_one(&app.ctx.db).await.unwrap()
}

pub(super) async fn audits(app: &TestApp, event: &str, user: Uuid) -> i64 {
    sqlx::query_scalar("select count(*) from audit_event where event = $1 and user_id = $2")
        .bind(event)
        .bind(user)
        .fetch_one(&app.ctx.db)
        .await
        .unwrap()
}

/// An active paper run of `p`'s; its id.
pub(super) async fn paper_run(app: &TestApp, p: &Person) -> Uuid {
    use crate::paper::{SMA, new_run, series, shifted, start, strategy};
    let (history, _) = shifted("ETH-BTC-5m.csv", 1000);
    let inst = series(app, &history).await;
    let actor = actor_of(p, Role::Trader);
    let s = strategy(app, &actor, SMA).await;
    start(app, &actor, &new_run(s, inst)).await
}

pub(super) async fn run_status(app: &TestApp, run: Uuid) -> String {
    sqlx::query_scalar("select status from paper_run where paper_run_id = $1")
        .bind(run)
        .fetch_one(&app.ctx.db)
        .await
        .unwrap()
}
