//! The inbound-signal URL through nginx (docs/paper-trading.md, "Inbound signals"): its own route, limited per
//! run (the path) rather than per address, a small body limit, and `?token=` never in the access log.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use uuid::Uuid;

use super::{Stack, header};

#[tokio::test]
async fn nginx_signals_route_limits_per_run_bounds_the_body_and_redacts_the_token() {
    let stack = Stack::start(1).await;
    let nginx = &stack.nginx;
    let client = nginx.client_from("127.0.0.7");
    let run = Uuid::new_v4();
    let secret = "vsig_0123456789abcdef0123456789abcdef";
    let url = nginx.https(&format!("/api/v1/signals/{run}?token={secret}"));
    let body = r#"{"action": "buy", "ticker": "ETHBTC", "time": 0}"#;

    // An unknown run reaches the app (404 from it), and the token is redacted in the access log.
    let resp = client
        .post(&url)
        .header("content-type", "text/plain")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let rid = header(&resp, "x-request-id")[0].to_owned();
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
    assert_eq!(
        line["uri"],
        format!("/api/v1/signals/{run}?token=redacted"),
        "{line}"
    );
    assert!(!nginx.file("logs/access.log").contains(secret));

    // A body over 16 KiB is refused by nginx itself.
    let resp = client
        .post(&url)
        .body(format!("{{\"pad\": \"{}\"}}", "x".repeat(20 * 1024)))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);

    // A flood on one run's URL is cut to its burst; another run's URL from the same address still passes.
    let mut limited = 0;
    for _ in 0..40 {
        let s = client.post(&url).body(body).send().await.unwrap().status();
        if s == StatusCode::TOO_MANY_REQUESTS {
            limited += 1;
        }
    }
    assert!(limited >= 10, "{limited} of 40 limited");
    let other = nginx.https(&format!("/api/v1/signals/{}", Uuid::new_v4()));
    let s = client
        .post(&other)
        .body(body)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(s, StatusCode::NOT_FOUND);
}
