//! API tokens: shown once, scoped, never a session; what read-write tokens may change; one trader
//! cannot touch another's tokens or sessions.

use reqwest::{Client, StatusCode};
use serde_json::Value;
use uuid::Uuid;

use super::{
    PASSWORD, app_with_mail, location, page_text, post_form, session_status, shown_token,
    verified_user,
};

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
