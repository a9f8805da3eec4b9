//! `vortex check-config` as an operator runs it.

use std::process::Command;

use crate::helpers::vortex_bin;

fn check_config(env: &[(&str, &str)], args: &[&str]) -> (i32, String, String) {
    let mut cmd = Command::new(vortex_bin());
    cmd.arg("check-config")
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run vortex");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_placeholder_jwt_secret_in_production_is_refused_by_name_without_printing_it() {
    let (code, stdout, stderr) = check_config(
        &[("APP_ENV", "production"), ("JWT_SECRET", "changeme")],
        &[],
    );
    assert_ne!(code, 0);
    assert!(
        stderr.lines().any(|l| l.starts_with("JWT_SECRET: ")),
        "{stderr}"
    );
    assert!(
        !stderr.contains("changeme") && !stdout.contains("changeme"),
        "secret leaked: {stderr}"
    );
    // Other missing production settings are listed too, one line each.
    for var in ["DATABASE_URL", "REDIS_URL", "PUBLIC_URL", "SMTP_URL"] {
        assert!(
            stderr.lines().any(|l| l.starts_with(&format!("{var}: "))),
            "{var} missing: {stderr}"
        );
    }
}

#[test]
fn a_complete_production_configuration_passes() {
    let (code, stdout, stderr) = check_config(
        &[
            ("APP_ENV", "production"),
            ("PUBLIC_URL", "https://vortex.example.org"),
            (
                "DATABASE_URL",
                "postgres://vortex:Kq8vN3xLp2Rt7Wz5@db:5432/vortex",
            ),
            ("REDIS_URL", "redis://redis:6379"),
            (
                "SMTP_URL",
                "smtps://mailer:Bv6Yc9Hn2Ms4Qe7T@smtp.example.net:465",
            ),
            ("JWT_SECRET", "h2N8q4Vz7Lm1Xc6Rb9Tw3Kp5Yf0Gs8Ju"),
        ],
        &[],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("configuration OK (environment: production)"));
}

#[test]
fn verify_connections_names_each_unreachable_dependency() {
    let (code, _, stderr) = check_config(
        &[
            ("DATABASE_URL", "postgres://postgres@127.0.0.1:1/x"),
            ("REDIS_URL", "redis://127.0.0.1:1"),
            ("SMTP_URL", "smtp://127.0.0.1:1"),
        ],
        &["--verify-connections"],
    );
    assert_ne!(code, 0);
    for var in ["DATABASE_URL", "REDIS_URL", "SMTP_URL"] {
        assert!(
            stderr.lines().any(|l| l.starts_with(&format!("{var}: "))),
            "{var}: {stderr}"
        );
    }
}

#[test]
fn verify_connections_passes_against_the_local_services() {
    let (code, stdout, stderr) = check_config(
        &[
            (
                "DATABASE_URL",
                "postgres://postgres@127.0.0.1:5432/postgres",
            ),
            ("REDIS_URL", "redis://127.0.0.1:6379"),
        ],
        &["--verify-connections"],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("connections verified"), "{stdout}");
}
