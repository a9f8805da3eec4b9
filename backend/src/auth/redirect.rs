//! Where to send a browser after signing in (`next`): never to another site (no open redirect).
//!
//! `next` is parsed the way a browser would parse it as a link on our own pages (WHATWG URL rules, the same
//! ones the `url` crate implements: tabs and newlines are dropped, `\` counts as `/` and leading control
//! characters and spaces are trimmed), resolved against `PUBLIC_URL`, and accepted only when the result has
//! the same origin. The redirect carries only the path and query of the resolved URL, percent-encoded, so it is
//! always a valid header value (control and non-ASCII characters are encoded rather than refused or garbled)
//! and can never start with `//`.

use url::Url;

/// Where a browser goes after signing in when `next` is missing or refused.
pub const DEFAULT_AFTER_SIGNIN: &str = "/account";
/// Longer `next` values are refused.
pub const MAX_NEXT_LEN: usize = 2048;

/// The same-origin path (and query) `next` points to, or [`DEFAULT_AFTER_SIGNIN`].
pub fn after_signin(public_url: &Url, next: &str) -> String {
    same_origin_path(public_url, next)
        .filter(|p| !is_auth_page(p))
        .unwrap_or_else(|| DEFAULT_AFTER_SIGNIN.to_owned())
}

/// The path and query of `next` resolved against `base`, when it is on `base`'s origin.
pub fn same_origin_path(base: &Url, next: &str) -> Option<String> {
    if next.is_empty() || next.len() > MAX_NEXT_LEN {
        return None;
    }
    let resolved = base.join(next).ok()?;
    if resolved.origin() != base.origin() || resolved.cannot_be_a_base() {
        return None;
    }
    let path = resolved.path();
    // `/.//x` resolves to the path `//x`, which a browser would read as another host.
    if !path.starts_with('/') || path.starts_with("//") {
        return None;
    }
    let mut out = path.to_owned();
    if let Some(q) = resolved.query() {
        out.push('?');
        out.push_str(q);
    }
    // Url serialises ASCII only; checked anyway, because this goes into a Location header.
    out.bytes().all(|b| b.is_ascii_graphic()).then_some(out)
}

fn is_auth_page(path: &str) -> bool {
    ["/signin", "/signout", "/auth/"]
        .iter()
        .any(|p| path == p.trim_end_matches('/') || path.starts_with(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Url {
        Url::parse("https://vortex.example").unwrap()
    }

    #[test]
    fn same_site_paths_are_kept_with_their_query() {
        for (next, want) in [
            ("/strategies/5", "/strategies/5"),
            ("/backtests?page=2&sort=new", "/backtests?page=2&sort=new"),
            ("/%2F/x", "/%2F/x"),
            ("https://vortex.example/market", "/market"),
            ("/a/../market", "/market"),
            // Same scheme without slashes is a relative path in WHATWG parsing: harmless.
            ("https:evil.example", "/evil.example"),
        ] {
            assert_eq!(after_signin(&base(), next), want, "{next:?}");
        }
    }

    #[test]
    fn other_origins_and_bypass_spellings_are_refused() {
        for next in [
            "//evil.example",
            "/\\evil.example",
            "\\/evil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            "\t//evil.example",
            " //evil.example",
            "\u{1}//evil.example",
            "/.//evil.example",
            "http:evil.example",
            "http://vortex.example/",
            "https://vortex.example:444/",
            "https://evil.example/",
            "javascript:alert(1)",
            "JaVaScRiPt:alert(1)",
            "data:text/html,<script>alert(1)</script>",
            "/signin",
            "/signin?next=/x",
            "/signout",
            "/auth/signout",
            "",
        ] {
            assert_eq!(after_signin(&base(), next), "/account", "{next:?}");
        }
        assert_eq!(
            after_signin(&base(), &format!("/{}", "a".repeat(3000))),
            "/account"
        );
    }

    #[test]
    fn control_and_non_ascii_characters_come_back_percent_encoded() {
        assert_eq!(after_signin(&base(), "/a\u{7}b"), "/a%07b");
        assert_eq!(
            after_signin(&base(), "/zürich?q=ü"),
            "/z%C3%BCrich?q=%C3%BC"
        );
        assert_eq!(after_signin(&base(), "/a b"), "/a%20b");
    }
}
