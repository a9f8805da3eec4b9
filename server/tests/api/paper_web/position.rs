//! A run that holds a position: the page shows it (units, entry, unrealised P&L at the last close) and its
//! fill; "stop, selling first" moves it to stopping, the next close decides the sale, the open after it fills
//! it (reason `flatten`) and the run stops.

use backend::{
    Actor,
    actor::Surface,
    auth::{AuthUser, Credential, RequestMeta, Role, Scope},
    backtest::{actions::strategies, strategies::NewStrategy},
};
use reqwest::StatusCode;

use super::*;

/// Always in the market: enters at the first decision, never exits by itself.
const ALWAYS_LONG: &str = "# always long\nentry long when close > 0\nexit long when close < 0\n";

/// Ann's actor (as the API would build it), to create a strategy from source.
async fn ann_actor(app: &TestApp) -> Actor {
    let user_id: Uuid =
        sqlx::query_scalar("select user_id from app_user where email = 'ann@example.org'")
            .fetch_one(&app.ctx.db)
            .await
            .unwrap();
    Actor::user(
        AuthUser {
            user_id,
            email: "ann@example.org".into(),
            display_name: "Trader".into(),
            role: Role::Trader,
            email_verified: true,
            time_zone: "UTC".into(),
            credential: Credential::ApiToken {
                token_id: Uuid::new_v4(),
                scope: Scope::ReadWrite,
            },
        },
        Surface::Api,
        RequestMeta::new("127.0.0.1", "tests"),
        None,
    )
}

#[tokio::test]
async fn the_position_and_its_fill_are_shown_and_stop_selling_first_flattens_at_the_next_open() {
    let app = app().await;
    let ann = trader(&app, "ann@example.org").await;
    let strategy = strategies::create(
        &ann_actor(&app).await,
        &app.ctx,
        NewStrategy {
            name: Some("Always long".into()),
            source: Some(ALWAYS_LONG.into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let instrument = live_series(&app).await;
    let run = start_run(&app, &ann, strategy, instrument).await;
    let page_path = format!("/paper/{run}");

    // The first candle's close decides the entry, the second candle's open fills it.
    arrive(&app, instrument, run, 2).await;
    let (status, page) = html(&app, &ann, &page_path).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains(r#"id="position-units""#), "{page}");
    assert!(
        text_of(&page, "unrealised").contains("at the last close"),
        "{page}"
    );
    assert_eq!(page.matches(r#"data-side="buy""#).count(), 1, "{page}");
    assert!(
        page.contains("entry long when close &gt; 0") || page.contains("close > 0"),
        "{page}"
    );
    assert!(page.contains(r#"id="stop-flatten""#), "{page}");

    // Stop, selling first: stopping until the next open sells.
    let resp = form(
        &app,
        &ann,
        &format!("/paper/{run}/stop"),
        &[("flatten", "1")],
    )
    .await;
    assert_eq!(location(&resp), format!("{page_path}?ok=paper_stopping"));
    assert_eq!(status_of(&app, run).await, "stopping");
    let (_, page) = html(&app, &ann, &page_path).await;
    assert_eq!(text_of(&page, "run-status"), "stopping");
    assert_eq!(text_of(&page, "run-gate"), "gate: flatten");
    assert!(!page.contains(r#"id="stop-flatten""#), "{page}");

    // The next close decides the sale (shown as pending), the open after it fills it.
    arrive(&app, instrument, run, 1).await;
    assert_eq!(status_of(&app, run).await, "stopping");
    let (_, page) = html(&app, &ann, &page_path).await;
    assert!(
        page.contains(r#"id="pending""#) && page.contains("sell (exit) at the next open"),
        "{page}"
    );
    arrive(&app, instrument, run, 1).await;
    assert_eq!(status_of(&app, run).await, "stopped");
    let (_, page) = html(&app, &ann, &page_path).await;
    assert!(page.contains(r#"id="flat""#), "{page}");
    assert_eq!(page.matches(r#"data-side="sell""#).count(), 1, "{page}");
    assert!(page.contains(">flatten<"), "{page}");
    assert_eq!(text_of(&page, "trade-count"), "1");
}
