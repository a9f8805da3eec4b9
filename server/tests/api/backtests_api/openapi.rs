//! The OpenAPI document: version 3.1, public, listing every `/api/v1` path.

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::app;

#[tokio::test]
async fn backtests_api_the_openapi_document_is_3_1_public_and_lists_every_api_v1_path() {
    let site = tempfile::tempdir().unwrap();
    let app = app(
        false,
        vec![("SITE_ROOT", site.path().display().to_string())],
    )
    .await;
    let r = app.get("/api/openapi.json").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let doc: Value = r.json().await.expect("the document is JSON");
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1."),
        "{}",
        doc["openapi"]
    );
    let paths = doc["paths"].as_object().unwrap();
    for (path, methods) in [
        ("/api/v1/me", &["get", "patch"][..]),
        ("/api/v1/me/audit", &["get"]),
        ("/api/v1/admin/audit", &["get"]),
        ("/api/v1/admin/audit/export", &["get"]),
        ("/api/v1/admin/jobs/{id}/cancel", &["post"]),
        ("/api/v1/admin/market", &["get"]),
        ("/api/v1/admin/settings", &["get", "patch"]),
        ("/api/v1/admin/invites", &["post"]),
        ("/api/v1/admin/market/backfill", &["post"]),
        ("/api/v1/market/candles", &["get"]),
        ("/api/v1/market/coverage", &["get"]),
        ("/api/v1/market/instruments", &["get"]),
        ("/api/v1/templates", &["get"]),
        ("/api/v1/strategies", &["get", "post"]),
        ("/api/v1/strategies/validate", &["post"]),
        ("/api/v1/strategies/{id}", &["get", "put", "delete"]),
        ("/api/v1/strategies/{id}/restore", &["post"]),
        ("/api/v1/strategies/{id}/duplicate", &["post"]),
        ("/api/v1/strategies/{id}/versions/{version}", &["get"]),
        ("/api/v1/backtests", &["get", "post"]),
        ("/api/v1/backtests/{id}", &["get"]),
        ("/api/v1/backtests/{id}/result", &["get"]),
        ("/api/v1/backtests/{id}/trades", &["get"]),
        ("/api/v1/backtests/{id}/trades.csv", &["get"]),
        ("/api/v1/backtests/{id}/cancel", &["post"]),
        ("/api/v1/backtests/{id}/trace", &["get"]),
    ] {
        for m in methods {
            let op = &paths.get(path).unwrap_or_else(|| panic!("{path} missing"))[*m];
            assert!(op.is_object(), "{m} {path} missing");
            assert!(!op["tags"].as_array().unwrap().is_empty(), "{m} {path} tag");
            assert!(op["responses"].is_object(), "{m} {path} responses");
        }
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    assert_eq!(
        paths["/api/v1/strategies"]["post"]["security"],
        json!([{"bearer": []}])
    );
    for schema in ["CreateBacktest", "RunDetail", "StrategyDetail", "Problem"] {
        assert!(
            doc["components"]["schemas"][schema].is_object(),
            "{schema} schema"
        );
    }

    // GET only, and public.
    let post = app
        .client
        .post(app.url("/api/openapi.json"))
        .send()
        .await
        .unwrap();
    assert!(post.status().is_client_error(), "{}", post.status());
    assert_ne!(post.status(), StatusCode::NOT_FOUND);

    // The reference page: read from the site root at request time; 503 while it is missing.
    let missing = app.get("/api/docs").await;
    assert_eq!(missing.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(missing.text().await.unwrap().contains("api-docs.html"));
    std::fs::write(
        site.path().join("api-docs.html"),
        "<!DOCTYPE html><title>Vortex API</title><div id=\"swagger-ui\"></div>",
    )
    .unwrap();
    let page = app.get("/api/docs").await;
    assert_eq!(page.status(), StatusCode::OK);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(page.text().await.unwrap().contains("swagger-ui"));
}
