//! The cache of the anonymous public pages (`server::page_cache`): each response has its own CSP nonce and
//! CSRF token and the CSRF cookie as before; only anonymous visitors without a query string get the cached
//! page; a banner change shows at once.

use reqwest::{Client, StatusCode};

use crate::{
    auth::{PASSWORD, browser, location, post_form, sign_in},
    helpers::{Options, TestApp, spawn_app_with},
};

/// `(html, nonce of the CSP header, csrf token of the meta tag, csrf cookie value if one was set)`.
async fn fetch(
    app: &TestApp,
    client: &Client,
    path: &str,
) -> (String, String, String, Option<String>) {
    let resp = client.get(app.url(path)).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "{path}");
    let csp = resp.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .and_then(|s| s.split('\'').next())
        .expect("nonce in CSP")
        .to_owned();
    let cookie = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("vortex_csrf="))
        .map(|v| v.split(';').next().unwrap().to_owned());
    let html = resp.text().await.unwrap();
    const META: &str = r#"name="csrf-token" content=""#;
    let start = html.find(META).expect("csrf meta tag") + META.len();
    let token = html[start..].split('"').next().unwrap().to_owned();
    (html, nonce, token, cookie)
}

async fn hits(app: &TestApp) -> f64 {
    let text = app.get("/metrics").await.text().await.unwrap();
    text.lines()
        .filter(|l| l.starts_with("page_cache_total{") && l.contains("result=\"hit\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn every_cached_page_has_its_own_nonce_token_and_cookie() {
    let app = spawn_app_with(Options::default()).await;
    let keys = &app.ctx.keys;
    for path in ["/", "/signin", "/forgot-password"] {
        let before = hits(&app).await;
        let mut seen = Vec::new();
        for _ in 0..3 {
            // A new visitor each time: no cookie, so a fresh CSRF cookie is set.
            let (html, nonce, token, cookie) = fetch(&app, &app.client, path).await;
            let cookie = cookie.expect("a new visitor gets a CSRF cookie");
            assert_eq!(
                token,
                backend::auth::csrf::token_for(keys, &cookie),
                "{path}"
            );
            let scripts = html.matches("<script").count();
            assert!(scripts > 0, "{path}");
            // Every inline script (and preload link) carries this response's nonce, and no other nonce shows.
            let with_nonce = html.matches(&format!(r#"nonce="{nonce}""#)).count();
            assert!(with_nonce >= scripts, "{path}: {with_nonce} of {scripts}");
            assert_eq!(html.matches("nonce=\"").count(), with_nonce, "{path}");
            seen.push((html, nonce, token));
        }
        assert!(
            hits(&app).await >= before + 2.0,
            "{path} is served from the cache"
        );
        let normal = |(html, nonce, token): &(String, String, String)| {
            html.replace(nonce.as_str(), "NONCE")
                .replace(token.as_str(), "TOKEN")
        };
        assert_eq!(normal(&seen[0]), normal(&seen[1]), "{path}");
        assert_eq!(normal(&seen[0]), normal(&seen[2]), "{path}");
        assert_ne!(seen[0].1, seen[1].1, "{path}: a nonce per response");
        assert_ne!(seen[0].2, seen[1].2, "{path}: a token per visitor");
    }
    // A returning visitor keeps their cookie and gets the token that belongs to it, which a form accepts.
    let client = browser();
    let (_, _, first, cookie) = fetch(&app, &client, "/signin").await;
    assert!(cookie.is_some());
    let (_, _, again, cookie) = fetch(&app, &client, "/signin").await;
    assert_eq!((first.as_str(), cookie), (again.as_str(), None));
    let resp = client
        .post(app.url("/auth/signin"))
        .form(&[
            ("csrf", again.as_str()),
            ("email", "nobody@example.org"),
            ("password", "x"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::SEE_OTHER,
        "the cached page's token is accepted"
    );
}

#[tokio::test]
async fn query_strings_and_signed_in_visitors_are_rendered_for_them() {
    let app = spawn_app_with(Options::default()).await;
    // Warm the cache.
    fetch(&app, &app.client, "/signin").await;
    fetch(&app, &app.client, "/").await;
    let (html, ..) = fetch(&app, &app.client, "/signin?error=invalid&next=/backtests").await;
    assert!(html.contains("flash error"), "{html}");
    assert!(html.contains(r#"name="next" value="/backtests""#), "{html}");
    let (html, ..) = fetch(&app, &app.client, "/signin").await;
    assert!(
        !html.contains("flash error") && !html.contains(r#"name="next" value="/backtests""#),
        "{html}"
    );

    let client = browser();
    let resp = post_form(
        &app,
        &client,
        "/signup",
        "/auth/signup",
        &[
            ("email", "cache@example.org"),
            ("display_name", "Cachet"),
            ("password", PASSWORD),
        ],
    )
    .await;
    assert_eq!(location(&resp), "/signin?ok=check_email");
    sqlx::query("update app_user set email_verified_at = now() where email = 'cache@example.org'")
        .execute(&app.ctx.db)
        .await
        .unwrap();
    assert_eq!(
        location(&sign_in(&app, &client, "cache@example.org", PASSWORD).await),
        "/account"
    );
    let (html, ..) = fetch(&app, &client, "/").await;
    assert!(
        html.contains("Cachet") && html.contains(r#"id="signout""#),
        "{html}"
    );
    // … and nobody else sees that.
    let (html, ..) = fetch(&app, &app.client, "/").await;
    assert!(
        !html.contains("Cachet") && html.contains(r#"id="signin-link""#),
        "{html}"
    );
}

#[tokio::test]
async fn a_banner_change_shows_at_once_and_pages_with_a_banner_are_cached_too() {
    let app = spawn_app_with(Options::default()).await;
    let (html, ..) = fetch(&app, &app.client, "/").await;
    assert!(!html.contains(r#"id="maintenance-banner""#));
    // As the admin form does: the setting, then this process's copy cleared.
    let set = |text: &'static str| {
        let app = &app;
        async move {
            sqlx::query("update platform_settings set banner = $1")
                .bind(text)
                .execute(&app.ctx.db)
                .await
                .unwrap();
            app.ctx.banner.clear();
        }
    };
    set("Upgrade at 22:00 <UTC> & after").await;
    let before = hits(&app).await;
    for _ in 0..3 {
        let (html, ..) = fetch(&app, &app.client, "/").await;
        assert!(
            html.contains("Upgrade at 22:00 &lt;UTC&gt; &amp; after"),
            "{html}"
        );
    }
    assert!(
        hits(&app).await >= before + 2.0,
        "a page with a banner is cached"
    );
    set("").await;
    let (html, ..) = fetch(&app, &app.client, "/").await;
    assert!(!html.contains(r#"id="maintenance-banner""#), "{html}");
}
