//! The strategy catalogue (docs/admin.md#strategy-catalogue) against the real server and Postgres: the built-in
//! templates are seeded; an admin creates, versions, publishes, hides and features entries through the REST
//! API and the console's forms (each audited); traders see and create from published entries only, and a
//! strategy keeps the version it was created from.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::{app, person, rest};
use crate::auth::{csrf, location, page_text};

const DONCHIAN_V1: &str = "# Channel breakout\nparam n: int = 20 in 2..200\nlet top = highest(high, n)\nlet bottom = lowest(low, n)\nentry long when crosses_above(close, top[1])\nexit long when crosses_below(close, bottom[1])\n";
const DONCHIAN_V2: &str = "# Channel breakout, faster exit\nparam n: int = 20 in 2..200\nparam m: int = 10 in 2..200\nlet top = highest(high, n)\nlet bottom = lowest(low, m)\nentry long when crosses_above(close, top[1])\nexit long when crosses_below(close, bottom[1])\n";

fn slugs(templates: &Value) -> Vec<String> {
    templates["templates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect()
}

async fn audits(app: &crate::helpers::TestApp, event: &str) -> i64 {
    sqlx::query_scalar("select count(*) from audit_event where event = $1")
        .bind(event)
        .fetch_one(&app.ctx.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn admins_author_the_catalogue_and_traders_create_from_published_entries_only() {
    let app = app().await;
    let root = person(&app, "root@example.org", "admin").await;
    let ann = person(&app, "ann@example.org", "trader").await;

    // The seven built-in templates are the seeded catalogue, published, version 1.
    let (status, t) = rest(
        &app,
        Method::GET,
        "/api/v1/templates",
        Some(&ann.token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{t}");
    let builtin = slugs(&t);
    assert_eq!(builtin.len(), engine::catalogue::templates().len(), "{t}");
    for b in engine::catalogue::templates() {
        let entry = t["templates"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == b.name)
            .unwrap_or_else(|| panic!("{} seeded", b.name));
        assert_eq!(entry["source"], b.source);
        assert_eq!(entry["version"], 1);
    }
    // Seeding again adds nothing.
    assert_eq!(
        backend::backtest::catalogue::seed(&app.ctx.db)
            .await
            .unwrap(),
        0
    );

    // A source that does not compile is refused with its diagnostics; nothing is stored.
    let (status, body) = rest(
        &app,
        Method::POST,
        "/api/v1/admin/catalogue",
        Some(&root.token),
        Some(json!({"slug": "donchian", "name": "Donchian breakout", "source": "entry long when nonsense(close)"})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(audits(&app, "catalogue_created").await, 0);

    // Created hidden: traders neither see it nor create from it.
    let (status, created) = rest(
        &app,
        Method::POST,
        "/api/v1/admin/catalogue",
        Some(&root.token),
        Some(json!({"slug": "donchian", "name": "Donchian breakout", "description": "Breakouts of the n-bar channel.", "source": DONCHIAN_V1, "note": "first"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["published"], false);
    assert_eq!(created["version"], 1);
    assert_eq!(created["params"].as_array().unwrap().len(), 1);
    assert_eq!(audits(&app, "catalogue_created").await, 1);
    let (_, t) = rest(
        &app,
        Method::GET,
        "/api/v1/templates",
        Some(&ann.token),
        None,
    )
    .await;
    assert!(!slugs(&t).contains(&"donchian".to_owned()));
    let (status, body) = rest(
        &app,
        Method::POST,
        "/api/v1/strategies",
        Some(&ann.token),
        Some(json!({"template": "donchian"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["field"], "template", "{body}");
    let detail = body["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("unknown template `donchian`") && detail.contains("macd"),
        "names the published ones: {body}"
    );

    // The same slug again is refused, naming the field.
    let (status, body) = rest(
        &app,
        Method::POST,
        "/api/v1/admin/catalogue",
        Some(&root.token),
        Some(json!({"slug": "donchian", "name": "Again", "source": DONCHIAN_V1})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["field"], "slug", "{body}");

    // Published and featured: listed first; a trader's strategy copies version 1.
    let (status, body) = rest(
        &app,
        Method::PATCH,
        &format!("/api/v1/admin/catalogue/{id}"),
        Some(&root.token),
        Some(json!({"published": true, "featured": true})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["version"], 1, "flags alone add no version");
    let (_, t) = rest(
        &app,
        Method::GET,
        "/api/v1/templates",
        Some(&ann.token),
        None,
    )
    .await;
    assert_eq!(slugs(&t)[0], "donchian", "featured first: {t}");
    assert_eq!(t["templates"][0]["title"], "Donchian breakout");
    let (status, s1) = rest(
        &app,
        Method::POST,
        "/api/v1/strategies",
        Some(&ann.token),
        Some(json!({"template": "donchian"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{s1}");
    assert_eq!(s1["name"], "Donchian breakout");
    assert_eq!(s1["template"], "donchian");
    assert_eq!(s1["latest"]["source"], DONCHIAN_V1);

    // A new source is version 2; the trader's strategy keeps its copy, a new one gets version 2.
    let (status, body) = rest(
        &app,
        Method::PATCH,
        &format!("/api/v1/admin/catalogue/{id}"),
        Some(&root.token),
        Some(json!({"source": DONCHIAN_V2, "note": "separate exit channel"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["version"], 2);
    assert_eq!(body["params"].as_array().unwrap().len(), 2);
    let (_, again) = rest(
        &app,
        Method::GET,
        &format!("/api/v1/strategies/{}", s1["id"].as_str().unwrap()),
        Some(&ann.token),
        None,
    )
    .await;
    assert_eq!(again["latest"]["source"], DONCHIAN_V1);
    let (_, s2) = rest(
        &app,
        Method::POST,
        "/api/v1/strategies",
        Some(&ann.token),
        Some(json!({"template": "donchian", "name": "Mine"})),
    )
    .await;
    assert_eq!(s2["latest"]["source"], DONCHIAN_V2);
    let versions: Vec<(String, Option<i32>)> = sqlx::query_as(
        "select name, template_version from strategy where template = 'donchian' order by created_at",
    )
    .fetch_all(&app.ctx.db)
    .await
    .unwrap();
    assert_eq!(
        versions,
        vec![
            ("Donchian breakout".to_owned(), Some(1)),
            ("Mine".to_owned(), Some(2))
        ]
    );

    // A source that does not compile changes nothing; the slug cannot change.
    let (status, _) = rest(
        &app,
        Method::PATCH,
        &format!("/api/v1/admin/catalogue/{id}"),
        Some(&root.token),
        Some(json!({"source": "exit long when", "published": false})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, detail) = rest(
        &app,
        Method::GET,
        &format!("/api/v1/admin/catalogue/{id}"),
        Some(&root.token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{detail}");
    assert_eq!(detail["entry"]["version"], 2);
    assert_eq!(detail["entry"]["published"], true);
    assert_eq!(detail["strategies"], 2);
    let notes: Vec<&str> = detail["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["note"].as_str().unwrap())
        .collect();
    assert_eq!(notes, vec!["separate exit channel", "first"]);
    assert_eq!(detail["versions"][0]["created_by"], "root@example.org");
    let (status, body) = rest(
        &app,
        Method::PATCH,
        &format!("/api/v1/admin/catalogue/{id}"),
        Some(&root.token),
        Some(json!({"slug": "renamed"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "unknown field: {body}");
    // A note without a new source says why it is refused; a save of the entry as it is stores nothing.
    let (status, body) = rest(
        &app,
        Method::PATCH,
        &format!("/api/v1/admin/catalogue/{id}"),
        Some(&root.token),
        Some(json!({"source": DONCHIAN_V2, "note": "again"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["field"], "note", "{body}");
    let (status, _) = rest(
        &app,
        Method::PATCH,
        &format!("/api/v1/admin/catalogue/{id}"),
        Some(&root.token),
        Some(json!({"source": DONCHIAN_V2, "name": "Donchian breakout", "published": true})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    // Hiding a built-in takes it out of traders' catalogue; the admin list still has it.
    let macd = sqlx::query_scalar::<_, uuid::Uuid>(
        "select catalogue_id from catalogue_strategy where slug = 'macd'",
    )
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    let (status, _) = rest(
        &app,
        Method::PATCH,
        &format!("/api/v1/admin/catalogue/{macd}"),
        Some(&root.token),
        Some(json!({"published": false})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (_, t) = rest(
        &app,
        Method::GET,
        "/api/v1/templates",
        Some(&ann.token),
        None,
    )
    .await;
    assert!(!slugs(&t).contains(&"macd".to_owned()));
    let (status, _) = rest(
        &app,
        Method::POST,
        "/api/v1/strategies",
        Some(&ann.token),
        Some(json!({"template": "macd"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (_, all) = rest(
        &app,
        Method::GET,
        "/api/v1/admin/catalogue",
        Some(&root.token),
        None,
    )
    .await;
    let entries = all["entries"].as_array().unwrap();
    assert_eq!(entries.len(), engine::catalogue::templates().len() + 1);
    let hidden = entries.iter().find(|e| e["slug"] == "macd").unwrap();
    assert_eq!(hidden["published"], false);
    assert_eq!(hidden["builtin"], true);
    // Seeding does not bring a hidden built-in back.
    backend::backtest::catalogue::seed(&app.ctx.db)
        .await
        .unwrap();
    let (_, t) = rest(
        &app,
        Method::GET,
        "/api/v1/templates",
        Some(&ann.token),
        None,
    )
    .await;
    assert!(!slugs(&t).contains(&"macd".to_owned()));

    // Every change is in the audit trail, stamped with the admin.
    let updated: i64 = sqlx::query_scalar(
        "select count(*) from audit_event where event = 'catalogue_updated' and user_id = $1",
    )
    .bind(root.id)
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    assert_eq!(updated, 3, "publish, new version, hide macd");
}

#[tokio::test]
async fn the_console_creates_publishes_and_versions_an_entry_that_a_trader_then_uses() {
    let app = app().await;
    let root = person(&app, "root@example.org", "admin").await;
    let ann = person(&app, "ann@example.org", "trader").await;

    let page = page_text(&app, &root.browser, "/admin/catalogue").await;
    assert!(page.contains("data-slug=\"sma_cross\""), "{page}");

    let post = |path: String, fields: Vec<(&'static str, String)>| {
        let browser = root.browser.clone();
        let app = &app;
        async move {
            let token = csrf(app, &browser, "/admin/catalogue").await;
            let mut form = fields;
            form.push(("csrf", token));
            browser
                .post(app.url(&path))
                .form(&form)
                .send()
                .await
                .unwrap()
        }
    };
    // A source that does not compile goes back to the form naming the problem; nothing is created.
    let resp = post(
        "/admin/catalogue".into(),
        vec![
            ("slug", "breakout".into()),
            ("name", "Breakout".into()),
            ("source", "entry long when nonsense(close)".into()),
        ],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let back = page_text(&app, &root.browser, &location(&resp)).await;
    assert!(
        back.contains("data-field=\"source\"") && back.contains("does not compile"),
        "{back}"
    );
    assert_eq!(audits(&app, "catalogue_created").await, 0);

    // Created and published from the form (browsers send CRLF line breaks; they are stored as LF).
    let resp = post(
        "/admin/catalogue".into(),
        vec![
            ("slug", "breakout".into()),
            ("name", "Breakout".into()),
            ("description", "Channel breakout.".into()),
            ("source", DONCHIAN_V1.replace('\n', "\r\n")),
            ("published", "true".into()),
        ],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let to = location(&resp);
    assert!(to.starts_with("/admin/catalogue/"), "{to}");
    let id = to
        .trim_start_matches("/admin/catalogue/")
        .split('?')
        .next()
        .unwrap()
        .to_owned();
    let detail = page_text(&app, &root.browser, &to).await;
    assert!(
        detail.contains("The catalogue strategy was saved."),
        "{detail}"
    );
    let stored: String = sqlx::query_scalar(
        "select v.source from catalogue_strategy_version v join catalogue_strategy c using (catalogue_id) where c.slug = 'breakout'",
    )
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    assert_eq!(stored, DONCHIAN_V1);

    // The trader's strategies page offers it; the form creates a strategy with its source.
    let strategies = page_text(&app, &ann.browser, "/strategies").await;
    assert!(strategies.contains("value=\"breakout\""), "{strategies}");
    let token = csrf(&app, &ann.browser, "/strategies").await;
    let resp = ann
        .browser
        .post(app.url("/strategies/create"))
        .form(&[("template", "breakout"), ("csrf", &token)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert!(
        location(&resp).contains("ok=strategy_created"),
        "{}",
        location(&resp)
    );

    // Unpublished through the edit form (an unticked box): gone from the trader's page.
    let resp = post(
        format!("/admin/catalogue/{id}"),
        vec![
            ("name", "Breakout".into()),
            ("description", "Channel breakout.".into()),
            ("source", DONCHIAN_V2.into()),
            ("note", "faster exit".into()),
        ],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let detail = page_text(&app, &root.browser, &location(&resp)).await;
    assert!(detail.contains("faster exit"), "{detail}");
    let (version, published): (i32, bool) = sqlx::query_as(
        "select latest_version, published from catalogue_strategy where slug = 'breakout'",
    )
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    assert_eq!((version, published), (2, false));
    let strategies = page_text(&app, &ann.browser, "/strategies").await;
    assert!(!strategies.contains("value=\"breakout\""));
}
