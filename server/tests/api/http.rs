//! Pages, probes, metrics and middleware over real HTTP.

use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::helpers::{Options, RedisServer, free_port, spawn_app, spawn_app_with};

#[tokio::test]
async fn health_answers_200_without_touching_dependencies() {
    let app = spawn_app_with(Options {
        env: vec![("REDIS_URL", "redis://127.0.0.1:1".into())],
        ..Options::default()
    })
    .await;
    let resp = app.get("/health").await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["status"], "ok");
}

#[tokio::test]
async fn ready_answers_200_when_postgres_and_redis_are_up() {
    let app = spawn_app().await;
    // Details are for operators (anonymous callers get only {"status": "ready"}).
    let resp = app
        .client
        .get(app.url("/ready"))
        .bearer_auth(crate::helpers::OPS_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["checks"]["postgres"]["status"], "ok");
    assert_eq!(body["checks"]["redis"]["status"], "ok");
}

#[tokio::test]
async fn ready_answers_503_naming_postgres_quickly_when_the_database_is_unreachable() {
    let app = spawn_app_with(Options {
        env: vec![(
            "DATABASE_URL",
            format!("postgres://postgres@127.0.0.1:{}/nope", free_port()),
        )],
        ..Options::default()
    })
    .await;
    let started = Instant::now();
    let resp = app
        .client
        .get(app.url("/ready"))
        .bearer_auth(crate::helpers::OPS_TOKEN)
        .send()
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["failing"], serde_json::json!(["postgres"]));
    assert_eq!(body["checks"]["redis"]["status"], "ok");
}

#[tokio::test]
async fn stopping_redis_makes_ready_503_within_3s_and_everything_recovers_when_it_returns() {
    let port = free_port();
    let mut redis = RedisServer::start(port);
    let app = spawn_app_with(Options {
        workers: true,
        env: vec![("REDIS_URL", redis.url())],
    })
    .await;
    assert_eq!(app.get("/ready").await.status(), StatusCode::OK);

    redis.stop();
    let started = Instant::now();
    let resp = app
        .client
        .get(app.url("/ready"))
        .bearer_auth(crate::helpers::OPS_TOKEN)
        .send()
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "ready took {:?}",
        started.elapsed()
    );
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["failing"], serde_json::json!(["redis"]), "{body}");
    assert_eq!(app.get("/health").await.status(), StatusCode::OK);

    // Work enqueued during the outage is kept in Postgres.
    let job = backend::jobs::housekeeping::enqueue(&app.ctx, None, false)
        .await
        .unwrap()
        .unwrap();

    let _redis = RedisServer::start(port);
    let deadline = Instant::now() + Duration::from_secs(15);
    while app.get("/ready").await.status() != StatusCode::OK {
        assert!(Instant::now() < deadline, "/ready did not recover");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The supervised workers reconnected by themselves and the reconciler delivered the queued job.
    app.wait_for_job(job, &["done"], Duration::from_secs(30))
        .await;
    let fresh = backend::jobs::housekeeping::enqueue(&app.ctx, None, false)
        .await
        .unwrap()
        .unwrap();
    app.wait_for_job(fresh, &["done"], Duration::from_secs(15))
        .await;
}

#[tokio::test]
async fn the_home_page_is_server_rendered_with_layout_and_hydration_scripts() {
    let app = spawn_app().await;
    let resp = app.get("/").await;
    assert_eq!(resp.status(), StatusCode::OK);
    let csp = resp.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    // Without a payment provider, forms lead nowhere but here.
    assert!(csp.contains("form-action 'self';"), "{csp}");
    let html = resp.text().await.unwrap();
    assert!(html.contains("Research, test and paper-trade"));
    assert!(html.contains(r#"class="site-header""#) && html.contains(r#"class="site-footer""#));
    assert!(html.contains(env!("CARGO_PKG_VERSION")));
    assert!(
        html.contains("/pkg/vortex.js") && html.contains("vortex_bg.wasm"),
        "hydration scripts missing"
    );
    // Every inline script carries the nonce announced in the CSP header.
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .and_then(|s| s.split('\'').next())
        .expect("nonce in CSP");
    let scripts = html.matches("<script").count();
    let with_nonce = html.matches(&format!(r#"nonce="{nonce}""#)).count();
    assert!(
        scripts > 0 && with_nonce >= scripts,
        "{with_nonce} of {scripts} scripts carry the nonce"
    );
}

#[tokio::test]
async fn unknown_pages_get_a_styled_404() {
    let app = spawn_app().await;
    let resp = app.get("/definitely/not/here").await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let html = resp.text().await.unwrap();
    assert!(html.contains("Page not found") && html.contains("site-header"));
}

#[tokio::test]
async fn error_pages_have_no_inline_handlers_and_their_go_back_script_carries_the_nonce() {
    let app = spawn_app().await;
    // A form post without its CSRF token: the small HTML error page.
    let resp = reqwest::Client::new()
        .post(format!("{}/auth/signin", app.address))
        .form(&[("email", "a@example.org"), ("password", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let csp = resp.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    let html = resp.text().await.unwrap();
    assert!(html.contains("Form expired"), "{html}");
    // The CSP forbids inline handlers and javascript: links: "Go back" is a nonce'd script's.
    assert!(
        !html.contains("onclick") && !html.contains("javascript:"),
        "{html}"
    );
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .and_then(|r| r.split('\'').next())
        .unwrap();
    assert!(
        html.contains(&format!("<script nonce=\"{nonce}\">")),
        "{html}"
    );
    assert!(html.contains(r#"id="go-back""#), "{html}");
}

#[tokio::test]
async fn the_status_page_renders_dependency_health_on_the_server() {
    let app = spawn_app().await;
    let html = app.get("/status").await.text().await.unwrap();
    assert!(html.contains(r#"data-dependency="postgres""#), "{html}");
    assert!(html.contains(r#"data-dependency="redis""#));
}

#[tokio::test]
async fn every_response_carries_security_headers_and_a_request_id() {
    let app = spawn_app().await;
    for path in ["/", "/health", "/nope", "/pkg/missing.js"] {
        let resp = app.get(path).await;
        let h = resp.headers();
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert!(
            h["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("frame-ancestors 'none'"),
            "{path}"
        );
        assert_eq!(
            h["referrer-policy"], "strict-origin-when-cross-origin",
            "{path}"
        );
        let rid = h["x-request-id"].to_str().unwrap();
        assert_eq!(
            uuid::Uuid::parse_str(rid).unwrap().get_version_num(),
            4,
            "{path}"
        );
    }
}

#[tokio::test]
async fn a_well_formed_incoming_request_id_is_kept_and_a_hostile_one_replaced() {
    let app = spawn_app().await;
    let resp = app
        .client
        .get(app.url("/health"))
        .header("x-request-id", "edge-abc.123")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-request-id"], "edge-abc.123");
    let resp = app
        .client
        .get(app.url("/health"))
        .header("x-request-id", "<script>alert(1)</script>")
        .send()
        .await
        .unwrap();
    assert!(uuid::Uuid::parse_str(resp.headers()["x-request-id"].to_str().unwrap()).is_ok());
}

#[tokio::test]
async fn bodies_over_the_limit_are_refused_with_413() {
    let app = spawn_app_with(Options {
        env: vec![("BODY_LIMIT_BYTES", "2048".into())],
        ..Options::default()
    })
    .await;
    let resp = app
        .client
        .post(app.url("/ops/jobs/housekeeping"))
        .bearer_auth(crate::helpers::OPS_TOKEN)
        .header("content-length", "100000")
        .body(vec![b'x'; 100_000])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn cors_admits_only_configured_origins() {
    let app = spawn_app_with(Options {
        env: vec![("CORS_ALLOWED_ORIGINS", "https://trader.example.org".into())],
        ..Options::default()
    })
    .await;
    let preflight = |origin: &'static str| {
        app.client
            .request(reqwest::Method::OPTIONS, app.url("/health"))
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .send()
    };
    let ok = preflight("https://trader.example.org").await.unwrap();
    assert_eq!(
        ok.headers()["access-control-allow-origin"],
        "https://trader.example.org"
    );
    let evil = preflight("https://evil.example.com").await.unwrap();
    assert!(evil.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn metrics_expose_http_job_and_pool_series_in_prometheus_format() {
    let app = spawn_app().await;
    app.get("/health").await;
    let job = backend::jobs::housekeeping::enqueue(&app.ctx, None, false)
        .await
        .unwrap()
        .unwrap();
    app.wait_for_job(job, &["done"], Duration::from_secs(15))
        .await;
    let needles = [
        r#"http_requests_total{method="GET",route="/health",status="200"}"#,
        "http_request_duration_seconds_bucket",
        r#"jobs_total{queue="default",kind="housekeeping",status="done"}"#,
        "job_duration_seconds_bucket",
        "db_pool_connections",
        "redis_pool_connections",
    ];
    // The worker counts the job just after its row says done: read until the series are there (or 5 s).
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let text = loop {
        let resp = app.get("/metrics").await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert!(
            resp.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/plain")
        );
        let text = resp.text().await.unwrap();
        if needles.iter().all(|n| text.contains(n)) || std::time::Instant::now() > deadline {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    for needle in needles {
        assert!(text.contains(needle), "missing {needle} in\n{text}");
    }
}

#[tokio::test]
async fn the_status_server_function_answers_json() {
    let app = spawn_app().await;
    let resp = app
        .client
        .get(app.url("/api/status"))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(body["dependencies"][0]["name"], "postgres");
    assert_eq!(body["dependencies"][0]["ok"], true);
}
