//! The CSP nonce of the response being made, for HTML built outside the page shell (the small error pages'
//! script, [`crate::error::html_error`]): the security-headers middleware runs the request inside [`scope`]
//! with the nonce it puts in the response's Content-Security-Policy.

use std::future::Future;

tokio::task_local! {
    static NONCE: String;
}

/// Runs `f` (the rest of the request) with `nonce` as the response's nonce.
pub(crate) async fn scope<F: Future>(nonce: String, f: F) -> F::Output {
    NONCE.scope(nonce, f).await
}

/// The nonce of the response being made, inside [`scope`].
pub(crate) fn current() -> Option<String> {
    NONCE.try_with(Clone::clone).ok()
}
