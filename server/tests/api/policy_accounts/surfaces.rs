//! The account rules walked through every surface that exposes them: the same decision, with the same code in
//! each surface's shape (a form's redirect code, the REST error code, the server function's error).

use backend::{
    Actor, Surface,
    account::events,
    auth::{Scope, api_token, session},
};
use reqwest::{Client, StatusCode};
use serde_json::Value;

use super::{Person, World, as_session, decision, meta, world};
use crate::auth::{PASSWORD, browser, location, post_form};

/// A browser client signed in with this person's session (and the CSRF cookie of `/account`).
fn session_client(w: &World, p: &Person) -> Client {
    let name = session::cookie_name(&w.app.ctx.settings);
    let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
    let url = w.app.url("/").parse().unwrap();
    jar.add_cookie_str(&format!("{name}={}", p.session_token), &url);
    Client::builder()
        .cookie_provider(jar)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A REST or server-function answer as (status, error code): the code is the body's `error` member, or its
/// `code` member, or the last segment of an RFC 9457 problem `type` (whichever shape the REST errors have).
async fn answer(r: reqwest::Response) -> (StatusCode, String) {
    let status = r.status();
    let body: Value = r.json().await.unwrap_or(Value::Null);
    let code = ["code", "error"]
        .iter()
        .find_map(|k| body.get(*k).and_then(Value::as_str))
        .or_else(|| {
            body.get("type")
                .and_then(Value::as_str)
                .and_then(|t| t.rsplit('/').next())
        })
        .unwrap_or("")
        .to_owned();
    (status, code)
}

#[tokio::test]
async fn every_surface_gives_the_same_decision_with_the_same_code() {
    let w = world().await;
    let app = &w.app;
    let api = Client::new();

    // 1. Signed in required (account data): form post → the sign-in page with `signin_required`; REST → 401
    //    `unauthorized`; server function → 401 `unauthorized`; the action → `unauthorized`.
    let anon = browser();
    let form = post_form(
        app,
        &anon,
        "/signin",
        "/account/profile",
        &[("display_name", "x"), ("time_zone", "UTC")],
    )
    .await;
    assert_eq!(location(&form), "/signin?error=signin_required");
    let answered = answer(api.get(app.url("/api/v1/me/audit")).send().await.unwrap()).await;
    assert_eq!(answered, (StatusCode::UNAUTHORIZED, "unauthorized".into()));
    let answered = answer(anon.get(app.url("/api/account")).send().await.unwrap()).await;
    assert_eq!(answered, (StatusCode::UNAUTHORIZED, "unauthorized".into()));
    let action = events::mine(
        &app.ctx,
        &Actor::anonymous(Surface::ServerFn, meta(), None),
        10,
    )
    .await;
    assert_eq!(decision(&action), "unauthorized");

    // 2. Profile changes need a writer: the viewer's form → `read_only`; the read-only token over REST → 403
    //    `forbidden`; the action → `forbidden`. Nothing is saved or audited by any of them.
    let viewer = session_client(&w, &w.viewer);
    let form = post_form(
        app,
        &viewer,
        "/account",
        "/account/profile",
        &[("display_name", "Vera V"), ("time_zone", "UTC")],
    )
    .await;
    assert_eq!(location(&form), "/account?error=read_only");
    let answered = answer(
        api.patch(app.url("/api/v1/me"))
            .bearer_auth(&w.read_token.1)
            .json(&serde_json::json!({"display_name": "Tom T"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(answered, (StatusCode::FORBIDDEN, "forbidden".into()));
    assert_eq!(w.audited("profile_updated", None).await, 0);
    // And a writer's change through each surface is saved and audited once each, with its surface.
    let trader = session_client(&w, &w.trader);
    let form = post_form(
        app,
        &trader,
        "/account",
        "/account/profile",
        &[("display_name", "Tom"), ("time_zone", "UTC")],
    )
    .await;
    assert_eq!(location(&form), "/account?ok=profile");
    let (_, secret) = api_token::create(&app.ctx.db, w.trader.id, "rw", Scope::ReadWrite, None)
        .await
        .unwrap()
        .unwrap();
    let status = api
        .patch(app.url("/api/v1/me"))
        .bearer_auth(&secret)
        .json(&serde_json::json!({"time_zone": "Europe/Zurich"}))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::OK);
    let surfaces: Vec<String> = sqlx::query_scalar(
        "select detail->>'surface' from audit_event where event = 'profile_updated' order by audit_event_id",
    )
    .fetch_all(&app.ctx.db)
    .await
    .unwrap();
    assert_eq!(surfaces, ["web", "api"]);
    // A field error: the form shows the field's message, REST answers 400 `invalid_input` (before, REST said
    // `bad_request` for this one field error while every other REST field error said `invalid_input`).
    let form = post_form(
        app,
        &trader,
        "/account",
        "/account/profile",
        &[("display_name", "Tom"), ("time_zone", "Mars/Olympus")],
    )
    .await;
    assert_eq!(location(&form), "/account?error=time_zone");
    let answered = answer(
        api.patch(app.url("/api/v1/me"))
            .bearer_auth(&secret)
            .json(&serde_json::json!({"time_zone": "Mars/Olympus"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(answered, (StatusCode::BAD_REQUEST, "invalid_input".into()));

    // 3. Everyone's audit trail: REST with a trader's token → 403 `forbidden`, an admin's → 200; the action
    //    agrees for the same users.
    let (_, trader_rw) = api_token::create(&app.ctx.db, w.trader.id, "rw2", Scope::ReadWrite, None)
        .await
        .unwrap()
        .unwrap();
    let (_, admin_ro) = api_token::create(&app.ctx.db, w.admin.id, "ro", Scope::Read, None)
        .await
        .unwrap()
        .unwrap();
    let answered = answer(
        api.get(app.url("/api/v1/admin/audit"))
            .bearer_auth(&trader_rw)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(answered, (StatusCode::FORBIDDEN, "forbidden".into()));
    let status = api
        .get(app.url("/api/v1/admin/audit"))
        .bearer_auth(&admin_ro)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        decision(
            &backend::admin::audit::page(
                &as_session(&w.trader),
                &app.ctx,
                &Default::default(),
                None,
                10
            )
            .await
            .map(|p| p.events)
        ),
        "forbidden"
    );

    // 4. Token creation needs a confirmed email: the unconfirmed trader's form → `token_unverified`; the
    //    action → `email_unconfirmed`; no token is created either way.
    let unverified = session_client(&w, &w.unverified);
    let form = post_form(
        app,
        &unverified,
        "/account",
        "/account/tokens",
        &[
            ("name", "t"),
            ("scope", "read"),
            ("expires_in_days", ""),
            ("current_password", PASSWORD),
        ],
    )
    .await;
    assert_eq!(location(&form), "/account?error=token_unverified#tokens");
    let count: i64 = sqlx::query_scalar("select count(*) from api_token where user_id = $1")
        .bind(w.unverified.id)
        .fetch_one(&app.ctx.db)
        .await
        .unwrap();
    assert_eq!(count, 0);
}
