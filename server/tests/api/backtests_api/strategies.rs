//! The strategies REST API: created from templates, validated, versioned, duplicated, archived and
//! restored.

use reqwest::{Method, StatusCode};
use serde_json::json;
use uuid::Uuid;

use super::{app, call, get, import, post, put, queue, submission, trader};

#[tokio::test]
async fn backtests_api_strategies_are_created_validated_versioned_duplicated_archived_and_restored()
{
    let app = app(false, vec![]).await;
    let token = trader(&app, "ann@example.org").await;
    let xrp = import(&app, "XRP-ETH-5m.csv").await;

    // The catalogue, with declared parameters.
    let t = get(&app, "/api/v1/templates", &token).await;
    assert_eq!(t.status, StatusCode::OK, "{t:?}");
    let macd = t.json["templates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "macd")
        .expect("macd template")
        .clone();
    let names: Vec<&str> = macd["params"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["fast", "slow", "signal"]);
    assert_eq!(macd["params"][0]["default"], 12);

    // Create from the template: 201, Location, version 1.
    let r = post(
        &app,
        "/api/v1/strategies",
        &token,
        &json!({"template": "macd", "description": "trend"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    let id = r.json["id"].as_str().unwrap().to_owned();
    assert_eq!(
        r.headers["location"].to_str().unwrap(),
        format!("/api/v1/strategies/{id}")
    );
    assert_eq!(r.json["name"], "MACD line / signal crossover");
    assert_eq!(r.json["template"], "macd");
    assert_eq!(r.json["latest_version"], 1);
    assert_eq!(r.json["latest"]["source"], macd["source"]);
    assert_eq!(r.json["latest"]["params"].as_array().unwrap().len(), 3);
    assert_eq!(r.json["versions"].as_array().unwrap().len(), 1);
    // API writes land in the audit trail like the browser's.
    let audited: i64 = sqlx::query_scalar(
        "select count(*) from audit_event where event = 'strategy_created' and detail->>'strategy_id' = $1",
    )
    .bind(&id)
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    assert_eq!(audited, 1);
    let path = format!("/api/v1/strategies/{id}");
    let source = r.json["latest"]["source"].as_str().unwrap().to_owned();

    // Validate: ok with params; invalid with line and column.
    let ok = post(
        &app,
        "/api/v1/strategies/validate",
        &token,
        &json!({ "source": source }),
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK, "{ok:?}");
    assert_eq!(ok.json["ok"], true);
    assert_eq!(ok.json["diagnostics"], json!([]));
    assert_eq!(ok.json["params"].as_array().unwrap().len(), 3);
    let broken =
        "param fast: int = 10 in 2..100\nlet x = sma(close, fast)\nentry long when x >> 3\n";
    let bad = post(
        &app,
        "/api/v1/strategies/validate",
        &token,
        &json!({ "source": broken }),
    )
    .await;
    assert_eq!(bad.status, StatusCode::OK, "{bad:?}");
    assert_eq!(bad.json["ok"], false);
    let d = &bad.json["diagnostics"][0];
    assert_eq!(d["line"], 3, "{bad:?}");
    assert!(d["column"].as_u64().unwrap() > 1, "{bad:?}");
    assert!(d["len"].as_u64().unwrap() >= 1);
    assert!(!d["message"].as_str().unwrap().is_empty());

    // An unchanged save adds no version; a changed one does.
    let same = put(
        &app,
        &path,
        &token,
        &json!({"source": source, "base_version": 1}),
    )
    .await;
    assert_eq!(same.status, StatusCode::OK, "{same:?}");
    assert_eq!(same.json, json!({"version": 1, "new_version": false}));
    let v2_source = source.replace("= 12 in", "= 10 in");
    assert_ne!(v2_source, source);
    let v2 = put(
        &app,
        &path,
        &token,
        &json!({"source": v2_source, "base_version": 1, "name": "MACD 10"}),
    )
    .await;
    assert_eq!(
        v2.json,
        json!({"version": 2, "new_version": true}),
        "{v2:?}"
    );
    // A save based on version 1 is now stale.
    let stale = put(
        &app,
        &path,
        &token,
        &json!({"source": source, "base_version": 1}),
    )
    .await;
    assert_eq!(stale.status, StatusCode::CONFLICT, "{stale:?}");
    assert_eq!(stale.error(), "conflict");
    assert!(stale.message().contains("version 2"), "{stale:?}");
    // Source that does not compile: 422 with problems, kept as the draft, no version.
    let invalid = put(&app, &path, &token, &json!({"source": broken})).await;
    assert_eq!(
        invalid.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{invalid:?}"
    );
    assert_eq!(invalid.error(), "invalid_strategy");
    assert_eq!(invalid.json["problems"][0]["line"], 3);
    assert!(invalid.json["problems"][0]["column"].as_u64().is_some());
    let detail = get(&app, &path, &token).await;
    assert_eq!(detail.json["name"], "MACD 10");
    assert_eq!(detail.json["latest_version"], 2);
    assert_eq!(detail.json["has_draft"], true);
    assert_eq!(detail.json["draft_source"], broken);
    assert_eq!(detail.json["versions"][0]["version"], 2);

    // Versions.
    let v1 = get(&app, &format!("{path}/versions/1"), &token).await;
    assert_eq!(v1.status, StatusCode::OK);
    assert_eq!(v1.json["source"], source.as_str());
    let v2 = get(&app, &format!("{path}/versions/2"), &token).await;
    assert_eq!(v2.json["source"], v2_source.as_str());
    assert_eq!(v2.json["params"][0]["default"], 10);
    let v3 = get(&app, &format!("{path}/versions/3"), &token).await;
    assert_eq!(v3.status, StatusCode::NOT_FOUND);
    assert_eq!(v3.error(), "not_found");

    // Duplicate.
    let copy = post(&app, &format!("{path}/duplicate"), &token, &json!({})).await;
    assert_eq!(copy.status, StatusCode::CREATED, "{copy:?}");
    assert_eq!(copy.json["name"], "MACD 10 (copy)");
    assert_eq!(copy.json["latest"]["source"], v2_source.as_str());
    assert_ne!(copy.json["id"], id.as_str());
    assert!(copy.headers.contains_key("location"));

    // Archive: hidden from the list, cannot be run; restore.
    let del = call(&app, Method::DELETE, &path, Some(&token), None).await;
    assert_eq!(del.status, StatusCode::NO_CONTENT, "{del:?}");
    let list = get(&app, "/api/v1/strategies", &token).await;
    let ids: Vec<&str> = list.json["strategies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [copy.json["id"].as_str().unwrap()]);
    let all = get(&app, "/api/v1/strategies?archived=true", &token).await;
    assert_eq!(all.json["strategies"].as_array().unwrap().len(), 2);
    let archived = all.json["strategies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id.as_str())
        .unwrap();
    assert_eq!(archived["archived"], true);
    // A deleted strategy is gone for reads by id, like any deleted resource, until it is restored.
    let gone = get(&app, &path, &token).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND, "{gone:?}");
    let gone = get(&app, &format!("{path}/versions/1"), &token).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND, "{gone:?}");
    let strategy: Uuid = id.parse().unwrap();
    let run = post(
        &app,
        "/api/v1/backtests",
        &token,
        &submission(strategy, xrp),
    )
    .await;
    assert_eq!(run.status, StatusCode::BAD_REQUEST, "{run:?}");
    assert_eq!(run.error(), "invalid_input");
    assert_eq!(run.field(), "strategy_id");
    assert!(run.message().contains("archived"), "{run:?}");
    let restore = post(&app, &format!("{path}/restore"), &token, &json!({})).await;
    assert_eq!(restore.status, StatusCode::NO_CONTENT);
    let back = get(&app, &path, &token).await;
    assert_eq!(back.status, StatusCode::OK, "{back:?}");
    assert_eq!(back.json["archived"], false);
    assert_eq!(
        get(&app, "/api/v1/strategies", &token).await.json["strategies"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    queue(&app, &token, &submission(strategy, xrp)).await;

    // Creation errors: unknown template, invalid source, bad name.
    let unknown = post(
        &app,
        "/api/v1/strategies",
        &token,
        &json!({"template": "nope"}),
    )
    .await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST, "{unknown:?}");
    assert_eq!(unknown.field(), "template");
    assert!(
        unknown.message().contains("macd"),
        "lists the templates: {unknown:?}"
    );
    let invalid = post(
        &app,
        "/api/v1/strategies",
        &token,
        &json!({"source": broken}),
    )
    .await;
    assert_eq!(invalid.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(invalid.json["problems"][0]["line"], 3);
    let long = post(
        &app,
        "/api/v1/strategies",
        &token,
        &json!({"name": "x".repeat(81)}),
    )
    .await;
    assert_eq!(long.status, StatusCode::BAD_REQUEST);
    assert_eq!(long.field(), "name");
    // Only the two strategies exist.
    let n: i64 = sqlx::query_scalar("select count(*) from strategy")
        .fetch_one(&app.ctx.db)
        .await
        .unwrap();
    assert_eq!(n, 2);
}
