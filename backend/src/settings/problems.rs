//! What can be wrong with a configuration, and the production rules for secrets: no placeholders, no
//! repeated or sequential characters, long enough, and no value used for two secrets.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use url::Url;

use super::reader::Reader;

/// One thing wrong with the configuration. `Display` gives `VARIABLE: what is wrong`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    pub variable: String,
    pub message: String,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.variable, self.message)
    }
}

/// All problems found, so an operator can fix them in one go.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration:\n{}", self.0.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n"))]
pub struct ConfigErrors(pub Vec<ConfigProblem>);

/// Minimum length in bytes of a signing/encryption secret in production.
pub const MIN_SECRET_BYTES: usize = 32;

/// Words that mark a value as a placeholder copied from documentation rather than a real secret.
const PLACEHOLDER_WORDS: &[&str] = &[
    "changeme",
    "change-me",
    "change_me",
    "replaceme",
    "replace-me",
    "replace_me",
    "secret",
    "example",
    "password",
    "passw0rd",
    "placeholder",
    "default",
    "dummy",
    "insecure",
    "todo",
    "xxx",
    "12345",
    "qwerty",
    "letmein",
    "your-",
    "your_",
    "<",
    ">",
];

/// Why a secret value is weak, if it is. The returned text never contains the value.
pub fn secret_weakness(value: &str, min_len: usize) -> Option<String> {
    let lower = value.to_ascii_lowercase();
    if PLACEHOLDER_WORDS.iter().any(|w| lower.contains(w)) {
        return Some("looks like a placeholder; generate a random value (see SECRETS.md)".into());
    }
    let distinct: std::collections::HashSet<char> = value.chars().collect();
    if distinct.len() <= 3 {
        return Some(
            "is made of repeated characters; generate a random value (see SECRETS.md)".into(),
        );
    }
    // Runs like "abcdef..." or "123456..." are as guessable as repeats.
    let bytes = value.as_bytes();
    if bytes.len() >= 8 && bytes.windows(2).all(|w| w[1] == w[0].wrapping_add(1)) {
        return Some("is a character sequence; generate a random value (see SECRETS.md)".into());
    }
    if value.len() < min_len {
        return Some(format!(
            "is {} bytes long; at least {min_len} random bytes are required (see SECRETS.md)",
            value.len()
        ));
    }
    None
}

fn url_password(url: &SecretString) -> Option<String> {
    Url::parse(url.expose_secret())
        .ok()
        .and_then(|u| u.password().map(str::to_owned))
}

/// Production hardening: no weak, placeholder or shared secrets (`JWT_SECRET`, `OPS_TOKEN` and the passwords
/// inside the connection URLs).
pub(super) fn production_secrets(
    r: &mut Reader<'_>,
    jwt_secret: &Option<SecretString>,
    ops_token: &Option<SecretString>,
    unsubscribe_secret: &Option<SecretString>,
    database_url: &Option<SecretString>,
    redis_url: &Option<SecretString>,
    smtp_url: &Option<SecretString>,
) {
    let mut named: Vec<(&str, String)> = Vec::new();
    if let Some(s) = jwt_secret {
        named.push(("JWT_SECRET", s.expose_secret().to_owned()));
    }
    if let Some(s) = ops_token {
        named.push(("OPS_TOKEN", s.expose_secret().to_owned()));
    }
    if let Some(s) = unsubscribe_secret {
        named.push(("UNSUBSCRIBE_SECRET", s.expose_secret().to_owned()));
    }
    for (var, value) in &named {
        if let Some(why) = secret_weakness(value, MIN_SECRET_BYTES) {
            r.problem(var, why);
        }
    }
    // Passwords inside connection URLs: no placeholders (their length is the provider's business).
    for (var, url) in [
        ("DATABASE_URL", database_url),
        ("REDIS_URL", redis_url),
        ("SMTP_URL", smtp_url),
    ] {
        if let Some(pw) = url.as_ref().and_then(url_password) {
            if let Some(why) = secret_weakness(&pw, 12) {
                r.problem(var, format!("password {why}"));
            }
            named.push((var, pw));
        }
    }
    for i in 0..named.len() {
        for j in (i + 1)..named.len() {
            if named[i].1 == named[j].1 {
                let (a, b) = (named[i].0, named[j].0);
                r.problem(
                    b,
                    format!("reuses the value of {a}; every secret must be distinct"),
                );
            }
        }
    }
}
