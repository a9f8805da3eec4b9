//! The `Stripe-Signature` header: `t=<unix seconds>,v1=<hex HMAC-SHA256>[,v1=…]` where each `v1` is the
//! HMAC-SHA256 of `"<t>.<raw body>"` keyed with an endpoint signing secret (`whsec_…`, the whole string).
//! Verified on the raw bytes as received, in constant time, within [`TOLERANCE_SECS`] of now, against every
//! configured secret (several during a rotation).

use hmac::{KeyInit, Mac};
use secrecy::{ExposeSecret, SecretString};

use crate::{auth::constant_time_eq, settings::hex};

/// Largest accepted difference between the signature's timestamp and now, either way.
pub const TOLERANCE_SECS: i64 = 300;
/// Longest `Stripe-Signature` header read.
pub const MAX_HEADER: usize = 4096;
/// Most `v1` signatures read from one header.
pub const MAX_SIGNATURES: usize = 16;

/// Why a delivery's signature is refused (the message is safe to answer: it reveals no secret).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("no Stripe-Signature header")]
    Missing,
    #[error("the Stripe-Signature header is malformed: {0}")]
    Malformed(&'static str),
    #[error(
        "the signature's timestamp is more than {TOLERANCE_SECS} seconds from now (a stale or replayed delivery)"
    )]
    Stale,
    #[error("no v1 signature matches a configured webhook secret")]
    NoMatch,
}

fn mac(secret: &str, t: i64, body: &[u8]) -> Vec<u8> {
    let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes keys of any length");
    m.update(t.to_string().as_bytes());
    m.update(b".");
    m.update(body);
    m.finalize().into_bytes().to_vec()
}

/// The hex `v1` signature of `body` at `t` with `secret` (what the provider sends; the tests' mock signs with it).
pub fn sign(secret: &str, t: i64, body: &[u8]) -> String {
    hex(&mac(secret, t, body))
}

/// A whole header value for `body` signed at `t` by each of `secrets`.
pub fn header(secrets: &[&str], t: i64, body: &[u8]) -> String {
    let mut h = format!("t={t}");
    for s in secrets {
        h.push_str(",v1=");
        h.push_str(&sign(s, t, body));
    }
    h
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.is_ascii() {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

/// Checks `header` for `body` at `now` (unix seconds) against `secrets`; returns the signed timestamp.
///
/// # Errors
/// [`SignatureError`] saying what is wrong.
pub fn verify(
    header: Option<&str>,
    body: &[u8],
    secrets: &[SecretString],
    now: i64,
) -> Result<i64, SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    if header.len() > MAX_HEADER {
        return Err(SignatureError::Malformed("too long"));
    }
    let mut t = None;
    let mut sigs = Vec::new();
    for part in header.split(',') {
        let Some((k, v)) = part.trim().split_once('=') else {
            return Err(SignatureError::Malformed("every part must be key=value"));
        };
        match k {
            "t" => {
                if t.is_some() {
                    return Err(SignatureError::Malformed("more than one timestamp"));
                }
                t = Some(
                    v.parse::<i64>()
                        .map_err(|_| SignatureError::Malformed("the timestamp is not a number"))?,
                );
            }
            "v1" => {
                if sigs.len() >= MAX_SIGNATURES {
                    return Err(SignatureError::Malformed("too many signatures"));
                }
                // A v1 that is not 32 bytes of hex can match nothing; it is skipped, not an error.
                if let Some(b) = unhex(v).filter(|b| b.len() == 32) {
                    sigs.push(b);
                }
            }
            // v0 (test mode's legacy scheme) and future schemes are ignored, as Stripe's libraries do.
            _ => {}
        }
    }
    let t = t.ok_or(SignatureError::Malformed("no timestamp (t=…)"))?;
    if sigs.is_empty() {
        return Err(SignatureError::NoMatch);
    }
    if now.abs_diff(t) > TOLERANCE_SECS.unsigned_abs() {
        return Err(SignatureError::Stale);
    }
    let mut ok = false;
    for secret in secrets {
        let expected = mac(secret.expose_secret(), t, body);
        for s in &sigs {
            // No early exit: every comparison runs.
            ok |= constant_time_eq(&expected, s);
        }
    }
    if ok {
        Ok(t)
    } else {
        Err(SignatureError::NoMatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets(s: &[&str]) -> Vec<SecretString> {
        s.iter()
            .map(|s| SecretString::from((*s).to_owned()))
            .collect()
    }

    #[test]
    fn billing_signatures_verify_on_raw_bytes_within_the_tolerance() {
        let body = br#"{"id":"evt_1","type":"invoice.paid"}"#;
        let now = 1_700_000_000;
        let h = header(&["whsec_a"], now, body);
        assert_eq!(
            verify(Some(&h), body, &secrets(&["whsec_a"]), now + 10),
            Ok(now)
        );
        // Any configured secret (rotation), any of several v1.
        let h2 = header(&["whsec_old", "whsec_new"], now, body);
        assert_eq!(
            verify(Some(&h2), body, &secrets(&["whsec_new"]), now),
            Ok(now)
        );
        assert_eq!(
            verify(Some(&h), body, &secrets(&["whsec_b", "whsec_a"]), now),
            Ok(now)
        );
        // One byte changed, a wrong secret, stale or future timestamps, no header.
        let mut other = body.to_vec();
        other[3] = b'X';
        assert_eq!(
            verify(Some(&h), &other, &secrets(&["whsec_a"]), now),
            Err(SignatureError::NoMatch)
        );
        assert_eq!(
            verify(Some(&h), body, &secrets(&["whsec_b"]), now),
            Err(SignatureError::NoMatch)
        );
        assert_eq!(
            verify(Some(&h), body, &secrets(&["whsec_a"]), now + 301),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify(Some(&h), body, &secrets(&["whsec_a"]), now - 301),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify(None, body, &secrets(&["whsec_a"]), now),
            Err(SignatureError::Missing)
        );
        assert!(matches!(
            verify(Some("v1=00"), body, &secrets(&["whsec_a"]), now),
            Err(SignatureError::Malformed(_))
        ));
        assert!(matches!(
            verify(Some("t=x,v1=00"), body, &secrets(&["whsec_a"]), now),
            Err(SignatureError::Malformed(_))
        ));
        assert_eq!(
            verify(
                Some(&format!("t={now},v1=zz")),
                body,
                &secrets(&["whsec_a"]),
                now
            ),
            Err(SignatureError::NoMatch)
        );
        // v0 is not a v1.
        let v0 = format!("t={now},v0={}", sign("whsec_a", now, body));
        assert_eq!(
            verify(Some(&v0), body, &secrets(&["whsec_a"]), now),
            Err(SignatureError::NoMatch)
        );
    }
}
