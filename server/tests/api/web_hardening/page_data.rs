//! Issue 11, item 13: the page-data server functions answer ordinary errors with 4xx.

use reqwest::{Client, StatusCode};

use super::{app, trader};

// ---------------------------------------------------------------------------------------------------------
// Item 13: page-data server functions answer ordinary errors with 4xx
// ---------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn page_data_server_functions_answer_4xx_for_ordinary_errors() {
    let app = app(Vec::new()).await;
    let ann = trader(&app, "ann@example.org").await;
    let anonymous = Client::new();
    let missing = uuid::Uuid::new_v4();
    let cases: Vec<(&str, &Client, String, StatusCode)> = vec![
        (
            "not found",
            &ann,
            format!("/api/strategy?id={missing}"),
            StatusCode::NOT_FOUND,
        ),
        (
            "not found",
            &ann,
            format!("/api/run?id={missing}"),
            StatusCode::NOT_FOUND,
        ),
        (
            "malformed id",
            &ann,
            "/api/run?id=nope".into(),
            StatusCode::NOT_FOUND,
        ),
        (
            "not found",
            &ann,
            format!("/api/compare?ids[0]={missing}"),
            StatusCode::NOT_FOUND,
        ),
        (
            "not found",
            &ann,
            format!("/api/run_form?strategy={missing}"),
            StatusCode::NOT_FOUND,
        ),
        (
            "anonymous",
            &anonymous,
            format!("/api/strategy?id={missing}"),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "anonymous",
            &anonymous,
            "/api/runs".into(),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "anonymous",
            &anonymous,
            "/api/run_form".into(),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "missing argument",
            &ann,
            "/api/strategy".into(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "bad argument",
            &ann,
            "/api/runs?instrument=abc".into(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "bad sort",
            &ann,
            "/api/runs?sort=nonsense".into(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ];
    for (what, client, path, want) in cases {
        let resp = client.get(app.url(&path)).send().await.unwrap();
        let status = resp.status();
        let body = resp.text().await.unwrap();
        assert_eq!(status, want, "{what}: {path}: {body}");
    }
    // A success is still 200.
    let resp = ann.get(app.url("/api/runs")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}
