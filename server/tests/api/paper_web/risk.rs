//! The run page's risk limits and kill switch in the browser: limits set on the start form (errors in place),
//! changed and released on the run page (errors next to the form), the run's own kill switch thrown and
//! released, all through CSRF-checked forms, and another user's run not found.

use reqwest::StatusCode;

use super::*;

async fn limits(app: &TestApp, run: Uuid) -> serde_json::Value {
    sqlx::query_scalar("select risk_limits from paper_run where paper_run_id = $1")
        .bind(run)
        .fetch_one(&app.ctx.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn risk_limits_and_the_runs_kill_switch_through_the_run_page_forms() {
    let app = app().await;
    let ann = trader(&app, "ann@example.org").await;
    let bob = trader(&app, "bob@example.org").await;
    let strategy = create_strategy(&app, &ann).await;
    let instrument = live_series(&app).await;

    // The start form offers the limits; a bad one comes back under its field.
    let (_, page) = html(&app, &ann, &format!("/paper/new?strategy={strategy}")).await;
    assert!(
        page.contains("risk-fieldset") && page.contains(r#"name="max_drawdown_pct""#),
        "{page}"
    );
    let mut fields = start_fields(strategy, instrument);
    fields.push(("max_drawdown_pct".into(), "150".into()));
    let resp = form(&app, &ann, "/paper/create", &pairs(&fields)).await;
    let back = location(&resp);
    assert!(
        back.starts_with("/paper/new?") && back.contains("max_drawdown_pct=150"),
        "{back}"
    );
    let (_, page) = html(&app, &ann, &back).await;
    assert!(page.contains(r#"data-field="max_drawdown_pct""#), "{page}");
    let mut fields = start_fields(strategy, instrument);
    fields.push(("max_drawdown_pct".into(), "15".into()));
    fields.push(("risk_mode".into(), "flatten".into()));
    let resp = form(&app, &ann, "/paper/create", &pairs(&fields)).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let run = id_in(&location(&resp), "/paper/");
    let l = limits(&app, run).await;
    assert_eq!(l["max_drawdown_pct"], 15.0);
    assert_eq!(l["mode"], "flatten");

    // The run page shows them, with the forms.
    let (status, page) = html(&app, &ann, &format!("/paper/{run}")).await;
    assert_eq!(status, StatusCode::OK);
    for id in ["risk-limits", "risk-form", "kill-form", "no-switches"] {
        assert!(page.contains(&format!(r#"id="{id}""#)), "{id}: {page}");
    }

    // Change: given fields change, empty ones stay, 0 turns off.
    let path = format!("/paper/{run}/risk");
    let resp = form(
        &app,
        &ann,
        &path,
        &[
            ("risk_mode", "halt"),
            ("max_drawdown_pct", ""),
            ("max_orders_per_day", "7"),
            ("stale_feed_secs", "0"),
        ],
    )
    .await;
    assert_eq!(
        location(&resp),
        format!("/paper/{run}?ok=paper_risk_changed")
    );
    let l = limits(&app, run).await;
    assert_eq!(l["max_drawdown_pct"], 15.0);
    assert_eq!(l["max_orders_per_day"], 7);
    assert_eq!(l["mode"], "halt");
    // A bad value: nothing changes, the message is next to the form.
    let resp = form(&app, &ann, &path, &[("daily_loss_pct", "abc")]).await;
    assert_eq!(
        location(&resp),
        format!("/paper/{run}?error=paper_form_invalid")
    );
    let (_, page) = html(
        &app,
        &ann,
        &format!("/paper/{run}?error=paper_form_invalid"),
    )
    .await;
    assert!(
        text_of(&page, "risk-error").contains("is not a number"),
        "{page}"
    );
    // Nothing to release: says so.
    let resp = form(&app, &ann, &format!("{path}/release"), &[("reason", "")]).await;
    assert_eq!(location(&resp), format!("/paper/{run}?error=paper_not_now"));
    // Another user's run does not exist for them.
    let resp = form(&app, &bob, &path, &[("max_orders_per_day", "1")]).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let resp = form(
        &app,
        &bob,
        &format!("/paper/{run}/kill"),
        &[("mode", "halt"), ("reason", "x")],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(limits(&app, run).await["max_orders_per_day"], 7);

    // The run's kill switch: a reason is required; thrown, shown, released.
    let kill = format!("/paper/{run}/kill");
    let resp = form(
        &app,
        &ann,
        &kill,
        &[("mode", "reduce_only"), ("reason", " ")],
    )
    .await;
    assert_eq!(
        location(&resp),
        format!("/paper/{run}?error=paper_form_invalid")
    );
    let (_, page) = html(&app, &ann, &format!("/paper/{run}")).await;
    assert!(page.contains(r#"id="kill-error""#), "{page}");
    let resp = form(
        &app,
        &ann,
        &kill,
        &[("mode", "reduce_only"), ("reason", "news at 14:00")],
    )
    .await;
    assert_eq!(
        location(&resp),
        format!("/paper/{run}?ok=paper_switch_thrown")
    );
    let (_, page) = html(&app, &ann, &format!("/paper/{run}")).await;
    assert!(
        page.contains("news at 14:00") && page.contains(r#"id="effective-gate""#),
        "{page}"
    );
    let switch: Uuid = sqlx::query_scalar(
        "select switch_id from kill_switch where paper_run_id = $1 and released_at is null",
    )
    .bind(run)
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    let resp = form(
        &app,
        &bob,
        &format!("{kill}/{switch}/release"),
        &[("reason", "")],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let resp = form(
        &app,
        &ann,
        &format!("{kill}/{switch}/release"),
        &[("reason", "")],
    )
    .await;
    assert_eq!(
        location(&resp),
        format!("/paper/{run}?ok=paper_switch_released")
    );
    let (_, page) = html(&app, &ann, &format!("/paper/{run}")).await;
    assert!(page.contains(r#"id="no-switches""#), "{page}");

    // A lock shows on the page with its release button; releasing it through the form.
    sqlx::query(
        "insert into paper_risk_lock (lock_id, paper_run_id, limit_kind, mode, reason, value, threshold, candle_time,
             applies_from, locked_at)
         values ($1, $2, 'max_drawdown', 'halt', 'drawdown 16 % from the peak', 16, 15, now(), now(), now())",
    )
    .bind(Uuid::new_v4())
    .bind(run)
    .execute(&app.ctx.db)
    .await
    .unwrap();
    let (_, page) = html(&app, &ann, &format!("/paper/{run}")).await;
    assert!(
        page.contains(r#"data-limit="max_drawdown""#) && page.contains("release-risk"),
        "{page}"
    );
    let resp = form(
        &app,
        &ann,
        &format!("{path}/release"),
        &[("reason", "looked at it")],
    )
    .await;
    assert_eq!(
        location(&resp),
        format!("/paper/{run}?ok=paper_risk_released")
    );
    let (_, page) = html(&app, &ann, &format!("/paper/{run}")).await;
    assert!(
        page.contains(r#"data-active="false""#) && !page.contains("release-risk"),
        "{page}"
    );
}
