//! The signed-in page cache (`server::signed_in_cache`): a session's backtests list comes from its last render
//! (with this response's own nonce) until something it shows changes, in this process or in the database
//! behind its back (as another process or a worker changes it); it never reaches another session, and a
//! revoked session loses it.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use reqwest::{
    Client, StatusCode,
    cookie::{CookieStore, Jar},
    redirect::Policy,
};
use sqlx::postgres::PgListener;
use uuid::Uuid;

use crate::{
    auth::{confirmed_user, post_form},
    helpers::{Options, TestApp, spawn_app_with},
};

/// Well below the cache's own backstop (`MAX_AGE`, 10 s): a change seen within this came by notification.
const HEARD_WITHIN: Duration = Duration::from_secs(4);

/// What the list says of a run whose job failed under it.
const LOST: &str = "the worker could not finish this run";

struct Trader {
    client: Client,
    jar: Arc<Jar>,
    id: Uuid,
}

impl Trader {
    /// The cookies the browser sends (session and CSRF), as one `Cookie` header.
    fn cookie(&self, app: &TestApp) -> String {
        self.jar
            .cookies(&app.url("/").parse().unwrap())
            .expect("cookies")
            .to_str()
            .unwrap()
            .to_owned()
    }
}

/// A signed-up, confirmed and signed-in browser whose cookies can be read.
async fn trader(app: &TestApp, email: &str, name: &str) -> Trader {
    let jar = Arc::new(Jar::default());
    let client = Client::builder()
        .cookie_provider(jar.clone())
        .redirect(Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let id = confirmed_user(app, &client, email, name, None).await;
    Trader { client, jar, id }
}

/// `GET /backtests` with exactly `cookie`, as wrk or a browser sends it: `(status, html, CSP nonce)`.
async fn list(app: &TestApp, cookie: &str) -> (StatusCode, String, String) {
    let client = Client::builder().redirect(Policy::none()).build().unwrap();
    let resp = client
        .get(app.url("/backtests"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let nonce = resp
        .headers()
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .and_then(|csp| csp.split("'nonce-").nth(1))
        .and_then(|s| s.split('\'').next())
        .unwrap_or_default()
        .to_owned();
    (status, resp.text().await.unwrap(), nonce)
}

/// Renames `user` without announcing it (triggers off for this transaction, which no code path does): a
/// page that still shows the old name afterwards came from the cache, where a render shows the new one.
async fn rename_quietly(app: &TestApp, user: Uuid, name: &str) {
    let mut tx = app.ctx.db.begin().await.unwrap();
    sqlx::query("set local session_replication_role = replica")
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query("update app_user set display_name = $2 where user_id = $1")
        .bind(user)
        .bind(name)
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

/// Whether `cookie`'s next list comes from the cache: `user` (whose page shows `name`) is renamed quietly to
/// a marker, the list asked for, and the name put back as quietly.
async fn from_cache(app: &TestApp, cookie: &str, user: Uuid, name: &str) -> bool {
    rename_quietly(app, user, "Quiet Marker").await;
    let (status, html, _) = list(app, cookie).await;
    rename_quietly(app, user, name).await;
    assert_eq!(status, StatusCode::OK);
    match (html.contains(name), html.contains("Quiet Marker")) {
        (true, false) => true,
        (false, true) => false,
        other => panic!("the list shows neither or both names: {other:?}"),
    }
}

/// Waits until `cookie`'s list is kept and served from the cache (the listener is connected), within `limit`.
async fn until_cached(app: &TestApp, cookie: &str, user: Uuid, name: &str, limit: Duration) {
    let start = Instant::now();
    loop {
        list(app, cookie).await;
        if from_cache(app, cookie, user, name).await {
            return;
        }
        assert!(
            start.elapsed() < limit,
            "the list is not served from the cache after {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls the list until `shows` holds of it; how long that took (panics after [`HEARD_WITHIN`]).
async fn until(
    app: &TestApp,
    cookie: &str,
    what: &str,
    shows: impl Fn(StatusCode, &str) -> bool,
) -> Duration {
    let start = Instant::now();
    loop {
        let (status, html, _) = list(app, cookie).await;
        if shows(status, &html) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < HEARD_WITHIN,
            "{what}: still not shown after {HEARD_WITHIN:?} (status {status})"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A running backtest run of `user`'s (first) strategy with its job, inserted as a worker would leave it:
/// `(run, job)`.
async fn running_run(app: &TestApp, user: Uuid) -> (Uuid, Uuid) {
    let instrument: i32 = sqlx::query_scalar(
        "insert into instrument (exchange, symbol, base, quote) values ('cachex', 'ETHBTC', 'ETH', 'BTC')
         on conflict (exchange, symbol) do update set exchange = excluded.exchange returning instrument_id",
    )
    .fetch_one(&app.ctx.db)
    .await
    .unwrap();
    let (run, job) = (Uuid::new_v4(), Uuid::new_v4());
    sqlx::query(
        "insert into job (job_id, queue, kind, status) values ($1, 'backtest', 'backtest', 'running')",
    )
    .bind(job)
    .execute(&app.ctx.db)
    .await
    .unwrap();
    sqlx::query(
        "insert into backtest_run (backtest_run_id, batch_id, user_id, strategy_id, strategy_version_id,
             instrument_id, timeframe, range_from, range_to, config, status, job_id)
         select $1, $1, s.user_id, s.strategy_id, v.strategy_version_id, $2, '5m',
                '2020-01-01', '2020-02-01', '{}', 'running', $3
           from strategy s join strategy_version v using (strategy_id) where s.user_id = $4
          order by s.created_at limit 1",
    )
    .bind(run)
    .bind(instrument)
    .bind(job)
    .bind(user)
    .execute(&app.ctx.db)
    .await
    .unwrap();
    (run, job)
}

async fn sql(app: &TestApp, query: &str, user: Uuid) {
    sqlx::query(query)
        .bind(user)
        .execute(&app.ctx.db)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_session_gets_its_last_render_until_something_on_the_page_changes() {
    let app = spawn_app_with(Options::default()).await;
    let ann = trader(&app, "ann.cache@example.com", "Ann Cache").await;
    let bob = trader(&app, "bob.cache@example.com", "Bob Cache").await;
    let cookie = ann.cookie(&app);

    // Rendered, then from the cache: the same page but for its own nonce.
    until_cached(&app, &cookie, ann.id, "Ann Cache", HEARD_WITHIN).await;
    let (status, first, n1) = list(&app, &cookie).await;
    assert_eq!(status, StatusCode::OK);
    assert!(first.contains("Ann Cache") && !first.contains("id=\"mail-banner\""));
    let (status, second, n2) = list(&app, &cookie).await;
    assert_eq!(status, StatusCode::OK);
    assert!(from_cache(&app, &cookie, ann.id, "Ann Cache").await);
    assert!(
        !n1.is_empty() && n1 != n2,
        "each response has its own nonce"
    );
    assert!(second.contains(&format!("nonce=\"{n2}\"")));
    assert!(!second.contains(&n1));
    assert_eq!(second.replace(&n2, &n1), first, "the same page otherwise");

    // Another session (another user) never gets it.
    let (_, bobs, _) = list(&app, &bob.cookie(&app)).await;
    assert!(bobs.contains("Bob Cache") && !bobs.contains("Ann Cache"));
    let (_, again, _) = list(&app, &cookie).await;
    assert!(again.contains("Ann Cache") && !again.contains("Bob Cache"));

    // Changed behind the process's back (another process, a worker, psql): heard by notification.
    sql(
        &app,
        "update app_user set display_name = 'Ann Renamed' where user_id = $1",
        ann.id,
    )
    .await;
    until(&app, &cookie, "a new display name", |_, h| {
        h.contains("Ann Renamed")
    })
    .await;
    // A change to a table that can concern anyone (the mail server refused Ann's address).
    sqlx::query(
        "insert into mail_suppression (address, reason) values ('ann.cache@example.com', 'manual')",
    )
    .execute(&app.ctx.db)
    .await
    .unwrap();
    until(&app, &cookie, "the mail banner", |_, h| {
        h.contains("id=\"mail-banner\"")
    })
    .await;
    // The maintenance banner, which a process reads from its own short cache: cleared with the pages.
    sqlx::query("update platform_settings set banner = 'Cache banner 42'")
        .execute(&app.ctx.db)
        .await
        .unwrap();
    until(&app, &cookie, "the maintenance banner", |_, h| {
        h.contains("Cache banner 42")
    })
    .await;
    // Bob's change leaves Ann's page kept: once Bob's own page shows it (his signal was handled), Ann's still
    // comes from the cache.
    let bob_cookie = bob.cookie(&app);
    list(&app, &bob_cookie).await;
    list(&app, &cookie).await;
    sql(
        &app,
        "update app_user set display_name = 'Bob Renamed' where user_id = $1",
        bob.id,
    )
    .await;
    until(&app, &bob_cookie, "Bob's change", |_, h| {
        h.contains("Bob Renamed")
    })
    .await;
    assert!(
        from_cache(&app, &cookie, ann.id, "Ann Renamed").await,
        "another user's change"
    );

    // A write of this session shows at once on its next page (this process forgets before answering).
    let resp = post_form(
        &app,
        &ann.client,
        "/strategies",
        "/strategies/create",
        &[("template", "sma_cross"), ("name", "Cache probe strategy")],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let (_, html, _) = list(&app, &cookie).await;
    assert!(html.contains("Cache probe strategy"), "the new strategy");
    // A run's job failing underneath it (worker gone) shows the run failed.
    let (_, job) = running_run(&app, ann.id).await;
    until(&app, &cookie, "a running run", |_, h| {
        h.contains("data-state=\"running\"")
    })
    .await;
    let (_, html, _) = list(&app, &cookie).await;
    assert!(!html.contains(LOST), "not failed yet");
    sqlx::query("update job set status = 'failed' where job_id = $1")
        .bind(job)
        .execute(&app.ctx.db)
        .await
        .unwrap();
    until(&app, &cookie, "the run failed", |_, h| h.contains(LOST)).await;

    // Revoked elsewhere (sign-out everywhere from another device, an admin): the cookie gets nothing of Ann's.
    sql(
        &app,
        "update user_session set revoked_at = now() where user_id = $1",
        ann.id,
    )
    .await;
    until(&app, &cookie, "the session's end", |_, h| {
        !h.contains("Ann Renamed")
    })
    .await;
}

#[tokio::test]
async fn a_lost_listener_reconnects_and_changes_are_heard_again() {
    let app = spawn_app_with(Options::default()).await;
    let ann = trader(&app, "ann.relisten@example.com", "Ann Listen").await;
    let cookie = ann.cookie(&app);
    until_cached(&app, &cookie, ann.id, "Ann Listen", HEARD_WITHIN).await;
    let listener = || async {
        sqlx::query_scalar::<_, i32>(
            "select pid from pg_stat_activity
              where datname = current_database() and query ilike 'listen%page_change%'",
        )
        .fetch_all(&app.ctx.db)
        .await
        .unwrap()
    };
    let pids = listener().await;
    assert_eq!(pids.len(), 1, "the process's one listener");
    sqlx::query("select pg_terminate_backend($1)")
        .bind(pids[0])
        .execute(&app.ctx.db)
        .await
        .unwrap();
    // The listener comes back (1 s back-off) on a new connection and listens again: the cache serves again,
    // and a change after that is heard.
    let start = Instant::now();
    while listener().await.iter().all(|p| *p == pids[0]) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the listener is back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    until_cached(&app, &cookie, ann.id, "Ann Listen", Duration::from_secs(10)).await;
    sql(
        &app,
        "update app_user set display_name = 'Ann Heard' where user_id = $1",
        ann.id,
    )
    .await;
    until(&app, &cookie, "a change after reconnecting", |_, h| {
        h.contains("Ann Heard")
    })
    .await;
}

#[tokio::test]
async fn requests_at_once_for_a_page_not_kept_each_get_it_with_their_own_nonce() {
    let app = spawn_app_with(Options::default()).await;
    let ann = trader(&app, "ann.burst@example.com", "Ann Burst").await;
    let cookie = ann.cookie(&app);
    until_cached(&app, &cookie, ann.id, "Ann Burst", HEARD_WITHIN).await;
    let waited = || async {
        let metrics = app.get("/metrics").await.text().await.unwrap();
        metrics
            .lines()
            .filter(|l| {
                l.starts_with("signed_in_page_cache_total{") && l.contains("result=\"waited\"")
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>()
    };
    let before = waited().await;
    // The session's own write forgets its page; then many requests for it at once (every connection of a
    // client when a page's time is up): one renders, the others wait for its page, and each is answered
    // with its own nonce, showing the write.
    for round in 0..3 {
        let name = format!("Burst strategy {round}");
        let resp = post_form(
            &app,
            &ann.client,
            "/strategies",
            "/strategies/create",
            &[("template", "sma_cross"), ("name", &name)],
        )
        .await;
        assert_eq!(resp.status(), StatusCode::SEE_OTHER);
        let pages = futures::future::join_all((0..24).map(|_| list(&app, &cookie))).await;
        let (_, first, n1) = &pages[0];
        assert!(first.contains(&name), "the write shows");
        let mut nonces = std::collections::HashSet::new();
        for (status, html, nonce) in &pages {
            assert_eq!(*status, StatusCode::OK);
            assert!(html.contains(&format!("nonce=\"{nonce}\"")));
            assert_eq!(
                &html.replace(nonce, n1),
                first,
                "the same page but for its nonce"
            );
            nonces.insert(nonce.clone());
        }
        assert_eq!(nonces.len(), pages.len(), "each response has its own nonce");
        // Kept (the write's own change signal may forget it once more when it arrives).
        until_cached(&app, &cookie, ann.id, "Ann Burst", HEARD_WITHIN).await;
    }
    // Some of them were answered with another's render (24 at once, three times: never all one by one).
    assert!(waited().await > before);
}

/// The `page_change` signals `query` sends (read up to a marker sent after it, so "none" is not a timeout).
async fn signals(app: &TestApp, l: &mut PgListener, query: &str) -> Vec<String> {
    sqlx::query(query).execute(&app.ctx.db).await.unwrap();
    sqlx::query("select pg_notify('page_change', 'marker')")
        .execute(&app.ctx.db)
        .await
        .unwrap();
    let mut heard = Vec::new();
    loop {
        let n = tokio::time::timeout(Duration::from_secs(5), l.recv())
            .await
            .expect("the marker arrives")
            .unwrap();
        if n.payload() == "marker" {
            return heard;
        }
        heard.push(n.payload().to_owned());
    }
}

#[tokio::test]
async fn only_changes_a_page_can_show_are_announced() {
    let app = spawn_app_with(Options::default()).await;
    let ann = trader(&app, "ann.signals@example.com", "Ann Signals").await;
    let resp = post_form(
        &app,
        &ann.client,
        "/strategies",
        "/strategies/create",
        &[("template", "sma_cross"), ("name", "Signals")],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let (run, job) = running_run(&app, ann.id).await;
    let mut l = PgListener::connect_with(&app.ctx.db).await.unwrap();
    l.listen("page_change").await.unwrap();
    let ann_id = ann.id.to_string();
    let cases: &[(&str, &[&str])] = &[
        // A session's use, a run's progress, a no-op upsert of an instrument: nothing a page shows.
        ("update user_session set last_seen_at = now()", &[]),
        (&format!("update backtest_run set progress = 0.5 where backtest_run_id = '{run}'"), &[]),
        (
            "insert into instrument (exchange, symbol, base, quote) values ('cachex', 'ETHBTC', 'ETH', 'BTC')
             on conflict (exchange, symbol) do update set exchange = excluded.exchange",
            &[],
        ),
        ("update platform_settings set updated_at = now()", &[]),
        // A lease renewal of the run's job.
        (&format!("update job set lease_until = now() where job_id = '{job}'"), &[]),
        // What pages show: the user's, or everyone's.
        (&format!("update job set status = 'failed' where job_id = '{job}'"), &[&ann_id]),
        (&format!("update backtest_run set status = 'failed' where backtest_run_id = '{run}'"), &[&ann_id]),
        // The job of a finished run changes nothing on the list (housekeeping prunes them).
        (&format!("delete from job where job_id = '{job}'"), &[]),
        ("update instrument set active = false where exchange = 'cachex'", &["*"]),
        ("update platform_settings set banner = 'x'", &["*"]),
        ("insert into mail_suppression (address, reason) values ('ann.signals@example.com', 'manual')", &[&ann_id]),
        ("insert into mail_suppression (address, reason) values ('nobody@example.com', 'manual')", &[]),
        ("update user_session set revoked_at = now()", &[&ann_id]),
    ];
    for (query, expected) in cases {
        assert_eq!(&signals(&app, &mut l, query).await, expected, "{query}");
    }
}
