//! Who may see and change a run: another user gets 404 on the page, the parity report, the stream and
//! every form; anonymous visitors are sent to sign in (the stream answers 401); a post without the CSRF
//! token is refused; streams are bounded per user.

use reqwest::StatusCode;

use super::*;
use crate::notify_live::stream_client;

#[tokio::test]
async fn another_user_gets_404_everywhere_and_anonymous_visitors_are_sent_to_sign_in() {
    let app = app().await;
    let ann = trader(&app, "ann@example.org").await;
    let strategy = create_strategy(&app, &ann).await;
    let instrument = live_series(&app).await;
    let run = start_run(&app, &ann, strategy, instrument).await;
    arrive(&app, instrument, run, 1).await;

    let bob = trader(&app, "bob@example.org").await;
    for path in [format!("/paper/{run}"), format!("/paper/{run}/parity")] {
        let (status, _) = html(&app, &bob, &path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
    let (_, page) = html(&app, &bob, "/paper").await;
    assert!(!page.contains(&run.to_string()), "{page}");
    for action in ["pause", "resume", "stop"] {
        let resp = form(
            &app,
            &bob,
            &format!("/paper/{run}/{action}"),
            &[("flatten", "0")],
        )
        .await;
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{action}");
    }
    // A malformed id is "not found" too.
    let resp = form(&app, &bob, "/paper/not-a-run/pause", &[]).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(status_of(&app, run).await, "active");
    // Bob's stream of Ann's run: 404 (his session is in his client's cookie store).
    let resp = bob
        .get(app.url(&format!("/api/events/paper/{run}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    // Starting a run on Ann's strategy: "no such strategy", nothing created.
    let fields = start_fields(strategy, instrument);
    let resp = form(&app, &bob, "/paper/create", &pairs(&fields)).await;
    let (_, page) = html(&app, &bob, &location(&resp)).await;
    assert!(
        page.contains("there is no such strategy in your account"),
        "{page}"
    );
    let runs: i64 = sqlx::query_scalar("select count(*) from paper_run")
        .fetch_one(&app.ctx.db)
        .await
        .unwrap();
    assert_eq!(runs, 1);

    // Anonymous: pages redirect to sign in, the stream is 401, a form post changes nothing.
    let anon = browser();
    for path in [
        "/paper".to_owned(),
        "/paper/new".to_owned(),
        format!("/paper/{run}"),
    ] {
        let resp = anon.get(app.url(&path)).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::SEE_OTHER, "{path}");
        assert!(location(&resp).starts_with("/signin"), "{path}");
    }
    let resp = anon
        .get(app.url(&format!("/api/events/paper/{run}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let resp = form(
        &app,
        &anon,
        &format!("/paper/{run}/stop"),
        &[("flatten", "0")],
    )
    .await;
    assert!(resp.status().is_redirection(), "{}", resp.status());
    assert!(
        location(&resp).starts_with("/signin"),
        "{}",
        location(&resp)
    );
    assert_eq!(status_of(&app, run).await, "active");

    // The owner without the CSRF token: refused, nothing changes.
    let resp = ann
        .post(app.url(&format!("/paper/{run}/stop")))
        .form(&[("flatten", "0")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let resp = ann
        .post(app.url(&format!("/paper/{run}/pause")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert_eq!(status_of(&app, run).await, "active");
}

#[tokio::test]
async fn paper_streams_are_bounded_per_user() {
    let app = app_with(vec![("NOTIFY_SSE_MAX_PER_USER", "2".into())]).await;
    let ann = trader(&app, "ann@example.org").await;
    let strategy = create_strategy(&app, &ann).await;
    let instrument = live_series(&app).await;
    let run = start_run(&app, &ann, strategy, instrument).await;
    let cookie = super::flow::ann_cookie(&app).await;
    let client = stream_client();
    let open = || {
        client
            .get(app.url(&format!("/api/events/paper/{run}")))
            .header("cookie", &cookie)
            .send()
    };
    let a = open().await.unwrap();
    let b = open().await.unwrap();
    assert_eq!((a.status(), b.status()), (StatusCode::OK, StatusCode::OK));
    let c = open().await.unwrap();
    assert_eq!(c.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(c.headers()["retry-after"], "30");
    // A closed stream frees its slot.
    drop(a);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let d = open().await.unwrap();
        if d.status() == StatusCode::OK {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the slot was never freed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
