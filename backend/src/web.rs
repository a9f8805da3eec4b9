//! Small types shared between the HTTP middleware (in `server`) and the pages (in `app`).

/// The per-response Content-Security-Policy nonce, put into request extensions by the security-headers
/// middleware and used by the page shell for its inline scripts.
#[derive(Debug, Clone)]
pub struct CspNonce(pub String);

/// The request id of the current request (from `x-request-id`), put into request extensions by the
/// middleware so handlers can attach it to the jobs they enqueue.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);
