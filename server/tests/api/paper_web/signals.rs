//! The run page's inbound signals in the browser: the card and its form (CSRF-checked), a new secret shown once
//! on the answer page and never on the run page, received signals listed with their verdicts, rotation, an
//! allow-list error next to the form, and another user's run not found.

use reqwest::StatusCode;
use serde_json::json;

use super::*;

async fn post_signal(app: &TestApp, run: Uuid, token: &str) -> StatusCode {
    let body = json!({"action": "buy", "ticker": "ETHBTC", "time": chrono::Utc::now().timestamp(), "token": token});
    app.client
        .post(app.url(&format!("/api/v1/signals/{run}")))
        .header("content-type", "text/plain")
        .body(body.to_string())
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn signals_through_the_run_page_card_and_form() {
    let app = app().await;
    let ann = trader(&app, "ann@example.org").await;
    let bob = trader(&app, "bob@example.org").await;
    let strategy = create_strategy(&app, &ann).await;
    let instrument = live_series(&app).await;
    let run = start_run(&app, &ann, strategy, instrument).await;

    // Off: the card and its form, no URL yet.
    let (status, page) = html(&app, &ann, &format!("/paper/{run}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains(r#"id="signals""#) && page.contains(r#"id="signals-form""#),
        "{page}"
    );
    assert!(!page.contains(r#"id="signal-url""#));

    // Gate: the answer page shows the new secret once, uncached.
    let action = format!("/paper/{run}/signals");
    let resp = form(
        &app,
        &ann,
        &action,
        &[("signal_mode", "gate"), ("allow_ips", "")],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let shown = resp.text().await.unwrap();
    let token = text_of(&shown, "signal-token");
    assert!(token.starts_with("vsig_"), "{shown}");
    assert!(text_of(&shown, "signal-url").ends_with(&format!("/api/v1/signals/{run}")));
    assert_eq!(post_signal(&app, run, &token).await, StatusCode::OK);
    assert_eq!(
        post_signal(&app, run, "vsig_wrong").await,
        StatusCode::UNAUTHORIZED
    );

    // The run page: the URL, the received signals with verdicts, never the secret.
    let (_, page) = html(&app, &ann, &format!("/paper/{run}")).await;
    assert!(
        page.contains(r#"id="signal-url""#) && page.contains(r#"id="signals-received""#),
        "{page}"
    );
    assert!(
        page.contains(r#"data-verdict="accepted""#) && page.contains(r#"data-status="401""#),
        "{page}"
    );
    assert!(!page.contains(&token[5..]));

    // A bad allow-list comes back next to the form; nothing changes.
    let resp = form(
        &app,
        &ann,
        &action,
        &[("signal_mode", "gate"), ("allow_ips", "not-an-ip")],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let (_, page) = html(&app, &ann, &location(&resp)).await;
    assert!(
        text_of(&page, "signals-error").contains("not-an-ip"),
        "{page}"
    );

    // Rotation: a new secret; the old one is refused.
    let resp = form(
        &app,
        &ann,
        &action,
        &[("signal_mode", "gate"), ("rotate", "1")],
    )
    .await;
    let new = text_of(&resp.text().await.unwrap(), "signal-token");
    assert_ne!(new, token);
    assert_eq!(
        post_signal(&app, run, &token).await,
        StatusCode::UNAUTHORIZED
    );

    // Saving without a rotation: back to the run with a notice.
    let resp = form(&app, &ann, &action, &[("signal_mode", "off")]).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(post_signal(&app, run, &new).await, StatusCode::NOT_FOUND);

    // Another user: not found, for the page and the form.
    let (status, _) = html(&app, &bob, &format!("/paper/{run}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let resp = form(
        &app,
        &bob,
        &action,
        &[("signal_mode", "gate"), ("rotate", "1")],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
}
