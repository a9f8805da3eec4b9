//! Platform settings on `/admin` and `/api/v1/admin/settings`: closing sign-up, the maintenance banner,
//! invitations and the sign-up email-domain lists.

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

#[tokio::test]
async fn email_domain_lists_decide_who_may_sign_up_through_the_api_and_the_form() {
    use reqwest::Method;
    use serde_json::json;

    use super::rest;
    let app = app().await;
    let root = person(&app, "root@example.org", "admin").await;
    let ann = person(&app, "ann@example.org", "trader").await;
    let signup = |email: &'static str| {
        let app = &app;
        async move {
            post_form(
                app,
                &browser(),
                "/signup",
                "/auth/signup",
                &[
                    ("email", email),
                    ("display_name", "New"),
                    ("password", PASSWORD),
                ],
            )
            .await
        }
    };

    // An allow list and a deny list over REST: normalised, sorted, audited.
    let (status, body) = rest(
        &app,
        Method::PATCH,
        "/api/v1/admin/settings",
        Some(&root.token),
        Some(json!({
            "signup_allowed_domains": ["@Corp.example", "partner.example"],
            "signup_denied_domains": ["temp.corp.example"],
        })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["signup_allowed_domains"],
        json!(["corp.example", "partner.example"])
    );
    assert_eq!(body["signup_policy"], "open", "absent fields stay");
    let (_, read) = rest(
        &app,
        Method::GET,
        "/api/v1/admin/settings",
        Some(&root.token),
        None,
    )
    .await;
    assert_eq!(read, body);

    // Allowed (a subdomain too); denied wins over allowed; others are told which domains may sign up.
    for email in ["a@corp.example", "b@eu.corp.example", "c@PARTNER.example"] {
        let resp = signup(email).await;
        assert_eq!(location(&resp), "/signin?ok=check_email", "{email}");
    }
    let resp = signup("d@temp.corp.example").await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("Addresses at temp.corp.example are not accepted")
    );
    let resp = signup("e@gmail.example").await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("for addresses at corp.example, partner.example only")
    );
    let made: i64 = sqlx::query_scalar(
        "select count(*) from app_user where email in ('d@temp.corp.example', 'e@gmail.example')",
    )
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    assert_eq!(made, 0);

    // A bad entry is named; nothing changes.
    let (status, body) = rest(
        &app,
        Method::PATCH,
        "/api/v1/admin/settings",
        Some(&root.token),
        Some(json!({ "signup_denied_domains": ["ok.example", "not a domain"] })),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["field"], "signup_denied_domains", "{body}");
    assert!(body.to_string().contains("not a domain"), "{body}");
    let (_, after) = rest(
        &app,
        Method::GET,
        "/api/v1/admin/settings",
        Some(&root.token),
        None,
    )
    .await;
    assert_eq!(after, read, "nothing changed");
    // A look-alike spelling of a denied domain is the denied domain.
    let resp = signup("h@temp.corp.ex\u{212A}ample").await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);

    // The overview form shows the lists and clears them.
    let page = page_text(&app, &root.browser, "/admin").await;
    assert!(
        page.contains("corp.example\npartner.example</textarea>"),
        "{page}"
    );
    let token = csrf(&app, &root.browser, "/admin").await;
    let resp = root
        .browser
        .post(app.url("/admin/settings"))
        .form(&[
            ("signup_policy", "open"),
            ("banner", ""),
            ("signup_allowed_domains", ""),
            ("signup_denied_domains", "spam.example, junk.example"),
            ("csrf", &token),
        ])
        .send()
        .await
        .unwrap();
    assert!(
        location(&resp).ends_with("ok=admin_settings_saved"),
        "{resp:?}"
    );
    let resp = signup("f@gmail.example").await;
    assert_eq!(location(&resp), "/signin?ok=check_email");
    let resp = signup("g@junk.example").await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);

    // Invitations over REST; traders may do none of it.
    let (status, body) = rest(
        &app,
        Method::POST,
        "/api/v1/admin/invites",
        Some(&root.token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert!(
        body["url"].as_str().unwrap().contains("/signup?invite="),
        "{body}"
    );
    for (method, path) in [
        (Method::GET, "/api/v1/admin/settings"),
        (Method::PATCH, "/api/v1/admin/settings"),
        (Method::POST, "/api/v1/admin/invites"),
    ] {
        let (status, _) = rest(
            &app,
            method.clone(),
            path,
            Some(&ann.token),
            Some(json!({ "banner": "x" })).filter(|_| method == Method::PATCH),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}");
    }
    let audited: i64 = sqlx::query_scalar(
        "select count(*) from audit_event where event = 'platform_settings_changed'",
    )
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    assert_eq!(audited, 2);

    // A token may make two-factor sign-in mandatory for admins but not lift it (it never passed a second
    // factor); a change to nothing is not recorded.
    for (value, status) in [(true, StatusCode::OK), (false, StatusCode::FORBIDDEN)] {
        let (got, body) = rest(
            &app,
            Method::PATCH,
            "/api/v1/admin/settings",
            Some(&root.token),
            Some(json!({ "admin_two_factor_required": value })),
        )
        .await;
        assert_eq!(got, status, "{value}: {body}");
    }
    let (status, _) = rest(
        &app,
        Method::PATCH,
        "/api/v1/admin/settings",
        Some(&root.token),
        Some(json!({ "banner": "" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let audited: i64 = sqlx::query_scalar(
        "select count(*) from audit_event where event = 'platform_settings_changed'",
    )
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    assert_eq!(audited, 3);
}
