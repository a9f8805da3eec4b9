//! The owner's way through: form errors in place, a run started from the form, its page, the list, candles
//! arriving (page and live stream), pause / resume / stop, and the parity report.

use std::time::Duration;

use reqwest::StatusCode;

use super::*;
use crate::notify_live::{EventStream, stream_client};

#[tokio::test]
async fn the_start_form_refuses_a_missing_fee_in_place_and_starts_a_run_that_the_pages_show() {
    let app = app().await;
    let ann = trader(&app, "ann@example.org").await;
    let strategy = create_strategy(&app, &ann).await;
    let instrument = live_series(&app).await;

    // The form offers the live feed, prefilled from the query string.
    let (status, page) = html(
        &app,
        &ann,
        &format!("/paper/new?strategy={strategy}&version=1&instrument_id={instrument}&timeframe=5m&fee_pct=0.25"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("ETH/BTC · demo"), "{page}");
    assert!(
        page.contains(r#"name="fee_pct""#) && page.contains(r#"value="0.25""#),
        "{page}"
    );

    // No fee: back to the form, values kept, the message under the fee field.
    let mut fields = start_fields(strategy, instrument);
    fields.retain(|(k, _)| k != "fee_pct");
    fields.push(("fee_pct".into(), String::new()));
    let resp = form(&app, &ann, "/paper/create", &pairs(&fields)).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let back = location(&resp);
    assert!(
        back.starts_with("/paper/new?") && back.contains("failed=1"),
        "{back}"
    );
    let (_, page) = html(&app, &ann, &back).await;
    assert!(
        page.contains(r#"data-field="fee""#) && page.contains("give the fee per side explicitly"),
        "{page}"
    );
    let runs: i64 = sqlx::query_scalar("select count(*) from paper_run")
        .fetch_one(&app.ctx.db)
        .await
        .unwrap();
    assert_eq!(runs, 0);

    // A bad warm-up names its field too.
    let mut fields = start_fields(strategy, instrument);
    fields.push(("warmup_bars".into(), "-1".into()));
    let resp = form(&app, &ann, "/paper/create", &pairs(&fields)).await;
    let (_, page) = html(&app, &ann, &location(&resp)).await;
    assert!(page.contains(r#"data-field="warmup_bars""#), "{page}");

    // With the fee: the run's page.
    let run = start_run(&app, &ann, strategy, instrument).await;
    let (status, page) = html(&app, &ann, &format!("/paper/{run}")).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(text_of(&page, "run-status"), "active");
    assert_eq!(text_of(&page, "candles-processed"), "0");
    assert!(page.contains("no-candles"), "{page}");
    assert!(page.contains(&format!("/paper/{run}/parity")), "{page}");
    assert!(
        page.contains("stop-run") && page.contains("pause-run"),
        "{page}"
    );

    // The list, with filters.
    let (status, page) = html(&app, &ann, "/paper?status=live").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains(&format!("/paper/{run}")), "{page}");
    let (_, page) = html(&app, &ann, "/paper?status=stopped").await;
    assert!(!page.contains(&format!("/paper/{run}")), "{page}");
    assert!(page.contains("no-paper-runs"), "{page}");
    let (_, page) = html(
        &app,
        &ann,
        &format!("/paper?strategy={strategy}&instrument={instrument}"),
    )
    .await;
    assert!(page.contains(&format!("/paper/{run}")), "{page}");
    let (status, _) = html(&app, &ann, "/paper?status=bogus").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    // Candles arrive: the page shows them with their decisions and the feed lag.
    arrive(&app, instrument, run, 3).await;
    let (_, page) = html(&app, &ann, &format!("/paper/{run}")).await;
    assert_eq!(text_of(&page, "candles-processed"), "3");
    assert_eq!(
        page.matches(r#"class="processed-candle""#).count(),
        3,
        "{page}"
    );
    assert!(page.contains("since that candle closed"), "{page}");
    assert!(page.contains("equity-curve"), "{page}");

    // The parity report of what it did.
    let (status, page) = html(&app, &ann, &format!("/paper/{run}/parity")).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(
        page.contains("parity-summary") && page.contains("no-differences"),
        "{page}"
    );
}

#[tokio::test]
async fn pause_resume_and_stop_through_the_forms_and_the_live_stream_announces_changes() {
    let app = app().await;
    let ann = trader(&app, "ann@example.org").await;
    let strategy = create_strategy(&app, &ann).await;
    let instrument = live_series(&app).await;
    let run = start_run(&app, &ann, strategy, instrument).await;
    wait_listening(&app).await;

    // The stream: the state first, then one event per change.
    let cookie = ann_cookie(&app).await;
    let resp = stream_client()
        .get(app.url(&format!("/api/events/paper/{run}")))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let mut events = EventStream::new(resp);
    let (name, data, _) = events.next_event(Duration::from_secs(5)).await.unwrap();
    assert_eq!(
        (name.as_str(), data["candles"].as_i64()),
        ("changed", Some(0))
    );
    arrive(&app, instrument, run, 2).await;
    let (name, data, _) = events.next_event(Duration::from_secs(5)).await.unwrap();
    assert_eq!(
        (name.as_str(), data["candles"].as_i64()),
        ("changed", Some(2))
    );

    let back = format!("/paper/{run}");
    let resp = form(&app, &ann, &format!("/paper/{run}/pause"), &[]).await;
    let status = resp.status();
    assert_eq!(
        location(&resp),
        format!("{back}?ok=paper_paused"),
        "{status}: {}",
        resp.text().await.unwrap()
    );
    assert_eq!(status_of(&app, run).await, "paused");
    let (_, data, _) = events.next_event(Duration::from_secs(5)).await.unwrap();
    assert_eq!(data["status"], "paused");
    let (_, page) = html(&app, &ann, &back).await;
    assert_eq!(text_of(&page, "run-status"), "paused");
    assert_eq!(text_of(&page, "run-gate"), "gate: halt");
    assert!(
        page.contains("resume-run") && !page.contains("pause-run"),
        "{page}"
    );

    // Pausing twice is refused with a message, nothing changes.
    let resp = form(&app, &ann, &format!("/paper/{run}/pause"), &[]).await;
    assert_eq!(location(&resp), format!("{back}?error=paper_not_now"));
    assert_eq!(status_of(&app, run).await, "paused");

    let resp = form(&app, &ann, &format!("/paper/{run}/resume"), &[]).await;
    assert_eq!(location(&resp), format!("{back}?ok=paper_resumed"));
    assert_eq!(status_of(&app, run).await, "active");

    // Flat, "stop" stops at once (flattening has nothing to sell).
    let resp = form(
        &app,
        &ann,
        &format!("/paper/{run}/stop"),
        &[("flatten", "1")],
    )
    .await;
    assert_eq!(location(&resp), format!("{back}?ok=paper_stopped"));
    assert_eq!(status_of(&app, run).await, "stopped");
    let (_, page) = html(&app, &ann, &back).await;
    assert_eq!(text_of(&page, "run-status"), "stopped");
    assert!(
        page.contains("stop-reason") && !page.contains("stop-run"),
        "{page}"
    );
    let resp = form(
        &app,
        &ann,
        &format!("/paper/{run}/stop"),
        &[("flatten", "0")],
    )
    .await;
    assert_eq!(location(&resp), format!("{back}?error=paper_not_now"));
}

/// The `Cookie` header of a browser client's session (for a stream client without a total timeout).
pub(super) async fn ann_cookie(app: &TestApp) -> String {
    use backend::auth::{RequestMeta, session};
    let user: Uuid =
        sqlx::query_scalar("select user_id from app_user where email = 'ann@example.org'")
            .fetch_one(&app.ctx.db)
            .await
            .unwrap();
    let s = session::create(
        &app.ctx.db,
        &app.ctx.keys,
        &app.ctx.settings,
        user,
        &RequestMeta::new("127.0.0.1", "tests"),
    )
    .await
    .unwrap();
    format!("{}={}", session::cookie_name(&app.ctx.settings), s.token)
}

#[tokio::test]
async fn a_lost_listener_connection_reconnects_and_paper_streams_re_read() {
    let app = app().await;
    let ann = trader(&app, "ann@example.org").await;
    let strategy = create_strategy(&app, &ann).await;
    let instrument = live_series(&app).await;
    let run = start_run(&app, &ann, strategy, instrument).await;
    wait_listening(&app).await;
    let cookie = ann_cookie(&app).await;
    let resp = stream_client()
        .get(app.url(&format!("/api/events/paper/{run}")))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    let mut events = EventStream::new(resp);
    let (name, _, _) = events.next_event(Duration::from_secs(5)).await.unwrap();
    assert_eq!(name, "changed");

    // Postgres drops the process's one listener connection (it carries both channels).
    let killed: i64 = sqlx::query_scalar(
        "select count(*) from (select pg_terminate_backend(pid) from pg_stat_activity
           where datname = current_database() and query ilike 'listen%paper_run%') t",
    )
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    assert_eq!(killed, 1);
    // Nothing changed, yet the stream re-reads: changes while nobody listened would not have been heard.
    let (name, data, _) = events
        .next_event(Duration::from_secs(10))
        .await
        .expect("a re-read after the reconnect");
    assert_eq!(
        (name.as_str(), data["candles"].as_i64()),
        ("changed", Some(0))
    );
    // And live again.
    wait_listening(&app).await;
    arrive(&app, instrument, run, 2).await;
    let (_, data, _) = events.next_event(Duration::from_secs(5)).await.unwrap();
    assert_eq!(data["candles"].as_i64(), Some(2));
}
