//! Issue 11, item 12: strategy saves are compare-and-swap and all or nothing (a stale tab cannot
//! overwrite the draft); quotas bound the strategies and versions of one user.

use reqwest::Client;

use super::{app, create_strategy, form, scalar_i64, trader};
use crate::{
    auth::{location, page_text},
    helpers::TestApp,
};

// ---------------------------------------------------------------------------------------------------------
// Item 12: strategy saves are compare-and-swap; quotas bound strategies and versions
// ---------------------------------------------------------------------------------------------------------

async fn strategy_row(app: &TestApp, id: uuid::Uuid) -> (String, Option<String>, i32, i32) {
    sqlx::query_as(
        "select name, draft_source, draft_rev, latest_version from strategy where strategy_id = $1",
    )
    .bind(id)
    .fetch_one(&app.ctx.db)
    .await
    .unwrap()
}

async fn save(app: &TestApp, client: &Client, id: uuid::Uuid, fields: &[(&str, &str)]) -> String {
    location(&form(app, client, &format!("/strategies/{id}/save"), fields).await)
}

#[tokio::test]
async fn saves_are_all_or_nothing_and_a_stale_tab_cannot_overwrite_the_draft() {
    let app = app(Vec::new()).await;
    let ann = trader(&app, "ann@example.org").await;
    let id = create_strategy(&app, &ann, "macd", "Original").await;
    let page = page_text(&app, &ann, &format!("/strategies/{id}")).await;
    assert!(
        page.contains(r#"name="draft_rev" value="0""#),
        "the form carries the draft revision"
    );
    let good = sqlx::query_scalar::<_, String>(
        "select source from strategy_version where strategy_id = $1",
    )
    .bind(id)
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();

    // Source that does not compile, with a new name: the draft is kept, the name is not stored.
    let to = save(
        &app,
        &ann,
        id,
        &[
            ("name", "Renamed"),
            ("source", "entry long when nonsense("),
            ("base_version", "1"),
            ("draft_rev", "0"),
        ],
    )
    .await;
    assert!(to.ends_with("?error=strategy_invalid"), "{to}");
    let (name, draft, rev, latest) = strategy_row(&app, id).await;
    assert_eq!(
        (name.as_str(), draft.as_deref(), rev, latest),
        ("Original", Some("entry long when nonsense("), 1, 1)
    );

    // Another tab opened before that draft (draft_rev 0) saves bad source: refused, the draft is kept as is.
    let to = save(
        &app,
        &ann,
        id,
        &[
            ("source", "exit long when other tab("),
            ("base_version", "1"),
            ("draft_rev", "0"),
        ],
    )
    .await;
    assert!(to.ends_with("?error=strategy_draft_stale"), "{to}");
    assert_eq!(
        strategy_row(&app, id).await.1.as_deref(),
        Some("entry long when nonsense(")
    );
    // The same stale tab with a bad name: nothing stored either.
    let to = save(
        &app,
        &ann,
        id,
        &[
            ("name", ""),
            ("source", "exit long when other tab("),
            ("base_version", "1"),
            ("draft_rev", "0"),
        ],
    )
    .await;
    assert!(to.contains("?error="), "{to}");
    assert_eq!(
        strategy_row(&app, id).await,
        (
            "Original".into(),
            Some("entry long when nonsense(".into()),
            1,
            1
        )
    );

    // The tab that saw the draft saves a good change: version 2, draft cleared, name stored.
    let changed = good.replacen("param fast: int = 12", "param fast: int = 11", 1);
    assert_ne!(changed, good, "the template changed; adjust the test");
    let to = save(
        &app,
        &ann,
        id,
        &[
            ("name", "Renamed"),
            ("source", &changed),
            ("base_version", "1"),
            ("draft_rev", "1"),
        ],
    )
    .await;
    assert!(to.ends_with("?ok=strategy_saved"), "{to}");
    let (name, draft, rev, latest) = strategy_row(&app, id).await;
    assert_eq!((name.as_str(), draft, rev, latest), ("Renamed", None, 2, 2));
    // A save based on version 1 now is stale: refused, and with the current draft revision its source is
    // kept as the draft (nothing else).
    let to = save(
        &app,
        &ann,
        id,
        &[
            ("name", "Stale name"),
            ("source", &good),
            ("base_version", "1"),
            ("draft_rev", "2"),
        ],
    )
    .await;
    assert!(to.ends_with("?error=strategy_stale"), "{to}");
    let (name, _, _, latest) = strategy_row(&app, id).await;
    assert_eq!((name.as_str(), latest), ("Renamed", 2));
}

#[tokio::test]
async fn quotas_bound_the_strategies_and_versions_of_one_user() {
    let app = app(vec![
        ("STRATEGY_QUOTA", "2".into()),
        ("STRATEGY_VERSION_QUOTA", "3".into()),
    ])
    .await;
    let ann = trader(&app, "ann@example.org").await;
    let first = create_strategy(&app, &ann, "macd", "One").await;
    let _second = create_strategy(&app, &ann, "sma_cross", "Two").await;
    let to = location(
        &form(
            &app,
            &ann,
            "/strategies/create",
            &[("template", "macd"), ("name", "Three")],
        )
        .await,
    );
    assert_eq!(to, "/strategies?error=strategy_quota");
    let to = location(&form(&app, &ann, &format!("/strategies/{first}/duplicate"), &[]).await);
    assert!(to.ends_with("?error=strategy_quota"), "{to}");
    assert_eq!(scalar_i64(&app, "select count(*) from strategy").await, 2);
    let page = page_text(&app, &ann, "/strategies?error=strategy_quota").await;
    assert!(page.contains("limit of strategies or saved versions"));

    // Two versions exist; the third is allowed, the fourth is not.
    let source: String =
        sqlx::query_scalar("select source from strategy_version where strategy_id = $1")
            .bind(first)
            .fetch_one(&app.ctx.db)
            .await
            .unwrap();
    let v2 = format!("{source}\n# two\n");
    let to = save(
        &app,
        &ann,
        first,
        &[("source", &v2), ("base_version", "1"), ("draft_rev", "0")],
    )
    .await;
    assert!(to.ends_with("?ok=strategy_saved"), "{to}");
    let v3 = format!("{source}\n# three\n");
    let to = save(
        &app,
        &ann,
        first,
        &[("source", &v3), ("base_version", "2"), ("draft_rev", "0")],
    )
    .await;
    assert!(to.ends_with("?error=strategy_quota"), "{to}");
    assert_eq!(
        scalar_i64(&app, "select count(*) from strategy_version").await,
        3
    );
    // A rename alone is not a version and is still allowed.
    let to = save(
        &app,
        &ann,
        first,
        &[
            ("name", "Renamed"),
            ("base_version", "2"),
            ("draft_rev", "0"),
        ],
    )
    .await;
    assert!(to.ends_with("?ok=strategy_unchanged"), "{to}");
}
