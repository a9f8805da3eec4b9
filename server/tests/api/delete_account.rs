//! Deleting one's own account: the password and the typed address are needed; the account, its sessions and
//! its data go; the audit rows stay with the id but without the address; the last admin cannot go.

use reqwest::StatusCode;

use crate::{
    auth::{PASSWORD, app_with_mail, browser, location, post_form, sign_in},
    plans::person,
};

#[tokio::test]
async fn delete_account_removes_the_account_and_sessions_keeps_anonymous_audit_and_spares_the_last_admin()
 {
    let (app, _sink) = app_with_mail().await;
    let root = person(&app, "root@example.org", "admin").await;
    let ann = person(&app, "ann@example.org", "trader").await;
    let second = browser();
    assert_eq!(
        location(&sign_in(&app, &second, &ann.email, PASSWORD).await),
        "/account"
    );

    // A wrong confirmation or password deletes nothing.
    let resp = post_form(
        &app,
        &ann.browser,
        "/account",
        "/account/delete",
        &[
            ("current_password", PASSWORD),
            ("confirm_email", "someone@example.org"),
        ],
    )
    .await;
    assert_eq!(location(&resp), "/account?error=confirm_email#delete");
    let resp = post_form(
        &app,
        &ann.browser,
        "/account",
        "/account/delete",
        &[
            ("current_password", "not my password at all"),
            ("confirm_email", "ann@example.org"),
        ],
    )
    .await;
    assert_eq!(location(&resp), "/account?error=current_password#delete");

    let resp = post_form(
        &app,
        &ann.browser,
        "/account",
        "/account/delete",
        &[
            ("current_password", PASSWORD),
            ("confirm_email", "ANN@example.org"),
        ],
    )
    .await;
    assert_eq!(location(&resp), "/signin?ok=account_deleted");
    let users: i64 = sqlx::query_scalar("select count(*) from app_user where user_id = $1")
        .bind(ann.id)
        .fetch_one(&app.ctx.db)
        .await
        .unwrap();
    assert_eq!(users, 0);
    let sessions: i64 = sqlx::query_scalar("select count(*) from user_session where user_id = $1")
        .bind(ann.id)
        .fetch_one(&app.ctx.db)
        .await
        .unwrap();
    assert_eq!(sessions, 0);
    // Every session and the API token stopped working; the password signs in no more.
    for client in [&ann.browser, &second] {
        let resp = client.get(app.url("/account")).send().await.unwrap();
        assert!(location(&resp).starts_with("/signin"), "{resp:?}");
    }
    let resp = app
        .client
        .get(app.url("/api/v1/me"))
        .bearer_auth(&ann.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let resp = sign_in(&app, &browser(), &ann.email, PASSWORD).await;
    assert!(location(&resp).starts_with("/signin?error="), "{resp:?}");
    // The audit trail keeps the id, not the address.
    let (rows, with_email): (i64, i64) =
        sqlx::query_as("select count(*), count(subject_email) from audit_event where user_id = $1")
            .bind(ann.id)
            .fetch_one(&app.ctx.db)
            .await
            .unwrap();
    assert!(rows >= 3, "{rows}");
    assert_eq!(with_email, 0);
    let deleted: i64 = sqlx::query_scalar(
        "select count(*) from audit_event where event = 'account_deleted' and user_id = $1",
    )
    .bind(ann.id)
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    assert_eq!(deleted, 1);

    // The last administrator cannot delete their account.
    let resp = post_form(
        &app,
        &root.browser,
        "/account",
        "/account/delete",
        &[
            ("current_password", PASSWORD),
            ("confirm_email", "root@example.org"),
        ],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::CONFLICT);
    assert!(resp.text().await.unwrap().contains("last administrator"));
    let users: i64 = sqlx::query_scalar("select count(*) from app_user where user_id = $1")
        .bind(root.id)
        .fetch_one(&app.ctx.db)
        .await
        .unwrap();
    assert_eq!(users, 1);
}
