//! nginx in front of `vortex serve` replicas: the app logs the real client IP (a forged
//! `X-Forwarded-For` is ignored), requests are spread over replicas and serving goes on when one dies.

use std::time::{Duration, Instant};

use reqwest::StatusCode;

use super::{Stack, VortexProc, header};

#[tokio::test]
async fn the_app_logs_the_real_client_ip_behind_nginx_and_a_forged_forwarded_for_is_ignored() {
    let stack = Stack::start(1).await;
    let nginx = &stack.nginx;
    // nginx writes the access-log line just after the response; poll briefly.
    let access_log = async |rid: &str| -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let found = nginx
                .file("logs/access.log")
                .lines()
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .find(|l| l["request_id"] == rid);
            match found {
                Some(line) => return line,
                None if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                None => panic!("no nginx access-log line for {rid}"),
            }
        }
    };

    // From 127.0.0.2 (not a trusted proxy), claiming to be 6.6.6.6 and sending its own request id.
    for (from, expected) in [("127.0.0.2", "127.0.0.2"), ("127.0.0.1", "127.0.0.1")] {
        let resp = nginx
            .client_from(from)
            .get(nginx.https("/status"))
            .header("x-forwarded-for", "6.6.6.6")
            .header("x-real-ip", "6.6.6.7")
            .header("x-request-id", "client-chosen-id")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let rid = header(&resp, "x-request-id")[0].to_owned();
        assert!(
            rid.len() == 32 && rid.bytes().all(|b| b.is_ascii_hexdigit()),
            "nginx's request id, not the client's: {rid}"
        );
        let line = stack.request_line(&rid).await;
        // From 127.0.0.1 the client is itself in TRUSTED_PROXIES: had nginx appended to the forged header
        // ($proxy_add_x_forwarded_for), the app would have believed 6.6.6.6.
        assert_eq!(line["span"]["client_ip"], expected, "client {from}: {line}");
        assert_eq!(access_log(&rid).await["remote_addr"], expected);
    }
}

#[tokio::test]
async fn nginx_spreads_requests_over_replicas_and_keeps_serving_when_one_dies() {
    let mut stack = Stack::start(2).await;
    let client = stack.nginx.client_from("127.0.0.6");
    for _ in 0..10 {
        let resp = client
            .get(stack.nginx.https("/health"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let counts: Vec<usize> = stack.apps.iter().map(VortexProc::requests_logged).collect();
    assert!(counts.iter().all(|c| *c >= 3), "round robin: {counts:?}");

    stack.apps[0].kill();
    for _ in 0..10 {
        let resp = client
            .get(stack.nginx.https("/status"))
            .send()
            .await
            .unwrap();
        assert_eq!(
            resp.status(),
            StatusCode::OK,
            "a request failed after one replica died"
        );
    }
}
