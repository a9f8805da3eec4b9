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

#[tokio::test]
async fn admin_invitation_links_work_once_while_sign_up_is_by_invitation() {
    let app = app().await;
    let root = person(&app, "root@example.org", "admin").await;
    let post = |action: &'static str, fields: Vec<(&'static str, &'static str)>| {
        let app = &app;
        let client = root.browser.clone();
        async move {
            let token = csrf(app, &client, "/admin").await;
            let mut form: Vec<(&str, &str)> = fields;
            form.push(("csrf", &token));
            client
                .post(app.url(action))
                .form(&form)
                .send()
                .await
                .unwrap()
        }
    };
    let resp = post(
        "/admin/settings",
        vec![("signup_policy", "invite"), ("banner", "")],
    )
    .await;
    assert!(
        location(&resp).ends_with("ok=admin_settings_saved"),
        "{resp:?}"
    );

    let sign_up = |invite: String, email: &'static str| {
        let app = &app;
        async move {
            let anon = browser();
            post_form(
                app,
                &anon,
                &format!("/signup?invite={invite}"),
                "/auth/signup",
                &[
                    ("email", email),
                    ("display_name", "New"),
                    ("password", PASSWORD),
                    ("invite", &invite),
                ],
            )
            .await
        }
    };
    // Without an invitation, or with a made-up one: refused, no account.
    for invite in ["", "not-an-invitation"] {
        let resp = sign_up(invite.to_owned(), "eve@example.org").await;
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{invite}");
        assert!(resp.text().await.unwrap().contains("invitation"));
    }

    // The admin makes a link; it is shown once on /admin.
    let resp = post("/admin/invites", vec![]).await;
    assert!(
        location(&resp).ends_with("ok=admin_invite_created"),
        "{resp:?}"
    );
    let page = page_text(&app, &root.browser, &location(&resp)).await;
    let start =
        page.find("id=\"invite-link\">").expect("invite link shown") + "id=\"invite-link\">".len();
    let link = page[start..].split('<').next().unwrap().to_owned();
    assert!(link.contains("/signup?invite="), "{link}");
    assert!(
        !page_text(&app, &root.browser, "/admin")
            .await
            .contains("id=\"invite-link\"")
    );
    let invite = link.split("invite=").nth(1).unwrap().to_owned();
    // The sign-up page carries the token in its form.
    let form = page_text(&app, &browser(), &format!("/signup?invite={invite}")).await;
    assert!(
        form.contains(&format!("name=\"invite\" value=\"{invite}\"")),
        "{form}"
    );

    let resp = sign_up(invite.clone(), "ivy@example.org").await;
    assert_eq!(location(&resp), "/signin?ok=check_email");
    let used_by: Option<uuid::Uuid> = sqlx::query_scalar("select used_by from signup_invite")
        .fetch_one(&app.ctx.db)
        .await
        .unwrap();
    let ivy: uuid::Uuid =
        sqlx::query_scalar("select user_id from app_user where email = 'ivy@example.org'")
            .fetch_one(&app.ctx.db)
            .await
            .unwrap();
    assert_eq!(used_by, Some(ivy));
    // A second use of the same link is refused.
    let resp = sign_up(invite, "eve@example.org").await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let eve: i64 =
        sqlx::query_scalar("select count(*) from app_user where email = 'eve@example.org'")
            .fetch_one(&app.ctx.db)
            .await
            .unwrap();
    assert_eq!(eve, 0);
    let audited: i64 =
        sqlx::query_scalar("select count(*) from audit_event where event = 'invite_created'")
            .fetch_one(&app.ctx.db)
            .await
            .unwrap();
    assert_eq!(audited, 1);
}
