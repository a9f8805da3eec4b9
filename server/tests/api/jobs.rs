//! Background jobs end to end: Postgres rows, Redis delivery, in-process workers, operator endpoints.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use uuid::Uuid;

use crate::helpers::{OPS_TOKEN, Options, spawn_app, spawn_app_with};

async fn count_runs(app: &crate::helpers::TestApp, job: Uuid) -> i64 {
    sqlx::query_scalar("select count(*) from housekeeping_run where job_id = $1")
        .bind(job)
        .fetch_one(&app.ctx.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn an_operator_can_enqueue_housekeeping_which_prunes_old_jobs_once() {
    let app = spawn_app().await;
    // An old finished job (to be pruned) and a recent one (to be kept).
    let (old, recent) = (Uuid::new_v4(), Uuid::new_v4());
    sqlx::query(
        "insert into job (job_id, queue, kind, status, finished_at) values \
         ($1, 'default', 'housekeeping', 'done', now() - interval '30 days'), \
         ($2, 'default', 'housekeeping', 'done', now())",
    )
    .bind(old)
    .bind(recent)
    .execute(&app.ctx.db)
    .await
    .unwrap();

    let resp = app
        .client
        .post(app.url("/ops/jobs/housekeeping"))
        .bearer_auth(OPS_TOKEN)
        .header("x-request-id", "ops-req-1")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let body: Value = resp.json().await.unwrap();
    let job: Uuid = body["job_id"].as_str().unwrap().parse().unwrap();

    let row = app
        .wait_for_job(job, &["done"], Duration::from_secs(15))
        .await;
    assert_eq!(row.attempts, 1);
    assert_eq!(row.request_id.as_deref(), Some("ops-req-1"));
    assert_eq!(count_runs(&app, job).await, 1);
    let pruned: i64 =
        sqlx::query_scalar("select jobs_pruned from housekeeping_run where job_id = $1")
            .bind(job)
            .fetch_one(&app.ctx.db)
            .await
            .unwrap();
    assert_eq!(pruned, 1);
    assert!(
        backend::jobs::store::get(&app.ctx.db, old)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        backend::jobs::store::get(&app.ctx.db, recent)
            .await
            .unwrap()
            .is_some()
    );

    // The job can be inspected through the API.
    let resp = app
        .client
        .get(app.url(&format!("/ops/jobs/{job}")))
        .bearer_auth(OPS_TOKEN)
        .send()
        .await
        .unwrap();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["status"], "done");
}

#[tokio::test]
async fn delivering_the_same_job_twice_runs_it_once() {
    let app = spawn_app().await;
    let job = backend::jobs::housekeeping::enqueue(&app.ctx, None, false)
        .await
        .unwrap()
        .unwrap();
    // A duplicate delivery, as after a Redis redelivery or a reconciler re-push.
    app.ctx.jobs.push("default", job).await;
    app.ctx.jobs.push("default", job).await;
    app.wait_for_job(job, &["done"], Duration::from_secs(15))
        .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(count_runs(&app, job).await, 1);
    let row = backend::jobs::store::get(&app.ctx.db, job)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.attempts, 1);
}

#[tokio::test]
async fn jobs_that_redis_never_received_are_delivered_from_postgres() {
    let app = spawn_app_with(Options::default()).await; // no workers yet
    // Insert the row only, as if the push to Redis had failed (or Redis had restarted empty).
    let new = app
        .ctx
        .jobs
        .new_job("default", "housekeeping", serde_json::json!({}));
    let mut conn = app.ctx.db.acquire().await.unwrap();
    let job = app.ctx.jobs.insert(&mut conn, &new).await.unwrap().unwrap();
    drop(conn);
    let (_tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(backend::jobs::worker::run(app.ctx.clone(), rx));
    app.wait_for_job(job, &["done"], Duration::from_secs(15))
        .await;
}

#[tokio::test]
async fn a_job_that_cannot_succeed_is_marked_failed_with_its_error_and_can_be_redriven() {
    let app = spawn_app().await;
    let new = app
        .ctx
        .jobs
        .new_job("default", "no_such_kind", serde_json::json!({}));
    let job = app.ctx.jobs.enqueue(&new).await.unwrap().unwrap();
    let row = app
        .wait_for_job(job, &["failed"], Duration::from_secs(15))
        .await;
    assert_eq!(row.attempts, 1, "permanent errors are not retried");
    assert!(
        row.last_error
            .unwrap()
            .contains("unknown job kind `no_such_kind`")
    );

    let resp = app
        .client
        .post(app.url(&format!("/ops/jobs/{job}/retry")))
        .bearer_auth(OPS_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let row = app
        .wait_for_job(job, &["failed"], Duration::from_secs(15))
        .await;
    assert_eq!(row.attempts, 1, "re-drive starts a fresh attempt budget");

    let resp = app
        .client
        .get(app.url("/ops/jobs?status=failed"))
        .bearer_auth(OPS_TOKEN)
        .send()
        .await
        .unwrap();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["jobs"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_transient_failure_is_retried_until_it_succeeds() {
    let app = spawn_app().await;
    // Make the housekeeping effect fail: its table is temporarily unwritable.
    sqlx::query(
        "alter table housekeeping_run add constraint block check (jobs_pruned < 0) not valid",
    )
    .execute(&app.ctx.db)
    .await
    .unwrap();
    let job = backend::jobs::housekeeping::enqueue(&app.ctx, None, false)
        .await
        .unwrap()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let row = backend::jobs::store::get(&app.ctx.db, job)
            .await
            .unwrap()
            .unwrap();
        if row.attempts >= 2 {
            assert!(
                row.last_error
                    .unwrap_or_default()
                    .contains("check constraint"),
                "error recorded"
            );
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no retry happened");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    sqlx::query("alter table housekeeping_run drop constraint block")
        .execute(&app.ctx.db)
        .await
        .unwrap();
    let row = app
        .wait_for_job(job, &["done"], Duration::from_secs(20))
        .await;
    assert!(row.attempts >= 2);
    assert_eq!(count_runs(&app, job).await, 1);
}

#[tokio::test]
async fn operator_endpoints_need_the_token_and_vanish_without_one() {
    let app = spawn_app().await;
    let resp = app
        .client
        .post(app.url("/ops/jobs/housekeeping"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let resp = app
        .client
        .post(app.url("/ops/jobs/housekeeping"))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["code"], "unauthorized");

    let mut env = Options::default();
    env.env.push(("OPS_TOKEN", String::new()));
    let app = spawn_app_with(env).await;
    let resp = app
        .client
        .post(app.url("/ops/jobs/housekeeping"))
        .bearer_auth(OPS_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn bad_operator_input_gets_a_clear_json_error() {
    let app = spawn_app().await;
    let resp = app
        .client
        .get(app.url("/ops/jobs?status=bogus"))
        .bearer_auth(OPS_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body: Value = resp.json().await.unwrap();
    assert!(body["detail"].as_str().unwrap().contains("bogus"));
    let resp = app
        .client
        .get(app.url("/ops/jobs/not-a-uuid"))
        .bearer_auth(OPS_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let resp = app
        .client
        .get(app.url(&format!("/ops/jobs/{}", Uuid::new_v4())))
        .bearer_auth(OPS_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
}
