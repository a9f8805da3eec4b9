//! Through nginx over HTTPS: pages and the API work with the security headers, HTTP redirects to
//! HTTPS, and only TLS 1.2 and 1.3 with forward-secret ciphers are spoken.

use reqwest::StatusCode;

use super::{HASHED_JS, Stack, header};
use crate::helpers::OPS_TOKEN;

/// Each security header exactly once (the app's copies are replaced, not duplicated).
fn assert_security_headers(resp: &reqwest::Response, what: &str) {
    for (name, value) in [
        (
            "strict-transport-security",
            "max-age=63072000; includeSubDomains",
        ),
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "strict-origin-when-cross-origin"),
        ("cross-origin-opener-policy", "same-origin"),
    ] {
        assert_eq!(header(resp, name), vec![value], "{name} on {what}");
    }
    assert_eq!(
        header(resp, "content-security-policy").len(),
        1,
        "one CSP on {what}"
    );
}

#[tokio::test]
async fn through_nginx_pages_and_api_work_over_https_with_security_headers_and_http_redirects() {
    let stack = Stack::start(1).await;
    let nginx = &stack.nginx;
    let client = nginx.client_from("127.0.0.1");

    // A page, over TLS verified against the throw-away CA.
    let resp = client.get(nginx.https("/status")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_security_headers(&resp, "a page");
    let csp = header(&resp, "content-security-policy")[0].to_owned();
    assert!(
        csp.contains("'nonce-"),
        "the app's CSP with its nonce passes: {csp}"
    );
    assert_eq!(header(&resp, "server"), vec!["nginx"], "no version leaked");
    assert!(resp.text().await.unwrap().contains("<html"));

    // The server-function API and the operator API (Authorization passes through).
    let resp = client.get(nginx.https("/api/status")).send().await.unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{text}");
    let body: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(body["dependencies"].is_array(), "{body}");
    let resp = client
        .get(nginx.https("/ops/jobs"))
        .bearer_auth(OPS_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.json::<serde_json::Value>().await.unwrap()["jobs"].is_array());
    assert_eq!(
        client
            .get(nginx.https("/health"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );

    // HTTP → HTTPS, keeping path and query; the redirect target works.
    let resp = client
        .get(nginx.http("/status?tab=jobs"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::MOVED_PERMANENTLY);
    let location = header(&resp, "location")[0].to_owned();
    assert_eq!(location, nginx.https("/status?tab=jobs"));
    assert_eq!(
        client.get(&location).send().await.unwrap().status(),
        StatusCode::OK
    );
    // ...except ACME HTTP-01 challenges, served from the certbot webroot over plain HTTP.
    let token_dir = nginx.dir.path().join("acme/.well-known/acme-challenge");
    std::fs::create_dir_all(&token_dir).unwrap();
    std::fs::write(token_dir.join("tok3n"), "tok3n.thumbprint").unwrap();
    let resp = client
        .get(nginx.http("/.well-known/acme-challenge/tok3n"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.text().await.unwrap(), "tok3n.thumbprint");
    // Unknown host names get no answer at all (444 closes the connection)...
    let by_ip = |path: &str| format!("http://127.0.0.1:{}{path}", nginx.http_port);
    assert!(client.get(by_ip("/")).send().await.is_err());
    // ...except the container health probe (docker-compose.prod.yml), and only from inside.
    let resp = client.get(by_ip("/nginx-health")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.text().await.unwrap().contains("Active connections"));
    let outside = nginx.client_from("127.0.0.2");
    let resp = outside.get(by_ip("/nginx-health")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);

    // /metrics is never reachable through nginx, however it is spelled; the app itself does serve it.
    for path in [
        "/metrics",
        "/metrics/",
        "/metrics?format=text",
        "//metrics",
        "/%6detrics",
    ] {
        let resp = client.get(nginx.https(path)).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{path}");
        assert!(
            !resp.text().await.unwrap().contains("http_requests_total"),
            "{path}"
        );
    }
    let direct = reqwest::get(format!("http://127.0.0.1:{}/metrics", stack.apps[0].port))
        .await
        .unwrap();
    assert_eq!(direct.status(), StatusCode::OK);

    // Static assets: hashed names cached for a year, plain names revalidated; headers kept; gzip.
    let resp = client
        .get(nginx.https("/pkg/vortex.css"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(header(&resp, "cache-control"), vec!["public, no-cache"]);
    assert_eq!(header(&resp, "content-encoding"), vec!["gzip"]);
    assert_security_headers(&resp, "/pkg/vortex.css");
    let resp = client
        .get(nginx.https(&format!("/{HASHED_JS}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        header(&resp, "cache-control"),
        vec!["public, max-age=31536000, immutable"]
    );
    assert_security_headers(&resp, "a hashed asset");

    // Bodies over the limit are refused by nginx before they reach the app.
    let resp = client
        .get(nginx.https("/api/status"))
        .body(vec![b'x'; 3 * 1024 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn nginx_speaks_only_tls_1_2_and_1_3_with_forward_secret_ciphers() {
    let stack = Stack::start(1).await;
    let nginx = &stack.nginx;
    let sni = ["-servername", "localhost"];

    for version in ["-tls1_2", "-tls1_3"] {
        let (ok, out) = nginx.s_client(&[&sni[..], &[version]].concat());
        assert!(ok, "{version} refused:\n{out}");
        assert!(out.contains("Verify return code: 0 (ok)"), "{out}");
        assert!(!out.contains("Cipher is (NONE)"), "{out}");
    }
    // SECLEVEL=0 lets OpenSSL 3's client offer TLS 1.1 at all, so the refusal below is the server's.
    let (ok, out) =
        nginx.s_client(&[&sni[..], &["-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"]].concat());
    assert!(!ok, "TLS 1.1 accepted:\n{out}");
    assert!(out.contains("alert protocol version"), "{out}");
    let (ok, out) =
        nginx.s_client(&[&sni[..], &["-tls1", "-cipher", "DEFAULT@SECLEVEL=0"]].concat());
    assert!(
        !ok && out.contains("alert protocol version"),
        "TLS 1.0:\n{out}"
    );
    // A TLS 1.2 cipher without forward secrecy (RSA key exchange, CBC).
    let (ok, out) = nginx.s_client(&[&sni[..], &["-tls1_2", "-cipher", "AES128-SHA"]].concat());
    assert!(
        !ok && out.contains("handshake failure"),
        "AES128-SHA:\n{out}"
    );
    // Clients that do not name the site (scanners hitting the IP) are rejected during the handshake.
    let (ok, out) = nginx.s_client(&["-noservername"]);
    assert!(!ok && out.contains("unrecognized name"), "no SNI:\n{out}");
}
