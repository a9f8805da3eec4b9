//! The rendered HTML of the public pages as an anonymous visitor sees them, kept per process so that a visit
//! does not render them again (issue 16, goal 5: a render costs ~0.4 ms of CPU, the rest of a request a
//! fraction of that).
//!
//! What such a page shows depends only on its path and on the maintenance banner; what differs from one
//! response to the next is the CSP nonce and the CSRF token, both random per visitor. The cache keeps each
//! page as a template with holes where they were and fills in the current request's own values, so no two
//! responses share a nonce or a token, exactly as when every response is rendered.
//!
//! Served from the cache only when the render could not differ: a `GET` of one of [`PATHS`] exactly, with no
//! query string (flash messages, `next=`, …), no cookie but the CSRF cookie (no session, no flash cookie), no
//! `Authorization`. Stored only from a `200` HTML answer without `Set-Cookie` whose body has the nonce and the
//! token in it, and filed under the banner it shows: the banner read before and after the render must agree,
//! and the page must show exactly that banner (or none when it is empty), so a banner that changed during
//! the render cannot be filed under the other. A request whose banner differs from the entry's is a miss and
//! its render replaces the entry. The banner is read as every page reads it (at most every `BANNER_TTL` per
//! process, at once in the process that changes it), so the cache shows a change no later than rendering
//! would. An entry is rendered again after [`MAX_AGE`] in any case.
//! Everything outside this middleware (security headers with the same nonce, the CSRF cookie, compression,
//! the access log) runs for every response as before.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use axum::{
    body::{Body, Bytes},
    extract::{Request, State},
    http::{HeaderMap, Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use backend::web::{CspNonce, CsrfToken};

/// The pages that are the same for every anonymous visitor (but for the nonce, the token and the banner).
pub const PATHS: &[&str] = &["/", "/signin", "/forgot-password"];

/// Larger pages are served but not kept (none of [`PATHS`] comes near).
const MAX_BYTES: usize = 256 * 1024;

/// How long a page is served from the cache before it is rendered again: a backstop should one of [`PATHS`]
/// (or the layout they share) come to show something besides the banner that can change while the process
/// runs.
const MAX_AGE: Duration = Duration::from_secs(30);

/// The cached pages of this process, by path.
#[derive(Default)]
pub struct PageCache {
    pages: Mutex<HashMap<&'static str, Arc<Entry>>>,
}

/// A cached public page and the banner it was rendered with.
#[derive(Debug)]
struct Entry {
    banner: String,
    /// When it was rendered ([`MAX_AGE`]).
    rendered_at: Instant,
    page: Page,
}

/// One rendered page with holes for the per-response values (also the signed-in pages',
/// [`crate::signed_in_cache`]).
#[derive(Debug)]
pub(crate) struct Page {
    /// The page's own headers (content type), without any framing header.
    headers: HeaderMap,
    pieces: Vec<Piece>,
    /// Bytes of the text pieces.
    text_len: usize,
}

#[derive(Debug, PartialEq, Eq)]
enum Piece {
    Text(Bytes),
    Nonce,
    Csrf,
}

impl Page {
    /// The page `body` with `headers` (framing headers removed) as a template: `None` unless the body has both
    /// the nonce and the token in it.
    pub(crate) fn new(
        mut headers: HeaderMap,
        body: &Bytes,
        nonce: &str,
        token: &str,
    ) -> Option<Self> {
        headers.remove(header::CONTENT_LENGTH);
        headers.remove(header::TRANSFER_ENCODING);
        let (pieces, text_len) = Self::template(body, nonce, token)?;
        Some(Self {
            headers,
            pieces,
            text_len,
        })
    }

    /// The bytes the page occupies (its text; the pieces and headers are small beside it).
    pub(crate) fn size(&self) -> usize {
        self.text_len
    }

    /// Splits `body` at every occurrence of `nonce` and `token`; `None` unless both occur (a page whose
    /// render did not use them is not one this cache understands).
    fn template(body: &Bytes, nonce: &str, token: &str) -> Option<(Vec<Piece>, usize)> {
        if nonce.is_empty() || token.is_empty() || nonce.contains(token) || token.contains(nonce) {
            return None;
        }
        let text = std::str::from_utf8(body).ok()?;
        let mut holes: Vec<(usize, usize, Piece)> = text
            .match_indices(nonce)
            .map(|(at, s)| (at, s.len(), Piece::Nonce))
            .chain(
                text.match_indices(token)
                    .map(|(at, s)| (at, s.len(), Piece::Csrf)),
            )
            .collect();
        if !holes.iter().any(|h| h.2 == Piece::Nonce) || !holes.iter().any(|h| h.2 == Piece::Csrf) {
            return None;
        }
        holes.sort_by_key(|h| h.0);
        let mut pieces = Vec::with_capacity(holes.len() * 2 + 1);
        let mut text_len = 0;
        let mut at = 0;
        for (start, len, piece) in holes {
            // Random values of different lengths cannot overlap; if they did, the page is not cached.
            if start < at {
                return None;
            }
            if start > at {
                pieces.push(Piece::Text(body.slice(at..start)));
                text_len += start - at;
            }
            pieces.push(piece);
            at = start + len;
        }
        if at < body.len() {
            pieces.push(Piece::Text(body.slice(at..)));
            text_len += body.len() - at;
        }
        Some((pieces, text_len))
    }

    fn render(&self, nonce: &str, token: &str) -> Vec<u8> {
        let holes = self.pieces.len();
        let mut out = Vec::with_capacity(self.text_len + holes * nonce.len().max(token.len()));
        for p in &self.pieces {
            match p {
                Piece::Text(t) => out.extend_from_slice(t),
                Piece::Nonce => out.extend_from_slice(nonce.as_bytes()),
                Piece::Csrf => out.extend_from_slice(token.as_bytes()),
            }
        }
        out
    }

    /// The page with this response's nonce and token.
    pub(crate) fn response(&self, nonce: &str, token: &str) -> Response {
        let mut resp = Response::new(Body::from(self.render(nonce, token)));
        resp.headers_mut().clone_from(&self.headers);
        resp
    }
}

/// Whether `html` shows exactly `banner` as the maintenance banner (`app::components::layout`), or no banner
/// when it is empty.
fn shows_banner(html: &[u8], banner: &str) -> bool {
    let Ok(html) = std::str::from_utf8(html) else {
        return false;
    };
    if banner.is_empty() {
        return !html.contains(BANNER_ID);
    }
    let text = banner
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    html.contains(BANNER_ID) && html.contains(&format!(">{text}</div>"))
}

const BANNER_ID: &str = "id=\"maintenance-banner\"";

/// Whether every cookie the request carries is one of `allowed` (or it carries none).
pub(crate) fn only_cookies(headers: &HeaderMap, allowed: &[&str]) -> bool {
    headers.get_all(header::COOKIE).iter().all(|v| {
        v.to_str().is_ok_and(|v| {
            v.split(';')
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .all(|c| {
                    c.split_once('=')
                        .is_some_and(|(k, _)| allowed.contains(&k.trim()))
                })
        })
    })
}

/// The path if this request may be answered from (and fill) the cache.
fn cacheable(req: &Request, csrf_cookie: &str) -> Option<&'static str> {
    if req.method() != Method::GET || req.uri().query().is_some() {
        return None;
    }
    let path = PATHS.iter().find(|p| **p == req.uri().path())?;
    let h = req.headers();
    (!h.contains_key(header::AUTHORIZATION) && only_cookies(h, &[csrf_cookie])).then_some(*path)
}

/// This response's CSP nonce and CSRF token (set by the security-headers and CSRF layers), which a kept page
/// has holes for.
pub(crate) fn holes(req: &Request) -> Option<(&String, &String)> {
    let CspNonce(nonce) = req.extensions().get::<CspNonce>()?;
    let CsrfToken(token) = req.extensions().get::<CsrfToken>()?;
    Some((nonce, token))
}

/// The middleware (inside the security-headers and CSRF layers, whose nonce and token it uses).
///
/// Its state is shared (`Arc`), as axum clones a middleware's state for every request.
pub async fn serve(
    State((ctx, cache)): State<(Arc<backend::Ctx>, Arc<PageCache>)>,
    req: Request,
    next: Next,
) -> Response {
    let ctx = &*ctx;
    let Some(path) = cacheable(&req, backend::auth::csrf::cookie_name(&ctx.settings)) else {
        return next.run(req).await;
    };
    let Some((nonce, token)) = holes(&req) else {
        return next.run(req).await;
    };
    // The banner as the page would read it; unreadable (database down): render as usual.
    let Ok(banner) = backend::admin::settings::banner(ctx).await else {
        return next.run(req).await;
    };
    let cached = cache
        .pages
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(path)
        .filter(|e| e.banner == banner && e.rendered_at.elapsed() < MAX_AGE)
        .cloned();
    if let Some(entry) = cached {
        metrics::counter!("page_cache_total", "result" => "hit").increment(1);
        return entry.page.response(nonce, token);
    }
    metrics::counter!("page_cache_total", "result" => "miss").increment(1);
    // Copied only now: the request goes on to be rendered, the values are needed after it.
    let (nonce, token) = (nonce.clone(), token.clone());
    let (parts, body) = match rendered_page(next.run(req).await, path).await {
        Ok(page) => page,
        Err(resp) => return resp,
    };
    let same_banner = backend::admin::settings::banner(ctx)
        .await
        .is_ok_and(|b| b == banner);
    if body.len() <= MAX_BYTES
        && same_banner
        && shows_banner(&body, &banner)
        && let Some(page) = Page::new(parts.headers.clone(), &body, &nonce, &token)
    {
        let entry = Entry {
            banner,
            rendered_at: Instant::now(),
            page,
        };
        cache
            .pages
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(path, Arc::new(entry));
    }
    Response::from_parts(parts, Body::from(body))
}

/// A rendered answer as a page a cache may keep: a `200` HTML answer without `Set-Cookie`, read whole
/// (framing headers removed). Anything else is handed back (`Err`) to be sent as it is.
pub(crate) async fn rendered_page(
    resp: Response,
    path: &str,
) -> Result<(axum::http::response::Parts, Bytes), Response> {
    let html = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if resp.status() != StatusCode::OK || !html || resp.headers().contains_key(header::SET_COOKIE) {
        return Err(resp);
    }
    let (mut parts, body) = resp.into_parts();
    let body = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(error = %e, path, "rendering a page failed");
            return Err(StatusCode::INTERNAL_SERVER_ERROR.into_response());
        }
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.remove(header::TRANSFER_ENCODING);
    Ok((parts, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_template_refills_with_other_values() {
        let body = Bytes::from_static(
            b"<meta name=\"csrf-token\" content=\"TOKEN1\"><script nonce=\"nonce1\">x</script>\
              <input value=\"TOKEN1\">",
        );
        let page = Page::new(HeaderMap::new(), &body, "nonce1", "TOKEN1").unwrap();
        assert_eq!(page.render("nonce1", "TOKEN1"), body.to_vec());
        assert_eq!(
            String::from_utf8(page.render("n2", "T2")).unwrap(),
            "<meta name=\"csrf-token\" content=\"T2\"><script nonce=\"n2\">x</script><input value=\"T2\">"
        );
    }

    #[test]
    fn pages_without_the_nonce_or_the_token_are_not_templates() {
        let body = Bytes::from_static(b"<p>nonce1</p>");
        assert!(Page::template(&body, "nonce1", "TOKEN1").is_none());
        assert!(Page::template(&body, "nonce1", "").is_none());
        let body = Bytes::from_static(b"<p>TOKEN1</p>");
        assert!(Page::template(&body, "nonce1", "TOKEN1").is_none());
    }

    #[test]
    fn a_page_is_filed_under_the_banner_it_shows() {
        let with = |text: &str| {
            format!(
                "<header></header><div class=\"maintenance-banner\" role=\"status\" id=\"maintenance-banner\">\
                 <div class=\"container\">{text}</div></div><main></main>"
            )
        };
        assert!(shows_banner(b"<header></header><main></main>", ""));
        assert!(!shows_banner(with("Down at 22:00").as_bytes(), ""));
        assert!(shows_banner(
            with("Down at 22:00").as_bytes(),
            "Down at 22:00"
        ));
        assert!(shows_banner(
            with("a &lt;b&gt; &amp; c").as_bytes(),
            "a <b> & c"
        ));
        // A longer banner that starts with the same words is another banner.
        assert!(!shows_banner(
            with("Down at 22:00 tonight").as_bytes(),
            "Down at 22:00"
        ));
        assert!(!shows_banner(b"<main></main>", "Down at 22:00"));
    }

    #[test]
    fn only_a_csrf_cookie_is_anonymous() {
        let mut h = HeaderMap::new();
        assert!(only_cookies(&h, &["vortex_csrf"]));
        h.insert(header::COOKIE, "vortex_csrf=ab".parse().unwrap());
        assert!(only_cookies(&h, &["vortex_csrf"]));
        h.insert(
            header::COOKIE,
            "vortex_csrf=ab; vortex_session=x".parse().unwrap(),
        );
        assert!(!only_cookies(&h, &["vortex_csrf"]));
        h.insert(header::COOKIE, "other".parse().unwrap());
        assert!(!only_cookies(&h, &["vortex_csrf"]));
    }
}
