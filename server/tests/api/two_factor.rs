//! Two-factor sign-in (TOTP) end to end: enrolment on the account page, the two-step sign-in, refused wrong and
//! replayed codes, single-use recovery codes, regenerating and turning off, the admin reset (audited, mailed)
//! and the "mandatory for admins" platform setting; API tokens keep working.

use std::time::Duration;

use backend::auth::totp;
use reqwest::{Client, StatusCode};
use uuid::Uuid;

use crate::{
    auth::{PASSWORD, app_with_mail, browser, location, page_text, post_form, sign_in},
    helpers::TestApp,
    plans::{Person, person},
};

fn now_step() -> i64 {
    totp::step_of(chrono::Utc::now().timestamp())
}

/// The first run of at least `min` characters of `alphabet` after `marker` in `html`.
fn after(html: &str, marker: &str, min: usize, alphabet: impl Fn(char) -> bool) -> Option<String> {
    let start = html.find(marker)? + marker.len();
    let mut run = String::new();
    for ch in html[start..].chars() {
        if alphabet(ch) {
            run.push(ch);
        } else if run.len() >= min {
            return Some(run);
        } else {
            run.clear();
        }
    }
    None
}

/// The recovery codes shown on the account page (empty when none are shown).
fn shown_codes(html: &str) -> Vec<String> {
    html.match_indices("class=\"recovery-code\"")
        .filter_map(|(i, _)| {
            after(&html[i..], "recovery-code\"", 19, |c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'
            })
        })
        .collect()
}

/// Turns on two-factor sign-in for the signed-in `p` through the account page's forms; the secret and the
/// recovery codes.
async fn enrol(app: &TestApp, p: &Person) -> (Vec<u8>, Vec<String>) {
    let resp = post_form(
        app,
        &p.browser,
        "/account",
        "/account/two-factor/start",
        &[("current_password", PASSWORD)],
    )
    .await;
    assert_eq!(location(&resp), "/account?ok=two_factor_started#two-factor");
    let page = page_text(app, &p.browser, "/account").await;
    assert!(page.contains("otpauth://totp/Vortex:"), "{page}");
    let secret = after(&page, "id=\"two-factor-secret\"", 32, |c| {
        c.is_ascii_uppercase() || ('2'..='7').contains(&c)
    })
    .expect("the secret is shown");
    let secret = totp::base32_decode(&secret).unwrap();
    assert_eq!(secret.len(), totp::SECRET_LEN);
    // A wrong code does not turn it on.
    let wrong = totp::code_at(&secret, now_step() + 7);
    let resp = post_form(
        app,
        &p.browser,
        "/account",
        "/account/two-factor/confirm",
        &[("code", &wrong)],
    )
    .await;
    assert_eq!(location(&resp), "/account?error=two_factor_code#two-factor");
    let code = totp::code_at(&secret, now_step());
    let resp = post_form(
        app,
        &p.browser,
        "/account",
        "/account/two-factor/confirm",
        &[("code", &code)],
    )
    .await;
    assert_eq!(location(&resp), "/account?ok=two_factor_enabled#two-factor");
    let page = page_text(app, &p.browser, "/account").await;
    let codes = shown_codes(&page);
    assert_eq!(codes.len(), totp::RECOVERY_CODES, "{page}");
    // Shown once.
    let page = page_text(app, &p.browser, "/account").await;
    assert!(shown_codes(&page).is_empty());
    assert!(page.contains("id=\"codes-left\""), "{page}");
    (secret, codes)
}

/// Signs in with the password; the location answered (the second step when two-factor sign-in is on).
async fn password_step(app: &TestApp, client: &Client, email: &str) -> String {
    let resp = sign_in(app, client, email, PASSWORD).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    location(&resp)
}

async fn code_step(app: &TestApp, client: &Client, code: &str) -> String {
    let resp = post_form(
        app,
        client,
        "/signin/two-factor",
        "/auth/two-factor",
        &[("code", code), ("next", "/strategies")],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER, "{resp:?}");
    location(&resp)
}

async fn signed_in(app: &TestApp, client: &Client) -> bool {
    client
        .get(app.url("/account"))
        .send()
        .await
        .unwrap()
        .status()
        == StatusCode::OK
}

async fn count(app: &TestApp, sql: &str, user: Uuid) -> i64 {
    sqlx::query_scalar(sql)
        .bind(user)
        .fetch_one(&app.ctx.db)
        .await
        .unwrap()
}

async fn audits(app: &TestApp, event: &str, user: Uuid) -> i64 {
    sqlx::query_scalar("select count(*) from audit_event where event = $1 and user_id = $2")
        .bind(event)
        .bind(user)
        .fetch_one(&app.ctx.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn two_factor_sign_in_needs_a_fresh_code_and_recovery_codes_work_once() {
    let (app, sink) = app_with_mail().await;
    let ann = person(&app, "ann@example.org", "trader").await;
    // Another browser signed in with the password alone before two-factor sign-in is turned on.
    let other = browser();
    password_step(&app, &other, &ann.email).await;
    assert!(signed_in(&app, &other).await);
    let (secret, codes) = enrol(&app, &ann).await;
    // Turning it on ends that session (it never gave the second factor) and keeps the one that turned it on.
    assert!(!signed_in(&app, &other).await);
    assert!(signed_in(&app, &ann.browser).await);
    let ended: i64 = sqlx::query_scalar(
        "select (detail->>'sessions_ended')::bigint from audit_event where user_id = $1 and event = 'two_factor_enabled'",
    )
    .bind(ann.id)
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    assert_eq!(ended, 1);
    // The step the enrolment's code used.
    let step: i64 = sqlx::query_scalar("select last_step from user_totp where user_id = $1")
        .bind(ann.id)
        .fetch_one(&app.ctx.db)
        .await
        .unwrap();

    // The security notice, and the secret kept only encrypted (never in the audit trail).
    sink.wait_for_text(
        &ann.email,
        &["Two-factor sign-in is now on"],
        Duration::from_secs(20),
    )
    .await;
    let stored: Vec<u8> = sqlx::query_scalar("select secret_enc from user_totp where user_id = $1")
        .bind(ann.id)
        .fetch_one(&app.ctx.db)
        .await
        .unwrap();
    assert!(!stored.windows(secret.len()).any(|w| w == secret.as_slice()));
    let b32 = totp::base32_encode(&secret);
    let leaked = count(
        &app,
        &format!(
            "select count(*) from audit_event where user_id = $1 and detail::text like '%{b32}%'"
        ),
        ann.id,
    )
    .await;
    assert_eq!(leaked, 0);
    assert_eq!(audits(&app, "two_factor_enabled", ann.id).await, 1);

    // The password alone no longer signs in: the second step asks for the code.
    let b = browser();
    let to = password_step(&app, &b, &ann.email).await;
    assert!(to.starts_with("/signin/two-factor"), "{to}");
    assert!(!signed_in(&app, &b).await);
    let page = page_text(&app, &b, &to).await;
    assert!(page.contains("two-factor-code"), "{page}");
    // A wrong code is refused and counted.
    let wrong = totp::code_at(&secret, step + 9);
    assert!(
        code_step(&app, &b, &wrong)
            .await
            .contains("error=two_factor_code")
    );
    assert!(!signed_in(&app, &b).await);
    assert_eq!(audits(&app, "two_factor_failed", ann.id).await, 1);
    // The code of the step the enrolment used is spent (no replay); the next step's code (±1 step drift) works.
    let spent = totp::code_at(&secret, step);
    assert!(
        code_step(&app, &b, &spent)
            .await
            .contains("error=two_factor_code")
    );
    let next = totp::code_at(&secret, step + 1);
    assert_eq!(code_step(&app, &b, &next).await, "/strategies");
    assert!(signed_in(&app, &b).await);
    let last: Option<i64> =
        sqlx::query_scalar("select last_step from user_totp where user_id = $1")
            .bind(ann.id)
            .fetch_one(&app.ctx.db)
            .await
            .unwrap();
    assert_eq!(last, Some(step + 1));

    // The same code again, from another browser (another sign-in): refused, it was used.
    let c = browser();
    assert!(
        password_step(&app, &c, &ann.email)
            .await
            .starts_with("/signin/two-factor")
    );
    assert!(
        code_step(&app, &c, &next)
            .await
            .contains("error=two_factor_code")
    );
    // A recovery code works once (any case, with or without its dash).
    assert_eq!(
        code_step(&app, &c, &codes[0].to_uppercase().replace('-', " ")).await,
        "/strategies"
    );
    assert!(signed_in(&app, &c).await);
    assert_eq!(
        audits(&app, "two_factor_recovery_code_used", ann.id).await,
        1
    );
    let d = browser();
    assert!(
        password_step(&app, &d, &ann.email)
            .await
            .starts_with("/signin/two-factor")
    );
    assert!(
        code_step(&app, &d, &codes[0])
            .await
            .contains("error=two_factor_code")
    );
    // A pending sign-in allows a few attempts, then the password is needed again.
    const FAILED_NOTICES: &str = "select count(*) from notify_event
         where user_id = $1 and event_type = 'security.two_factor_failed'";
    for i in 0..4 {
        assert!(
            code_step(&app, &d, "123 456 7")
                .await
                .contains("error=two_factor_code")
        );
        // The owner is told once the pending sign-in has used up its attempts (someone has the password),
        // not at a first typo.
        assert_eq!(
            count(&app, FAILED_NOTICES, ann.id).await,
            i64::from(i == 3),
            "after wrong code {}",
            i + 2
        );
    }
    let body: String = sqlx::query_scalar(
        "select payload::text from notify_event
          where user_id = $1 and event_type = 'security.two_factor_failed'",
    )
    .bind(ann.id)
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    assert!(body.contains("\"failures\""), "{body}");
    assert_eq!(
        code_step(&app, &d, &codes[1]).await,
        "/signin?error=two_factor_expired"
    );
    assert!(!signed_in(&app, &d).await);
    // Without the pending sign-in's cookie there is nothing to complete.
    assert_eq!(
        code_step(&app, &browser(), &codes[1]).await,
        "/signin?error=two_factor_expired"
    );

    // Stored salted with the account (not the bare SHA-256 of the code).
    let stored: Vec<String> =
        sqlx::query_scalar("select code_hash from user_recovery_code where user_id = $1")
            .bind(ann.id)
            .fetch_all(&app.ctx.db)
            .await
            .unwrap();
    assert_eq!(stored.len(), codes.len());
    for code in &codes {
        assert!(
            stored.contains(&totp::recovery_hash(ann.id, code).unwrap()),
            "{code}"
        );
        let bare = backend::settings::hex(&backend::auth::sha256(&code.replace('-', "")));
        assert!(!stored.contains(&bare));
    }
    // A 10-character code issued by an earlier release (stored as its unsalted SHA-256) still works, once.
    let legacy = "abcde-fghij";
    sqlx::query(
        "update user_recovery_code set code_hash = $3 where user_id = $1 and code_hash = $2",
    )
    .bind(ann.id)
    .bind(totp::recovery_hash(ann.id, &codes[2]).unwrap())
    .bind(backend::settings::hex(&backend::auth::sha256("abcdefghij")))
    .execute(&app.ctx.db)
    .await
    .unwrap();
    for expect_ok in [true, false] {
        let e = browser();
        assert!(
            password_step(&app, &e, &ann.email)
                .await
                .starts_with("/signin/two-factor")
        );
        let to = code_step(&app, &e, &legacy.to_uppercase()).await;
        if expect_ok {
            assert_eq!(to, "/strategies");
        } else {
            assert!(to.contains("error=two_factor_code"), "{to}");
        }
    }

    // The REST API keeps working with the API token.
    let resp = app
        .client
        .get(app.url("/api/v1/me"))
        .bearer_auth(&ann.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);

    // More wrong codes until the account's limit: the owner is not mailed again within the same 15 minutes.
    let window = || chrono::Utc::now().timestamp().div_euclid(900);
    let before = window();
    let f = browser();
    assert!(
        password_step(&app, &f, &ann.email)
            .await
            .starts_with("/signin/two-factor")
    );
    let mut ended = false;
    for _ in 0..6 {
        let resp = post_form(
            &app,
            &f,
            "/signin/two-factor",
            "/auth/two-factor",
            &[("code", "000 000"), ("next", "/strategies")],
        )
        .await;
        // 429 at the account's limit; the sign-in's own end (its attempts used up) sends back to sign in.
        if resp.status() == StatusCode::TOO_MANY_REQUESTS
            || !location(&resp).contains("error=two_factor_code")
        {
            ended = true;
            break;
        }
    }
    assert!(
        ended,
        "the pending sign-in ended (its attempts or the account limit)"
    );
    if window() == before {
        assert_eq!(count(&app, FAILED_NOTICES, ann.id).await, 1);
    }
}

#[tokio::test]
async fn two_factor_a_pending_enrolment_is_read_and_confirmed_only_by_the_session_that_started_it()
{
    let (app, _sink) = app_with_mail().await;
    let ann = person(&app, "ann@example.org", "trader").await;
    // A second browser session of the same account (a stolen cookie, say).
    let other = browser();
    assert_eq!(password_step(&app, &other, &ann.email).await, "/account");
    let resp = post_form(
        &app,
        &ann.browser,
        "/account",
        "/account/two-factor/start",
        &[("current_password", PASSWORD)],
    )
    .await;
    assert_eq!(location(&resp), "/account?ok=two_factor_started#two-factor");
    let page = page_text(&app, &ann.browser, "/account").await;
    let secret = after(&page, "id=\"two-factor-secret\"", 32, |c| {
        c.is_ascii_uppercase() || ('2'..='7').contains(&c)
    })
    .expect("the secret is shown to the session that started it");
    let secret = totp::base32_decode(&secret).unwrap();
    // The other session sees no secret and cannot confirm, even with a right code.
    let seen = page_text(&app, &other, "/account").await;
    assert!(!seen.contains("otpauth://"), "{seen}");
    assert!(!seen.contains("id=\"two-factor-secret\""), "{seen}");
    let code = totp::code_at(&secret, now_step());
    let resp = post_form(
        &app,
        &other,
        "/account",
        "/account/two-factor/confirm",
        &[("code", &code)],
    )
    .await;
    assert!(
        !location(&resp).contains("ok=two_factor_enabled"),
        "{resp:?}"
    );
    let on: i64 = sqlx::query_scalar(
        "select count(*) from user_totp where user_id = $1 and enabled_at is not null",
    )
    .bind(ann.id)
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    assert_eq!(on, 0);
    // The starting session confirms; the sign-in then reads the secret (sealed again with the account key).
    let resp = post_form(
        &app,
        &ann.browser,
        "/account",
        "/account/two-factor/confirm",
        &[("code", &code)],
    )
    .await;
    assert_eq!(location(&resp), "/account?ok=two_factor_enabled#two-factor");
    let c = browser();
    assert!(
        password_step(&app, &c, &ann.email)
            .await
            .starts_with("/signin/two-factor")
    );
    let next = totp::code_at(&secret, now_step() + 1);
    assert_eq!(code_step(&app, &c, &next).await, "/strategies");
}

#[tokio::test]
async fn two_factor_new_recovery_codes_and_turning_off_need_a_code_or_the_password() {
    let (app, sink) = app_with_mail().await;
    let ann = person(&app, "ann@example.org", "trader").await;
    let (_secret, codes) = enrol(&app, &ann).await;

    // A wrong password or code changes nothing.
    let resp = post_form(
        &app,
        &ann.browser,
        "/account",
        "/account/two-factor/recovery-codes",
        &[("current_password", "not my password at all")],
    )
    .await;
    assert_eq!(
        location(&resp),
        "/account?error=current_password#two-factor"
    );
    let resp = post_form(
        &app,
        &ann.browser,
        "/account",
        "/account/two-factor/disable",
        &[("code", "999999")],
    )
    .await;
    assert!(
        location(&resp).contains("error=two_factor_code"),
        "{resp:?}"
    );
    // New codes with the password: the old ones stop working.
    let resp = post_form(
        &app,
        &ann.browser,
        "/account",
        "/account/two-factor/recovery-codes",
        &[("current_password", PASSWORD)],
    )
    .await;
    assert_eq!(location(&resp), "/account?ok=two_factor_codes#two-factor");
    let fresh = shown_codes(&page_text(&app, &ann.browser, "/account").await);
    assert_eq!(fresh.len(), totp::RECOVERY_CODES);
    assert!(!fresh.contains(&codes[0]));
    let b = browser();
    assert!(
        password_step(&app, &b, &ann.email)
            .await
            .starts_with("/signin/two-factor")
    );
    assert!(
        code_step(&app, &b, &codes[0])
            .await
            .contains("error=two_factor_code")
    );
    // Off with a (new) recovery code; then the password alone signs in again.
    let resp = post_form(
        &app,
        &ann.browser,
        "/account",
        "/account/two-factor/disable",
        &[("code", &fresh[3])],
    )
    .await;
    assert_eq!(
        location(&resp),
        "/account?ok=two_factor_disabled#two-factor"
    );
    assert_eq!(
        count(
            &app,
            "select count(*) from user_totp where user_id = $1",
            ann.id
        )
        .await,
        0
    );
    assert_eq!(
        count(
            &app,
            "select count(*) from user_recovery_code where user_id = $1",
            ann.id
        )
        .await,
        0
    );
    assert_eq!(
        password_step(&app, &browser(), &ann.email).await,
        "/account"
    );
    sink.wait_for_text(
        &ann.email,
        &["Two-factor sign-in is now off"],
        Duration::from_secs(20),
    )
    .await;
    assert_eq!(audits(&app, "two_factor_disabled", ann.id).await, 1);
    assert_eq!(
        audits(&app, "two_factor_recovery_codes_regenerated", ann.id).await,
        1
    );
}

#[tokio::test]
async fn two_factor_admin_reset_is_audited_and_mailed_and_the_admin_setting_sends_admins_to_enrol()
{
    let (app, sink) = app_with_mail().await;
    let root = person(&app, "root@example.org", "admin").await;
    let ann = person(&app, "ann@example.org", "trader").await;
    enrol(&app, &ann).await;
    let page = format!("/admin/users/{}", ann.id);
    let action = format!("/admin/users/{}/two-factor/reset", ann.id);

    // Not for traders.
    let resp = post_form(&app, &ann.browser, "/account", &action, &[]).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        count(
            &app,
            "select count(*) from user_totp where user_id = $1",
            ann.id
        )
        .await,
        1
    );
    // The admin resets it: audited (by whom), the user is mailed, the password alone signs in.
    assert!(
        page_text(&app, &root.browser, &page)
            .await
            .contains("two-factor-reset")
    );
    let resp = post_form(&app, &root.browser, &page, &action, &[]).await;
    assert_eq!(location(&resp), format!("{page}?ok=admin_two_factor_reset"));
    let actor: Option<Uuid> = sqlx::query_scalar(
        "select actor_id from audit_event where event = 'two_factor_reset_by_admin' and user_id = $1",
    )
    .bind(ann.id)
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    assert_eq!(actor, Some(root.id));
    sink.wait_for_text(
        &ann.email,
        &["An administrator turned off two-factor sign-in"],
        Duration::from_secs(20),
    )
    .await;
    assert_eq!(
        password_step(&app, &browser(), &ann.email).await,
        "/account"
    );

    // Mandatory for admins: the admin without it is sent to the account page for everything else.
    let resp = post_form(
        &app,
        &root.browser,
        "/admin",
        "/admin/settings",
        &[
            ("signup_policy", "open"),
            ("banner", ""),
            ("admin_two_factor_required", "on"),
        ],
    )
    .await;
    assert_eq!(location(&resp), "/admin?ok=admin_settings_saved");
    for path in [
        "/admin",
        "/strategies",
        "/admin/users",
        "/backtests/compare.json",
    ] {
        let resp = root.browser.get(app.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::SEE_OTHER, "{path}");
        assert_eq!(
            location(&resp),
            "/account?error=two_factor_required#two-factor",
            "{path}"
        );
    }
    let account = page_text(&app, &root.browser, "/account").await;
    assert!(account.contains("id=\"two-factor-required\""), "{account}");
    // Writes are refused too (the CSRF token comes from the account page, which stays reachable).
    let resp = post_form(&app, &root.browser, "/account", "/admin/invites", &[]).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    // Traders are not affected; the admin's API token still works.
    let resp = ann
        .browser
        .get(app.url("/strategies"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = app
        .client
        .get(app.url("/api/v1/admin/users"))
        .bearer_auth(&root.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    // Once enrolled, the console opens.
    enrol(&app, &root).await;
    let resp = root.browser.get(app.url("/admin")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let saved: bool = sqlx::query_scalar("select admin_two_factor_required from platform_settings")
        .fetch_one(&app.ctx.db)
        .await
        .unwrap();
    assert!(saved);
}

#[tokio::test]
async fn two_factor_parallel_wrong_codes_cannot_beat_the_account_limit() {
    let (app, _sink) = app_with_mail().await;
    let ann = person(&app, "par@example.org", "trader").await;
    let (secret, _) = enrol(&app, &ann).await;
    let step: i64 = sqlx::query_scalar("select last_step from user_totp where user_id = $1")
        .bind(ann.id)
        .fetch_one(&app.ctx.db)
        .await
        .unwrap();
    // Eight failures already in the window: two more are allowed.
    let earlier = backend::account::two_factor::FAILURES_PER_ACCOUNT - 2;
    sqlx::query(
        "insert into audit_event (user_id, event, detail)
         select $1, 'two_factor_failed', '{\"during\": \"signin\"}' from generate_series(1, $2)",
    )
    .bind(ann.id)
    .bind(earlier)
    .execute(&app.ctx.db)
    .await
    .unwrap();

    // Seven pending sign-ins: only the newest five stay open.
    let clients: Vec<Client> = (0..7).map(|_| browser()).collect();
    for c in &clients {
        let to = password_step(&app, c, &ann.email).await;
        assert!(to.starts_with("/signin/two-factor"), "{to}");
    }
    assert_eq!(
        count(
            &app,
            "select count(*) from signin_challenge where user_id = $1",
            ann.id
        )
        .await,
        backend::account::two_factor::MAX_OPEN_CHALLENGES
    );

    // Every sign-in tries all its attempts with wrong codes at once.
    let wrong = totp::code_at(&secret, step + 9);
    let (app_ref, wrong) = (&app, wrong.as_str());
    let tries = clients.iter().flat_map(|c| {
        (0..backend::account::two_factor::CHALLENGE_ATTEMPTS).map(move |_| async move {
            post_form(
                app_ref,
                c,
                "/signin/two-factor",
                "/auth/two-factor",
                &[("code", wrong), ("next", "/strategies")],
            )
            .await
        })
    });
    futures::future::join_all(tries).await;
    let failed = audits(&app, "two_factor_failed", ann.id).await;
    assert_eq!(
        failed,
        backend::account::two_factor::FAILURES_PER_ACCOUNT,
        "no more wrong codes were checked than the limit allows"
    );

    // The limit holds: now even the right code is refused.
    let c = browser();
    let to = password_step(&app, &c, &ann.email).await;
    assert!(to.starts_with("/signin/two-factor"), "{to}");
    let right = totp::code_at(&secret, step + 1);
    let resp = post_form(
        &app,
        &c,
        "/signin/two-factor",
        "/auth/two-factor",
        &[("code", right.as_str()), ("next", "/strategies")],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS, "{resp:?}");
    assert!(!signed_in(&app, &c).await);
}
