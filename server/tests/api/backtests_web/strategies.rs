//! Strategies through the forms, and the editor's live validation.

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

use super::{
    app, count, create_strategy, form, id_in, import_eth_btc, run_fields, start_run, submit_run,
    trader, with,
};
use crate::{
    auth::{browser, csrf, location, page_text},
    helpers::TestApp,
};

/// Posts a form and returns where it redirects to.
async fn redirect(app: &TestApp, client: &Client, action: &str, fields: &[(&str, &str)]) -> String {
    location(&form(app, client, action, fields).await)
}

// ---------------------------------------------------------------------------------------------------------
// 1. Strategies through the forms
// ---------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_strategy_is_created_from_a_template_saved_as_versions_kept_as_a_draft_duplicated_archived_and_restored()
 {
    let app = app(false, vec![]).await;
    let ann = trader(&app, "ann@example.org").await;
    let id = create_strategy(&app, &ann, "macd").await;

    // The page shows the source and the parameter table.
    let page = page_text(&app, &ann, &format!("/strategies/{id}?ok=strategy_created")).await;
    assert!(
        page.contains("macd(close, fast, slow, signal).macd"),
        "source missing: {page}"
    );
    assert!(page.contains(r#"id="params""#), "parameter table missing");
    for p in [
        "<code>fast</code>",
        "<code>slow</code>",
        "<code>signal</code>",
    ] {
        assert!(page.contains(p), "{p} missing from the parameter table");
    }
    assert!(page.contains("Strategy created."), "flash message");

    // Bad create requests come back to the list with the reason.
    let resp = form(&app, &ann, "/strategies/create", &[("template", "nope")]).await;
    assert_eq!(location(&resp), "/strategies?error=strategy_template");
    let long = "x".repeat(81);
    assert_eq!(
        redirect(
            &app,
            &ann,
            "/strategies/create",
            &[("template", "macd"), ("name", &long)]
        )
        .await,
        "/strategies?error=strategy_name"
    );
    assert_eq!(count(&app, "select count(*) from strategy").await, 1);

    let v1: String = sqlx::query_scalar(
        "select source from strategy_version where strategy_id = $1 and version = 1",
    )
    .bind(id)
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    let action = format!("/strategies/{id}/save");

    // A changed source is a new version; version 1 stays as it was.
    let v2 = v1.replace("param fast: int = 12", "param fast: int = 10");
    assert_ne!(v1, v2);
    assert_eq!(
        redirect(
            &app,
            &ann,
            &action,
            &[
                ("name", "My MACD"),
                ("description", "tuned"),
                ("source", &v2.replace('\n', "\r\n")),
                ("base_version", "1"),
            ]
        )
        .await,
        format!("/strategies/{id}?ok=strategy_saved")
    );
    let versions: Vec<(i32, String)> = sqlx::query_as(
        "select version, source from strategy_version where strategy_id = $1 order by version",
    )
    .bind(id)
    .fetch_all(&app.ctx.db)
    .await
    .unwrap();
    assert_eq!(versions, vec![(1, v1.clone()), (2, v2.clone())]);
    let (name, latest): (String, i32) =
        sqlx::query_as("select name, latest_version from strategy where strategy_id = $1")
            .bind(id)
            .fetch_one(&app.ctx.db)
            .await
            .unwrap();
    assert_eq!((name.as_str(), latest), ("My MACD", 2));

    // Saving the same source again makes no version.
    assert_eq!(
        redirect(
            &app,
            &ann,
            &action,
            &[("source", &v2), ("base_version", "2")]
        )
        .await,
        format!("/strategies/{id}?ok=strategy_unchanged")
    );

    // A stale base version is refused.
    assert_eq!(
        redirect(
            &app,
            &ann,
            &action,
            &[("source", &v1), ("base_version", "1")]
        )
        .await,
        format!("/strategies/{id}?error=strategy_stale")
    );
    // …and the refused edit is not lost: it is the draft now (v1's text differs from the newest, v2).
    let page = page_text(
        &app,
        &ann,
        &format!("/strategies/{id}?error=strategy_stale"),
    )
    .await;
    assert!(
        page.contains("Your edit was not saved as a version"),
        "stale message"
    );
    assert!(
        page.contains(r#"id="draft-notice""#),
        "the refused edit is kept as the draft"
    );
    let draft: Option<String> =
        sqlx::query_scalar("select draft_source from strategy where strategy_id = $1")
            .bind(id)
            .fetch_one(&app.ctx.db)
            .await
            .unwrap();
    assert_eq!(draft.as_deref(), Some(v1.as_str()));

    // Source that does not compile is kept as the draft, never a version; the page shows it and the problem
    // with its line number.
    let broken = v2.replace(
        "crosses_above(line, signal_line)",
        "crosses_above(line, signl_line)",
    );
    let broken_line = broken
        .lines()
        .position(|l| l.contains("signl_line"))
        .unwrap()
        + 1;
    assert_eq!(
        redirect(
            &app,
            &ann,
            &action,
            &[("source", &broken), ("base_version", "2")]
        )
        .await,
        format!("/strategies/{id}?error=strategy_invalid")
    );
    assert_eq!(
        count(&app, "select count(*) from strategy_version").await,
        2,
        "an invalid source became a version"
    );
    let draft: Option<String> =
        sqlx::query_scalar("select draft_source from strategy where strategy_id = $1")
            .bind(id)
            .fetch_one(&app.ctx.db)
            .await
            .unwrap();
    assert_eq!(draft.as_deref(), Some(broken.as_str()));
    let page = page_text(
        &app,
        &ann,
        &format!("/strategies/{id}?error=strategy_invalid"),
    )
    .await;
    assert!(
        page.contains(r#"id="draft-notice""#),
        "draft notice missing"
    );
    assert!(
        page.contains("crosses_above(line, signl_line)"),
        "the editor does not show the draft"
    );
    assert!(page.contains(r#"id="problems""#), "problem list missing");
    assert!(
        page.contains(&format!("line {broken_line}, column")) && page.contains("signl_line"),
        "the problem with its line is not shown: {}",
        &page[page.find(r#"id="problems""#).unwrap()..][..400]
    );
    assert!(page.contains("does not compile"), "flash message");
    // The list marks it.
    let list = page_text(&app, &ann, "/strategies").await;
    assert!(list.contains("unsaved draft"));

    // Discarding the draft brings the newest version back into the editor.
    let resp = form(&app, &ann, &format!("/strategies/{id}/discard-draft"), &[]).await;
    assert_eq!(
        location(&resp),
        format!("/strategies/{id}?ok=draft_discarded")
    );
    let page = page_text(&app, &ann, &format!("/strategies/{id}")).await;
    assert!(!page.contains(r#"id="draft-notice""#));
    assert!(page.contains("param fast: int = 10"));
    assert!(!page.contains("signl_line"));

    // Duplicating copies the newest version into a new strategy.
    let resp = form(&app, &ann, &format!("/strategies/{id}/duplicate"), &[]).await;
    let loc = location(&resp);
    assert!(loc.ends_with("?ok=strategy_duplicated"), "{loc}");
    let copy = id_in(&loc, "/strategies/");
    assert_ne!(copy, id);
    let (copy_name, copy_source): (String, String) = sqlx::query_as(
        "select s.name, v.source from strategy s join strategy_version v using (strategy_id)
         where s.strategy_id = $1 and v.version = 1",
    )
    .bind(copy)
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    assert_eq!(copy_name, "My MACD (copy)");
    assert_eq!(copy_source, v2);

    // Archiving hides it from the list and refuses runs with a clear message.
    let instrument = import_eth_btc(&app).await;
    let resp = form(&app, &ann, &format!("/strategies/{id}/archive"), &[]).await;
    assert_eq!(location(&resp), "/strategies?ok=strategy_archived");
    let list = page_text(&app, &ann, "/strategies").await;
    assert!(
        !list.contains(&format!("/strategies/{id}\"")),
        "archived strategy listed"
    );
    assert!(list.contains(&format!("/strategies/{copy}\"")));
    let all = page_text(&app, &ann, "/strategies?archived=1").await;
    assert!(all.contains(&format!("/strategies/{id}\"")));
    let fields = with(&run_fields(id, instrument), "version", "2");
    let resp = submit_run(&app, &ann, &fields).await;
    let loc = location(&resp);
    assert!(
        loc.starts_with("/backtests/new?") && loc.contains("failed=1"),
        "{loc}"
    );
    let page = page_text(&app, &ann, &loc).await;
    assert!(
        page.contains("this strategy is archived; restore it to run it"),
        "no clear message for an archived strategy"
    );
    assert_eq!(count(&app, "select count(*) from backtest_run").await, 0);
    // Editing an archived strategy is refused too, saying why.
    let resp = form(
        &app,
        &ann,
        &action,
        &[("source", &v1), ("base_version", "2")],
    )
    .await;
    let loc = location(&resp);
    assert_eq!(loc, format!("/strategies/{id}?error=strategy_is_archived"));
    let page = page_text(&app, &ann, &loc).await;
    assert!(page.contains("This strategy is archived, so it cannot be edited"));
    assert!(
        !page.contains(r#"id="save-strategy""#),
        "archived strategy offers saving"
    );
    assert_eq!(
        count(
            &app,
            &format!("select count(*) from strategy_version where strategy_id = '{id}'")
        )
        .await,
        2
    );

    // Restoring brings it back and it runs again.
    let resp = form(&app, &ann, &format!("/strategies/{id}/restore"), &[]).await;
    assert_eq!(location(&resp), "/strategies?ok=strategy_restored");
    let list = page_text(&app, &ann, "/strategies").await;
    assert!(list.contains(&format!("/strategies/{id}\"")));
    start_run(&app, &ann, &fields).await;

    let events: Vec<String> = sqlx::query_scalar(
        "select event from audit_event where event like 'strategy_%' or event like 'backtest_%' order by created_at, event",
    )
    .fetch_all(&app.ctx.db)
    .await
    .unwrap();
    for e in [
        "strategy_created",
        "strategy_saved",
        "strategy_archived",
        "strategy_restored",
        "backtest_started",
    ] {
        assert!(events.iter().any(|x| x == e), "{e} not audited: {events:?}");
    }
}

// ---------------------------------------------------------------------------------------------------------
// 2. Live validation
// ---------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn the_editor_validation_answers_params_or_positioned_diagnostics_and_needs_csrf_and_a_session()
 {
    let app = app(false, vec![]).await;
    let ann = trader(&app, "ann@example.org").await;
    let token = csrf(&app, &ann, "/strategies").await;
    let macd = engine::catalogue::template("macd").unwrap().source;
    let validate = |client: &Client, token: Option<&str>, source: &str| {
        let mut req = client
            .post(app.url("/strategies/validate"))
            .json(&json!({ "source": source }));
        if let Some(t) = token {
            req = req.header("x-csrf-token", t);
        }
        req.send()
    };

    let resp = validate(&ann, Some(&token), macd).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["ok"], true, "{body}");
    let names: Vec<&str> = body["params"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["fast", "slow", "signal"]);
    assert_eq!(body["diagnostics"], json!([]));

    let typo = macd.replace(
        "macd(close, fast, slow, signal).signal",
        "macd(close, fast, slwo, signal).signal",
    );
    let line = typo.lines().position(|l| l.contains("slwo")).unwrap() + 1;
    let column = typo.lines().nth(line - 1).unwrap().find("slwo").unwrap() + 1;
    let resp = validate(&ann, Some(&token), &typo).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["ok"], false, "{body}");
    let d = &body["diagnostics"][0];
    assert_eq!(d["line"], line, "{body}");
    assert_eq!(d["column"], column, "{body}");
    assert!(d["message"].as_str().unwrap().contains("slwo"), "{body}");
    assert!(d["len"].as_u64().unwrap() > 0, "{body}");

    // Without the CSRF header: refused before anything runs.
    let resp = validate(&ann, None, macd).await.unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let resp = validate(&ann, Some("not-the-token"), macd).await.unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);

    // Anonymous (with a valid CSRF pair, so only the missing session is the problem): 401 JSON.
    let anon = browser();
    let anon_token = csrf(&app, &anon, "/signin").await;
    let resp = validate(&anon, Some(&anon_token), macd).await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["code"], "unauthorized", "{body}");
}
