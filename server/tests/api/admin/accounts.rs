//! An administrator on someone's account: a new confirmation email, downloading the account's data, and
//! deleting it only after an export, through the console's forms and the REST API, against the real server,
//! Postgres and Redis.

use reqwest::{Method, StatusCode};
use serde_json::Value;
use uuid::Uuid;

use super::{app, count, form_post, person, rest};
use crate::auth::{location, page_text};

#[tokio::test]
async fn admins_resend_confirmation_export_and_then_delete_an_account() {
    let app = app().await;
    let root = person(&app, "root@example.org", "admin").await;
    let other_admin = person(&app, "ops@example.org", "admin").await;
    let ann = person(&app, "ann@example.org", "trader").await;
    sqlx::query("update app_user set email_verified_at = null where user_id = $1")
        .bind(ann.id)
        .execute(&app.ctx.db)
        .await
        .unwrap();
    let base = format!("/admin/users/{}", ann.id);

    // The user page offers the confirmation email for an unconfirmed address; it is queued to the user.
    let page = page_text(&app, &root.browser, &base).await;
    assert!(page.contains("id=\"resend-verification\""), "{page}");
    let mails =
        "select count(*) from email_outbox where user_id = $1 and template = 'verify_email'";
    let before = count(&app, mails, Some(ann.id)).await;
    let resp = form_post(&root.browser, &app, &format!("{base}/verification"), &[]).await;
    assert!(
        location(&resp).ends_with("ok=admin_verification_sent"),
        "{}",
        location(&resp)
    );
    assert_eq!(count(&app, mails, Some(ann.id)).await, before + 1);
    assert_eq!(
        count(
            &app,
            "select count(*) from audit_event where event = 'verification_requested' and user_id = $1 and actor_id = (select user_id from app_user where email = 'root@example.org')",
            Some(ann.id)
        )
        .await,
        1
    );
    // A confirmed address: refused with the reason.
    let (status, body) = rest(
        &app,
        Method::POST,
        &format!("/api/v1/admin/users/{}/verification", root.id),
        Some(&root.token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body.to_string().contains("confirmed already"), "{body}");

    // Deleting before an administrator's export is refused, naming the download; the owner's own download
    // does not count.
    let (status, _) = rest(
        &app,
        Method::GET,
        "/api/v1/me/export",
        Some(&ann.token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let delete = |id: Uuid, email: &str| {
        format!(
            "/api/v1/admin/users/{id}?confirm_email={}",
            email.replace('@', "%40")
        )
    };
    let (status, body) = rest(
        &app,
        Method::DELETE,
        &delete(ann.id, "ann@example.org"),
        Some(&root.token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body.to_string()
            .contains("download the account's data first"),
        "{body}"
    );

    // The download from the user page: the user's own export document, recorded about the user.
    let resp = form_post(&root.browser, &app, &format!("{base}/export.json"), &[]).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.headers()[reqwest::header::CONTENT_DISPOSITION]
            .to_str()
            .unwrap()
            .contains(&format!("vortex-export-{}.json", ann.id))
    );
    let doc: Value = resp.json().await.unwrap();
    assert_eq!(doc["format"], "vortex-export/1");
    assert_eq!(doc["profile"]["email"], "ann@example.org");
    assert_eq!(
        count(
            &app,
            "select count(*) from audit_event where event = 'data_exported' and user_id = $1 and actor_id = (select user_id from app_user where email = 'root@example.org')",
            Some(ann.id)
        )
        .await,
        1
    );
    // A second download at once: the per-account limit, said on the page.
    let resp = form_post(&root.browser, &app, &format!("{base}/export.json"), &[]).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let page = page_text(&app, &root.browser, &location(&resp)).await;
    assert!(page.contains("data-field=\"rate_limited\""), "{page}");

    // Refusals: the wrong address, an administrator, one's own account.
    for (id, email, status, says) in [
        (
            ann.id,
            "bob@example.org",
            StatusCode::BAD_REQUEST,
            "confirm_email",
        ),
        (
            other_admin.id,
            "ops@example.org",
            StatusCode::CONFLICT,
            "change its role first",
        ),
        (
            root.id,
            "root@example.org",
            StatusCode::CONFLICT,
            "your own account",
        ),
    ] {
        let (got, body) = rest(
            &app,
            Method::DELETE,
            &delete(id, email),
            Some(&root.token),
            None,
        )
        .await;
        assert_eq!(got, status, "{email}: {body}");
        assert!(body.to_string().contains(says), "{email}: {body}");
    }
    // A read-only admin token may not.
    let (_, ro) = backend::auth::api_token::create(
        &app.ctx.db,
        root.id,
        "read-only",
        backend::auth::Scope::Read,
        None,
    )
    .await
    .unwrap()
    .unwrap();
    for (method, path) in [
        (Method::DELETE, delete(ann.id, "ann@example.org")),
        (
            Method::POST,
            format!("/api/v1/admin/users/{}/verification", ann.id),
        ),
        (
            Method::GET,
            format!("/api/v1/admin/users/{}/export", ann.id),
        ),
    ] {
        let (status, _) = rest(&app, method.clone(), &path, Some(&ro), None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}");
    }
    // A trader may not.
    let resp = form_post(
        &ann.browser,
        &app,
        &format!("/admin/users/{}/export.json", root.id),
        &[],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let (status, _) = rest(
        &app,
        Method::DELETE,
        &delete(ann.id, "ann@example.org"),
        Some(&ann.token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // The form deletes it: back to the users list; the account, its sessions and tokens are gone; the audit
    // log keeps the entry by id, made by the admin.
    let resp = form_post(
        &root.browser,
        &app,
        &format!("{base}/delete"),
        &[("confirm_email", "Ann@Example.org")],
    )
    .await;
    assert_eq!(location(&resp), "/admin/users?ok=admin_user_deleted");
    assert_eq!(
        count(
            &app,
            "select count(*) from app_user where user_id = $1",
            Some(ann.id)
        )
        .await,
        0
    );
    assert_eq!(
        count(
            &app,
            "select count(*) from audit_event where event = 'account_deleted' and user_id = $1 and actor_id = (select user_id from app_user where email = 'root@example.org')
               and subject_email is null",
            Some(ann.id)
        )
        .await,
        1
    );
    let (status, _) = rest(&app, Method::GET, "/api/v1/me", Some(&ann.token), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let resp = ann.browser.get(app.url("/account")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let (status, _) = rest(
        &app,
        Method::DELETE,
        &delete(ann.id, "ann@example.org"),
        Some(&root.token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
