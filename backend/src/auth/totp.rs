//! Time-based one-time passwords (RFC 6238 over RFC 4226): HMAC-SHA-1, 6 digits, 30-second steps, as every
//! authenticator app speaks them; the secret's encryption at rest; recovery codes.
//!
//! SHA-1 is implemented here (RFC 3174) because the workspace's `hmac`/`sha2` generation has no SHA-1 and the
//! authenticator apps only speak SHA-1; it is checked against the RFC 6238 test vectors below.
//!
//! The secret (20 random bytes) is stored encrypted: a keystream block HMAC-SHA-256(k, "ks" ‖ nonce) XORed with
//! the secret, then an HMAC-SHA-256 tag over the user id, nonce and ciphertext (encrypt-then-MAC), with `k`
//! derived from `JWT_SECRET` under its own label ([`super::AuthKeys`]).

use hmac::{KeyInit, Mac};
use uuid::Uuid;

/// Digits of a code.
pub const DIGITS: u32 = 6;
/// Seconds per time step.
pub const STEP_SECS: i64 = 30;
/// Steps accepted before and after the current one (clock drift).
pub const DRIFT: i64 = 1;
/// Bytes of a secret (160 bits, RFC 4226's recommendation).
pub const SECRET_LEN: usize = 20;
/// Recovery codes issued at a time.
pub const RECOVERY_CODES: usize = 10;

fn sha1(data: &[u8]) -> [u8; 20] {
    let mut h: [u32; 5] = [
        0x6745_2301,
        0xEFCD_AB89,
        0x98BA_DCFE,
        0x1032_5476,
        0xC3D2_E1F0,
    ];
    let mut msg = data.to_vec();
    let bit_len = (data.len() as u64).wrapping_mul(8);
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bit_len.to_be_bytes());
    for chunk in msg.chunks_exact(64) {
        let mut w = [0u32; 80];
        for (i, word) in chunk.chunks_exact(4).enumerate() {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = h;
        for (i, wi) in w.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((b & c) | (!b & d), 0x5A82_7999),
                20..=39 => (b ^ c ^ d, 0x6ED9_EBA1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC),
                _ => (b ^ c ^ d, 0xCA62_C1D6),
            };
            let t = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(*wi);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = t;
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d, e]) {
            *x = x.wrapping_add(y);
        }
    }
    let mut out = [0u8; 20];
    for (i, x) in h.iter().enumerate() {
        out[i * 4..i * 4 + 4].copy_from_slice(&x.to_be_bytes());
    }
    out
}

fn hmac_sha1(key: &[u8], msg: &[u8]) -> [u8; 20] {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..20].copy_from_slice(&sha1(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner: Vec<u8> = k.iter().map(|b| b ^ 0x36).collect();
    inner.extend_from_slice(msg);
    let mut outer: Vec<u8> = k.iter().map(|b| b ^ 0x5c).collect();
    outer.extend_from_slice(&sha1(&inner));
    sha1(&outer)
}

/// The code of `secret` for time step `step` (RFC 4226 dynamic truncation), zero-padded to [`DIGITS`].
pub fn code_at(secret: &[u8], step: i64) -> String {
    let mac = hmac_sha1(secret, &step.to_be_bytes());
    let offset = usize::from(mac[19] & 0x0f);
    let bin = u32::from_be_bytes([
        mac[offset] & 0x7f,
        mac[offset + 1],
        mac[offset + 2],
        mac[offset + 3],
    ]);
    format!("{:06}", bin % 10u32.pow(DIGITS))
}

/// The time step of a Unix time.
pub fn step_of(unix_secs: i64) -> i64 {
    unix_secs.div_euclid(STEP_SECS)
}

/// Checks `code` against the steps around `now_step` (± [`DRIFT`]) that are later than `last_step`; returns
/// the matching step (to store as the new last step). Compared in constant time per step.
pub fn verify(secret: &[u8], code: &str, now_step: i64, last_step: Option<i64>) -> Option<i64> {
    let code = normalize_code(code)?;
    (now_step - DRIFT..=now_step + DRIFT)
        .filter(|s| last_step.is_none_or(|l| *s > l))
        .find(|s| super::constant_time_eq(code_at(secret, *s).as_bytes(), code.as_bytes()))
}

/// Six digits, spaces ignored; `None` for anything else.
pub fn normalize_code(code: &str) -> Option<String> {
    let c: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    (c.len() == DIGITS as usize && c.bytes().all(|b| b.is_ascii_digit())).then_some(c)
}

const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// RFC 4648 base32 without padding (how authenticator apps take secrets).
pub fn base32_encode(data: &[u8]) -> String {
    let mut out = String::new();
    let (mut buf, mut bits) = (0u32, 0u32);
    for &b in data {
        buf = (buf << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(BASE32[((buf >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(BASE32[((buf << (5 - bits)) & 31) as usize]));
    }
    out
}

/// Decodes base32 (case-insensitive, spaces and `=` ignored); `None` on other characters.
pub fn base32_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let (mut buf, mut bits) = (0u32, 0u32);
    for c in s.chars().filter(|c| !c.is_whitespace() && *c != '=') {
        let v = BASE32
            .iter()
            .position(|&b| char::from(b) == c.to_ascii_uppercase())?;
        buf = (buf << 5) | u32::try_from(v).ok()?;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push(((buf >> bits) & 0xff) as u8);
        }
    }
    Some(out)
}

/// A new random secret.
pub fn new_secret() -> Vec<u8> {
    use rand::RngCore;
    let mut s = vec![0u8; SECRET_LEN];
    rand::rng().fill_bytes(&mut s);
    s
}

/// The `otpauth://` URI an authenticator app reads (issuer `Vortex`, the account's address as label).
pub fn otpauth_uri(secret: &[u8], account: &str, issuer: &str) -> String {
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    format!(
        "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}",
        enc(issuer).replace('+', "%20"),
        enc(account).replace('+', "%20"),
        base32_encode(secret),
        enc(issuer).replace('+', "%20"),
    )
}

fn hmac256(key: &[u8; 32], parts: &[&[u8]]) -> [u8; 32] {
    let mut m =
        hmac::Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().into()
}

/// The key a pending enrolment's secret is sealed with: derived from `key` and the browser session that started
/// the enrolment, so no other session of the account can read the secret or confirm it (whoever holds that
/// session itself can). Once confirmed the secret is sealed again with `key` itself.
pub fn enrolment_key(key: &[u8; 32], session_id: &str) -> [u8; 32] {
    hmac256(key, &[b"enrolment\0", session_id.as_bytes()])
}

/// Encrypts a secret for `user_id` (nonce ‖ ciphertext ‖ tag).
pub fn seal(key: &[u8; 32], user_id: Uuid, secret: &[u8]) -> Vec<u8> {
    use rand::RngCore;
    let mut nonce = [0u8; 16];
    rand::rng().fill_bytes(&mut nonce);
    let ks = hmac256(key, &[b"ks", &nonce]);
    let ct: Vec<u8> = secret.iter().zip(ks.iter()).map(|(a, b)| a ^ b).collect();
    let tag = hmac256(key, &[b"tag", user_id.as_bytes(), &nonce, &ct]);
    let mut out = nonce.to_vec();
    out.extend_from_slice(&ct);
    out.extend_from_slice(&tag[..16]);
    out
}

/// Decrypts what [`seal`] made for `user_id`; `None` when it was not made with this key for this user (e.g.
/// after `JWT_SECRET` was rotated).
pub fn open(key: &[u8; 32], user_id: Uuid, sealed: &[u8]) -> Option<Vec<u8>> {
    if sealed.len() < 16 + 16 + 1 || sealed.len() > 16 + 32 + 16 {
        return None;
    }
    let (nonce, rest) = sealed.split_at(16);
    let (ct, tag) = rest.split_at(rest.len() - 16);
    let want = hmac256(key, &[b"tag", user_id.as_bytes(), nonce, ct]);
    if !super::constant_time_eq(&want[..16], tag) {
        return None;
    }
    let ks = hmac256(key, &[b"ks", nonce]);
    Some(ct.iter().zip(ks.iter()).map(|(a, b)| a ^ b).collect())
}

/// New recovery codes (`xxxx-xxxx-xxxx-xxxx`: 80 random bits each, lower-case base32).
pub fn new_recovery_codes() -> Vec<String> {
    use rand::RngCore;
    (0..RECOVERY_CODES)
        .map(|_| {
            let mut b = [0u8; 10];
            rand::rng().fill_bytes(&mut b);
            let s = base32_encode(&b).to_ascii_lowercase();
            format!("{}-{}-{}-{}", &s[..4], &s[4..8], &s[8..12], &s[12..16])
        })
        .collect()
}

/// Characters of a recovery code (dashes and spaces aside): today's, and the 10 (50 random bits) of codes
/// issued by releases before 80-bit codes, which keep working until used or replaced.
const RECOVERY_CHARS: usize = 16;
const LEGACY_RECOVERY_CHARS: usize = 10;

/// A recovery code as typed, normalised (case, dashes and spaces ignored); `None` when it cannot be one.
fn normalise_recovery(code: &str) -> Option<String> {
    let c: String = code
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| c.to_ascii_lowercase())
        .collect();
    (matches!(c.len(), RECOVERY_CHARS | LEGACY_RECOVERY_CHARS)
        && c.bytes().all(|b| b.is_ascii_alphanumeric()))
    .then_some(c)
}

/// Whether `code` has the form of a recovery code.
pub fn is_recovery_code(code: &str) -> bool {
    normalise_recovery(code).is_some()
}

/// The stored hash of `user_id`'s recovery code as typed; `None` when it cannot be a code. Today's codes: SHA-256
/// over a label, the account's id (the salt: equal codes of two accounts never share a hash, and a copy of the
/// database must be searched account by account) and the code's 80 bits, beyond any search. It depends on no
/// server key, so rotating `JWT_SECRET` leaves recovery codes working (SECRETS.md). A 10-character code of an
/// earlier release is looked up by the unsalted SHA-256 stored then.
pub fn recovery_hash(user_id: Uuid, code: &str) -> Option<String> {
    let c = normalise_recovery(code)?;
    if c.len() == LEGACY_RECOVERY_CHARS {
        return Some(crate::settings::hex(&super::sha256(&c)));
    }
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(b"vortex/recovery-code/v2\0");
    h.update(user_id.as_bytes());
    h.update(c.as_bytes());
    Some(crate::settings::hex(&h.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha1_and_hmac_match_the_rfc_vectors() {
        assert_eq!(
            crate::settings::hex(&sha1(b"abc")),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(
            crate::settings::hex(&sha1(b"")),
            "da39a3ee5e6b4b0d3255bfef95601890afd80709"
        );
        // RFC 2202 test case 2.
        assert_eq!(
            crate::settings::hex(&hmac_sha1(b"Jefe", b"what do ya want for nothing?")),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
        );
    }

    #[test]
    fn totp_matches_rfc_6238_sha1_vectors() {
        let secret = b"12345678901234567890";
        for (t, code) in [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ] {
            // The RFC lists 8 digits; six are their last six.
            assert_eq!(code_at(secret, step_of(t)), code[2..], "t = {t}");
        }
    }

    #[test]
    fn verify_accepts_drift_and_refuses_replays() {
        let s = new_secret();
        let now = 1000;
        assert_eq!(verify(&s, &code_at(&s, now), now, None), Some(now));
        assert_eq!(verify(&s, &code_at(&s, now - 1), now, None), Some(now - 1));
        assert_eq!(verify(&s, &code_at(&s, now + 1), now, None), Some(now + 1));
        assert_eq!(verify(&s, &code_at(&s, now - 2), now, None), None);
        assert_eq!(verify(&s, &code_at(&s, now), now, Some(now)), None);
        assert_eq!(verify(&s, "12345", now, None), None);
        assert_eq!(verify(&s, "abcdef", now, None), None);
    }

    #[test]
    fn base32_round_trips_and_secrets_seal() {
        let s = new_secret();
        let b = base32_encode(&s);
        assert_eq!(b.len(), 32);
        assert_eq!(base32_decode(&b.to_lowercase()).unwrap(), s);
        assert_eq!(base32_encode(b"foobar"), "MZXW6YTBOI");
        let key = [7u8; 32];
        let u = Uuid::from_u128(1);
        let sealed = seal(&key, u, &s);
        assert_eq!(open(&key, u, &sealed).unwrap(), s);
        assert!(open(&key, Uuid::from_u128(2), &sealed).is_none());
        assert!(open(&[8u8; 32], u, &sealed).is_none());
        let codes = new_recovery_codes();
        assert_eq!(codes.len(), RECOVERY_CODES);
        assert!(
            codes
                .iter()
                .all(|c| c.len() == 19 && c.matches('-').count() == 3)
        );
        let h = recovery_hash(u, &codes[0]).unwrap();
        assert_eq!(h.len(), 64);
        assert_eq!(recovery_hash(u, &codes[0].to_uppercase()).unwrap(), h);
        assert_eq!(recovery_hash(u, &codes[0].replace('-', " ")).unwrap(), h);
        // Salted with the account: another account's equal code has another hash; not the bare SHA-256.
        assert_ne!(recovery_hash(Uuid::from_u128(2), &codes[0]).unwrap(), h);
        assert_ne!(
            h,
            crate::settings::hex(&super::super::sha256(&codes[0].replace('-', "")))
        );
        // A 10-character code of an earlier release: the unsalted hash stored then.
        assert_eq!(
            recovery_hash(u, "ABCDE-fghij").unwrap(),
            crate::settings::hex(&super::super::sha256("abcdefghij"))
        );
        assert!(recovery_hash(u, "short").is_none());
        assert!(recovery_hash(u, "abcdefghijklmno").is_none());
        assert!(is_recovery_code(&codes[1]) && !is_recovery_code("abc"));
    }
}
