//! The one-click unsubscribe through nginx (docs/design/notifications.md §5): a mail provider's cookie-less
//! POST passes (exact location, its own small body limit), sets no cookie, and the signed token never reaches
//! the access log.

use std::time::{Duration, Instant};

use backend::{
    auth::{AuthKeys, Role, users},
    notify::{Category, unsubscribe},
    settings::Settings,
};
use reqwest::StatusCode;

use super::{Stack, header};
use crate::helpers::base_env;

/// The replicas' key, so the test signs what they verify.
const SECRET: &str = "nginx-unsubscribe-test-secret-0123456789abcdef";

#[tokio::test]
async fn nginx_one_click_unsubscribe_passes_without_cookies_bounds_the_body_and_redacts_the_token()
{
    let stack = Stack::start_with(1, &[("JWT_SECRET", SECRET)]).await;
    let nginx = &stack.nginx;
    let mut env = base_env(&stack._db, "unused");
    env.insert("JWT_SECRET".into(), SECRET.into());
    let keys = AuthKeys::from_settings(&Settings::from_map(&env).unwrap());
    let db = sqlx::PgPool::connect(&stack._db.url).await.unwrap();
    let mut conn = db.acquire().await.unwrap();
    let ann = users::insert(&mut conn, "ann@example.org", "Ann", "x", Role::Trader)
        .await
        .unwrap()
        .unwrap();
    drop(conn);
    let token = unsubscribe::sign(&keys, ann, Category::Backtests);
    let url = nginx.https(&format!("/unsubscribe/one-click?t={token}"));
    let client = nginx.client_from("127.0.0.5");

    // A body far above what RFC 8058 needs is refused by nginx itself.
    let big = format!("List-Unsubscribe=One-Click&pad={}", "x".repeat(8 * 1024));
    let resp = client
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);

    let resp = crate::helpers::one_click_unsubscribe(&client, &url).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(header(&resp, "set-cookie").is_empty(), "no cookie");
    let rid = header(&resp, "x-request-id")[0].to_owned();
    let mode: String = sqlx::query_scalar(
        "select mode || '/' || source from notify_rule where user_id = $1 and category = 'backtests' and channel = 'email'",
    )
    .bind(ann)
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(mode, "off/unsubscribe");

    // The access log has the path, never the token.
    let deadline = Instant::now() + Duration::from_secs(5);
    let line = loop {
        let found = nginx
            .file("logs/access.log")
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|l| l["request_id"] == rid.as_str());
        match found {
            Some(l) => break l,
            None if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            None => panic!("no access-log line for {rid}"),
        }
    };
    assert_eq!(line["uri"], "/unsubscribe/one-click?t=redacted", "{line}");
    assert!(!nginx.file("logs/access.log").contains(&token));
}
