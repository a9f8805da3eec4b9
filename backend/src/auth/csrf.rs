//! CSRF defence for cookie-authenticated, state-changing requests (AC5), two independent checks:
//!
//! 1. Fetch Metadata / Origin: `Sec-Fetch-Site: cross-site` is refused; without it, an `Origin` (or failing
//!    that `Referer`) that is not this site is refused.
//! 2. A signed double-submit token: a random `vortex_csrf` cookie (HttpOnly, `__Host-` over HTTPS), and in each
//!    form (`csrf` field) or request (`x-csrf-token` header) the HMAC of that cookie under a server key. A
//!    foreign page can neither read the cookie nor compute the HMAC.

use base64::Engine;
use hmac::{KeyInit, Mac};

use super::AuthKeys;
use crate::settings::Settings;

pub const FORM_FIELD: &str = "csrf";
pub const HEADER: &str = "x-csrf-token";

pub fn cookie_name(settings: &Settings) -> &'static str {
    if settings.secure_cookies() {
        "__Host-vortex_csrf"
    } else {
        "vortex_csrf"
    }
}

/// The token that forms must carry for a given cookie value.
pub fn token_for(keys: &AuthKeys, cookie_value: &str) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&keys.csrf).expect("any key length");
    mac.update(b"csrf:");
    mac.update(cookie_value.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

/// Whether `token` matches the cookie (constant time).
pub fn verify(keys: &AuthKeys, cookie_value: &str, token: &str) -> bool {
    cookie_value.len() == 64
        && super::constant_time_eq(token_for(keys, cookie_value).as_bytes(), token.as_bytes())
}

/// Why a request failed the origin check, if it did.
pub fn origin_problem(headers: &http::HeaderMap, settings: &Settings) -> Option<&'static str> {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if get("sec-fetch-site") == Some("cross-site") {
        return Some("cross-site request");
    }
    let allowed = settings.public_url.origin().ascii_serialization();
    let host_origin = |scheme: &str| get("host").map(|h| format!("{scheme}://{h}"));
    let same = |origin: &str| {
        origin == allowed
            || Some(origin.to_owned()) == host_origin("http")
            || Some(origin.to_owned()) == host_origin("https")
    };
    if let Some(origin) = get("origin") {
        if origin != "null" && same(origin) {
            return None;
        }
        return Some("foreign origin");
    }
    if let Some(referer) = get("referer") {
        let origin = url::Url::parse(referer)
            .map(|u| u.origin().ascii_serialization())
            .unwrap_or_default();
        return if same(&origin) {
            None
        } else {
            Some("foreign referer")
        };
    }
    None
}
