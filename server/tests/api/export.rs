//! "Download my data": the signed-in user's own data only, as one JSON file, without secrets.

use backend::{
    Actor, Surface,
    auth::{AuthUser, Credential, RequestMeta, Role, Scope},
};
use reqwest::StatusCode;
use uuid::Uuid;

use crate::{
    auth::{browser, location},
    helpers::{Options, TestApp, spawn_app_with},
    paper::{SMA, new_run, series, shifted, start, strategy},
    plans::{Person, person},
};

fn actor(p: &Person) -> Actor {
    Actor::user(
        AuthUser {
            user_id: p.id,
            email: p.email.clone(),
            display_name: "Person".into(),
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

/// A strategy and an active paper run of `p`'s: their ids.
async fn data_of(app: &TestApp, p: &Person, instrument: i32) -> (Uuid, Uuid) {
    let a = actor(p);
    let s = strategy(app, &a, SMA).await;
    let run = start(app, &a, &new_run(s, instrument)).await;
    (s, run)
}

#[tokio::test]
async fn export_holds_only_the_users_own_data_and_no_secrets() {
    let app = spawn_app_with(Options {
        workers: false,
        env: vec![
            ("MARKET_DATA_URL", "http://127.0.0.1:9".into()),
            ("PAPER_WARMUP_BARS", "100".into()),
            ("PAPER_TICK_SECS", "3600".into()),
        ],
    })
    .await;
    let ann = person(&app, "ann@example.org", "trader").await;
    let bob = person(&app, "bob@example.org", "trader").await;
    let (history, _) = shifted("ETH-BTC-5m.csv", 1000);
    let inst = series(&app, &history).await;
    let (ann_strategy, ann_run) = data_of(&app, &ann, inst).await;
    let (bob_strategy, bob_run) = data_of(&app, &bob, inst).await;

    let resp = ann
        .browser
        .get(app.url("/account/export.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let disposition = resp.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        disposition.starts_with("attachment; filename=\"vortex-export-"),
        "{disposition}"
    );
    let text = resp.text().await.unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(doc["format"], "vortex-export/1");
    assert_eq!(doc["profile"]["email"], "ann@example.org");
    assert_eq!(doc["profile"]["user_id"], ann.id.to_string());
    let strategies = doc["strategies"].as_array().unwrap();
    assert_eq!(strategies.len(), 1, "{doc}");
    assert_eq!(strategies[0]["strategy_id"], ann_strategy.to_string());
    assert!(
        strategies[0]["versions"][0]["source"]
            .as_str()
            .unwrap()
            .contains("sma(close, 3)")
    );
    let runs = doc["paper_runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1, "{doc}");
    assert_eq!(runs[0]["run_id"], ann_run.to_string());
    assert!(doc["backtests"].as_array().unwrap().is_empty());
    assert!(doc["notifications"]["rules"].is_array());
    // Nothing of the other user's, and no secrets.
    for other in [
        bob.id.to_string(),
        bob.email.clone(),
        bob_strategy.to_string(),
        bob_run.to_string(),
    ] {
        assert!(!text.contains(&other), "{other} leaked");
    }
    for secret in ["$argon2", "password", "vxt_", "secret"] {
        assert!(!text.contains(secret), "{secret} in the export");
    }
    let audited: i64 = sqlx::query_scalar(
        "select count(*) from audit_event where event = 'data_exported' and user_id = $1",
    )
    .bind(ann.id)
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    assert_eq!(audited, 1);

    // Only for a signed-in browser.
    let resp = browser()
        .get(app.url("/account/export.json"))
        .send()
        .await
        .unwrap();
    assert!(location(&resp).starts_with("/signin"), "{resp:?}");
}

#[tokio::test]
async fn export_is_one_per_two_minutes_on_every_surface() {
    let app = spawn_app_with(Options {
        workers: false,
        env: vec![],
    })
    .await;
    let cat = person(&app, "cat@example.org", "trader").await;
    let first = cat
        .browser
        .get(app.url("/account/export.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    // Again at once: refused, on the account page and through the REST API alike.
    let again = cat
        .browser
        .get(app.url("/account/export.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::TOO_MANY_REQUESTS, "{again:?}");
    assert!(again.headers().contains_key("retry-after"));
    let api = reqwest::Client::new()
        .get(app.url("/api/v1/me/export"))
        .bearer_auth(&cat.token)
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), StatusCode::TOO_MANY_REQUESTS, "{api:?}");
    let audited: i64 = sqlx::query_scalar(
        "select count(*) from audit_event where event = 'data_exported' and user_id = $1",
    )
    .bind(cat.id)
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    assert_eq!(audited, 1);
}

#[tokio::test]
async fn too_big_an_export_is_refused_naming_the_limit() {
    let app = spawn_app_with(Options {
        workers: false,
        env: vec![],
    })
    .await;
    let dan = person(&app, "dan@example.org", "trader").await;
    let strategy = Uuid::new_v4();
    sqlx::query("insert into strategy (strategy_id, user_id, name) values ($1, $2, 'big')")
        .bind(strategy)
        .bind(dan.id)
        .execute(&app.ctx.db)
        .await
        .unwrap();
    sqlx::query(
        "insert into strategy_version (strategy_version_id, strategy_id, version, source, source_hash)
         select gen_random_uuid(), $1, n, 'x', 'h' from generate_series(1, $2) n",
    )
    .bind(strategy)
    .bind(backend::account::export::MAX_ROWS)
    .execute(&app.ctx.db)
    .await
    .unwrap();
    let resp = reqwest::Client::new()
        .get(app.url("/api/v1/me/export"))
        .bearer_auth(&dan.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CONFLICT);
    let body = resp.text().await.unwrap();
    assert!(
        body.contains(&format!(
            "the limit is {} rows",
            backend::account::export::MAX_ROWS
        )),
        "{body}"
    );
    assert!(body.contains("Delete strategy versions"), "{body}");
}
