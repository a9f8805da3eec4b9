//! Small types shared between the HTTP middleware (in `server`) and the pages (in `app`).

/// The per-response Content-Security-Policy nonce, put into request extensions by the security-headers
/// middleware and used by the page shell for its inline scripts.
#[derive(Debug, Clone)]
pub struct CspNonce(pub String);

/// The CSRF token for this request's `vortex_csrf` cookie, put into request extensions by the CSRF middleware
/// and rendered into every form (and the page's `csrf-token` meta tag).
#[derive(Debug, Clone)]
pub struct CsrfToken(pub String);

/// For `multipart/form-data` posts to the CSV upload route (the only route allowed to defer), the CSRF
/// middleware cannot read the form without buffering the whole upload, so it checks the origin, then leaves
/// this in the request: the handler must verify the form's `csrf` field against it with
/// [`crate::auth::csrf::verify`] before reading anything large. Multipart posts to any other route must carry
/// the token in the `x-csrf-token` header.
#[derive(Debug, Clone)]
pub struct CsrfDeferred {
    pub cookie_value: String,
}

/// The signed-in user of this request's session cookie, looked up once per request: a page reads it for
/// the header, the bell and its own data, and each would otherwise verify the cookie and query the session.
/// Put into request extensions (shared by every clone of the request's parts) by the middleware.
#[derive(Debug, Clone, Default)]
pub struct SessionMemo(pub std::sync::Arc<tokio::sync::OnceCell<Option<crate::auth::AuthUser>>>);

/// Marked by a render when something it was to show could not be read (a database error the page shows as an
/// error, or leaves out): such a page is answered but not kept by a cache. Put into request extensions
/// (shared by every clone of the request's parts) by the cache that would keep the page.
#[derive(Debug, Clone, Default)]
pub struct RenderFailures(pub std::sync::Arc<std::sync::atomic::AtomicBool>);

impl RenderFailures {
    pub fn mark(&self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    #[must_use]
    pub fn any(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// The client's address as resolved by the middleware (see [`client_ip`]).
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub std::net::IpAddr);

/// The request id of the current request (from `x-request-id`), put into request extensions by the
/// middleware so handlers can attach it to the jobs they enqueue.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// The client's IP address: the TCP peer, unless the peer is a trusted proxy (`TRUSTED_PROXIES`), in which
/// case the right-most `X-Forwarded-For` entry that is not itself a trusted proxy. Spoofed entries that a
/// client put in front of the header are ignored, because only the proxies' own appends are trusted.
pub fn client_ip(
    peer: std::net::IpAddr,
    forwarded_for: Option<&str>,
    trusted: &[crate::settings::IpNet],
) -> std::net::IpAddr {
    let is_trusted = |ip: std::net::IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    let Some(header) = forwarded_for else {
        return peer;
    };
    let mut last = peer;
    for hop in header.rsplit(',').map(str::trim) {
        match hop.parse::<std::net::IpAddr>() {
            Ok(ip) if is_trusted(ip) => last = ip,
            Ok(ip) => return ip,
            // A malformed entry: stop at the last address a trusted proxy vouched for.
            Err(_) => return last,
        }
    }
    last
}

/// The cookie that carries a form's validation error (`[field, message]` as JSON, base64url) from the form
/// handler's redirect to the page that shows it next to the field. Short-lived; the values the trader typed
/// travel in the redirect's query string.
pub const FORM_ERROR_COOKIE: &str = "vortex_form_error";

/// The cookie that carries the details of a CSV upload's outcome (the bad row's line, the skipped rows) from
/// the upload handler's redirect to the Market data page, which shows them under the fixed message named by
/// the query's code. Short-lived, HttpOnly: another site cannot set it, so a crafted link cannot put text
/// into the page's official alert.
pub const UPLOAD_RESULT_COOKIE: &str = "vortex_upload_result";

/// The cookie that carries a bulk action's summary ("3 suspended; 1 refused: …") from `POST /admin/users/bulk`
/// to the users list, which shows it. Short-lived, HttpOnly, like [`UPLOAD_RESULT_COOKIE`].
pub const BULK_RESULT_COOKIE: &str = "vortex_bulk_result";

pub use crate::auth::session::read_cookie;

/// Encodes a flash value for a cookie.
pub fn encode_flash(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text.as_bytes())
}

/// Decodes [`encode_flash`]; `None` for anything malformed.
pub fn decode_flash(raw: &str) -> Option<String> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(raw.trim())
        .ok()?;
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::client_ip;
    use crate::settings::IpNet;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn the_peer_is_the_client_unless_it_is_a_trusted_proxy() {
        let trusted = nets(&["127.0.0.1", "10.0.0.0/8"]);
        let ip = |s: &str| s.parse().unwrap();
        assert_eq!(
            client_ip(ip("203.0.113.9"), Some("1.2.3.4"), &trusted),
            ip("203.0.113.9")
        );
        assert_eq!(
            client_ip(ip("127.0.0.1"), Some("198.51.100.7"), &trusted),
            ip("198.51.100.7")
        );
        assert_eq!(client_ip(ip("127.0.0.1"), None, &trusted), ip("127.0.0.1"));
        // A client-supplied (spoofed) first entry is skipped: the proxy appended the real address last.
        assert_eq!(
            client_ip(
                ip("127.0.0.1"),
                Some("6.6.6.6, 198.51.100.7, 10.1.1.1"),
                &trusted
            ),
            ip("198.51.100.7")
        );
        assert_eq!(
            client_ip(ip("127.0.0.1"), Some("garbage"), &trusted),
            ip("127.0.0.1")
        );
        assert_eq!(
            client_ip(ip("127.0.0.1"), Some("1.1.1.1"), &[]),
            ip("127.0.0.1")
        );
    }
}
