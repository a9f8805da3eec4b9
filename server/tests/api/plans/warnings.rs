//! Usage warnings (docs/plans.md): reaching 80 % and 100 % of a plan limit emits `billing.usage_warning` for
//! the trader once per limit, threshold and UTC day, whichever surface used the quota.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::{app, person, rest};

async fn warnings(app: &crate::helpers::TestApp, user: uuid::Uuid) -> Vec<Value> {
    sqlx::query_scalar(
        "select payload from notify_event where event_type = 'billing.usage_warning' and user_id = $1
          order by occurred_at, (payload->>'percent')::int",
    )
    .bind(user)
    .fetch_all(&app.ctx.db)
    .await
    .unwrap()
}

#[tokio::test]
async fn plans_usage_warns_at_80_and_100_percent_once_per_day() {
    let app = app(vec![]).await;
    let root = person(&app, "root@example.org", "admin").await;
    let ann = person(&app, "ann@example.org", "trader").await;
    let (status, plan) = rest(
        &app,
        Method::POST,
        "/api/v1/admin/plans",
        Some(&root.token),
        Some(json!({ "slug": "five", "name": "Five", "limits": { "strategies": 5 } })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{plan}");
    let (status, body) = rest(
        &app,
        Method::PUT,
        &format!("/api/v1/admin/users/{}/plan", ann.id),
        Some(&root.token),
        Some(json!({ "plan": "five", "reason": "usage warnings" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let create = || {
        let (app, token) = (&app, ann.token.clone());
        async move {
            rest(
                app,
                Method::POST,
                "/api/v1/strategies",
                Some(&token),
                Some(json!({ "template": "sma_cross" })),
            )
            .await
        }
    };
    for _ in 0..3 {
        assert_eq!(create().await.0, StatusCode::CREATED);
    }
    assert!(
        warnings(&app, ann.id).await.is_empty(),
        "3 of 5: no warning"
    );
    // The fourth (80 %) warns, through the browser form as well as the API.
    let token = crate::auth::csrf(&app, &ann.browser, "/strategies").await;
    let resp = ann
        .browser
        .post(app.url("/strategies/create"))
        .form(&[("template", "rsi"), ("csrf", &token)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let w = warnings(&app, ann.id).await;
    assert_eq!(w.len(), 1, "{w:?}");
    assert_eq!(
        (
            &w[0]["limit"],
            &w[0]["usage"],
            &w[0]["value"],
            &w[0]["percent"],
            &w[0]["plan"]
        ),
        (
            &json!("strategies"),
            &json!(4),
            &json!(5),
            &json!(80),
            &json!("Five")
        )
    );
    // The fifth reaches the limit; the sixth is refused and warns nothing new.
    assert_eq!(create().await.0, StatusCode::CREATED);
    let (status, body) = create().await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let w = warnings(&app, ann.id).await;
    assert_eq!(w.len(), 2, "{w:?}");
    assert_eq!((&w[1]["percent"], &w[1]["usage"]), (&json!(100), &json!(5)));
    // Another action at the same threshold on the same day does not warn again.
    let s: String =
        sqlx::query_scalar("select strategy_id::text from strategy where user_id = $1 limit 1")
            .bind(ann.id)
            .fetch_one(&app.ctx.db)
            .await
            .unwrap();
    sqlx::query("delete from strategy where strategy_id = $1::uuid")
        .bind(&s)
        .execute(&app.ctx.db)
        .await
        .unwrap();
    assert_eq!(create().await.0, StatusCode::CREATED);
    assert_eq!(warnings(&app, ann.id).await.len(), 2);
    // The trader reads it in words that say what happens next and where to raise the limit.
    let ev: backend::notify::Event = serde_json::from_value(w[1].clone()).unwrap();
    assert!(ev.title().contains("limit of strategies"), "{}", ev.title());
    assert!(ev.body().contains("/account/plan"), "{}", ev.body());
    assert!(ev.body().contains("5 of 5 strategies"), "{}", ev.body());
}
