//! Issue 11, "done when": a hostile-input suite thrown at one running `vortex serve` process (real binary,
//! Postgres, Redis): deep and wide strategy sources at the 64 KiB size limit, an oversized and a quadratic run
//! form, parallel password changes and wrong-password sign-ins, concurrent uploads by a non-admin. The process
//! must stay up (same pid, `/health` answering), answer each with a clear 4xx/503, and keep its peak resident
//! memory (VmHWM) under the documented budget for a web process with the default limits.

use std::time::Duration;

use backend::auth::{Scope, api_token};
use reqwest::{Client, StatusCode};
use serde_json::json;
use uuid::Uuid;

use crate::{
    accounts_hardening::{parallel_password_changes, signed_in_users},
    helpers::{TestDb, base_env},
    nginx::VortexProc,
};

/// Peak resident memory a web process may reach under this suite (MiB): DEPLOYMENT.md's web sizing.
const RSS_BUDGET_MIB: u64 = 512;

fn vm_hwm_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .expect("the server process still exists")
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Sources at the size limit that nest as deep or as long as 64 KiB allows.
fn hostile_sources() -> Vec<(&'static str, String)> {
    const LIMIT: usize = 64 * 1024;
    let fill = |unit: &str, head: &str, tail: &str| {
        let n = (LIMIT - head.len() - tail.len()) / unit.len();
        format!("{head}{}{tail}", unit.repeat(n))
    };
    vec![
        ("sum chain", fill("+1", "entry long when 1", " > 0\n")),
        ("look-backs", fill("[1]", "entry long when close", " > 0\n")),
        ("unary chain", fill("- ", "entry long when ", "1 > 0\n")),
        ("parentheses", {
            let n = (LIMIT - 40) / 2;
            format!("entry long when {}1{} > 0\n", "(".repeat(n), ")".repeat(n))
        }),
        ("nested calls", {
            let n = (LIMIT - 40) / 11;
            format!(
                "entry long when {}close{} > 0\n",
                "sma(".repeat(n),
                ", 2)".repeat(n)
            )
        }),
    ]
}

#[tokio::test]
async fn hostile_inputs_leave_the_server_up_with_clear_answers_and_bounded_memory() {
    let db = TestDb::new().await;
    let mut env = base_env(&db, &format!("vortex-test-{}", Uuid::new_v4().simple()));
    env.insert(
        "JWT_SECRET".into(),
        "a-test-jwt-secret-of-more-than-32-bytes-hostile".into(),
    );
    let server = VortexProc::start(&["serve", "--no-worker"], &env).await;
    let pid = server.pid();
    let base = format!("http://127.0.0.1:{}", server.port);
    env.insert("BIND_ADDR".into(), "127.0.0.1:0".into());
    let ctx = backend::Ctx::new(backend::settings::Settings::from_map(&env).unwrap()).unwrap();
    let start_kib = vm_hwm_kib(pid);
    let plain = Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap();

    // Signed-in, verified traders (browser sessions with their CSRF token) and a read-only API token.
    let users = signed_in_users(&ctx, &base, 40).await;
    let trader_id: Uuid = sqlx::query_scalar("select user_id from app_user where email = $1")
        .bind(&users[0].1)
        .fetch_one(&ctx.db)
        .await
        .unwrap();
    let (_, read_only) = api_token::create(&ctx.db, trader_id, "hostile", Scope::Read, None)
        .await
        .unwrap()
        .unwrap();

    // 1. Deep and wide sources at the size limit: the REST validate endpoint (read-only token) and the
    //    browser's (session + CSRF header) answer with a diagnostic, never by dying.
    for (what, source) in hostile_sources() {
        let r = plain
            .post(format!("{base}/api/v1/strategies/validate"))
            .bearer_auth(&read_only)
            .json(&json!({ "source": source }))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{what}: the server dropped the request: {e}"));
        let status = r.status();
        let body = r.text().await.unwrap();
        assert!(
            status.is_success() || status.is_client_error(),
            "{what}: {status} {body}"
        );
        assert!(
            body.contains("line") || body.contains("problems"),
            "{what}: {body}"
        );
        let (client, _, csrf) = &users[1];
        let r = client
            .post(format!("{base}/strategies/validate"))
            .header("x-csrf-token", csrf)
            .json(&json!({ "source": source }))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{what} (browser): the server dropped the request: {e}"));
        assert!(
            r.status().is_success() || r.status().is_client_error(),
            "{what} (browser): {}",
            r.status()
        );
    }

    // 2. An oversized and a quadratic run form: refused with a 4xx, quickly.
    let (client, _, csrf) = &users[2];
    let mut form = format!("csrf={csrf}&strategy_id={}", Uuid::new_v4());
    for i in 0..170_000 {
        form.push_str(&format!("&param.p{i}=1"));
    }
    let t = std::time::Instant::now();
    let r = client
        .post(format!("{base}/backtests/create"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .expect("the server answers a 170k-field form");
    assert!(
        r.status().is_client_error(),
        "170k-field form: {}",
        r.status()
    );
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());

    // 3. Concurrent uploads by a non-admin: refused (403 or back to the form), never read.
    let uploads = futures::future::join_all((0..8).map(|_| {
        let body = reqwest::multipart::Form::new()
            .text("csrf", csrf.clone())
            .text("pair", "ETH/BTC")
            .text("exchange", "binance")
            .part(
                "file",
                reqwest::multipart::Part::bytes(vec![b'1'; 8 << 20]).file_name("x.csv"),
            );
        client
            .post(format!("{base}/market/upload"))
            .header("x-csrf-token", csrf)
            .multipart(body)
            .send()
    }))
    .await;
    // The server may answer and close before the 8 MiB body is sent: a reset is a refusal too.
    for r in uploads.into_iter().flatten() {
        assert!(
            r.status().is_client_error() || r.status().is_redirection(),
            "non-admin upload: {}",
            r.status()
        );
        assert!(
            !r.headers()
                .get("location")
                .is_some_and(|l| l.to_str().unwrap_or("").contains("uploaded=")),
            "a non-admin upload was stored"
        );
    }

    // 4. Parallel wrong-password sign-ins at one account: each answered, none a 5xx other than 503.
    let email = users[3].1.clone();
    let signins = futures::future::join_all((0..30).map(|_| {
        let c = Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .cookie_store(true)
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let (base, email) = (base.clone(), email.clone());
        async move {
            let html = c
                .get(format!("{base}/signin"))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            const META: &str = r#"name="csrf-token" content=""#;
            let start = html.find(META).expect("csrf meta") + META.len();
            let csrf = html[start..].split('"').next().unwrap().to_owned();
            c.post(format!("{base}/auth/signin"))
                .form(&[
                    ("email", email.as_str()),
                    ("password", "not the password at all"),
                    ("csrf", csrf.as_str()),
                ])
                .send()
                .await
                .unwrap()
                .status()
        }
    }))
    .await;
    for s in &signins {
        assert!(
            !s.is_server_error() || *s == StatusCode::SERVICE_UNAVAILABLE,
            "sign-in: {s}"
        );
    }

    // 5. Forty parallel password changes (argon2, 19 MiB each): 303, or 503/429 with Retry-After (the account
    //    guessed at above is rate-limited).
    let changes = parallel_password_changes(&base, &users).await;
    for (status, _, retry) in &changes {
        assert!(
            *status == StatusCode::SEE_OTHER
                || ((*status == StatusCode::SERVICE_UNAVAILABLE
                    || *status == StatusCode::TOO_MANY_REQUESTS)
                    && retry.is_some()),
            "password change: {status}"
        );
    }

    // The same process is still up and answering, within its memory budget.
    assert_eq!(server.pid(), pid);
    assert_eq!(
        plain
            .get(format!("{base}/health"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK,
        "the server survived"
    );
    let peak = vm_hwm_kib(pid) / 1024;
    eprintln!(
        "hostile suite: vortex serve (pid {pid}) peak RSS {peak} MiB (at start {} MiB; budget {RSS_BUDGET_MIB} MiB)",
        start_kib / 1024
    );
    assert!(peak < RSS_BUDGET_MIB, "peak RSS {peak} MiB");
}
