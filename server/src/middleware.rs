//! Every HTTP middleware, in one ordered place (outermost first):
//!
//! 0. client IP: the peer, or the forwarded client when the peer is a trusted proxy;
//! 1. request id: keep a well-formed incoming `x-request-id` (nginx sets one) or mint a UUID; echoed on the
//!    response and stored in request extensions for handlers and enqueued jobs;
//! 2. problems: API errors become RFC 9457 problems with the request id (see `crate::error::problem_details`);
//! 3. trace: one span per request with `request_id`, method and path; logs status and latency (never headers);
//! 4. metrics: `http_requests_total` and `http_request_duration_seconds` by matched route and status;
//! 5. panic → 500 page;
//! 6. timeout (`REQUEST_TIMEOUT_SECS`) → 408;
//! 7. body limit (`BODY_LIMIT_BYTES`) → 413;
//! 8. compression;
//! 9. security headers (CSP with a per-response nonce, nosniff, frame-ancestors, referrer policy, …);
//! 10. CORS for the configured origins only;
//! 11. CSRF: Fetch-Metadata/Origin check and signed double-submit token on cookie-authenticated writes;
//! 12. the signed-in page cache: a session's backtests list from its last render while nothing it shows
//!     changed, with this response's nonce and CSRF token (see `crate::signed_in_cache`); a session's writes
//!     make this process forget its user's pages;
//! 13. mandatory two-factor sign-in for admins: while the platform setting is on, an admin's browser session
//!     without it reaches only the account page (sent there to turn it on) and sign-out;
//! 14. the page cache: the anonymous public pages from one render, with this response's nonce and CSRF token
//!     (see `crate::page_cache`).

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use axum::{
    Router,
    body::Body,
    extract::{MatchedPath, Request, State},
    http::{HeaderName, HeaderValue, Method, StatusCode, header},
    middleware::{self, Next},
    response::{Html, IntoResponse, Response},
};
use backend::web::{ClientIp, CspNonce, RequestId};
use tower_http::{
    catch_panic::CatchPanicLayer,
    compression::CompressionLayer,
    cors::{AllowOrigin, CorsLayer},
    timeout::TimeoutLayer,
    trace::TraceLayer,
};
use tracing::Span;

use crate::state::AppState;

/// What the CSRF, two-factor and page-cache layers read: the backend context, shared so that a request costs
/// one reference count per layer rather than a clone of every handle in the [`AppState`] (issue 16, goal 5).
type SharedCtx = Arc<backend::Ctx>;

pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Wraps `router` in the full middleware stack.
pub fn apply(router: Router<AppState>, state: &AppState) -> Router<AppState> {
    let settings = &state.ctx.settings;
    // Each layer gets only what it reads: axum clones a layer's state (twice) for every request it handles.
    let ctx: SharedCtx = Arc::new(state.ctx.clone());
    // Layers added last run first, so this list reads innermost → outermost.
    router
        .layer(middleware::from_fn_with_state(
            (ctx.clone(), state.pages.clone()),
            crate::page_cache::serve,
        ))
        .layer(middleware::from_fn_with_state(
            ctx.clone(),
            admin_two_factor,
        ))
        .layer(middleware::from_fn_with_state(
            (ctx.clone(), state.signed_in.clone()),
            crate::signed_in_cache::serve,
        ))
        .layer(cors(&settings.allowed_origins()))
        .layer(middleware::from_fn_with_state(ctx, csrf_protect))
        .layer(middleware::from_fn_with_state(
            Csp::of(settings),
            security_headers,
        ))
        // Level 4: brotli's default (11) took ~0.4 ms of CPU per 4 KB page, more than rendering it (bench/pages.sh);
        // 4 compresses pages nearly as well at a fraction of the cost, and is what CDNs use for dynamic content.
        .layer(CompressionLayer::new().quality(tower_http::CompressionLevel::Precise(4)))
        .layer(middleware::from_fn_with_state(
            BodyLimits::of(settings),
            limit_body,
        ))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            settings.request_timeout,
        ))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(middleware::from_fn(record_metrics))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request| {
                    // Borrowed, not copied: formatted only when the span is recorded (an empty field when
                    // missing, as before).
                    let request_id = req.extensions().get::<RequestId>().map(|r| r.0.as_str());
                    let client_ip = req.extensions().get::<ClientIp>().map(|c| c.0);
                    tracing::info_span!(
                        "http",
                        request_id = %OrEmpty(request_id),
                        client_ip = %OrEmpty(client_ip),
                        method = %req.method(),
                        path = %req.uri().path(),
                        status = tracing::field::Empty,
                    )
                })
                .on_request(())
                .on_response(|resp: &Response, latency: Duration, span: &Span| {
                    span.record("status", resp.status().as_u16());
                    let ms = u64::try_from(latency.as_millis()).unwrap_or(u64::MAX);
                    if resp.status().is_server_error() {
                        tracing::warn!(
                            status = resp.status().as_u16(),
                            latency_ms = ms,
                            "request failed"
                        );
                    } else {
                        tracing::info!(status = resp.status().as_u16(), latency_ms = ms, "request");
                    }
                })
                .on_failure(()),
        )
        .layer(middleware::from_fn(crate::error::problem_details))
        .layer(middleware::from_fn(request_id))
        .layer(middleware::from_fn_with_state(
            state.ctx.settings.clone(),
            resolve_client_ip,
        ))
}

/// A span field's value, or nothing when there is none.
struct OrEmpty<T>(Option<T>);

impl<T: std::fmt::Display> std::fmt::Display for OrEmpty<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Some(v) => v.fmt(f),
            None => Ok(()),
        }
    }
}

/// Works out the client's address once per request (see [`backend::web::client_ip`]) for logs, rate limits
/// and the audit trail.
async fn resolve_client_ip(
    State(settings): State<Arc<backend::settings::Settings>>,
    mut req: Request,
    next: Next,
) -> Response {
    let peer = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map_or(std::net::IpAddr::from([127, 0, 0, 1]), |c| c.0.ip());
    let forwarded = req
        .headers()
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok());
    let ip = backend::web::client_ip(peer, forwarded, &settings.trusted_proxies);
    req.extensions_mut().insert(ClientIp(ip));
    next.run(req).await
}

/// Accepts an incoming request id only if it is short and plain; anything else is replaced.
fn valid_request_id(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 64
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
}

async fn request_id(mut req: Request, next: Next) -> Response {
    let incoming = req
        .headers()
        .get(&X_REQUEST_ID)
        .filter(|v| v.to_str().is_ok_and(valid_request_id))
        .cloned();
    let value = incoming.unwrap_or_else(|| {
        let mut buf = uuid::Uuid::encode_buffer();
        let id = uuid::Uuid::new_v4().hyphenated().encode_lower(&mut buf);
        HeaderValue::from_str(id).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
    });
    // (Well-formed request ids are plain ASCII, so this is the same text as the header.)
    let id = value.to_str().unwrap_or("invalid").to_owned();
    req.headers_mut()
        .insert(X_REQUEST_ID.clone(), value.clone());
    req.extensions_mut().insert(RequestId(id));
    // The session is looked up at most once per request, however many parts of a page ask for the user.
    req.extensions_mut()
        .insert(backend::web::SessionMemo::default());
    let mut resp = next.run(req).await;
    resp.headers_mut().insert(X_REQUEST_ID.clone(), value);
    resp
}

/// Marks the 500 answer of a panic (already reported by the panic hook, so not again as a 5xx).
#[derive(Clone, Copy)]
struct Panicked;

async fn record_metrics(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = method_label(req.method());
    // The route template, never the raw path: raw paths would make unbounded label sets.
    let route = match req.extensions().get::<MatchedPath>() {
        Some(p) => route_label(p.as_str()),
        None if req.uri().path().starts_with("/pkg/") => "/pkg/*",
        None => "unmatched",
    };
    // Error tracking: the request runs on its own hub (its id, route and user go with a panic or a 5xx).
    let hub = req
        .extensions()
        .get::<RequestId>()
        .and_then(|id| backend::error_tracking::request_hub(&id.0, route));
    let resp = match &hub {
        Some(hub) => backend::error_tracking::bind(hub.clone(), next.run(req)).await,
        None => next.run(req).await,
    };
    let code = resp.status().as_u16();
    if let Some(hub) = hub
        && resp.status().is_server_error()
        && code != 503
        && resp.extensions().get::<Panicked>().is_none()
    {
        backend::error_tracking::in_hub(hub, || {
            backend::error_tracking::server_error(&method, route, code);
        });
    }
    // Static strings where the values allow it: the labels then cost no copies of their text.
    let labels = vec![
        metrics::Label::new("method", method),
        metrics::Label::new("route", route),
        metrics::Label::new("status", status_label(code)),
    ];
    metrics::counter!("http_requests_total", labels.clone()).increment(1);
    metrics::histogram!("http_request_duration_seconds", labels)
        .record(start.elapsed().as_secs_f64());
    resp
}

/// The `method` label: the standard methods as static text, any other as sent (as before).
fn method_label(method: &Method) -> metrics::SharedString {
    const STANDARD: &[(Method, &str)] = &[
        (Method::GET, "GET"),
        (Method::HEAD, "HEAD"),
        (Method::POST, "POST"),
        (Method::PUT, "PUT"),
        (Method::PATCH, "PATCH"),
        (Method::DELETE, "DELETE"),
        (Method::OPTIONS, "OPTIONS"),
        (Method::CONNECT, "CONNECT"),
        (Method::TRACE, "TRACE"),
    ];
    // Any other method is `OTHER`: a label per made-up method would let clients add series without end.
    let name = STANDARD
        .iter()
        .find(|(m, _)| m == method)
        .map_or("OTHER", |(_, name)| name);
    metrics::SharedString::const_str(name)
}

/// The `route` label of a matched route: its template, kept once per process. The templates are the router's
/// own (a fixed, small set), so this never grows with what clients send.
fn route_label(template: &str) -> &'static str {
    use std::{
        collections::HashSet,
        sync::{LazyLock, PoisonError, RwLock},
    };
    static ROUTES: LazyLock<RwLock<HashSet<&'static str>>> = LazyLock::new(RwLock::default);
    if let Some(r) = ROUTES
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .get(template)
    {
        return r;
    }
    let mut routes = ROUTES.write().unwrap_or_else(PoisonError::into_inner);
    if let Some(r) = routes.get(template) {
        return r;
    }
    let r: &'static str = Box::leak(template.into());
    routes.insert(r);
    r
}

/// The `status` label: the code's three digits, as static text.
fn status_label(code: u16) -> &'static str {
    // Every code `http::StatusCode` admits (100–999).
    static DIGITS: [[u8; 3]; 900] = {
        let mut t = [[0u8; 3]; 900];
        let mut i = 0;
        while i < 900 {
            let c = i + 100;
            t[i] = [
                b'0' + (c / 100) as u8,
                b'0' + (c / 10 % 10) as u8,
                b'0' + (c % 10) as u8,
            ];
            i += 1;
        }
        t
    };
    DIGITS
        .get(usize::from(code).wrapping_sub(100))
        .and_then(|d| std::str::from_utf8(d).ok())
        .unwrap_or("000")
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("handler panicked");
    let mut resp = (
        StatusCode::INTERNAL_SERVER_ERROR,
        Html(
            "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Error · Vortex</title>\
             <link rel=\"stylesheet\" href=\"/pkg/vortex.css\"></head><body><main class=\"container message-page\">\
             <p class=\"status-code\">500</p><h1>Something went wrong</h1>\
             <p class=\"muted\">The error has been logged. Please try again.</p>\
             <a class=\"button\" href=\"/\">Back to the home page</a></main></body></html>",
        ),
    )
        .into_response();
    resp.extensions_mut().insert(Panicked);
    resp
}

/// The Content-Security-Policy around its per-response nonce: the text before the nonce, and the text after
/// it, which ends with the `form-action` sources (our own origin, and the payment provider's hosted pages
/// when billing is on). Both are made once, at start-up.
#[derive(Clone)]
struct Csp {
    before_nonce: &'static str,
    after_nonce: Arc<str>,
}

impl Csp {
    fn of(settings: &backend::settings::Settings) -> Self {
        Self::with_form_action(settings.billing.redirect_origins())
    }

    fn with_form_action(origins: Vec<String>) -> Self {
        let mut after = String::from(
            "' 'wasm-unsafe-eval'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self'; \
             connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'",
        );
        for origin in origins {
            after.push(' ');
            after.push_str(&origin);
        }
        after.push_str("; frame-ancestors 'none'");
        Csp {
            before_nonce: "default-src 'self'; script-src 'self' 'nonce-",
            after_nonce: after.into(),
        }
    }

    /// The header with `nonce` in it, built in one buffer that the header value then owns.
    fn header(&self, nonce: &str) -> Option<HeaderValue> {
        let mut v =
            Vec::with_capacity(self.before_nonce.len() + nonce.len() + self.after_nonce.len());
        v.extend_from_slice(self.before_nonce.as_bytes());
        v.extend_from_slice(nonce.as_bytes());
        v.extend_from_slice(self.after_nonce.as_bytes());
        // What `HeaderValue::from_str` accepts (visible ASCII and tabs), without its copy.
        if !v.iter().all(|&b| b == b'\t' || (32..127).contains(&b)) {
            return None;
        }
        HeaderValue::from_maybe_shared(axum::body::Bytes::from(v)).ok()
    }
}

/// Sets the security headers on every response. The CSP nonce is generated here and handed to the page shell
/// through request extensions, so the header and the inline scripts agree.
async fn security_headers(State(csp): State<Csp>, mut req: Request<Body>, next: Next) -> Response {
    let nonce = backend::settings::random_token(16);
    let csp = csp.header(&nonce);
    req.extensions_mut().insert(CspNonce(nonce.clone()));
    let cacheable = req.uri().path().starts_with("/pkg/") || req.uri().path() == "/favicon.svg";
    let mut resp = crate::nonce::scope(nonce, next.run(req)).await;
    let h = resp.headers_mut();
    // Pages and API answers may carry personal data: never stored by browsers or shared caches (CF2).
    if !cacheable && !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if let Some(v) = csp {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("strict-origin-when-cross-origin"),
    );
    h.insert(
        HeaderName::from_static("permissions-policy"),
        HeaderValue::from_static("camera=(), microphone=(), geolocation=(), payment=()"),
    );
    h.insert(
        HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
    resp
}

fn cors(origins: &[String]) -> CorsLayer {
    let origins: Arc<[HeaderValue]> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    CorsLayer::new()
        // Exactly these origins, as `AllowOrigin::list` would allow, but shared: the layer is cloned for every
        // request and a list is copied with it.
        .allow_origin(AllowOrigin::predicate(move |origin, _| {
            origins.contains(origin)
        }))
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            X_REQUEST_ID.clone(),
        ])
        .expose_headers([X_REQUEST_ID.clone()])
        .max_age(Duration::from_secs(600))
}

/// Paths whose writes are authenticated by bearer tokens only (no ambient cookie authority), so CSRF does
/// not apply: the REST API and the operator API; and the one-click unsubscribe POST (RFC 8058), compared
/// exactly (not as a prefix): its signed token is the authority, no cookie is read, and all it can do is
/// stop one category's email.
fn csrf_exempt(method: &Method, path: &str) -> bool {
    path.starts_with("/api/v1/")
        || path.starts_with("/ops/")
        || (*method == Method::POST && path == crate::routes::notifications::ONE_CLICK_PATH)
}

/// CSRF defence (see `backend::auth::csrf`). Also makes sure every browser has a CSRF cookie and puts the
/// matching token into the request for the page to render into its forms.
async fn csrf_protect(State(ctx): State<SharedCtx>, req: Request, next: Next) -> Response {
    use backend::auth::{csrf, session::read_cookie};
    let settings = &ctx.settings;
    let keys = &ctx.keys;
    let name = csrf::cookie_name(settings);
    // The cookie's value is 64 hex digits (`random_secret`): copied to the stack, not to the heap.
    let mut buf = [0u8; 64];
    let existing = read_cookie(req.headers(), name)
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()));
    let fresh = existing.is_none();
    let owned_fresh;
    let cookie_value: &str = match existing {
        Some(v) => {
            buf.copy_from_slice(v.as_bytes());
            std::str::from_utf8(&buf).unwrap_or_default()
        }
        None => {
            owned_fresh = backend::auth::random_secret();
            &owned_fresh
        }
    };
    let token = csrf::token_for(keys, cookie_value);

    let unsafe_method = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    // Mail providers' one-click POSTs (and scanners' GETs of that URL) get no cookie: they are not browsers
    // with a session, and a Set-Cookie there would only be noise.
    let one_click = req.uri().path() == crate::routes::notifications::ONE_CLICK_PATH;
    let mut req = req;
    if unsafe_method && !csrf_exempt(req.method(), req.uri().path()) {
        if let Some(problem) = csrf::origin_problem(req.headers(), settings) {
            tracing::warn!(problem, "CSRF check failed");
            return csrf_refused();
        }
        let mut provided = req
            .headers()
            .get(csrf::HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let is_form = content_type.starts_with("application/x-www-form-urlencoded");
        if provided.is_none()
            && content_type.starts_with("multipart/form-data")
            && !fresh
            && req.uri().path() == UPLOAD_PATH
        {
            // The CSV upload only: its handler verifies the form's leading csrf field before reading the file
            // (see backend::web::CsrfDeferred). Every other multipart post needs the x-csrf-token header.
            req.extensions_mut().insert(backend::web::CsrfDeferred {
                cookie_value: cookie_value.to_owned(),
            });
            req.extensions_mut().insert(backend::web::CsrfToken(token));
            return next.run(req).await;
        }
        if provided.is_none() && is_form {
            let (parts, body) = req.into_parts();
            let bytes = match form_body(body, settings).await {
                Ok(b) => b,
                Err(resp) => return resp,
            };
            provided = url::form_urlencoded::parse(&bytes)
                .find(|(k, _)| k == csrf::FORM_FIELD)
                .map(|(_, v)| v.into_owned());
            req = Request::from_parts(parts, Body::from(bytes));
        } else if is_form {
            // The token came in the header; the form is still held to the field limit.
            let (parts, body) = req.into_parts();
            let bytes = match form_body(body, settings).await {
                Ok(b) => b,
                Err(resp) => return resp,
            };
            req = Request::from_parts(parts, Body::from(bytes));
        }
        let valid = !fresh
            && provided
                .as_deref()
                .is_some_and(|t| csrf::verify(keys, cookie_value, t));
        if !valid {
            tracing::warn!(
                cookie_present = !fresh,
                token_present = provided.is_some(),
                "CSRF token rejected"
            );
            return csrf_refused();
        }
    }
    req.extensions_mut().insert(backend::web::CsrfToken(token));
    let mut resp = next.run(req).await;
    let already_set = resp.headers().get_all(header::SET_COOKIE).iter().any(|v| {
        v.as_bytes()
            .strip_prefix(name.as_bytes())
            .is_some_and(|rest| rest.first() == Some(&b'='))
    });
    if fresh && !already_set && !one_click {
        let cookie = backend::auth::session::cookie(
            settings,
            name,
            cookie_value,
            Duration::from_secs(12 * 3600),
        );
        if let Ok(v) = HeaderValue::from_str(&cookie) {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    resp
}

/// Buffers a URL-encoded form body (within `BODY_LIMIT_BYTES`) and refuses it with 413 when it has more
/// than `FORM_MAX_FIELDS` fields, before any handler parses it: no form of the site has more than a few
/// hundred, and parsing is where a form of a hundred thousand fields costs.
async fn form_body(
    body: Body,
    settings: &backend::settings::Settings,
) -> Result<axum::body::Bytes, Response> {
    let bytes = axum::body::to_bytes(body, settings.body_limit_bytes)
        .await
        .map_err(|_| (StatusCode::PAYLOAD_TOO_LARGE, "request body too large").into_response())?;
    let fields = bytes
        .split(|b| *b == b'&')
        .filter(|f| !f.is_empty())
        .count();
    if fields > settings.form_max_fields {
        tracing::warn!(fields, "form refused: too many fields");
        return Err(crate::extract::html_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Form too large",
            &format!(
                "The form has {fields} fields; at most {} are accepted.",
                settings.form_max_fields
            ),
        ));
    }
    Ok(bytes)
}

fn csrf_refused() -> Response {
    crate::extract::html_error(
        StatusCode::FORBIDDEN,
        "Form expired",
        "This form has expired or was sent from another site. Go back, reload the page and try again.",
    )
}

/// Paths that accept large uploads, with their own limit.
pub const UPLOAD_PATH: &str = "/market/upload";

/// The two request-body limits (`BODY_LIMIT_BYTES`, `MARKET_UPLOAD_LIMIT_BYTES`).
#[derive(Clone, Copy)]
struct BodyLimits {
    body: usize,
    upload: usize,
}

impl BodyLimits {
    fn of(settings: &backend::settings::Settings) -> Self {
        Self {
            body: settings.body_limit_bytes,
            upload: settings.market.upload_limit_bytes,
        }
    }
}

/// Request-body limit: `BODY_LIMIT_BYTES` everywhere, `MARKET_UPLOAD_LIMIT_BYTES` on the upload route. A
/// declared length over the limit is refused at once (413); a body that turns out longer fails when read.
async fn limit_body(State(limits): State<BodyLimits>, req: Request, next: Next) -> Response {
    let limit = if req.uri().path() == UPLOAD_PATH {
        limits.upload
    } else {
        limits.body
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        let message = format!("the request body is larger than {limit} bytes");
        // API clients get the API's JSON error format.
        if crate::error::is_api_path(req.uri().path()) {
            return crate::error::ApiError::PayloadTooLarge(message).into_response();
        }
        return (StatusCode::PAYLOAD_TOO_LARGE, message).into_response();
    }
    let (parts, body) = req.into_parts();
    let body = Body::new(http_body_util::Limited::new(body, limit));
    next.run(Request::from_parts(parts, body)).await
}

/// What an admin who must turn on two-factor sign-in may still reach: the account page with its data and
/// two-factor forms, sign-in and sign-out, the page assets and the probes.
fn reachable_before_two_factor(path: &str) -> bool {
    const EXACT: &[&str] = &[
        "/account",
        "/api/account",
        "/api/viewer",
        "/api/banner",
        "/api/notification_summary",
        "/health",
        "/ready",
        "/metrics",
    ];
    const PREFIXES: &[&str] = &[
        "/account/two-factor/",
        "/auth/",
        "/signin",
        "/pkg/",
        "/vendor/",
        "/api/v1/",
    ];
    // The public files at the site's root (`favicon.svg`, the page scripts): one segment with a dot.
    let public_file = path.len() > 1 && !path[1..].contains('/') && path.contains('.');
    EXACT.contains(&path) || PREFIXES.iter().any(|p| path.starts_with(p)) || public_file
}

/// Sends an admin who must turn on two-factor sign-in (`account::two_factor::must_enrol`) to the account page
/// (page views) or refuses (anything else) until they did. The session's user is kept in the request for the
/// handlers (they do not look it up again).
async fn admin_two_factor(State(ctx): State<SharedCtx>, req: Request, next: Next) -> Response {
    use backend::{account::two_factor, auth::session};
    if reachable_before_two_factor(req.uri().path()) {
        return next.run(req).await;
    }
    let ctx = &*ctx;
    // Apart, so the cookie is read where it is (headers) while the user goes into the extensions.
    let (mut parts, body) = req.into_parts();
    let Some(token) = session::read_cookie(&parts.headers, session::cookie_name(&ctx.settings))
    else {
        return next.run(Request::from_parts(parts, body)).await;
    };
    // Through the request's memo: the page's own reads of the user then cost no second session query.
    let lookup = || session::authenticate(&ctx.db, &ctx.keys, &ctx.settings, token);
    let found = match parts.extensions.get::<backend::web::SessionMemo>().cloned() {
        Some(memo) => memo.0.get_or_try_init(lookup).await.cloned(),
        None => lookup().await,
    };
    let Ok(Some(user)) = found else {
        // No live session (or the database is down: the handlers answer that).
        return next.run(Request::from_parts(parts, body)).await;
    };
    let must = two_factor::must_enrol(ctx, &user).await;
    parts.extensions.insert(user);
    let req = Request::from_parts(parts, body);
    match must {
        Ok(false) => next.run(req).await,
        // Fail closed: whether this admin may go on is unknown.
        Err(e) => crate::error::HtmlError::from(e).into_response(),
        Ok(true) if req.method() == Method::GET || req.method() == Method::HEAD => (
            StatusCode::SEE_OTHER,
            [(header::LOCATION, "/account?error=two_factor_required#two-factor")],
        )
            .into_response(),
        Ok(true) => (
            StatusCode::FORBIDDEN,
            Html(
                "<!doctype html><title>Two-factor sign-in required</title><h1>Two-factor sign-in \
                 required</h1><p>Administrators of this instance must turn on two-factor sign-in first: \
                 <a href=\"/account#two-factor\">do it on your account page</a>.</p>",
            ),
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::{Csp, Method, method_label, status_label, valid_request_id};

    #[test]
    fn made_up_methods_share_one_metrics_label() {
        assert_eq!(&*method_label(&Method::GET), "GET");
        for made_up in ["FOOXYZ123", "PROPFIND", "get"] {
            let m = Method::from_bytes(made_up.as_bytes()).unwrap();
            assert_eq!(&*method_label(&m), "OTHER", "{made_up}");
        }
    }

    #[test]
    fn the_csp_is_the_policy_with_the_nonce_and_the_form_action_sources() {
        let nonce = "0123456789abcdef0123456789abcdef";
        for (origins, form_action) in [
            (vec![], "'self'"),
            (
                vec![
                    "https://checkout.stripe.com".to_owned(),
                    "http://127.0.0.1:9".to_owned(),
                ],
                "'self' https://checkout.stripe.com http://127.0.0.1:9",
            ),
        ] {
            // The policy as it was written out in full for every response.
            let expected = format!(
                "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; \
                 style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self'; connect-src 'self'; \
                 object-src 'none'; base-uri 'none'; form-action {form_action}; frame-ancestors 'none'"
            );
            let built = Csp::with_form_action(origins).header(nonce).unwrap();
            assert_eq!(built.to_str().unwrap(), expected);
        }
    }

    #[test]
    fn status_labels_are_the_three_digits() {
        for code in [100, 200, 204, 302, 404, 418, 500, 503, 999] {
            assert_eq!(status_label(code), code.to_string());
        }
    }

    #[test]
    fn request_ids_must_be_short_and_plain() {
        assert!(valid_request_id("3f1c2a9e-1b2c-4d5e-8f90-123456789abc"));
        assert!(valid_request_id("nginx.abc_123"));
        assert!(!valid_request_id(""));
        assert!(!valid_request_id("a b"));
        assert!(!valid_request_id("<script>"));
        assert!(!valid_request_id(&"x".repeat(65)));
    }
}
