use secrecy::ExposeSecret;

use super::*;

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn retry_policies_have_per_class_defaults_overrides_and_clear_errors() {
    let s = Settings::from_map(&env(&[])).unwrap();
    let r = s.jobs.retry;
    assert_eq!(r.for_kind("send_email").max_attempts, 12);
    assert_eq!(r.for_kind("backtest").max_attempts, 3);
    assert_eq!(r.for_kind("housekeeping").max_attempts, 5);
    // 10 s doubling, capped at 10 min: about an hour over 12 attempts.
    let mail = r.mail;
    let total: f64 = (1..12).map(|a| mail.nominal_delay(a).as_secs_f64()).sum();
    assert_eq!(mail.nominal_delay(1), Duration::from_secs(10));
    assert_eq!(mail.nominal_delay(3), Duration::from_secs(40));
    assert_eq!(mail.nominal_delay(9), Duration::from_secs(600));
    assert!((3000.0..4000.0).contains(&total), "{total}");
    for a in 1..12 {
        let d = mail.delay(a);
        assert!(d <= mail.nominal_delay(a) && d >= mail.nominal_delay(a).mul_f64(0.8));
    }

    let s = Settings::from_map(&env(&[
        ("JOB_RETRY_MAIL", "attempts=3, base_secs=0.5"),
        ("JOB_MAX_ATTEMPTS", "7"),
    ]))
    .unwrap();
    assert_eq!(s.jobs.retry.mail.max_attempts, 3);
    assert_eq!(s.jobs.retry.mail.base, Duration::from_millis(500));
    assert_eq!(
        s.jobs.retry.market.max_attempts, 7,
        "JOB_MAX_ATTEMPTS fills the rest"
    );

    let e = Settings::from_map(&env(&[(
        "JOB_RETRY_BACKTEST",
        "tries=2,base_secs=9,max_secs=1",
    )]))
    .unwrap_err()
    .to_string();
    assert!(e.contains("JOB_RETRY_BACKTEST: unknown key `tries`"), "{e}");
    assert!(
        e.contains("max_secs must not be smaller than base_secs"),
        "{e}"
    );
}

const GOOD_JWT: &str = "q8Zr3LkP0vN2xW7mB5tY9cF1hJ4sD6gA";
const GOOD_OPS: &str = "Tn4Vb8Xc2Zq6Wm0Er5Ty7Ui9Op3As1Df";

fn prod_base() -> Vec<(&'static str, &'static str)> {
    vec![
        ("APP_ENV", "production"),
        ("PUBLIC_URL", "https://vortex.example.org"),
        (
            "DATABASE_URL",
            "postgres://vortex:Hq7m2Lx9Pz4Kw8Rt@db:5432/vortex",
        ),
        ("REDIS_URL", "redis://redis:6379"),
        (
            "SMTP_URL",
            "smtps://mailer:Zy6Uv3Nw9Bq2Cs5D@smtp.mail.net:465",
        ),
        ("JWT_SECRET", GOOD_JWT),
        ("OPS_TOKEN", GOOD_OPS),
    ]
}

fn with(
    base: Vec<(&'static str, &'static str)>,
    k: &'static str,
    v: &'static str,
) -> HashMap<String, String> {
    let mut m = env(&base);
    m.insert(k.into(), v.into());
    m
}

fn problems_for(m: &HashMap<String, String>) -> Vec<ConfigProblem> {
    Settings::from_map(m).err().map(|e| e.0).unwrap_or_default()
}

#[test]
fn development_defaults_need_no_variables() {
    let s = Settings::from_map(&HashMap::new()).expect("defaults are valid");
    assert_eq!(s.app_env, AppEnv::Development);
    assert_eq!(s.bind_addr.to_string(), "127.0.0.1:3000");
    assert_eq!(s.log_format, LogFormat::Pretty);
    assert_eq!(
        s.allowed_origins(),
        vec!["http://127.0.0.1:3000".to_owned()]
    );
}

#[test]
fn a_strong_production_configuration_is_accepted() {
    let s = Settings::from_map(&env(&prod_base())).expect("valid");
    assert!(s.is_production());
    assert_eq!(s.log_format, LogFormat::Json);
}

#[test]
fn production_refuses_a_placeholder_jwt_secret_without_printing_it() {
    let m = with(prod_base(), "JWT_SECRET", "changeme");
    let err = Settings::from_map(&m).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("JWT_SECRET"), "{text}");
    assert!(!text.contains("changeme"), "secret value leaked: {text}");
}

#[test]
fn production_refuses_short_repeated_and_sequential_secrets() {
    for bad in [
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "abcdefghijklmnopqrstuvwxyz",
        "Xk29fLq0",
    ] {
        let m = with(prod_base(), "JWT_SECRET", bad);
        let p = problems_for(&m);
        assert!(p.iter().any(|p| p.variable == "JWT_SECRET"), "{bad}: {p:?}");
        assert!(p.iter().all(|p| !p.message.contains(bad)));
    }
}

#[test]
fn production_refuses_a_secret_reused_for_two_purposes() {
    let m = with(prod_base(), "OPS_TOKEN", GOOD_JWT);
    let p = problems_for(&m);
    assert!(
        p.iter()
            .any(|p| p.variable == "OPS_TOKEN" && p.message.contains("JWT_SECRET")),
        "{p:?}"
    );
}

#[test]
fn production_refuses_missing_secrets_and_plain_http() {
    let mut m = env(&prod_base());
    m.remove("JWT_SECRET");
    m.insert("PUBLIC_URL".into(), "http://vortex.example.org".into());
    let vars: Vec<String> = problems_for(&m).into_iter().map(|p| p.variable).collect();
    assert!(vars.contains(&"JWT_SECRET".to_owned()));
    assert!(vars.contains(&"PUBLIC_URL".to_owned()));
}

#[test]
fn production_refuses_placeholder_database_passwords() {
    let m = with(
        prod_base(),
        "DATABASE_URL",
        "postgres://vortex:changeme@db/vortex",
    );
    let p = problems_for(&m);
    assert!(p.iter().any(|p| p.variable == "DATABASE_URL"), "{p:?}");
}

#[test]
fn secrets_can_come_from_files_and_trailing_newlines_are_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jwt");
    std::fs::write(&path, format!("{GOOD_JWT}\n")).unwrap();
    let mut m = env(&prod_base());
    m.remove("JWT_SECRET");
    m.insert("JWT_SECRET_FILE".into(), path.display().to_string());
    let s = Settings::from_map(&m).expect("valid");
    assert_eq!(s.jwt_secret.expose_secret(), GOOD_JWT);
}

#[test]
fn setting_a_secret_twice_or_from_a_missing_file_is_an_error() {
    let m = with(prod_base(), "JWT_SECRET_FILE", "/nonexistent/jwt");
    assert!(problems_for(&m).iter().any(|p| p.variable == "JWT_SECRET"));
    let mut m = env(&prod_base());
    m.remove("JWT_SECRET");
    m.insert("JWT_SECRET_FILE".into(), "/nonexistent/jwt".into());
    assert!(
        problems_for(&m)
            .iter()
            .any(|p| p.variable == "JWT_SECRET_FILE")
    );
}

#[test]
fn malformed_values_name_their_variable() {
    let m = env(&[
        ("BIND_ADDR", "localhost"),
        ("DATABASE_URL", "mysql://x"),
        ("LOG_FORMAT", "xml"),
        ("WORKER_CONCURRENCY", "0"),
        ("CORS_ALLOWED_ORIGINS", "not a url"),
        ("TRUSTED_PROXIES", "10.0.0.0/99"),
    ]);
    let vars: Vec<String> = problems_for(&m).into_iter().map(|p| p.variable).collect();
    for v in [
        "BIND_ADDR",
        "DATABASE_URL",
        "LOG_FORMAT",
        "WORKER_CONCURRENCY",
        "CORS_ALLOWED_ORIGINS",
        "TRUSTED_PROXIES",
    ] {
        assert!(vars.contains(&v.to_owned()), "{v} missing from {vars:?}");
    }
}

#[test]
fn market_data_settings_have_defaults_and_are_validated() {
    let s = Settings::from_map(&HashMap::new()).unwrap();
    assert_eq!(s.market.data_url.as_str(), "https://api.binance.com/");
    assert_eq!(s.market.exchange, "binance");
    assert_eq!(s.market.page_limit, 1000);
    let s = Settings::from_map(&env(&[
        ("MARKET_DATA_URL", "http://127.0.0.1:9100"),
        ("MARKET_UPDATE_INTERVAL_SECS", "0"),
    ]))
    .unwrap();
    assert_eq!(s.market.data_url.port(), Some(9100));
    assert!(s.market.update_interval.is_zero());
    for (var, bad) in [
        ("MARKET_DATA_URL", "ftp://x"),
        ("MARKET_DATA_URL", "not a url"),
        ("MARKET_DATA_URL", "https://u:p@api.binance.com"),
        ("MARKET_DATA_EXCHANGE", "Binance!"),
        ("MARKET_PAGE_LIMIT", "5000"),
        ("MARKET_CHUNK_CANDLES", "1"),
    ] {
        let p = problems_for(&env(&[(var, bad)]));
        assert!(p.iter().any(|p| p.variable == var), "{var}={bad}: {p:?}");
    }
    let p = problems_for(&with(prod_base(), "MARKET_DATA_URL", "http://mock:9100"));
    assert!(p.iter().any(|p| p.variable == "MARKET_DATA_URL"), "{p:?}");
}

#[test]
fn ip_networks_match_addresses() {
    let n: IpNet = "10.0.0.0/8".parse().unwrap();
    assert!(n.contains("10.1.2.3".parse().unwrap()));
    assert!(!n.contains("11.0.0.1".parse().unwrap()));
    let one: IpNet = "127.0.0.1".parse().unwrap();
    assert!(one.contains("127.0.0.1".parse().unwrap()));
    assert!(one.contains("::ffff:127.0.0.1".parse().unwrap()));
    let v6: IpNet = "fd00::/8".parse().unwrap();
    assert!(v6.contains("fd12::1".parse().unwrap()));
}

#[test]
fn webhook_test_hosts_are_refused_outside_app_env_test() {
    let m = with(prod_base(), "WEBHOOK_TEST_HOSTS", "sink.test=127.0.0.1");
    let p = problems_for(&m);
    assert!(
        p.iter().any(|p| p.variable == "WEBHOOK_TEST_HOSTS"),
        "{p:?}"
    );
    let dev = env(&[("WEBHOOK_TEST_HOSTS", "sink.test=127.0.0.1")]);
    assert!(
        problems_for(&dev)
            .iter()
            .any(|p| p.variable == "WEBHOOK_TEST_HOSTS")
    );
    let test = env(&[
        ("APP_ENV", "test"),
        ("DATABASE_URL", "postgres://postgres@127.0.0.1/x"),
        ("REDIS_URL", "redis://127.0.0.1"),
        (
            "JWT_SECRET",
            "test-secret-that-is-long-enough-for-tests-0123456789",
        ),
        ("WEBHOOK_TEST_HOSTS", "Sink.test=127.0.0.1, other.test=::1"),
        (
            "WEBHOOK_ALLOW_HOSTS",
            "127.0.0.1:4000,10.0.0.0/8,hooks.internal",
        ),
    ]);
    match Settings::from_map(&test) {
        Ok(s) => {
            assert_eq!(
                s.webhook.test_hosts.get("sink.test"),
                Some(&vec!["127.0.0.1".parse().unwrap()])
            );
            assert_eq!(s.webhook.allow_hosts.len(), 3);
            assert_eq!(s.webhook.disable_after, 5);
        }
        Err(e) => panic!("{e:?}"),
    }
    let bad = with(prod_base(), "WEBHOOK_ALLOW_HOSTS", "hooks.internal:x");
    assert!(
        problems_for(&bad)
            .iter()
            .any(|p| p.variable == "WEBHOOK_ALLOW_HOSTS")
    );
}

#[test]
fn notify_volume_settings_have_defaults_and_bounds() {
    let s = Settings::from_map(&env(&[])).unwrap();
    let n = s.notify;
    assert_eq!((n.tick_secs, n.coalesce_secs, n.hourly_cap), (10, 60, 20));
    assert_eq!((n.digest_max_items, n.digest_lookback_days), (50, 8));
    let s = Settings::from_map(&env(&[
        ("NOTIFY_TICK_SECS", "0"),
        ("NOTIFY_HOURLY_CAP", "5"),
    ]))
    .unwrap();
    assert_eq!((s.notify.tick_secs, s.notify.hourly_cap), (0, 5));
    let e = Settings::from_map(&env(&[
        ("NOTIFY_HOURLY_CAP", "0"),
        ("NOTIFY_COALESCE_SECS", "soon"),
    ]))
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("NOTIFY_HOURLY_CAP") && e.contains("NOTIFY_COALESCE_SECS"),
        "{e}"
    );
}

#[test]
fn billing_is_off_by_default_and_stripe_needs_its_secrets() {
    let s = Settings::from_map(&env(&[])).unwrap();
    assert_eq!(s.billing.provider, PaymentProvider::None);
    assert!(!s.billing.enabled());
    let p = problems_for(&env(&[("PAYMENT_PROVIDER", "stripe")]));
    let vars: Vec<&str> = p.iter().map(|p| p.variable.as_str()).collect();
    assert!(
        vars.contains(&"STRIPE_API_KEY") && vars.contains(&"STRIPE_WEBHOOK_SECRET"),
        "{p:?}"
    );
    let p = problems_for(&env(&[("PAYMENT_PROVIDER", "paypal")]));
    assert_eq!(p[0].variable, "PAYMENT_PROVIDER");
    let s = Settings::from_map(&env(&[
        ("PAYMENT_PROVIDER", "stripe"),
        ("STRIPE_API_KEY", "rk_test_abc"),
        ("STRIPE_WEBHOOK_SECRET", "whsec_old, whsec_new,"),
    ]))
    .unwrap();
    let secrets: Vec<&str> = s
        .billing
        .webhook_secrets
        .iter()
        .map(|s| s.expose_secret())
        .collect();
    assert_eq!(secrets, ["whsec_old", "whsec_new"]);
    assert_eq!(s.billing.api_base.as_str(), "https://api.stripe.com/");
    // Debug output names no secret.
    let dbg = format!("{:?}", s.billing);
    assert!(!dbg.contains("whsec_") && !dbg.contains("rk_test"), "{dbg}");
    let p = problems_for(&env(&[("STRIPE_API_BASE", "ftp://x")]));
    assert_eq!(p[0].variable, "STRIPE_API_BASE");
    // Its origin goes into the CSP: a host with `;`, `,` or a quote is refused.
    for bad in [
        "https://pay.example;sandbox",
        "https://x,script-src",
        "https://x'y.example",
    ] {
        let p = problems_for(&env(&[("STRIPE_API_BASE", bad)]));
        assert_eq!(p.len(), 1, "{bad}: {p:?}");
        assert_eq!(p[0].variable, "STRIPE_API_BASE", "{bad}");
    }
    let s = Settings::from_map(&env(&[
        ("PAYMENT_PROVIDER", "stripe"),
        ("STRIPE_API_KEY", "rk_test_abc"),
        ("STRIPE_WEBHOOK_SECRET", "whsec_x"),
        ("STRIPE_API_BASE", "http://127.0.0.1:12111"),
    ]))
    .unwrap();
    assert_eq!(
        s.billing.redirect_origins(),
        [
            "https://checkout.stripe.com",
            "https://billing.stripe.com",
            "http://127.0.0.1:12111"
        ]
    );
    let s = Settings::from_map(&env(&[])).unwrap();
    assert!(s.billing.redirect_origins().is_empty(), "billing off");
}

#[test]
fn plan_grace_days_default_to_seven_and_are_bounded() {
    let s = Settings::from_map(&env(&[])).unwrap();
    assert_eq!(s.plans.grace_days, 7);
    assert_eq!(s.plans.grace(), chrono::Duration::days(7));
    for (v, days) in [("0", 0), ("90", 90), (" 14 ", 14)] {
        let s = Settings::from_map(&env(&[("PLAN_GRACE_DAYS", v)])).unwrap();
        assert_eq!(s.plans.grace_days, days, "{v}");
    }
    for bad in ["-1", "91", "seven", "1.5"] {
        let p = problems_for(&env(&[("PLAN_GRACE_DAYS", bad)]));
        assert_eq!(p.len(), 1, "{bad}: {p:?}");
        assert_eq!(p[0].variable, "PLAN_GRACE_DAYS", "{bad}");
    }
    let p = problems_for(&env(&[("PLAN_GRACE_DAYS", "91")]));
    assert!(p[0].message.contains("between 0 and 90"), "{p:?}");
}

#[test]
fn billing_reconciliation_and_event_retention_are_bounded_with_clear_errors() {
    let s = Settings::from_map(&env(&[])).unwrap();
    assert_eq!(s.billing.reconcile_interval, Duration::from_secs(86_400));
    assert_eq!(s.billing.reconcile_max_pages, 20);
    assert_eq!(s.billing.event_retention, Duration::from_secs(90 * 86_400));
    let s = Settings::from_map(&env(&[
        ("BILLING_RECONCILE_INTERVAL_SECS", "0"),
        ("BILLING_RECONCILE_MAX_PAGES", "1"),
        ("BILLING_EVENT_RETENTION_DAYS", "35"),
    ]))
    .unwrap();
    assert!(s.billing.reconcile_interval.is_zero());
    assert_eq!(s.billing.reconcile_max_pages, 1);
    assert_eq!(s.billing.event_retention, Duration::from_secs(35 * 86_400));
    // Under 35 days an event id could be forgotten while Stripe may still list or resend the event.
    let p = problems_for(&env(&[("BILLING_EVENT_RETENTION_DAYS", "34")]));
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].variable, "BILLING_EVENT_RETENTION_DAYS");
    assert!(
        p[0].message.contains("at least 35") && p[0].message.contains("30 days"),
        "{p:?}"
    );
    for (var, value) in [
        ("BILLING_EVENT_RETENTION_DAYS", "36501"),
        ("BILLING_EVENT_RETENTION_DAYS", "ninety"),
        ("BILLING_RECONCILE_INTERVAL_SECS", "60"),
        ("BILLING_RECONCILE_INTERVAL_SECS", "604801"),
        ("BILLING_RECONCILE_INTERVAL_SECS", "-1"),
        ("BILLING_RECONCILE_MAX_PAGES", "0"),
        ("BILLING_RECONCILE_MAX_PAGES", "101"),
    ] {
        let p = problems_for(&env(&[(var, value)]));
        assert_eq!(p.len(), 1, "{var}={value}: {p:?}");
        assert_eq!(p[0].variable, var, "{var}={value}: {p:?}");
    }
    let p = problems_for(&env(&[("BILLING_RECONCILE_INTERVAL_SECS", "60")]));
    assert!(
        p[0].message.contains("0 (no scheduled reconciliation)"),
        "{p:?}"
    );
}

#[test]
fn hex_is_lower_case_and_tokens_have_two_digits_per_byte() {
    assert_eq!(super::hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
    for bytes in [16, 32, 64, 100] {
        let t = super::random_token(bytes);
        assert_eq!(t.len(), bytes * 2);
        assert!(
            t.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
    }
    assert_ne!(super::random_token(16), super::random_token(16));
}
