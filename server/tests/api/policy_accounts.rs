//! The account rules, decided once by the backend actions in `backend::account`: each rule called directly as
//! every kind of actor (anonymous, viewer, read-only token, unconfirmed trader, confirmed trader, admin,
//! system), asserting the decision and that the audit entry exists exactly when the effect committed; then
//! the same rules walked through every surface that exposes them (form post, REST, server function).

use backend::{
    Actor, Error, Surface,
    account::{admin, events, password, profile, reset, sessions, signin, tokens, verify},
    auth::{
        AuthUser, Credential, RequestMeta, Role, Scope, api_token, password as hashing, session,
        users,
    },
};
use serde_json::Value;
use uuid::Uuid;

use crate::{
    auth::PASSWORD,
    helpers::{TestApp, spawn_app},
};

mod surfaces;

/// One user of the world, with a live browser session.
struct Person {
    id: Uuid,
    email: String,
    role: Role,
    verified: bool,
    session_id: String,
    session_token: String,
}

/// Every kind of user, created directly in the database (one argon2 hash for all).
struct World {
    app: TestApp,
    viewer: Person,
    unverified: Person,
    trader: Person,
    admin: Person,
    /// The confirmed trader's read-only API token: (id, secret).
    read_token: (Uuid, String),
}

async fn person(app: &TestApp, hash: &str, name: &str, role: Role, verified: bool) -> Person {
    let email = format!("{name}@example.org");
    let mut conn = app.ctx.db.acquire().await.unwrap();
    let id = users::insert(&mut conn, &email, name, hash, role)
        .await
        .unwrap()
        .unwrap();
    if verified {
        users::mark_verified(&mut conn, id).await.unwrap();
    }
    drop(conn);
    let ctx = &app.ctx;
    let s = session::create(
        &ctx.db,
        &ctx.keys,
        &ctx.settings,
        id,
        &RequestMeta::new("127.0.0.1", "policy test"),
    )
    .await
    .unwrap();
    Person {
        id,
        email,
        role,
        verified,
        session_id: s.session_id,
        session_token: s.token,
    }
}

async fn world() -> World {
    let app = spawn_app().await;
    let hash = hashing::hash_blocking(PASSWORD).unwrap();
    let viewer = person(&app, &hash, "vera", Role::Viewer, true).await;
    let unverified = person(&app, &hash, "uli", Role::Trader, false).await;
    let trader = person(&app, &hash, "tom", Role::Trader, true).await;
    let admin = person(&app, &hash, "ada", Role::Admin, true).await;
    let (info, secret) = api_token::create(&app.ctx.db, trader.id, "ro", Scope::Read, None)
        .await
        .unwrap()
        .unwrap();
    World {
        app,
        viewer,
        unverified,
        trader,
        admin,
        read_token: (info.api_token_id, secret),
    }
}

fn meta() -> RequestMeta {
    RequestMeta::new("10.1.2.3", "policy test")
}

fn auth_user(p: &Person, credential: Credential) -> AuthUser {
    AuthUser {
        user_id: p.id,
        email: p.email.clone(),
        display_name: String::new(),
        role: p.role,
        email_verified: p.verified,
        time_zone: "UTC".into(),
        credential,
    }
}

fn as_session(p: &Person) -> Actor {
    let u = auth_user(p, Credential::Session(p.session_id.clone()));
    Actor::user(u, Surface::Web, meta(), None)
}

impl World {
    /// Every kind of actor, named.
    fn actors(&self) -> Vec<(&'static str, Actor)> {
        let token = Credential::ApiToken {
            token_id: self.read_token.0,
            scope: Scope::Read,
        };
        vec![
            ("anonymous", Actor::anonymous(Surface::Web, meta(), None)),
            ("viewer", as_session(&self.viewer)),
            (
                "read-only token",
                Actor::user(auth_user(&self.trader, token), Surface::Api, meta(), None),
            ),
            ("unconfirmed trader", as_session(&self.unverified)),
            ("confirmed trader", as_session(&self.trader)),
            ("admin", as_session(&self.admin)),
            ("system", Actor::system(Surface::Cli)),
        ]
    }

    /// Audit rows of `event` (about `user`, when given).
    async fn audited(&self, event: &str, user: Option<Uuid>) -> i64 {
        sqlx::query_scalar(
            "select count(*) from audit_event where event = $1 and ($2::uuid is null or user_id = $2)",
        )
        .bind(event)
        .bind(user)
        .fetch_one(&self.app.ctx.db)
        .await
        .unwrap()
    }
}

/// The decision as a code: "ok" or the backend error's code.
fn decision<T>(r: &Result<T, Error>) -> &'static str {
    match r {
        Ok(_) => "ok",
        Err(e) => e.code(),
    }
}

#[tokio::test]
async fn profile_changes_need_a_writer_and_are_audited_with_the_change() {
    let w = world().await;
    let expected = [
        ("anonymous", "unauthorized"),
        ("viewer", "forbidden"),
        ("read-only token", "forbidden"),
        ("unconfirmed trader", "ok"),
        ("confirmed trader", "ok"),
        ("admin", "ok"),
        ("system", "unauthorized"),
    ];
    for ((who, actor), (name, want)) in w.actors().into_iter().zip(expected) {
        assert_eq!(who, name);
        let before = w.audited("profile_updated", actor.user_id()).await;
        let input = profile::ProfileUpdate {
            display_name: Some(format!("{who} renamed")),
            time_zone: Some("Europe/Zurich".into()),
        };
        let r = profile::update(&w.app.ctx, &actor, input).await;
        assert_eq!(decision(&r), want, "{who}");
        let after = w.audited("profile_updated", actor.user_id()).await;
        assert_eq!(
            after - before,
            i64::from(want == "ok"),
            "{who}: audit iff saved"
        );
        if let Some(id) = actor.user_id() {
            let name: String =
                sqlx::query_scalar("select display_name from app_user where user_id = $1")
                    .bind(id)
                    .fetch_one(&w.app.ctx.db)
                    .await
                    .unwrap();
            assert_eq!(name == format!("{who} renamed"), want == "ok", "{who}");
        }
    }
    // A field error is refused before anything is written (and names the field).
    let r = profile::update(
        &w.app.ctx,
        &as_session(&w.trader),
        profile::ProfileUpdate {
            display_name: None,
            time_zone: Some("Mars/Olympus".into()),
        },
    )
    .await;
    assert!(matches!(r, Err(Error::Invalid { ref field, .. }) if field == "time_zone"));
}

#[tokio::test]
async fn token_creation_needs_a_confirmed_writer_and_the_current_password() {
    let w = world().await;
    let expected = [
        ("anonymous", "unauthorized"),
        ("viewer", "forbidden"),
        ("read-only token", "forbidden"),
        ("unconfirmed trader", "email_unconfirmed"),
        ("confirmed trader", "ok"),
        ("admin", "ok"),
        ("system", "unauthorized"),
    ];
    for ((who, actor), (name, want)) in w.actors().into_iter().zip(expected) {
        assert_eq!(who, name);
        let before = w.audited("token_created", actor.user_id()).await;
        let input = tokens::NewToken {
            name: format!("{who} token"),
            scope: "read_write".into(),
            expires_in_days: "30".into(),
            current_password: PASSWORD.into(),
        };
        let r = tokens::create(&w.app.ctx, &actor, input).await;
        assert_eq!(decision(&r), want, "{who}");
        let after = w.audited("token_created", actor.user_id()).await;
        assert_eq!(
            after - before,
            i64::from(want == "ok"),
            "{who}: audit iff created"
        );
        let rows: i64 = sqlx::query_scalar("select count(*) from api_token where name = $1")
            .bind(format!("{who} token"))
            .fetch_one(&w.app.ctx.db)
            .await
            .unwrap();
        assert_eq!(rows, i64::from(want == "ok"), "{who}");
    }
    // A wrong current password: refused, nothing created, the failed check audited.
    let trader = as_session(&w.trader);
    let failed_before = w.audited("signin_failed", Some(w.trader.id)).await;
    let r = tokens::create(
        &w.app.ctx,
        &trader,
        tokens::NewToken {
            name: "stolen cookie".into(),
            scope: "read".into(),
            expires_in_days: String::new(),
            current_password: "not the password at all".into(),
        },
    )
    .await;
    assert!(
        matches!(r, Err(Error::Invalid { ref field, .. }) if field == "current_password"),
        "{:?}",
        r.err()
    );
    assert_eq!(
        w.audited("signin_failed", Some(w.trader.id)).await,
        failed_before + 1
    );
    // A taken name is a conflict, not a second token.
    let again = tokens::create(
        &w.app.ctx,
        &trader,
        tokens::NewToken {
            name: "confirmed trader token".into(),
            scope: "read".into(),
            expires_in_days: String::new(),
            current_password: PASSWORD.into(),
        },
    )
    .await;
    assert_eq!(decision(&again), "conflict");
}

#[tokio::test]
async fn everyones_audit_trail_is_for_admins_and_the_operator_own_trail_for_any_signed_in_user() {
    let w = world().await;
    let expected = [
        ("anonymous", "unauthorized", "unauthorized"),
        ("viewer", "forbidden", "ok"),
        ("read-only token", "forbidden", "ok"),
        ("unconfirmed trader", "forbidden", "ok"),
        ("confirmed trader", "forbidden", "ok"),
        ("admin", "ok", "ok"),
        ("system", "ok", "unauthorized"),
    ];
    // Something to read: one profile change each for two users.
    for p in [&w.trader, &w.admin] {
        profile::update(
            &w.app.ctx,
            &as_session(p),
            profile::ProfileUpdate::default(),
        )
        .await
        .unwrap();
    }
    for ((who, actor), (name, all, mine)) in w.actors().into_iter().zip(expected) {
        assert_eq!(who, name);
        let everyone =
            backend::admin::audit::page(&actor, &w.app.ctx, &Default::default(), None, 100)
                .await
                .map(|p| p.events);
        assert_eq!(decision(&everyone), all, "{who}: all");
        if let Ok(rows) = everyone {
            assert!(rows.len() >= 2, "{who}");
        }
        let own = events::mine(&w.app.ctx, &actor, 100).await;
        assert_eq!(decision(&own), mine, "{who}: mine");
        if let Ok(rows) = own {
            assert!(rows.iter().all(|r| r.user_id == actor.user_id()), "{who}");
        }
    }
}

#[tokio::test]
async fn a_session_can_be_revoked_only_by_its_owner() {
    let w = world().await;
    let ctx = &w.app.ctx;
    let admin_public = session::public_id(&w.admin.session_id);
    // Everyone but the admin: another user's session is not found, nothing ends, nothing is audited.
    for (who, actor) in w.actors() {
        if who == "admin" {
            continue;
        }
        let r = sessions::revoke(ctx, &actor, &admin_public).await;
        let want = if actor.user_id().is_some() {
            "not_found"
        } else {
            "unauthorized"
        };
        assert_eq!(decision(&r), want, "{who}");
    }
    assert_eq!(w.audited("session_revoked", None).await, 0);
    let live = |s: &str| {
        sqlx::query_scalar::<_, bool>(
            "select revoked_at is null from user_session where session_id = $1",
        )
        .bind(s.to_owned())
        .fetch_one(&ctx.db)
    };
    assert!(live(&w.admin.session_id).await.unwrap());
    // The owner ends their own session: it is the current one, audited with its public id.
    let r = sessions::revoke(ctx, &as_session(&w.admin), &admin_public)
        .await
        .unwrap();
    assert!(r.current);
    assert!(!live(&w.admin.session_id).await.unwrap());
    assert_eq!(w.audited("session_revoked", Some(w.admin.id)).await, 1);
}

#[tokio::test]
async fn sign_in_attempts_are_limited_per_account_and_client_and_only_successes_start_sessions() {
    let w = world().await;
    let ctx = &w.app.ctx;
    let anonymous = Actor::anonymous(Surface::Web, meta(), None);
    for _ in 0..5 {
        let r = signin::sign_in(ctx, &anonymous, &w.trader.email, "wrong wrong wrong".into()).await;
        assert!(
            matches!(r, Err(Error::Invalid { ref field, .. }) if field == "credentials"),
            "{:?}",
            r.err().map(|e| e.code())
        );
    }
    assert_eq!(w.audited("signin_failed", None).await, 5);
    // Past the free failures the next attempt waits, even with the right password: no check, no session.
    let r = signin::sign_in(ctx, &anonymous, &w.trader.email, PASSWORD.into()).await;
    assert_eq!(decision(&r), "rate_limited");
    assert!(r.err().and_then(|e| e.retry_after()).is_some());
    assert_eq!(w.audited("signin_succeeded", None).await, 0);
    // Another client is not slowed down by the stranger's guesses.
    let owner = Actor::anonymous(Surface::Web, RequestMeta::new("10.9.9.9", "owner"), None);
    let ok = signin::sign_in(ctx, &owner, &w.trader.email, PASSWORD.into())
        .await
        .unwrap()
        .done()
        .expect("no second step without two-factor sign-in");
    assert_eq!(ok.user.user_id, w.trader.id);
    assert_eq!(w.audited("signin_succeeded", Some(w.trader.id)).await, 1);
}

#[tokio::test]
async fn reset_requests_are_limited_per_address_and_client_and_audited_iff_accepted() {
    let w = world().await;
    let ctx = &w.app.ctx;
    let anonymous = Actor::anonymous(Surface::Web, meta(), None);
    for _ in 0..3 {
        reset::request_reset(ctx, &anonymous, &w.trader.email)
            .await
            .unwrap();
    }
    let r = reset::request_reset(ctx, &anonymous, &w.trader.email).await;
    assert_eq!(decision(&r), "rate_limited");
    assert_eq!(w.audited("password_reset_requested", None).await, 3);
    let mails: i64 = sqlx::query_scalar("select count(*) from email_outbox where to_address = $1")
        .bind(&w.trader.email)
        .fetch_one(&ctx.db)
        .await
        .unwrap();
    assert_eq!(mails, 3, "a mail exactly for each accepted request");
    let bad = reset::request_reset(ctx, &anonymous, "not an address").await;
    assert!(matches!(bad, Err(Error::Invalid { ref field, .. }) if field == "email"));
}

#[tokio::test]
async fn create_admin_is_for_the_operator_and_admins_only() {
    let w = world().await;
    let ctx = &w.app.ctx;
    let pass = Some("an admin passphrase of length".to_owned());
    for (who, actor) in w.actors() {
        let want = match who {
            "admin" | "system" => "ok",
            "anonymous" => "unauthorized",
            _ => "forbidden",
        };
        let email = format!("new-{}@example.org", who.replace(' ', "-"));
        let r = admin::create_or_promote(ctx, &actor, &email, pass.clone()).await;
        assert_eq!(decision(&r), want, "{who}");
        let made: i64 = sqlx::query_scalar(
            "select count(*) from app_user where email = $1 and role = 'admin' and email_verified_at is not null",
        )
        .bind(&email)
        .fetch_one(&ctx.db)
        .await
        .unwrap();
        assert_eq!(made, i64::from(want == "ok"), "{who}");
    }
    assert_eq!(w.audited("role_changed", None).await, 2);
    // The operator promotes an existing trader: their sessions end, audited as the CLI.
    let r = admin::create_or_promote(ctx, &Actor::system(Surface::Cli), &w.trader.email, None)
        .await
        .unwrap();
    assert_eq!(
        r.to_string(),
        format!("promoted {} to admin", w.trader.email)
    );
    let detail: Value = sqlx::query_scalar(
        "select detail from audit_event where event = 'role_changed' and user_id = $1",
    )
    .bind(w.trader.id)
    .fetch_one(&ctx.db)
    .await
    .unwrap();
    assert_eq!(detail["by"], "cli", "{detail}");
    assert_eq!(detail["from"], "trader", "{detail}");
    // A new account needs a password that meets the policy.
    let weak = admin::create_or_promote(
        ctx,
        &Actor::system(Surface::Cli),
        "root@example.org",
        Some("password1234".into()),
    )
    .await;
    assert!(weak.is_err_and(|e| e.to_string().contains("too common")));
}

#[tokio::test]
async fn password_changes_need_the_current_password_and_replace_the_session() {
    let w = world().await;
    let ctx = &w.app.ctx;
    let change = |current: &str, new: &str| password::ChangePassword {
        current_password: current.into(),
        new_password: new.into(),
        sign_out_others: false,
    };
    for (who, actor) in w.actors() {
        if matches!(who, "anonymous" | "system") {
            let r =
                password::change_password(ctx, &actor, change(PASSWORD, "a new long passphrase"))
                    .await;
            assert_eq!(decision(&r), "unauthorized", "{who}");
        }
    }
    let trader = as_session(&w.trader);
    let live = || {
        sqlx::query_scalar::<_, bool>(
            "select revoked_at is null from user_session where session_id = $1",
        )
        .bind(w.trader.session_id.clone())
        .fetch_one(&ctx.db)
    };
    // Wrong current password: refused, nothing changed or audited as a change.
    let r = password::change_password(
        ctx,
        &trader,
        change("not my password at all", "a new long passphrase"),
    )
    .await;
    assert!(matches!(r, Err(Error::Invalid { ref field, .. }) if field == "current_password"));
    // A new password the policy refuses: the rule is named.
    let r = password::change_password(ctx, &trader, change(PASSWORD, "short")).await;
    let e = r.err().unwrap();
    assert_eq!(
        backend::account::password_policy(&e),
        Some(backend::auth::password::PolicyError::TooShort)
    );
    assert_eq!(w.audited("password_changed", None).await, 0);
    assert!(live().await.unwrap());
    // The right one: changed, audited once, this session replaced by a new one.
    let new = password::change_password(ctx, &trader, change(PASSWORD, "a new long passphrase"))
        .await
        .unwrap();
    assert_eq!(w.audited("password_changed", Some(w.trader.id)).await, 1);
    assert!(!live().await.unwrap());
    assert_ne!(new.session_id, w.trader.session_id);
}

#[tokio::test]
async fn verification_links_go_to_signed_in_unconfirmed_users_within_the_limit() {
    let w = world().await;
    let ctx = &w.app.ctx;
    let anonymous = Actor::anonymous(Surface::Web, meta(), None);
    assert_eq!(
        decision(&verify::resend_verification(ctx, &anonymous).await),
        "unauthorized"
    );
    assert_eq!(
        verify::resend_verification(ctx, &as_session(&w.trader))
            .await
            .unwrap(),
        verify::Resent::AlreadyVerified
    );
    let unverified = as_session(&w.unverified);
    for _ in 0..3 {
        assert_eq!(
            verify::resend_verification(ctx, &unverified).await.unwrap(),
            verify::Resent::Sent
        );
    }
    let r = verify::resend_verification(ctx, &unverified).await;
    assert_eq!(decision(&r), "rate_limited");
    assert_eq!(w.audited("verification_requested", None).await, 3);
    let mails: i64 = sqlx::query_scalar("select count(*) from email_outbox")
        .fetch_one(&ctx.db)
        .await
        .unwrap();
    assert_eq!(mails, 3, "a mail exactly for each accepted request");
}
