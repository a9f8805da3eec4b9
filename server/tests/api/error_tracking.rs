//! Error tracking against a local receiver that speaks the Sentry envelope protocol: a forced panic in a
//! handler, a 500 answer and a job that fails for good each arrive once, with their context and scrubbed; a
//! 503 and a handled 4xx send nothing.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    Router,
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    routing::{get, post},
};
use serde_json::{Value, json};
use server::state::{AppState, Shared, WebLimits};

use crate::helpers::{Options, spawn_app_with};

/// What the receiver got: (project id, `X-Sentry-Auth`, event payloads of the envelope).
type Got = Arc<Mutex<Vec<(String, String, Vec<Value>)>>>;

/// The events of one envelope (`type: event` items); other items (sessions, client reports) are skipped.
fn events_of(body: &[u8]) -> Vec<Value> {
    let text = String::from_utf8_lossy(body);
    let mut lines = text.split('\n').skip(1);
    let mut out = Vec::new();
    while let Some(header) = lines.next() {
        if header.trim().is_empty() {
            continue;
        }
        let header: Value = serde_json::from_str(header).expect("item header is JSON");
        let payload = lines.next().unwrap_or_default();
        if header["type"] == "event" {
            out.push(serde_json::from_str(payload).expect("event payload is JSON"));
        }
    }
    out
}

async fn receive(
    State(got): State<Got>,
    Path(project): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let auth = headers
        .get("x-sentry-auth")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    got.lock().unwrap().push((project, auth, events_of(&body)));
    StatusCode::OK
}

/// A local Sentry-compatible receiver; its DSN and what it received.
async fn receiver() -> (String, Got) {
    let got: Got = Arc::default();
    let app = Router::new()
        .route("/api/{project}/envelope/", post(receive))
        .with_state(got.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://vortexpublickey@127.0.0.1:{port}/42"), got)
}

fn events(got: &Got) -> Vec<Value> {
    got.lock()
        .unwrap()
        .iter()
        .flat_map(|(_, _, e)| e.clone())
        .collect()
}

async fn wait_for(got: &Got, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let e = events(got);
        if e.len() >= n || Instant::now() > deadline {
            return e;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn text_of(e: &Value) -> String {
    let mut t = e["message"].as_str().unwrap_or_default().to_owned();
    t.push_str(e["logentry"]["message"].as_str().unwrap_or_default());
    for x in e["exception"]["values"].as_array().into_iter().flatten() {
        t.push_str(x["value"].as_str().unwrap_or_default());
    }
    t
}

#[tokio::test]
async fn a_panic_a_500_and_a_failed_job_are_reported_once_each_with_context_and_scrubbed() {
    let (dsn, got) = receiver().await;
    let app = spawn_app_with(Options {
        workers: true,
        env: vec![("SENTRY_DSN", dsn)],
    })
    .await;
    let _guard = backend::error_tracking::init(&app.ctx.settings, "web")
        .unwrap()
        .expect("a DSN is set");
    assert!(backend::error_tracking::enabled());

    // Routes behind the real middleware stack: one panics, one answers 500, one 503, one 404.
    let state = AppState::new(Shared {
        leptos: leptos::prelude::LeptosOptions::builder()
            .output_name("vortex")
            .build(),
        ctx: app.ctx.clone(),
        limits: WebLimits::new(&app.ctx.settings),
        hub: backend::notify::live::hub(),
        paper_hub: server::routes::paper::live::hub(),
        pages: std::sync::Arc::default(),
        signed_in: std::sync::Arc::default(),
    });
    let routes: Router<AppState> = Router::new()
        .route(
            "/boom/{id}",
            get(|Path(id): Path<String>| async move {
                if id == "now" {
                    panic!("boom while mailing ann@example.org with token=s3cret");
                }
                StatusCode::OK
            }),
        )
        .route(
            "/broken",
            get(|| async { StatusCode::INTERNAL_SERVER_ERROR }),
        )
        .route("/busy", get(|| async { StatusCode::SERVICE_UNAVAILABLE }));
    let router = server::middleware::apply(routes, &state).with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
        .unwrap()
    });
    let http = reqwest::Client::new();

    let r = http.get(format!("{base}/boom/now")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let panic_request = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    let r = http.get(format!("{base}/broken")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let broken_request = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    for quiet in ["/busy", "/nowhere", "/boom/later"] {
        let r = http.get(format!("{base}{quiet}")).send().await.unwrap();
        assert!(r.status() != StatusCode::INTERNAL_SERVER_ERROR, "{quiet}");
    }

    // A job no worker knows fails for good at its first attempt.
    let job = app
        .ctx
        .jobs
        .enqueue(&app.ctx.jobs.new_job(
            "default",
            "no_such_kind",
            json!({ "for": "ann@example.org" }),
        ))
        .await
        .unwrap()
        .unwrap();

    let all = wait_for(&got, 3).await;
    // Nothing more arrives later (no duplicate for the panic's 500, none for 503 or 404).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let all_later = events(&got);
    assert_eq!(all_later.len(), 3, "{all_later:#?}");
    assert_eq!(all.len(), 3);
    for (project, auth, _) in got.lock().unwrap().iter() {
        assert_eq!(project, "42");
        assert!(auth.contains("sentry_key=vortexpublickey"), "{auth}");
    }
    let tag = |e: &Value, k: &str| e["tags"][k].as_str().map(str::to_owned);
    let release = backend::error_tracking::release();
    for e in &all {
        assert_eq!(e["release"], release.as_str());
        assert_eq!(e["environment"], "test");
        let text = text_of(e);
        assert!(
            !text.contains("ann@example.org") && !text.contains("s3cret"),
            "scrubbed: {text}"
        );
        assert!(
            e["request"].is_null() && e["server_name"].is_null(),
            "{e:#}"
        );
        assert!(e["user"]["email"].is_null() && e["user"]["ip_address"].is_null());
    }
    let panic = all
        .iter()
        .find(|e| tag(e, "request_id").as_deref() == Some(panic_request.as_str()))
        .expect("the panic was reported with its request id");
    assert_eq!(tag(panic, "route").as_deref(), Some("/boom/{id}"));
    assert!(
        text_of(panic).contains("boom while mailing [email]"),
        "{panic:#}"
    );
    let broken = all
        .iter()
        .find(|e| tag(e, "request_id").as_deref() == Some(broken_request.as_str()))
        .expect("the 500 was reported with its request id");
    assert_eq!(text_of(broken), "GET /broken answered 500");
    assert_eq!(tag(broken, "status").as_deref(), Some("500"));
    let failed = all
        .iter()
        .find(|e| tag(e, "job_kind").as_deref() == Some("no_such_kind"))
        .expect("the failed job was reported");
    assert_eq!(tag(failed, "job_id"), Some(job.to_string()));
    assert_eq!(tag(failed, "queue").as_deref(), Some("default"));
    assert!(text_of(failed).contains("unknown job kind"), "{failed:#}");
}
