//! Issue 11, item 12: what `/ready` and `/status` tell strangers, operators and admins, and `/ready`
//! kept out of nginx.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{OPS_TOKEN, Options, TestApp, free_port, spawn_app_with};

// ----------------------------------------------------------------------------------------------------------
// 12. /ready and /status
// ----------------------------------------------------------------------------------------------------------

async fn app_with_dead_postgres() -> TestApp {
    spawn_app_with(Options {
        env: vec![(
            "DATABASE_URL",
            format!("postgres://postgres@127.0.0.1:{}/nope", free_port()),
        )],
        ..Options::default()
    })
    .await
}

#[tokio::test]
async fn ready_tells_strangers_only_ready_or_not_and_operators_why() {
    let app = app_with_dead_postgres().await;
    let resp = app.get("/ready").await;
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    let text = resp.text().await.unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap(),
        serde_json::json!({"status": "not_ready"})
    );

    let resp = app
        .client
        .get(app.url("/ready"))
        .bearer_auth(OPS_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["failing"], serde_json::json!(["postgres"]));
    assert!(body["checks"]["postgres"]["error"].is_string(), "{body}");

    let resp = app
        .client
        .get(app.url("/ready"))
        .bearer_auth("not-the-token")
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        serde_json::json!({"status": "not_ready"})
    );
}

#[tokio::test]
async fn the_status_api_hides_error_texts_and_job_counts_from_anyone_but_admins() {
    let app = app_with_dead_postgres().await;
    let resp = app
        .client
        .get(app.url("/api/status"))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["dependencies"][0]["name"], "postgres");
    assert_eq!(body["dependencies"][0]["ok"], false);
    assert_eq!(body["dependencies"][0]["detail"], "unavailable", "{body}");
    assert!(body["jobs"].is_null(), "{body}");
    let html = app.get("/status").await.text().await.unwrap();
    assert!(!html.contains("job-counts"));
    assert!(
        !html.contains("127.0.0.1"),
        "no internal address on the page"
    );
}

#[tokio::test]
async fn admins_see_job_counts_and_error_details_on_the_status_api() {
    let app = spawn_app_with(Options::default()).await;
    let hash = backend::auth::password::hash(crate::auth::PASSWORD.into())
        .await
        .unwrap();
    let mut conn = app.ctx.db.acquire().await.unwrap();
    backend::auth::users::insert(
        &mut conn,
        "root@example.org",
        "",
        &hash,
        backend::auth::Role::Admin,
    )
    .await
    .unwrap();
    drop(conn);
    let c = crate::auth::browser();
    crate::auth::sign_in(&app, &c, "root@example.org", crate::auth::PASSWORD).await;
    let body: Value = c
        .get(app.url("/api/status"))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(body["jobs"]["queued"].is_number(), "{body}");
}

#[tokio::test]
async fn ready_is_not_reachable_through_nginx() {
    let app = spawn_app_with(Options::default()).await;
    let port: u16 = app.address.rsplit(':').next().unwrap().parse().unwrap();
    let nginx = crate::nginx::Nginx::start(&[port]);
    let client = nginx.client_from("127.0.0.1");
    for path in ["/ready", "/ready/", "/ready?verbose=1", "//ready"] {
        let resp = client.get(nginx.https(path)).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{path}");
    }
    let resp = client.get(nginx.https("/health")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        app.get("/ready").await.status(),
        StatusCode::OK,
        "the app itself still answers"
    );
}
