//! Issue 11, items 1 and 13: hostile strategy sources at the size limit against both validate
//! endpoints and the real `vortex` binary.

use std::{path::Path, process::Command};

use backend::auth::Scope;
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

use super::{api, token};
use crate::{
    auth::{browser, confirmed_user, csrf},
    helpers::{Options, TestApp, spawn_app_with, vortex_bin},
};

const MAX: usize = engine::strategy::limits::MAX_SOURCE_BYTES;

/// Sources as large as the limit allows that nest or chain far beyond the depth limit.
fn hostile_sources() -> Vec<(&'static str, String)> {
    let fill = |head: &str, unit: &str, tail: &str| {
        let n = (MAX - head.len() - tail.len()) / unit.len();
        format!("{head}{}{tail}", unit.repeat(n))
    };
    let nest = |open: &str, mid: &str, close: &str, head: &str, tail: &str| {
        let n = (MAX - head.len() - tail.len() - mid.len()) / (open.len() + close.len());
        format!("{head}{}{mid}{}{tail}", open.repeat(n), close.repeat(n))
    };
    vec![
        // 1+1+1+… : 30,000 terms in 60 KB.
        ("sum chain", fill("entry long when close > 1", "+1", "\n")),
        (
            "and chain",
            fill("entry long when close > 1", " and true", "\n"),
        ),
        // close[1][1]… ×3,000 is 9 KB; the limit allows far more.
        (
            "look-back chain (9 KB)",
            format!("entry long when close{} > 1\n", "[1]".repeat(3000)),
        ),
        (
            "look-back chain",
            fill("entry long when close", "[1]", " > 1\n"),
        ),
        ("minus chain", fill("entry long when close > ", "- ", "1\n")),
        ("not chain", fill("entry long when ", "not ", "close > 1\n")),
        (
            "parentheses",
            nest("(", "close", ")", "entry long when ", " > 1\n"),
        ),
        (
            "calls",
            nest("abs(", "close", ")", "entry long when ", " > 1\n"),
        ),
    ]
}

fn assert_depth_diagnostic(what: &str, body: &Value) {
    assert_eq!(body["ok"], false, "{what}: {body}");
    let d = &body["diagnostics"][0];
    assert!(
        d["message"]
            .as_str()
            .unwrap_or("")
            .contains("nested too deeply"),
        "{what}: {body}"
    );
    assert!(d["line"].as_u64().unwrap_or(0) >= 1, "{what}: {body}");
    assert!(d["column"].as_u64().unwrap_or(0) >= 1, "{what}: {body}");
}

async fn browser_trader(app: &TestApp, email: &str) -> Client {
    let client = browser();
    confirmed_user(app, &client, email, "Trader", None).await;
    client
}

#[tokio::test]
async fn engine_hardening_deep_sources_at_the_size_limit_are_diagnosed_by_both_validate_endpoints_and_the_cli()
 {
    let app = spawn_app_with(Options::default()).await;
    let read_only = token(&app, "reader@example.org", Scope::Read).await;
    let ann = browser_trader(&app, "ann@example.org").await;
    let csrf_token = csrf(&app, &ann, "/strategies").await;
    let dir = tempfile::tempdir().unwrap();
    let csv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/market/ETH-BTC-5m.csv");
    for (what, source) in hostile_sources() {
        assert!(source.len() <= MAX, "{what}");
        // REST API with a read-only token.
        let (status, body) = api(
            &app,
            reqwest::Method::POST,
            "/api/v1/strategies/validate",
            &read_only,
            Some(&json!({ "source": source })),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{what}: {body}");
        assert_depth_diagnostic(what, &body);
        // The editor's validation in the browser.
        let resp = ann
            .post(app.url("/strategies/validate"))
            .header("x-csrf-token", &csrf_token)
            .json(&json!({ "source": source }))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{what}");
        let body: Value = resp.json().await.unwrap();
        assert_depth_diagnostic(what, &body);
        // The real binary: a rendered diagnostic and exit code 2, not "stack overflow".
        let file = dir.path().join("deep.vx");
        std::fs::write(&file, &source).unwrap();
        let out = Command::new(vortex_bin())
            .args(["run-strategy", "--strategy-file"])
            .arg(&file)
            .arg("--csv")
            .arg(&csv)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("APP_ENV", "test")
            .output()
            .expect("run vortex");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{what}: {err}");
        assert!(
            err.contains("nested too deeply") && err.contains("--> line 1, column"),
            "{what}: {err}"
        );
    }
    // The server (this process) is still up and answering.
    let health = app.get("/health").await;
    assert_eq!(health.status(), StatusCode::OK);
    let (status, body) = api(
        &app,
        reqwest::Method::POST,
        "/api/v1/strategies/validate",
        &read_only,
        Some(&json!({ "source": "entry long when close > 1\n" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["ok"], true, "{body}");
}
