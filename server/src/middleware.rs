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
//! 12. mandatory two-factor sign-in for admins: while the platform setting is on, an admin's browser session
//!     without it reaches only the account page (sent there to turn it on) and sign-out;
//! 13. the page cache: the anonymous public pages from one render, with this response's nonce and CSRF token
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

pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Wraps `router` in the full middleware stack.
pub fn apply(router: Router<AppState>, state: &AppState) -> Router<AppState> {
    let settings = &state.ctx.settings;
    // Layers added last run first, so this list reads innermost → outermost.
    router
        .layer(middleware::from_fn_with_state(
            (state.ctx.clone(), state.pages.clone()),
            crate::page_cache::serve,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            admin_two_factor,
        ))
        .layer(cors(&settings.allowed_origins()))
        .layer(middleware::from_fn_with_state(state.clone(), csrf_protect))
        .layer(middleware::from_fn_with_state(
            FormAction::of(settings),
            security_headers,
        ))
        // Level 4: brotli's default (11) took ~0.4 ms of CPU per 4 KB page, more than rendering it (bench/pages.sh);
        // 4 compresses pages nearly as well at a fraction of the cost, and is what CDNs use for dynamic content.
        .layer(CompressionLayer::new().quality(tower_http::CompressionLevel::Precise(4)))
        .layer(middleware::from_fn_with_state(state.clone(), limit_body))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            settings.request_timeout,
        ))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(middleware::from_fn(record_metrics))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request| {
                    let request_id = req
                        .extensions()
                        .get::<RequestId>()
                        .map_or_else(String::new, |r| r.0.clone());
                    let client_ip = req
                        .extensions()
                        .get::<ClientIp>()
                        .map_or_else(String::new, |c| c.0.to_string());
                    tracing::info_span!(
                        "http",
                        request_id = %request_id,
                        client_ip = %client_ip,
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
            state.clone(),
            resolve_client_ip,
        ))
}

/// Works out the client's address once per request (see [`backend::web::client_ip`]) for logs, rate limits
/// and the audit trail.
async fn resolve_client_ip(
    axum::extract::State(state): axum::extract::State<AppState>,
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
    let ip = backend::web::client_ip(peer, forwarded, &state.ctx.settings.trusted_proxies);
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
    let id = req
        .headers()
        .get(&X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| valid_request_id(v))
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned);
    let value = HeaderValue::from_str(&id).unwrap_or_else(|_| HeaderValue::from_static("invalid"));
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
    let method = req.method().as_str().to_owned();
    // The route template, never the raw path: raw paths would make unbounded label sets.
    let route = req.extensions().get::<MatchedPath>().map_or_else(
        || {
            if req.uri().path().starts_with("/pkg/") {
                "/pkg/*".to_owned()
            } else {
                "unmatched".to_owned()
            }
        },
        |p| p.as_str().to_owned(),
    );
    // Error tracking: the request runs on its own hub (its id, route and user go with a panic or a 5xx).
    let hub = req
        .extensions()
        .get::<RequestId>()
        .and_then(|id| backend::error_tracking::request_hub(&id.0, &route));
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
            backend::error_tracking::server_error(&method, &route, code);
        });
    }
    let status = code.to_string();
    let labels = [("method", method), ("route", route), ("status", status)];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels)
        .record(start.elapsed().as_secs_f64());
    resp
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

/// The CSP's `form-action` sources: our own origin, and the payment provider's hosted pages when billing is on.
#[derive(Clone)]
struct FormAction(Arc<str>);

impl FormAction {
    fn of(settings: &backend::settings::Settings) -> Self {
        let mut sources = String::from("'self'");
        for origin in settings.billing.redirect_origins() {
            sources.push(' ');
            sources.push_str(&origin);
        }
        FormAction(sources.into())
    }
}

/// Sets the security headers on every response. The CSP nonce is generated here and handed to the page shell
/// through request extensions, so the header and the inline scripts agree.
async fn security_headers(
    State(FormAction(form_action)): State<FormAction>,
    mut req: Request<Body>,
    next: Next,
) -> Response {
    let nonce = backend::settings::random_token(16);
    req.extensions_mut().insert(CspNonce(nonce.clone()));
    let cacheable = req.uri().path().starts_with("/pkg/") || req.uri().path() == "/favicon.svg";
    let mut resp = crate::nonce::scope(nonce.clone(), next.run(req)).await;
    let h = resp.headers_mut();
    // Pages and API answers may carry personal data: never stored by browsers or shared caches (CF2).
    if !cacheable && !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    let csp = format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; \
         style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self'; connect-src 'self'; \
         object-src 'none'; base-uri 'none'; form-action {form_action}; frame-ancestors 'none'"
    );
    if let Ok(v) = HeaderValue::from_str(&csp) {
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
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
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
async fn csrf_protect(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    use backend::auth::{csrf, session::read_cookie};
    let settings = &state.ctx.settings;
    let keys = &state.ctx.keys;
    let name = csrf::cookie_name(settings);
    let existing = read_cookie(req.headers(), name)
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(str::to_owned);
    let fresh = existing.is_none();
    let cookie_value = existing.unwrap_or_else(backend::auth::random_secret);
    let token = csrf::token_for(keys, &cookie_value);

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
                cookie_value: cookie_value.clone(),
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
                .is_some_and(|t| csrf::verify(keys, &cookie_value, t));
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
    let already_set = resp
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .any(|v| v.to_str().is_ok_and(|v| v.starts_with(&format!("{name}="))));
    if fresh && !already_set && !one_click {
        let cookie = backend::auth::session::cookie(
            settings,
            name,
            &cookie_value,
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

/// Request-body limit: `BODY_LIMIT_BYTES` everywhere, `MARKET_UPLOAD_LIMIT_BYTES` on the upload route. A
/// declared length over the limit is refused at once (413); a body that turns out longer fails when read.
async fn limit_body(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let s = &state.ctx.settings;
    let limit = if req.uri().path() == UPLOAD_PATH {
        s.market.upload_limit_bytes
    } else {
        s.body_limit_bytes
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
async fn admin_two_factor(
    axum::extract::State(state): axum::extract::State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    use backend::{account::two_factor, auth::session};
    if reachable_before_two_factor(req.uri().path()) {
        return next.run(req).await;
    }
    let ctx = &state.ctx;
    let Some(token) =
        session::read_cookie(req.headers(), session::cookie_name(&ctx.settings)).map(str::to_owned)
    else {
        return next.run(req).await;
    };
    // Through the request's memo: the page's own reads of the user then cost no second session query.
    let lookup = || session::authenticate(&ctx.db, &ctx.keys, &ctx.settings, &token);
    let found = match req.extensions().get::<backend::web::SessionMemo>().cloned() {
        Some(memo) => memo.0.get_or_try_init(lookup).await.cloned(),
        None => lookup().await,
    };
    let Ok(Some(user)) = found else {
        // No live session (or the database is down: the handlers answer that).
        return next.run(req).await;
    };
    let must = two_factor::must_enrol(ctx, &user).await;
    req.extensions_mut().insert(user);
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
    use super::valid_request_id;

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
