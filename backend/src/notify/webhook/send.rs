//! One HTTP attempt to a destination: vet the URL again, build the body, sign it (generic), post it through a
//! client pinned to the vetted addresses, and classify the answer (docs/design/notifications.md §6, "Rate
//! limits and answers").

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use super::{Kind, format, sign, ssrf::Refusal};
use crate::Ctx;

/// Longest `Retry-After` honoured; longer waits are capped.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);
/// Bytes of a response body kept for the delivery log.
pub const BODY_LOG_BYTES: usize = 4096;

/// A destination as the sender needs it (the URL and secrets included: never shown).
#[derive(Debug, Clone)]
pub struct Destination {
    pub webhook_id: Uuid,
    pub user_id: Uuid,
    pub name: String,
    pub kind: String,
    pub url: String,
    pub secret: Option<String>,
    pub previous_secret: Option<String>,
    pub previous_secret_until: Option<DateTime<Utc>>,
    pub disabled_at: Option<DateTime<Utc>>,
}

impl Destination {
    /// Loads a destination by id (any owner: callers check).
    ///
    /// # Errors
    /// Database errors.
    pub async fn load(db: &PgPool, webhook_id: Uuid) -> sqlx::Result<Option<Self>> {
        sqlx::query_as!(
            Destination,
            r#"select webhook_id, user_id, name, kind, url, secret, previous_secret, previous_secret_until,
                      disabled_at
               from notify_webhook where webhook_id = $1"#,
            webhook_id,
        )
        .fetch_optional(db)
        .await
    }

    /// The secrets to sign with now: the current one, and the previous one until its rotation ends.
    pub fn secrets(&self, now: DateTime<Utc>) -> Vec<&str> {
        let mut out: Vec<&str> = self.secret.iter().map(String::as_str).collect();
        if let (Some(prev), Some(until)) = (&self.previous_secret, self.previous_secret_until)
            && until > now
        {
            out.push(prev);
        }
        out
    }
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// 2xx.
    Ok,
    /// 429: try again after this long.
    RateLimited(Duration),
    /// 410, or 404 from Slack/Discord: the webhook was deleted on their side.
    Gone,
    /// Another 4xx or a 3xx (never followed): the destination refuses; retrying will not help.
    Rejected,
    /// 5xx, timeout or connection error: worth retrying.
    Retry,
    /// The SSRF guard refused the destination now.
    Refused(Refusal),
}

impl Outcome {
    pub fn is_ok(&self) -> bool {
        *self == Outcome::Ok
    }

    /// The `notify_attempt.outcome` value.
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::RateLimited(_) => "rate_limited",
            Outcome::Gone => "gone",
            Outcome::Rejected => "failed",
            Outcome::Retry => "retry",
            Outcome::Refused(_) => "refused",
        }
    }
}

/// An attempt's outcome with what the delivery log records.
#[derive(Debug, Clone)]
pub struct Attempted {
    pub outcome: Outcome,
    pub http_status: Option<u16>,
    pub remote_addr: Option<String>,
    pub duration: Duration,
    /// What went wrong, in words (never the URL), with up to [`BODY_LOG_BYTES`] of the answer.
    pub error: Option<String>,
}

/// Classifies an HTTP answer.
pub fn classify(kind: &str, status: u16, retry_after: Option<Duration>) -> Outcome {
    match status {
        200..=299 => Outcome::Ok,
        429 => Outcome::RateLimited(
            retry_after
                .unwrap_or(Duration::from_secs(30))
                .min(MAX_RETRY_AFTER),
        ),
        410 => Outcome::Gone,
        404 if kind == "slack" || kind == "discord" => Outcome::Gone,
        300..=499 => Outcome::Rejected,
        _ => Outcome::Retry,
    }
}

/// Reads `Retry-After` (seconds; an HTTP date is not worth the parsing here and counts as absent).
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
}

/// `{"retry_after": 1.5, …}` (Discord's 429 body).
fn body_retry_after(body: &[u8]) -> Option<Duration> {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()?
        .get("retry_after")?
        .as_f64()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
}

/// At most the first `max` bytes of a response body: the rest is never read (a receiver streaming an endless
/// error page cannot make us hold it), and the connection is dropped.
async fn body_prefix(mut resp: reqwest::Response, max: usize) -> Vec<u8> {
    let mut out = Vec::new();
    while out.len() < max {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                let take = chunk.len().min(max - out.len());
                out.extend_from_slice(&chunk[..take]);
            }
            Ok(None) | Err(_) => break,
        }
    }
    out
}

/// A receiver's text made safe to store and print: control characters (NUL, which Postgres refuses in text,
/// and terminal escapes) become spaces; line breaks and tabs stay.
pub fn printable(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() && c != '\n' && c != '\t' {
                ' '
            } else {
                c
            }
        })
        .collect()
}

/// Vets, renders, signs and posts one message; never returns an error (every failure is an [`Outcome`]).
pub async fn attempt(
    ctx: &Ctx,
    hook: &Destination,
    message_id: &str,
    msg: &format::Message<'_>,
) -> Attempted {
    attempt_body(ctx, hook, message_id, &format::body(&hook.kind, msg)).await
}

/// [`attempt`] with a rendered body (batch messages).
pub async fn attempt_body(
    ctx: &Ctx,
    hook: &Destination,
    message_id: &str,
    body: &serde_json::Value,
) -> Attempted {
    let started = Instant::now();
    let done = |outcome, http_status, remote_addr, error: Option<String>| Attempted {
        outcome,
        http_status,
        remote_addr,
        duration: started.elapsed(),
        error,
    };
    let vetted = match ctx.net.vet(&hook.url).await {
        Ok(v) => v,
        Err(r) => {
            let e = format!("destination refused: {r}");
            return done(Outcome::Refused(r), None, None, Some(e));
        }
    };
    let client = match ctx.net.client(&vetted) {
        Ok(c) => c,
        Err(e) => return done(Outcome::Retry, None, None, Some(format!("client: {e}"))),
    };
    let body = match serde_json::to_vec(body) {
        Ok(b) => b,
        Err(e) => return done(Outcome::Rejected, None, None, Some(format!("body: {e}"))),
    };
    let mut url = vetted.url.clone();
    if hook.kind == Kind::Discord.as_str() {
        url.query_pairs_mut().append_pair("wait", "true");
    }
    let mut req = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json");
    if hook.kind == Kind::Generic.as_str() {
        let now = Utc::now();
        match sign::headers(&hook.secrets(now), message_id, now.timestamp(), &body) {
            Ok(hs) => {
                for (k, v) in hs {
                    req = req.header(k, v);
                }
            }
            Err(e) => return done(Outcome::Rejected, None, None, Some(format!("secret: {e}"))),
        }
    } else {
        req = req.header(sign::HEADER_ID, message_id);
    }
    match req.body(body).send().await {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let remote = resp.remote_addr().map(|a| a.to_string());
            let header_wait = retry_after(resp.headers());
            if (200..300).contains(&status) {
                return done(Outcome::Ok, Some(status), remote, None);
            }
            let bytes = body_prefix(resp, BODY_LOG_BYTES).await;
            // Discord also says when in its JSON body (`retry_after`, seconds).
            let wait = header_wait.or_else(|| body_retry_after(&bytes));
            let outcome = classify(&hook.kind, status, wait);
            let text = printable(&String::from_utf8_lossy(&bytes));
            let error = Some(format::clip(&format!("HTTP {status}: {text}"), 2000));
            done(outcome, Some(status), remote, error)
        }
        Err(e) => {
            // reqwest's error text includes the URL: strip it (Slack/Discord URLs are secrets).
            let what = if e.is_timeout() {
                "timed out"
            } else if e.is_connect() {
                "could not connect"
            } else {
                "request failed"
            };
            done(Outcome::Retry, None, None, Some(what.to_owned()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_classified() {
        let s = |n| Some(Duration::from_secs(n));
        assert_eq!(classify("generic", 200, None), Outcome::Ok);
        assert_eq!(classify("generic", 204, None), Outcome::Ok);
        assert_eq!(
            classify("generic", 429, s(3)),
            Outcome::RateLimited(Duration::from_secs(3))
        );
        assert_eq!(
            classify("discord", 429, s(99_999)),
            Outcome::RateLimited(MAX_RETRY_AFTER)
        );
        assert_eq!(classify("generic", 410, None), Outcome::Gone);
        assert_eq!(classify("slack", 404, None), Outcome::Gone);
        assert_eq!(classify("discord", 404, None), Outcome::Gone);
        assert_eq!(classify("generic", 404, None), Outcome::Rejected);
        assert_eq!(classify("generic", 400, None), Outcome::Rejected);
        assert_eq!(classify("generic", 302, None), Outcome::Rejected);
        assert_eq!(classify("generic", 500, None), Outcome::Retry);
        assert_eq!(classify("generic", 503, None), Outcome::Retry);
    }

    #[test]
    fn discord_body_retry_after() {
        assert_eq!(
            body_retry_after(br#"{"message": "You are being rate limited.", "retry_after": 1.5, "global": false}"#),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(body_retry_after(b"not json"), None);
        assert_eq!(body_retry_after(br#"{"retry_after": -1}"#), None);
    }

    #[test]
    fn rotation_signs_with_the_previous_secret_until_it_ends() {
        let now = Utc::now();
        let mut d = Destination {
            webhook_id: Uuid::nil(),
            user_id: Uuid::nil(),
            name: "x".into(),
            kind: "generic".into(),
            url: "https://example.org".into(),
            secret: Some("whsec_new".into()),
            previous_secret: Some("whsec_old".into()),
            previous_secret_until: Some(now + chrono::Duration::hours(1)),
            disabled_at: None,
        };
        assert_eq!(d.secrets(now), vec!["whsec_new", "whsec_old"]);
        d.previous_secret_until = Some(now - chrono::Duration::seconds(1));
        assert_eq!(d.secrets(now), vec!["whsec_new"]);
    }
}
