//! The notification policy (docs/design/notifications.md §3), rule by rule, called on the backend actions
//! DIRECTLY as each kind of actor: anonymous, viewer, read-only token, unverified trader, confirmed trader,
//! another trader, admin and the system (the CLI). Each row asserts the decision (the error code); writes
//! assert their audit entry exists if and only if the effect committed.

use backend::{
    Actor, Surface,
    auth::{RequestMeta, Role, Scope},
    notify::{
        self, Channel, Event, admin, email, event::SystemTest, fanout, inapp, log, prefs, webhook,
    },
};
use uuid::Uuid;

use crate::helpers::{Options, TestApp, spawn_app_with};

struct Cast {
    anonymous: Actor,
    viewer: Actor,
    read_only: Actor,
    unverified: Actor,
    trader: Actor,
    other: Actor,
    admin: Actor,
    system: Actor,
}

async fn person(app: &TestApp, email: &str, role: Role, verified: bool, scope: Scope) -> Actor {
    crate::helpers::api_actor(&app.ctx, email, role, verified, scope).await
}

async fn cast(app: &TestApp) -> Cast {
    let rw = Scope::ReadWrite;
    Cast {
        anonymous: Actor::anonymous(Surface::Api, RequestMeta::new("127.0.0.1", "tests"), None),
        viewer: person(app, "viewer@example.org", Role::Viewer, true, rw).await,
        read_only: person(app, "ro@example.org", Role::Trader, true, Scope::Read).await,
        unverified: person(app, "new@example.org", Role::Trader, false, rw).await,
        trader: person(app, "ann@example.org", Role::Trader, true, rw).await,
        other: person(app, "bob@example.org", Role::Trader, true, rw).await,
        admin: person(app, "root@example.org", Role::Admin, true, rw).await,
        system: Actor::system(Surface::Cli),
    }
}

fn code<T: std::fmt::Debug>(r: &Result<T, backend::Error>) -> &'static str {
    match r {
        Ok(_) => "ok",
        Err(e) => e.code(),
    }
}

async fn audited(app: &TestApp, event: &str, actor: &Actor) -> i64 {
    sqlx::query_scalar(
        "select count(*) from audit_event where event = $1 and actor_id is not distinct from $2",
    )
    .bind(event)
    .bind(actor.user_id())
    .fetch_one(&app.ctx.db)
    .await
    .unwrap()
}

async fn in_app(app: &TestApp, user_id: Uuid) -> Uuid {
    let ctx = &app.ctx;
    let mut tx = ctx.db.begin().await.unwrap();
    let e = notify::emit(
        &mut tx,
        &ctx.jobs,
        &ctx.clock,
        &Event::SystemTest(SystemTest {
            user_id,
            sent_by: "self".into(),
            note: String::new(),
            channel: Some(Channel::InApp),
        }),
    )
    .await
    .unwrap();
    fanout::fan_out(&mut tx, &ctx.jobs, &ctx.clock, e.event_id)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    sqlx::query_scalar("select notification_id from notification where event_id = $1")
        .bind(e.event_id)
        .fetch_one(&ctx.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn notification_actions_decide_the_same_for_each_kind_of_actor() {
    let app = spawn_app_with(Options {
        workers: false,
        env: vec![],
    })
    .await;
    let c = cast(&app).await;
    let ctx = &app.ctx;
    let trader_id = c.trader.user_id().unwrap();
    let mine = in_app(&app, trader_id).await;

    // Reading: any signed-in user, their own rows only.
    for (who, a, want) in [
        ("anonymous", &c.anonymous, "unauthorized"),
        ("system", &c.system, "unauthorized"),
        ("viewer", &c.viewer, "ok"),
        ("read-only", &c.read_only, "ok"),
        ("unverified", &c.unverified, "ok"),
    ] {
        assert_eq!(
            code(&inapp::list(ctx, a, inapp::ListQuery::default()).await),
            want,
            "list: {who}"
        );
        assert_eq!(
            code(&log::mine(ctx, a, log::Query::default()).await),
            want,
            "log: {who}"
        );
        assert_eq!(code(&prefs::get(ctx, a).await), want, "prefs: {who}");
        assert_eq!(code(&webhook::list(ctx, a).await), want, "webhooks: {who}");
    }

    // Read marks: settings writers (viewers included), never another user's row.
    for (who, a, want) in [
        ("anonymous", &c.anonymous, "unauthorized"),
        ("read-only", &c.read_only, "forbidden"),
        ("viewer (not theirs)", &c.viewer, "not_found"),
        ("another trader", &c.other, "not_found"),
        ("admin (not theirs)", &c.admin, "not_found"),
        ("owner", &c.trader, "ok"),
    ] {
        assert_eq!(
            code(&inapp::mark_read(ctx, a, mine).await),
            want,
            "mark_read: {who}"
        );
    }

    // Preferences: settings writers, viewers included.
    let doc = prefs::get(ctx, &c.viewer).await.unwrap();
    for (who, a, want) in [
        ("anonymous", &c.anonymous, "unauthorized"),
        ("read-only", &c.read_only, "forbidden"),
        ("viewer", &c.viewer, "ok"),
        ("unverified", &c.unverified, "ok"),
    ] {
        assert_eq!(
            code(&prefs::put(ctx, a, doc.clone()).await),
            want,
            "prefs::put: {who}"
        );
    }
    assert_eq!(
        audited(&app, "notify_preferences_changed", &c.read_only).await,
        0
    );
    assert_eq!(
        audited(&app, "notify_preferences_changed", &c.viewer).await,
        1
    );

    // Webhooks: runners only (a confirmed trader with a read-write credential).
    let new = || webhook::NewWebhook {
        name: "Desk".into(),
        kind: "slack".into(),
        url: "https://10.1.2.3/hook".into(),
        categories: vec!["system".into()],
    };
    for (who, a, want) in [
        ("anonymous", &c.anonymous, "unauthorized"),
        ("viewer", &c.viewer, "forbidden"),
        ("read-only", &c.read_only, "forbidden"),
        ("unverified", &c.unverified, "email_unconfirmed"),
        // Allowed to try; this URL is private, so it is refused on `url` and nothing is stored.
        ("trader", &c.trader, "invalid_input"),
    ] {
        assert_eq!(
            code(&webhook::create(ctx, a, new()).await),
            want,
            "webhook::create: {who}"
        );
    }
    assert_eq!(audited(&app, "webhook_created", &c.trader).await, 0);

    // Replay: runners, their own deliveries only.
    let nothing = Uuid::new_v4();
    for (who, a, want) in [
        ("anonymous", &c.anonymous, "unauthorized"),
        ("viewer", &c.viewer, "forbidden"),
        ("read-only", &c.read_only, "forbidden"),
        ("unverified", &c.unverified, "email_unconfirmed"),
        ("trader", &c.trader, "not_found"),
    ] {
        assert_eq!(
            code(&log::replay(ctx, a, nothing).await),
            want,
            "replay: {who}"
        );
    }

    // Admin tools: admins and the operator; a user id that does not exist is 404 for them only.
    for (who, a, want) in [
        ("anonymous", &c.anonymous, "unauthorized"),
        ("viewer", &c.viewer, "forbidden"),
        ("trader", &c.trader, "forbidden"),
        ("admin", &c.admin, "ok"),
        ("system", &c.system, "ok"),
    ] {
        assert_eq!(
            code(&log::for_user(ctx, a, trader_id, log::Query::default()).await),
            want,
            "for_user: {who}"
        );
        assert_eq!(
            code(&admin::send_test(ctx, a, trader_id, Some(Channel::InApp)).await),
            want,
            "send_test: {who}"
        );
        assert_eq!(
            code(&email::clear_undeliverable_for(ctx, a, trader_id).await),
            want,
            "clear_undeliverable_for: {who}"
        );
    }
    // An admin's read-only token reads the log but sends and clears nothing.
    let admin_ro = person(&app, "root-ro@example.org", Role::Admin, true, Scope::Read).await;
    assert_eq!(
        code(&log::for_user(ctx, &admin_ro, trader_id, log::Query::default()).await),
        "ok"
    );
    assert_eq!(
        code(&admin::send_test(ctx, &admin_ro, trader_id, None).await),
        "forbidden"
    );
    assert_eq!(
        code(&email::clear_undeliverable_for(ctx, &admin_ro, trader_id).await),
        "forbidden"
    );
    assert_eq!(
        code(&log::for_user(ctx, &c.admin, nothing, log::Query::default()).await),
        "not_found"
    );
    assert_eq!(
        code(&admin::send_test(ctx, &c.system, nothing, None).await),
        "not_found"
    );
    assert_eq!(audited(&app, "notify_test_sent", &c.admin).await, 1);
    assert_eq!(audited(&app, "notify_test_sent", &c.system).await, 1);
    assert_eq!(audited(&app, "notify_test_sent", &c.trader).await, 0);

    // Clearing one's own undeliverable mark: settings writers, viewers included.
    for (who, a, want) in [
        ("anonymous", &c.anonymous, "unauthorized"),
        ("system (acts for nobody)", &c.system, "unauthorized"),
        ("read-only", &c.read_only, "forbidden"),
        ("viewer", &c.viewer, "ok"),
    ] {
        assert_eq!(
            code(&email::clear_undeliverable(ctx, a).await),
            want,
            "clear_undeliverable: {who}"
        );
    }
}
