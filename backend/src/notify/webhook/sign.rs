//! Standard Webhooks signatures (<https://www.standardwebhooks.com/>), for generic webhooks:
//!
//! * `webhook-id: msg_{delivery id}`: the same on every retry and replay, the receiver's idempotency key;
//! * `webhook-timestamp: {unix seconds}` (real time, not the notification clock);
//! * `webhook-signature: v1,{base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}"))}`, where `key` is the
//!   base64-decoded part of the `whsec_…` secret. During a rotation the header carries one signature per
//!   secret, separated by spaces (`v1,<new> v1,<old>`).
//!
//! [`verify`] is the receiver's side (the test sink and the DEPLOYMENT.md snippet do the same).

use base64::{Engine, engine::general_purpose::STANDARD};
use hmac::{KeyInit, Mac};

/// The prefix of every secret.
pub const SECRET_PREFIX: &str = "whsec_";
/// Bytes of key material in a generated secret.
pub const SECRET_BYTES: usize = 32;
/// How far a receiver lets the timestamp drift from its clock.
pub const TOLERANCE_SECS: i64 = 300;

pub const HEADER_ID: &str = "webhook-id";
pub const HEADER_TIMESTAMP: &str = "webhook-timestamp";
pub const HEADER_SIGNATURE: &str = "webhook-signature";

/// A secret that cannot be used, or a signature that does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    #[error("the secret is not `whsec_` followed by base64")]
    BadSecret,
    #[error("the timestamp is missing, malformed or too far from now")]
    BadTimestamp,
    #[error("no signature matches")]
    NoMatch,
}

/// A new random secret: `whsec_` + base64 of 32 random bytes.
pub fn generate_secret() -> String {
    use rand::RngCore;
    let mut key = [0u8; SECRET_BYTES];
    rand::rng().fill_bytes(&mut key);
    format!("{SECRET_PREFIX}{}", STANDARD.encode(key))
}

/// The key bytes of a `whsec_…` secret.
///
/// # Errors
/// [`SignError::BadSecret`] when the prefix is missing or the rest is not base64 (or is empty).
pub fn secret_key(secret: &str) -> Result<Vec<u8>, SignError> {
    let b64 = secret
        .strip_prefix(SECRET_PREFIX)
        .ok_or(SignError::BadSecret)?;
    let key = STANDARD.decode(b64).map_err(|_| SignError::BadSecret)?;
    if key.is_empty() {
        return Err(SignError::BadSecret);
    }
    Ok(key)
}

/// The message id of a delivery (`msg_` + the id without dashes).
pub fn message_id(delivery_id: uuid::Uuid) -> String {
    format!("msg_{}", delivery_id.simple())
}

fn mac(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> Vec<u8> {
    let mut mac =
        hmac::Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

/// One `v1,<base64>` signature.
///
/// # Errors
/// [`SignError::BadSecret`].
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Result<String, SignError> {
    let key = secret_key(secret)?;
    Ok(format!(
        "v1,{}",
        STANDARD.encode(mac(&key, id, timestamp, body))
    ))
}

/// The three headers for a body, signed with every secret given (the current one first, then the previous
/// one during a rotation).
///
/// # Errors
/// [`SignError::BadSecret`] when any secret is malformed.
pub fn headers(
    secrets: &[&str],
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> Result<[(&'static str, String); 3], SignError> {
    let sigs = secrets
        .iter()
        .map(|s| sign(s, id, timestamp, body))
        .collect::<Result<Vec<_>, _>>()?;
    Ok([
        (HEADER_ID, id.to_owned()),
        (HEADER_TIMESTAMP, timestamp.to_string()),
        (HEADER_SIGNATURE, sigs.join(" ")),
    ])
}

/// The receiver's check: the timestamp is within [`TOLERANCE_SECS`] of `now` and one of the space-separated
/// `v1,` signatures matches (compared in constant time).
///
/// # Errors
/// [`SignError`] saying which check failed.
pub fn verify(
    secret: &str,
    id: &str,
    timestamp: &str,
    signature_header: &str,
    body: &[u8],
    now: i64,
) -> Result<(), SignError> {
    let key = secret_key(secret)?;
    let ts: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| SignError::BadTimestamp)?;
    if (now - ts).abs() > TOLERANCE_SECS {
        return Err(SignError::BadTimestamp);
    }
    for sig in signature_header.split_whitespace() {
        let Some(b64) = sig.strip_prefix("v1,") else {
            continue;
        };
        let Ok(given) = STANDARD.decode(b64) else {
            continue;
        };
        let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).expect("any key length");
        m.update(id.as_bytes());
        m.update(b".");
        m.update(ts.to_string().as_bytes());
        m.update(b".");
        m.update(body);
        if m.verify_slice(&given).is_ok() {
            return Ok(());
        }
    }
    Err(SignError::NoMatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    // The known-answer vector of the Standard Webhooks reference libraries.
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TS: i64 = 1_614_265_330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const EXPECTED: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    #[test]
    fn known_answer() {
        assert_eq!(sign(SECRET, ID, TS, BODY).unwrap(), EXPECTED);
        assert_eq!(
            verify(SECRET, ID, "1614265330", EXPECTED, BODY, TS + 10),
            Ok(())
        );
    }

    #[test]
    fn tampering_and_drift_are_caught() {
        let other = br#"{"test": 2432232315}"#;
        assert_eq!(
            verify(SECRET, ID, "1614265330", EXPECTED, other, TS),
            Err(SignError::NoMatch)
        );
        assert_eq!(
            verify(SECRET, "msg_other", "1614265330", EXPECTED, BODY, TS),
            Err(SignError::NoMatch)
        );
        assert_eq!(
            verify(SECRET, ID, "1614265331", EXPECTED, BODY, TS),
            Err(SignError::NoMatch)
        );
        assert_eq!(
            verify(
                SECRET,
                ID,
                "1614265330",
                EXPECTED,
                BODY,
                TS + TOLERANCE_SECS + 1
            ),
            Err(SignError::BadTimestamp)
        );
        assert_eq!(
            verify(
                SECRET,
                ID,
                "1614265330",
                EXPECTED,
                BODY,
                TS - TOLERANCE_SECS - 1
            ),
            Err(SignError::BadTimestamp)
        );
        assert_eq!(
            verify(SECRET, ID, "soon", EXPECTED, BODY, TS),
            Err(SignError::BadTimestamp)
        );
        assert_eq!(
            verify(SECRET, ID, "1614265330", "v2,abc", BODY, TS),
            Err(SignError::NoMatch)
        );
    }

    #[test]
    fn rotation_signs_with_both_secrets() {
        let new = generate_secret();
        let [(_, id), (_, ts), (_, sig)] = headers(&[&new, SECRET], ID, TS, BODY).unwrap();
        assert_eq!(id, ID);
        assert_eq!(ts, "1614265330");
        assert_eq!(sig.split(' ').count(), 2);
        assert!(sig.ends_with(EXPECTED));
        assert_eq!(verify(&new, ID, &ts, &sig, BODY, TS), Ok(()));
        assert_eq!(verify(SECRET, ID, &ts, &sig, BODY, TS), Ok(()));
        let stranger = generate_secret();
        assert_eq!(
            verify(&stranger, ID, &ts, &sig, BODY, TS),
            Err(SignError::NoMatch)
        );
    }

    #[test]
    fn secrets() {
        let s = generate_secret();
        assert!(s.starts_with("whsec_"));
        assert_eq!(secret_key(&s).unwrap().len(), SECRET_BYTES);
        assert_ne!(s, generate_secret());
        assert_eq!(
            secret_key("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            Err(SignError::BadSecret)
        );
        assert_eq!(secret_key("whsec_!!!"), Err(SignError::BadSecret));
        assert_eq!(secret_key("whsec_"), Err(SignError::BadSecret));
        assert_eq!(
            message_id(uuid::Uuid::from_u128(0x1234)),
            "msg_00000000000000000000000000001234"
        );
    }
}
