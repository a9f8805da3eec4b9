//! nginx rate-limits the API and sign-in per client with 429.

use std::time::Instant;

use reqwest::StatusCode;

use super::Stack;

#[tokio::test]
async fn nginx_rate_limits_the_api_and_sign_in_per_client_with_429() {
    let stack = Stack::start(1).await;
    let nginx = &stack.nginx;

    // API zone (production values: 20 r/s, burst 40): a burst far above that from one client.
    let client = nginx.client_from("127.0.0.3");
    let started = Instant::now();
    let results: Vec<(StatusCode, reqwest::header::HeaderMap)> =
        futures::future::join_all((0..8).map(|_| {
            let client = client.clone();
            let url = nginx.https("/api/status");
            async move {
                let mut got = Vec::new();
                for _ in 0..15 {
                    let resp = client.get(&url).send().await.unwrap();
                    got.push((resp.status(), resp.headers().clone()));
                }
                got
            }
        }))
        .await
        .concat();
    let elapsed = started.elapsed().as_secs_f64();
    let statuses: Vec<StatusCode> = results.iter().map(|(s, _)| *s).collect();
    let limited = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    let passed = statuses.len() - limited;
    assert!(
        limited > 0,
        "no 429 among {} requests in {elapsed:.2}s",
        statuses.len()
    );
    // burst + rate × time (+1 for the first request, +1 for rounding), and the burst itself is honoured.
    let allowed = 42.0 + 20.0 * elapsed;
    assert!(
        passed as f64 <= allowed && passed >= 40,
        "{passed} passed in {elapsed:.2}s"
    );
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::OK || *s == StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    // A 429 carries the security headers too, and nginx's strict CSP (the app never saw the request).
    let (_, headers) = results
        .iter()
        .find(|(s, _)| *s == StatusCode::TOO_MANY_REQUESTS)
        .unwrap();
    for name in [
        "strict-transport-security",
        "x-content-type-options",
        "x-frame-options",
    ] {
        assert_eq!(headers.get_all(name).iter().count(), 1, "{name} on a 429");
    }
    assert!(
        headers["content-security-policy"]
            .to_str()
            .unwrap()
            .starts_with("default-src 'none'")
    );
    // The limit is per client: another address is served at once.
    let other = nginx.client_from("127.0.0.4");
    assert_eq!(
        other
            .get(nginx.https("/api/status"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    assert!(nginx.file("logs/error.log").contains("limiting requests"));

    // Sign-in zone (10/min, burst 5): the 7th POST within a second is refused; GETs (the page) are not.
    let client = nginx.client_from("127.0.0.5");
    let mut signin = Vec::new();
    for _ in 0..8 {
        let resp = client
            .post(nginx.https("/auth/signin"))
            .form(&[("email", "a@example.org"), ("password", "wrong")])
            .send()
            .await
            .unwrap();
        signin.push(resp.status());
    }
    let limited: Vec<bool> = signin
        .iter()
        .map(|s| *s == StatusCode::TOO_MANY_REQUESTS)
        .collect();
    assert_eq!(
        limited,
        [false, false, false, false, false, false, true, true],
        "{signin:?}"
    );
    for _ in 0..5 {
        let resp = client
            .get(nginx.https("/auth/signin"))
            .send()
            .await
            .unwrap();
        assert_ne!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    }
}
