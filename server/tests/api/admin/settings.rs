//! Platform settings on `/admin`: closing sign-up and the maintenance banner.

use reqwest::StatusCode;

use super::{app, person};
use crate::auth::{PASSWORD, browser, csrf, location, page_text, post_form};

#[tokio::test]
async fn admin_closes_sign_up_and_sets_a_banner_everyone_sees() {
    let app = app().await;
    let root = person(&app, "root@example.org", "admin").await;
    let page = page_text(&app, &root.browser, "/admin").await;
    assert!(!page.contains("id=\"maintenance-banner\""), "{page}");

    let save = |policy: &'static str, banner: &'static str| {
        let app = &app;
        let client = root.browser.clone();
        async move {
            let token = csrf(app, &client, "/admin").await;
            client
                .post(app.url("/admin/settings"))
                .form(&[
                    ("signup_policy", policy),
                    ("banner", banner),
                    ("csrf", &token),
                ])
                .send()
                .await
                .unwrap()
        }
    };
    // A policy that does not exist is refused in place.
    let resp = save("invite-maybe", "").await;
    let page = page_text(&app, &root.browser, &location(&resp)).await;
    assert!(page.contains("data-field=\"signup_policy\""), "{page}");

    let resp = save("closed", "Maintenance tonight 22:00-23:00 UTC").await;
    assert!(
        location(&resp).ends_with("ok=admin_settings_saved"),
        "{resp:?}"
    );
    // The banner shows on every page, for anonymous visitors too.
    let anon = browser();
    let signin = page_text(&app, &anon, "/signin").await;
    assert!(signin.contains("id=\"maintenance-banner\""), "{signin}");
    assert!(
        signin.contains("Maintenance tonight 22:00-23:00 UTC"),
        "{signin}"
    );
    // Sign-up is refused with a page that says so; no account is made.
    let resp = post_form(
        &app,
        &anon,
        "/signup",
        "/auth/signup",
        &[
            ("email", "new@example.org"),
            ("display_name", "New"),
            ("password", PASSWORD),
        ],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert!(resp.text().await.unwrap().contains("Sign-up is closed"));
    let made: i64 =
        sqlx::query_scalar("select count(*) from app_user where email = 'new@example.org'")
            .fetch_one(&app.ctx.db)
            .await
            .unwrap();
    assert_eq!(made, 0);
    let audited: i64 = sqlx::query_scalar(
        "select count(*) from audit_event where event = 'platform_settings_changed'",
    )
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    assert_eq!(audited, 1);

    // Open again, without a banner.
    let resp = save("open", "").await;
    assert!(
        location(&resp).ends_with("ok=admin_settings_saved"),
        "{resp:?}"
    );
    assert!(
        !page_text(&app, &anon, "/signin")
            .await
            .contains("id=\"maintenance-banner\"")
    );
    let resp = post_form(
        &app,
        &anon,
        "/signup",
        "/auth/signup",
        &[
            ("email", "new@example.org"),
            ("display_name", "New"),
            ("password", PASSWORD),
        ],
    )
    .await;
    assert_eq!(location(&resp), "/signin?ok=check_email");
}
