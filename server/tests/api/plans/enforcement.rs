//! A smaller plan refuses the next backtest (REST, browser form) and strategy; an override raises it again;
//! history depth and runs per day; every change audited.

use reqwest::{Method, StatusCode};
use serde_json::json;
use uuid::Uuid;

use super::{app, audits, candles, limit, person, rest, run_body, strategy_of};
use crate::auth::{location, page_text, post_form};

#[tokio::test]
async fn plans_a_smaller_plan_refuses_the_next_backtest_everywhere_and_an_override_raises_it() {
    let app = app(vec![]).await;
    let instrument = candles(&app).await;
    let root = person(&app, "root@example.org", "admin").await;
    let ann = person(&app, "ann@example.org", "trader").await;
    let strategy = strategy_of(&app, &ann).await;

    let (status, plan) = rest(
        &app,
        Method::POST,
        "/api/v1/admin/plans",
        Some(&root.token),
        Some(
            json!({ "slug": "tiny", "name": "Tiny", "price_minor": 500, "currency": "EUR",
                     "limits": { "concurrent_backtests": 1, "strategies": 1 } }),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{plan}");
    assert_eq!(plan["limits"]["concurrent_backtests"], 1);
    let path = format!("/api/v1/admin/users/{}/plan", ann.id);
    let (status, assigned) = rest(
        &app,
        Method::PUT,
        &path,
        Some(&root.token),
        Some(json!({ "plan": "tiny", "reason": "trial of the tiny plan" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{assigned}");
    assert_eq!(assigned["plan"]["slug"], "tiny");
    assert_eq!(limit(&assigned, "concurrent_backtests")["value"], 1);

    // Lowering deletes nothing: ann keeps her strategy although the plan allows one and she has one; the next
    // strategy is refused with the limit named.
    let (status, body) = rest(
        &app,
        Method::POST,
        "/api/v1/strategies",
        Some(&ann.token),
        Some(json!({ "template": "macd" })),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(
        (&body["code"], &body["limit"]),
        (&json!("plan_limit"), &json!("strategies"))
    );
    assert_eq!(
        sqlx::query_scalar::<_, i64>("select count(*) from strategy")
            .fetch_one(&app.ctx.db)
            .await
            .unwrap(),
        1
    );

    // One backtest is allowed; the second is refused on REST with the documented problem.
    let (status, body) = rest(
        &app,
        Method::POST,
        "/api/v1/backtests",
        Some(&ann.token),
        Some(run_body(&strategy, instrument)),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let (status, body) = rest(
        &app,
        Method::POST,
        "/api/v1/backtests",
        Some(&ann.token),
        Some(run_body(&strategy, instrument)),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["type"], "/api/problems/plan_limit");
    assert_eq!(body["code"], "plan_limit");
    assert_eq!(body["limit"], "concurrent_backtests");
    assert_eq!((&body["usage"], &body["allowed"]), (&json!(1), &json!(1)));
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.contains("Tiny") && detail.contains("administrator"),
        "{detail}"
    );
    let (status, doc) = rest(&app, Method::GET, "/api/problems/plan_limit", None, None).await;
    assert_eq!(status, StatusCode::OK, "{doc}");

    // The browser form goes back with the message in place.
    let fields: Vec<(&str, String)> = vec![
        ("strategy_id", strategy.clone()),
        ("timeframe", "5m".into()),
        ("instrument_id", instrument.to_string()),
        ("from", "2019-10-11".into()),
        ("to", "2019-10-11".into()),
        ("initial_cash", "10000".into()),
        ("fee_pct", "0.1".into()),
        ("slippage_bps", "0".into()),
        ("fill", "next_open".into()),
    ];
    let f: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let resp = post_form(&app, &ann.browser, "/", "/backtests/create", &f).await;
    let loc = location(&resp);
    assert!(loc.contains("failed=1"), "{loc}");
    let page = page_text(&app, &ann.browser, &loc).await;
    assert!(
        page.contains("the limit is 1 at a time on your plan (Tiny)"),
        "the form shows the plan limit"
    );
    assert!(page.contains(r#"href="/account/plan""#));

    // The plan page shows the plan, its price and the full limit.
    let page = page_text(&app, &ann.browser, "/account/plan").await;
    assert!(
        page.contains("Tiny") && page.contains("EUR 5.00 / month"),
        "{page}"
    );

    // An override raises the limit again (and is shown as the user's own).
    let (status, body) = rest(
        &app,
        Method::PUT,
        &path,
        Some(&root.token),
        Some(
            json!({ "plan": "tiny", "overrides": { "concurrent_backtests": 3 }, "reason": "comp" }),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(limit(&body, "concurrent_backtests")["source"], "override");
    let (status, body) = rest(
        &app,
        Method::POST,
        "/api/v1/backtests",
        Some(&ann.token),
        Some(run_body(&strategy, instrument)),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");

    // History depth and runs per day: a plan that reaches back a year refuses a 2019 range.
    let (status, body) = rest(
        &app,
        Method::PATCH,
        &format!("/api/v1/admin/plans/{}", plan["id"].as_str().unwrap()),
        Some(&root.token),
        Some(json!({ "limits": { "history_days": 365, "backtests_per_day": 5 } })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = rest(
        &app,
        Method::POST,
        "/api/v1/backtests",
        Some(&ann.token),
        Some(run_body(&strategy, instrument)),
    )
    .await;
    assert_eq!(
        (status, &body["limit"]),
        (StatusCode::FORBIDDEN, &json!("history_days")),
        "{body}"
    );
    let (status, body) = rest(
        &app,
        Method::PATCH,
        &format!("/api/v1/admin/plans/{}", plan["id"].as_str().unwrap()),
        Some(&root.token),
        Some(json!({ "limits": { "history_days": null, "backtests_per_day": 2 } })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["limits"]["history_days"].is_null(), "{body}");
    let (status, body) = rest(
        &app,
        Method::POST,
        "/api/v1/backtests",
        Some(&ann.token),
        Some(run_body(&strategy, instrument)),
    )
    .await;
    assert_eq!(
        (status, &body["limit"]),
        (StatusCode::FORBIDDEN, &json!("backtests_per_day")),
        "{body}"
    );

    // Back on the default plan: the instance settings again.
    let (status, body) = rest(&app, Method::PUT, &path, Some(&root.token), Some(json!({}))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["plan"]["slug"], "free");

    // Audited, each in its transaction, with the admin as actor and ann as subject.
    assert_eq!(audits(&app, "plan_created").await, 1);
    assert_eq!(audits(&app, "plan_updated").await, 2);
    assert_eq!(audits(&app, "plan_assigned").await, 3);
    let (actor, reason): (Uuid, String) = sqlx::query_as(
        "select actor_id, detail->>'reason' from audit_event where event = 'plan_assigned' and user_id = $1 order by created_at limit 1",
    )
    .bind(ann.id)
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    assert_eq!(
        (actor, reason.as_str()),
        (root.id, "trial of the tiny plan")
    );
}
