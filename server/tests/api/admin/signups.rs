//! Sign-up by approval (docs/admin.md#pending-sign-ups) against the real server, Postgres, Redis and an SMTP
//! sink: the reason on the sign-up form, the pending account (no sign-in, no seat, its confirmation link works),
//! the approvers' email, approving and rejecting through the console and the REST API, the approver flag, the
//! two-factor reset over REST, and every new route refused for traders, viewers, anonymous callers and
//! read-only admin tokens.

use std::time::Duration;

use backend::auth::{Role, Scope, api_token};
use reqwest::{Client, Method, StatusCode};
use serde_json::json;
use uuid::Uuid;

use super::{Person, actor_of, audits, count, form_post, person, rest};
use crate::{
    auth::{PASSWORD, app_with_mail, browser, location, page_text, post_form, sign_in},
    helpers::TestApp,
    smtp::{SmtpSink, link, token},
};

const WAIT: Duration = Duration::from_secs(20);

async fn set_policy(app: &TestApp, root: &Person, policy: &str) {
    let (status, body) = rest(
        app,
        Method::PATCH,
        "/api/v1/admin/settings",
        Some(&root.token),
        Some(json!({ "signup_policy": policy })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn apply(app: &TestApp, client: &Client, email: &str, reason: &str) -> reqwest::Response {
    post_form(
        app,
        client,
        "/signup",
        "/auth/signup",
        &[
            ("email", email),
            ("display_name", "Applicant"),
            ("password", PASSWORD),
            ("reason", reason),
        ],
    )
    .await
}

async fn confirm(app: &TestApp, user: Uuid) {
    sqlx::query("update app_user set email_verified_at = now() where user_id = $1")
        .bind(user)
        .execute(&app.ctx.db)
        .await
        .unwrap();
}

async fn user_id(app: &TestApp, email: &str) -> Option<Uuid> {
    sqlx::query_scalar("select user_id from app_user where email = $1")
        .bind(email)
        .fetch_optional(&app.ctx.db)
        .await
        .unwrap()
}

/// Messages to `to` whose text holds `needle` (quoted-printable soft breaks undone).
fn mails_with(sink: &SmtpSink, to: &str, needle: &str) -> usize {
    sink.messages()
        .iter()
        .filter(|m| {
            m.contains(&format!("To: {to}"))
                && m.replace("=\r\n", "").replace("=\n", "").contains(needle)
        })
        .count()
}

#[tokio::test]
async fn signup_by_approval_waits_for_an_approver_and_then_signs_in() {
    let (app, sink) = app_with_mail().await;
    let root = person(&app, "root@example.org", "admin").await;
    let appr = person(&app, "appr@example.org", "admin").await;
    let other = person(&app, "other@example.org", "admin").await;
    let _ann = person(&app, "ann@example.org", "trader").await;

    // Root marks `appr` as the one sign-up approver, on the user page; audited.
    let page = page_text(&app, &root.browser, &format!("/admin/users/{}", appr.id)).await;
    assert!(page.contains("id=\"approver-form\""), "{page}");
    let resp = form_post(
        &root.browser,
        &app,
        &format!("/admin/users/{}/approver", appr.id),
        &[("approver", "on")],
    )
    .await;
    assert!(
        location(&resp).ends_with("ok=admin_approver_changed"),
        "{resp:?}"
    );
    assert_eq!(audits(&app, "signup_approver_changed", appr.id).await, 1);
    // A trader is no approver.
    let resp = form_post(
        &root.browser,
        &app,
        &format!("/admin/users/{}/approver", _ann.id),
        &[("approver", "on")],
    )
    .await;
    let page = page_text(&app, &root.browser, &location(&resp)).await;
    assert!(page.contains("data-field=\"conflict\""), "{page}");

    set_policy(&app, &root, "approval").await;
    let anon = browser();
    let form = page_text(&app, &anon, "/signup").await;
    assert!(form.contains("name=\"reason\""), "{form}");

    // Without a reason (or only spaces): refused in place, no account.
    for reason in ["", "   "] {
        let resp = apply(&app, &anon, "pat@example.net", reason).await;
        assert_eq!(location(&resp), "/signup?error=signup_reason", "{reason:?}");
    }
    let page = page_text(&app, &anon, "/signup?error=signup_reason").await;
    assert!(page.contains("say why you want an account"), "{page}");
    let too_long = "x".repeat(1001);
    let resp = apply(&app, &anon, "pat@example.net", &too_long).await;
    assert_eq!(location(&resp), "/signup?error=signup_reason");
    assert_eq!(user_id(&app, "pat@example.net").await, None);

    // With a reason: a pending account, the same answer for everyone.
    let resp = apply(
        &app,
        &anon,
        "pat@example.net",
        "  I run the research desk at Example  ",
    )
    .await;
    assert_eq!(location(&resp), "/signin?ok=signup_pending");
    let pat = user_id(&app, "pat@example.net")
        .await
        .expect("pending account");
    let reason: String = sqlx::query_scalar("select reason from signup_request where user_id = $1")
        .bind(pat)
        .fetch_one(&app.ctx.db)
        .await
        .unwrap();
    assert_eq!(reason, "I run the research desk at Example");

    // The approver (and only the approver) is emailed.
    sink.wait_for_text(
        "appr@example.org",
        &["asks for an account", "I run the research desk at Example"],
        WAIT,
    )
    .await;
    let recipients: Vec<Uuid> = sqlx::query_scalar(
        "select user_id from notification where event_type = 'admin.signup_requested'",
    )
    .fetch_all(&app.ctx.db)
    .await
    .unwrap();
    assert_eq!(recipients, vec![appr.id]);
    for admin in ["root@example.org", "other@example.org"] {
        assert_eq!(
            mails_with(&sink, admin, "asks for an account"),
            0,
            "{admin}"
        );
    }
    let _ = &other;

    // The confirmation link still works.
    let mail = sink.wait_for("pat@example.net", 1, WAIT).await;
    let t = token(&link(&mail[0], "/verify-email"));
    let resp = post_form(
        &app,
        &anon,
        &format!("/verify-email?token={t}"),
        "/auth/verify-email",
        &[("token", &t)],
    )
    .await;
    assert_eq!(location(&resp), "/signin?ok=verified");

    // No sign-in while pending: the right password is told why, a wrong one gets the usual answer.
    let resp = sign_in(&app, &anon, "pat@example.net", PASSWORD).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let text = resp.text().await.unwrap();
    assert!(text.contains("awaiting approval"), "{text}");
    let resp = sign_in(&app, &anon, "pat@example.net", "not the password at all").await;
    assert_eq!(location(&resp), "/signin?error=invalid");
    let sessions = count(
        &app,
        "select count(*) from user_session where user_id = $1",
        Some(pat),
    )
    .await;
    assert_eq!(sessions, 0);

    // No seat: the overview counts the four accounts and one pending sign-up.
    let o = backend::admin::overview::get(&actor_of(&root, Role::Admin), &app.ctx)
        .await
        .unwrap();
    assert_eq!((o.users, o.pending_signups), (4, 1));

    // The list, on the page and over REST.
    let page = page_text(&app, &root.browser, "/admin/signups").await;
    assert!(
        page.contains("pat@example.net") && page.contains("I run the research desk at Example"),
        "{page}"
    );
    assert!(page.contains("appr@example.org"), "approvers named: {page}");
    let (status, body) = rest(
        &app,
        Method::GET,
        "/api/v1/admin/signups",
        Some(&root.token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["signups"][0]["user_id"], pat.to_string());
    assert_eq!(body["signups"][0]["domain"], "example.net");
    assert_eq!(body["signups"][0]["email_verified"], true);

    // Approve through the console: audited, mailed, and the applicant signs in.
    let resp = form_post(
        &root.browser,
        &app,
        &format!("/admin/signups/{pat}/approve"),
        &[],
    )
    .await;
    assert_eq!(location(&resp), "/admin/signups?ok=admin_signup_approved");
    assert_eq!(audits(&app, "signup_approved", pat).await, 1);
    sink.wait_for_text("pat@example.net", &["was approved"], WAIT)
        .await;
    let resp = sign_in(&app, &anon, "pat@example.net", PASSWORD).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&resp), "/account");
    let o = backend::admin::overview::get(&actor_of(&root, Role::Admin), &app.ctx)
        .await
        .unwrap();
    assert_eq!((o.users, o.pending_signups), (5, 0));
    // Decided once: a second approval finds nothing.
    let (status, _) = rest(
        &app,
        Method::POST,
        &format!("/api/v1/admin/signups/{pat}/approve"),
        Some(&root.token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn signup_rejection_deletes_the_account_mails_the_reason_and_holds_the_address_for_a_while() {
    let (app, sink) = app_with_mail().await;
    let root = person(&app, "root@example.org", "admin").await;
    set_policy(&app, &root, "approval").await;
    let anon = browser();
    let resp = apply(&app, &anon, "rex@example.net", "Testing the waters").await;
    assert_eq!(location(&resp), "/signin?ok=signup_pending");
    let rex = user_id(&app, "rex@example.net").await.unwrap();
    // The applicant confirms the address (only a confirmed address is held after a rejection).
    confirm(&app, rex).await;
    // With no approver marked, every admin is notified.
    sink.wait_for_text("root@example.org", &["asks for an account"], WAIT)
        .await;

    // A rejection needs a reason: refused in place on the page, 400 over REST.
    let resp = form_post(
        &root.browser,
        &app,
        &format!("/admin/signups/{rex}/reject"),
        &[("reason", " ")],
    )
    .await;
    let page = page_text(&app, &root.browser, &location(&resp)).await;
    assert!(page.contains("data-field=\"reason\""), "{page}");
    let (status, body) = rest(
        &app,
        Method::POST,
        &format!("/api/v1/admin/signups/{rex}/reject"),
        Some(&root.token),
        Some(json!({ "reason": "" })),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(user_id(&app, "rex@example.net").await.is_some());

    let (status, body) = rest(
        &app,
        Method::POST,
        &format!("/api/v1/admin/signups/{rex}/reject"),
        Some(&root.token),
        Some(json!({ "reason": "This instance is for the research team only" })),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(user_id(&app, "rex@example.net").await, None);
    assert_eq!(audits(&app, "signup_rejected", rex).await, 1);
    sink.wait_for_text(
        "rex@example.net",
        &[
            "not approved",
            "This instance is for the research team only",
        ],
        WAIT,
    )
    .await;
    // The audit trail keeps the entries by id, without the address.
    let with_address = count(
        &app,
        "select count(*) from audit_event where user_id = $1 and subject_email is not null",
        Some(rex),
    )
    .await;
    assert_eq!(with_address, 0);

    // Applying again within the cool-off: the same answer, no account, nobody notified again.
    let resp = apply(&app, &browser(), "Rex@Example.net", "Please reconsider").await;
    assert_eq!(location(&resp), "/signin?ok=signup_pending");
    assert_eq!(
        count(&app, "select count(*) from signup_request", None).await,
        0
    );
    assert_eq!(
        count(
            &app,
            "select count(*) from app_user where lower(email) = 'rex@example.net'",
            None
        )
        .await,
        0
    );
    // After it, the address may apply again.
    sqlx::query("update signup_rejection set reapply_after = now() - interval '1 second'")
        .execute(&app.ctx.db)
        .await
        .unwrap();
    let resp = apply(&app, &browser(), "rex@example.net", "Please reconsider").await;
    assert_eq!(location(&resp), "/signin?ok=signup_pending");
    assert!(user_id(&app, "rex@example.net").await.is_some());
}

#[tokio::test]
async fn signup_approval_routes_refuse_everyone_but_read_write_admins() {
    let (app, _sink) = app_with_mail().await;
    let root = person(&app, "root@example.org", "admin").await;
    let ann = person(&app, "ann@example.org", "trader").await;
    let vera = person(&app, "vera@example.org", "viewer").await;
    let (_, read_only) = api_token::create(&app.ctx.db, root.id, "ro", Scope::Read, None)
        .await
        .unwrap()
        .unwrap();
    set_policy(&app, &root, "approval").await;
    let resp = apply(&app, &browser(), "pat@example.net", "Research").await;
    assert_eq!(location(&resp), "/signin?ok=signup_pending");
    let pat = user_id(&app, "pat@example.net").await.unwrap();

    let changes = [
        (
            Method::POST,
            format!("/api/v1/admin/signups/{pat}/approve"),
            None,
        ),
        (
            Method::POST,
            format!("/api/v1/admin/signups/{pat}/reject"),
            Some(json!({ "reason": "no" })),
        ),
        (
            Method::PUT,
            format!("/api/v1/admin/users/{}/signup-approver", root.id),
            Some(json!({ "approver": true })),
        ),
        (
            Method::POST,
            format!("/api/v1/admin/users/{}/two-factor/reset", ann.id),
            None,
        ),
    ];
    let list = (Method::GET, "/api/v1/admin/signups".to_owned(), None);
    for (method, path, body) in changes.iter().cloned().chain([list.clone()]) {
        for who in [&ann, &vera] {
            let (status, _) =
                rest(&app, method.clone(), &path, Some(&who.token), body.clone()).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}");
        }
        let (status, _) = rest(&app, method.clone(), &path, None, body.clone()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}");
    }
    // A read-only admin token reads, and changes nothing.
    let (status, _) = rest(&app, list.0, &list.1, Some(&read_only), None).await;
    assert_eq!(status, StatusCode::OK);
    for (method, path, body) in changes.iter().cloned() {
        let (status, _) = rest(&app, method.clone(), &path, Some(&read_only), body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}");
    }
    // The page, its server function and its forms: 403 for traders and viewers, sign-in for the anonymous.
    for who in [&ann, &vera] {
        let resp = who
            .browser
            .get(app.url("/admin/signups"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN);
        let resp = who
            .browser
            .get(app.url("/api/admin_signups"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN);
        for action in [
            format!("/admin/signups/{pat}/approve"),
            format!("/admin/signups/{pat}/reject"),
            format!("/admin/users/{}/approver", root.id),
        ] {
            let resp = form_post(&who.browser, &app, &action, &[("reason", "no")]).await;
            assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{action}");
        }
    }
    let anon = browser();
    let resp = anon.get(app.url("/admin/signups")).send().await.unwrap();
    assert!(location(&resp).starts_with("/signin?next=/admin/signups"));
    let resp = anon
        .get(app.url("/api/admin_signups"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    // Nothing changed.
    assert_eq!(
        count(&app, "select count(*) from signup_request", None).await,
        1
    );
    assert_eq!(
        count(
            &app,
            "select count(*) from audit_event where event in ('signup_approved', 'signup_rejected',
               'signup_approver_changed', 'two_factor_reset_by_admin')",
            None
        )
        .await,
        0
    );
}

#[tokio::test]
async fn admin_two_factor_reset_over_rest_is_audited_once_and_mailed() {
    let (app, sink) = app_with_mail().await;
    let root = person(&app, "root@example.org", "admin").await;
    let ann = person(&app, "ann@example.org", "trader").await;
    let path = format!("/api/v1/admin/users/{}/two-factor/reset", ann.id);
    // Not on: nothing to reset.
    let (status, body) = rest(&app, Method::POST, &path, Some(&root.token), None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    sqlx::query(
        "insert into user_totp (user_id, secret_enc, enabled_at) values ($1, '\\x00', now())",
    )
    .bind(ann.id)
    .execute(&app.ctx.db)
    .await
    .unwrap();
    let (status, body) = rest(&app, Method::POST, &path, Some(&root.token), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(audits(&app, "two_factor_reset_by_admin", ann.id).await, 1);
    assert_eq!(
        count(
            &app,
            "select count(*) from user_totp where user_id = $1",
            Some(ann.id)
        )
        .await,
        0
    );
    sink.wait_for_text(
        "ann@example.org",
        &["An administrator turned off two-factor sign-in"],
        WAIT,
    )
    .await;
    let (status, _) = rest(
        &app,
        Method::POST,
        &format!("/api/v1/admin/users/{}/two-factor/reset", Uuid::new_v4()),
        Some(&root.token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// A pending account has no working session or token: an account that gets a `signup_request` row (as a
/// previous release or a race could leave it) is signed out at its next request, its token is refused, and the
/// notification stream's liveness check fails too.
#[tokio::test]
async fn a_pending_account_has_no_working_session_or_api_token() {
    let (app, _sink) = app_with_mail().await;
    let ann = person(&app, "ann@example.org", "trader").await;
    let (status, _) = rest(&app, Method::GET, "/api/v1/me", Some(&ann.token), None).await;
    assert_eq!(status, StatusCode::OK);
    let resp = ann.browser.get(app.url("/account")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);

    sqlx::query("insert into signup_request (user_id, reason) values ($1, 'late')")
        .bind(ann.id)
        .execute(&app.ctx.db)
        .await
        .unwrap();
    let (status, _) = rest(&app, Method::GET, "/api/v1/me", Some(&ann.token), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let resp = ann.browser.get(app.url("/account")).send().await.unwrap();
    assert!(
        location(&resp).starts_with("/signin"),
        "signed out: {resp:?}"
    );
    // Approving gives both back.
    confirm(&app, ann.id).await;
    sqlx::query("delete from signup_request where user_id = $1")
        .bind(ann.id)
        .execute(&app.ctx.db)
        .await
        .unwrap();
    let (status, _) = rest(&app, Method::GET, "/api/v1/me", Some(&ann.token), None).await;
    assert_eq!(status, StatusCode::OK);
}

/// `vortex create-admin` does not promote a pending account (its password is the applicant's).
#[tokio::test]
async fn create_admin_on_a_pending_address_is_refused() {
    let (app, _sink) = app_with_mail().await;
    let root = person(&app, "root@example.org", "admin").await;
    set_policy(&app, &root, "approval").await;
    let resp = apply(&app, &browser(), "pat@example.net", "Research").await;
    assert_eq!(location(&resp), "/signin?ok=signup_pending");
    let pat = user_id(&app, "pat@example.net").await.unwrap();
    let r = backend::account::admin::create_or_promote(
        &app.ctx,
        &backend::Actor::system(backend::Surface::Cli),
        "pat@example.net",
        Some("another password entirely 123".into()),
    )
    .await;
    match r {
        Err(backend::Error::Conflict(m)) => {
            assert!(m.contains("awaiting approval"), "{m}");
            assert!(m.contains("/admin/signups"), "{m}");
        }
        other => panic!("refused, not {other:?}"),
    }
    let role: String = sqlx::query_scalar("select role from app_user where user_id = $1")
        .bind(pat)
        .fetch_one(&app.ctx.db)
        .await
        .unwrap();
    assert_eq!(role, "trader");
    assert_eq!(
        count(
            &app,
            "select count(*) from signup_request where user_id = $1",
            Some(pat)
        )
        .await,
        1
    );
    // Once decided, the promotion goes through.
    confirm(&app, pat).await;
    let (status, body) = rest(
        &app,
        Method::POST,
        &format!("/api/v1/admin/signups/{pat}/approve"),
        Some(&root.token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let r = backend::account::admin::create_or_promote(
        &app.ctx,
        &backend::Actor::system(backend::Surface::Cli),
        "pat@example.net",
        None,
    )
    .await
    .unwrap();
    assert_eq!(
        r,
        backend::account::admin::Outcome::Promoted {
            email: "pat@example.net".into()
        }
    );
}

/// An unconfirmed address is neither approved (409, on the page too) nor held after a rejection.
#[tokio::test]
async fn an_unconfirmed_request_is_not_approved_and_its_rejection_holds_no_address() {
    let (app, _sink) = app_with_mail().await;
    let root = person(&app, "root@example.org", "admin").await;
    set_policy(&app, &root, "approval").await;
    let resp = apply(
        &app,
        &browser(),
        "vic@example.net",
        "Someone typed my address",
    )
    .await;
    assert_eq!(location(&resp), "/signin?ok=signup_pending");
    let vic = user_id(&app, "vic@example.net").await.unwrap();

    let (status, body) = rest(
        &app,
        Method::POST,
        &format!("/api/v1/admin/signups/{vic}/approve"),
        Some(&root.token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body.to_string()
            .contains("has not confirmed the address yet"),
        "{body}"
    );
    let page = page_text(&app, &root.browser, "/admin/signups").await;
    assert!(page.contains("disabled"), "approve disabled: {page}");
    let resp = form_post(
        &root.browser,
        &app,
        &format!("/admin/signups/{vic}/approve"),
        &[],
    )
    .await;
    let page = page_text(&app, &root.browser, &location(&resp)).await;
    assert!(page.contains("has not confirmed the address yet"), "{page}");
    assert_eq!(audits(&app, "signup_approved", vic).await, 0);
    assert_eq!(
        count(
            &app,
            "select count(*) from signup_request where user_id = $1",
            Some(vic)
        )
        .await,
        1
    );

    // Rejected: the account goes, but the address is not held.
    let (status, body) = rest(
        &app,
        Method::POST,
        &format!("/api/v1/admin/signups/{vic}/reject"),
        Some(&root.token),
        Some(json!({ "reason": "Unknown applicant" })),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(
        count(&app, "select count(*) from signup_rejection", None).await,
        0
    );
    // The owner may apply at once.
    let resp = apply(&app, &browser(), "vic@example.net", "The real me").await;
    assert_eq!(location(&resp), "/signin?ok=signup_pending");
    assert!(user_id(&app, "vic@example.net").await.is_some());
}

/// The two-factor reset over REST: not on oneself, and not on an administrator with an API token.
#[tokio::test]
async fn admin_two_factor_reset_refuses_oneself_and_admins_with_a_token() {
    let (app, _sink) = app_with_mail().await;
    let root = person(&app, "root@example.org", "admin").await;
    let other = person(&app, "other@example.org", "admin").await;
    for who in [root.id, other.id] {
        sqlx::query(
            "insert into user_totp (user_id, secret_enc, enabled_at) values ($1, '\\x00', now())",
        )
        .bind(who)
        .execute(&app.ctx.db)
        .await
        .unwrap();
    }
    for target in [root.id, other.id] {
        let (status, body) = rest(
            &app,
            Method::POST,
            &format!("/api/v1/admin/users/{target}/two-factor/reset"),
            Some(&root.token),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{target}: {body}");
    }
    assert_eq!(count(&app, "select count(*) from user_totp", None).await, 2);
    assert_eq!(
        count(
            &app,
            "select count(*) from audit_event where event = 'two_factor_reset_by_admin'",
            None
        )
        .await,
        0
    );
    // Another administrator, signed in in the browser, may.
    let resp = form_post(
        &root.browser,
        &app,
        &format!("/admin/users/{}/two-factor/reset", other.id),
        &[],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER, "{resp:?}");
    assert_eq!(
        count(
            &app,
            "select count(*) from user_totp where user_id = $1",
            Some(other.id)
        )
        .await,
        0
    );
}

/// A pending account's role is not changed, and reasons with format characters (U+202E) are refused.
#[tokio::test]
async fn pending_accounts_keep_their_role_and_reasons_refuse_format_characters() {
    let (app, _sink) = app_with_mail().await;
    let root = person(&app, "root@example.org", "admin").await;
    set_policy(&app, &root, "approval").await;
    let anon = browser();
    let resp = apply(&app, &anon, "pat@example.net", "txt.\u{202e}exe").await;
    assert_eq!(location(&resp), "/signup?error=signup_reason");
    let resp = apply(&app, &anon, "pat@example.net", "zero\u{200b}width").await;
    assert_eq!(location(&resp), "/signup?error=signup_reason");
    assert_eq!(user_id(&app, "pat@example.net").await, None);
    let resp = apply(&app, &anon, "pat@example.net", "Research").await;
    assert_eq!(location(&resp), "/signin?ok=signup_pending");
    let pat = user_id(&app, "pat@example.net").await.unwrap();

    let (status, body) = rest(
        &app,
        Method::PATCH,
        &format!("/api/v1/admin/users/{pat}"),
        Some(&root.token),
        Some(json!({ "role": "admin" })),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body.to_string().contains("sign-up approval"), "{body}");
    let role: String = sqlx::query_scalar("select role from app_user where user_id = $1")
        .bind(pat)
        .fetch_one(&app.ctx.db)
        .await
        .unwrap();
    assert_eq!(role, "trader");

    let (status, body) = rest(
        &app,
        Method::POST,
        &format!("/api/v1/admin/signups/{pat}/reject"),
        Some(&root.token),
        Some(json!({ "reason": "not \u{202e}a fit" })),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(user_id(&app, "pat@example.net").await.is_some());
}

#[tokio::test]
async fn at_the_pending_cap_applications_get_the_usual_answer_and_create_nothing() {
    let (app, sink) = app_with_mail().await;
    let root = person(&app, "root@example.org", "admin").await;
    set_policy(&app, &root, "approval").await;
    // One short of the cap: waiting requests of accounts made directly.
    let below = backend::admin::signups::MAX_PENDING - 1;
    sqlx::query(
        "with u as (insert into app_user (user_id, email, display_name, password_hash, role)
                    select gen_random_uuid(), 'flood' || g || '@example.net', 'Flood', 'x', 'trader'
                    from generate_series(1, $1) g returning user_id)
         insert into signup_request (user_id, reason) select user_id, 'flood' from u",
    )
    .bind(below)
    .execute(&app.ctx.db)
    .await
    .unwrap();
    let anon = browser();
    // The last place is taken.
    let resp = apply(&app, &anon, "last@example.net", "I trade for a living").await;
    assert_eq!(location(&resp), "/signin?ok=signup_pending");
    assert!(user_id(&app, "last@example.net").await.is_some());
    // At the cap: the same answer, no account, no mail to anyone about it, an audit entry saying why.
    let resp = apply(
        &app,
        &browser(),
        "over@example.net",
        "I trade for a living too",
    )
    .await;
    assert_eq!(location(&resp), "/signin?ok=signup_pending");
    assert_eq!(user_id(&app, "over@example.net").await, None);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(mails_with(&sink, "over@example.net", ""), 0);
    let refused: i64 = sqlx::query_scalar(
        "select count(*) from audit_event where event = 'signup' and detail->>'refused' = 'too_many_pending'",
    )
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    assert_eq!(refused, 1);
    // The page says how many wait and that new ones are not taken.
    let page = page_text(&app, &root.browser, "/admin/signups").await;
    let note = format!(
        "{} request(s) waiting; the oldest {} are listed",
        backend::admin::signups::MAX_PENDING,
        backend::admin::signups::MAX_LIST
    );
    assert!(page.contains(&note), "{page}");
    assert!(page.contains("new applications are not taken"), "{page}");
    // The users list tells pending accounts apart: their own filter, not among the active ones, a badge.
    let total = |body: serde_json::Value| body["total"].as_i64().unwrap();
    let (status, body) = rest(
        &app,
        Method::GET,
        "/api/v1/admin/users?status=pending&limit=1",
        Some(&root.token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(total(body.clone()), backend::admin::signups::MAX_PENDING);
    assert_eq!(body["users"][0]["signup_pending"], true, "{body}");
    let (_, body) = rest(
        &app,
        Method::GET,
        "/api/v1/admin/users?status=active",
        Some(&root.token),
        None,
    )
    .await;
    assert_eq!(total(body), 1, "only the admin is active");
    let page = page_text(&app, &root.browser, "/admin/users?status=pending").await;
    assert!(page.contains("awaiting approval"), "{page}");
}
