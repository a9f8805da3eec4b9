//! Error tracking: panics, 5xx answers and jobs that failed for good go to a Sentry-protocol endpoint
//! (`SENTRY_DSN`: Sentry itself, self-hosted Sentry or GlitchTip), with the context an operator needs (request
//! id, route, job kind and id, release, user id) and nothing personal or secret.
//!
//! The maintained SDK (`sentry`) builds, scopes and scrubs the events; they are sent by a small transport of
//! our own over the HTTP client the app already uses: one background thread, a bounded queue (a burst of
//! errors drops events rather than memory), 5 s to connect and 10 s per envelope. Without `SENTRY_DSN` nothing
//! is set up and every function here does nothing.
//!
//! Scrubbing (`before_send`): no request data, no user but the id, no server name; e-mail addresses, bearer
//! tokens, `token=`/`secret=`/`password=` values and URLs' credentials are masked in messages and exception
//! values, so an error message that quotes input cannot leak it.

use std::{
    borrow::Cow,
    sync::{
        Arc, OnceLock,
        atomic::{AtomicUsize, Ordering},
        mpsc,
    },
    time::{Duration, Instant},
};

use regex::Regex;
use secrecy::ExposeSecret;
use sentry::{
    ClientInitGuard, ClientOptions, Envelope, Level, Transport,
    protocol::{Event, User},
    types::Dsn,
};

use crate::settings::Settings;

/// Envelopes waiting to be sent at most (beyond that, new ones are dropped and counted).
const QUEUE: usize = 100;

/// Starts error tracking when `SENTRY_DSN` is set. Keep the guard for the life of the process: dropping it
/// sends what is queued (up to 2 s).
///
/// # Errors
/// A DSN that does not parse (settings already checked it, so only a programming error gets here).
pub fn init(settings: &Settings, process: &'static str) -> anyhow::Result<Option<ClientInitGuard>> {
    let Some(dsn) = &settings.sentry_dsn else {
        return Ok(None);
    };
    let dsn: Dsn = dsn
        .expose_secret()
        .parse()
        .map_err(|e| anyhow::anyhow!("SENTRY_DSN: {e}"))?;
    let transport: Arc<dyn sentry::TransportFactory> =
        Arc::new(Arc::new(HttpTransport::start(dsn.clone())));
    let mut options = ClientOptions::default();
    options.dsn = Some(dsn);
    options.release = Some(Cow::Owned(release()));
    options.environment = Some(Cow::Owned(settings.app_env.to_string()));
    options.send_default_pii = false;
    options.server_name = None;
    options.attach_stacktrace = false;
    options.shutdown_timeout = Duration::from_secs(2);
    options.before_send = Some(Arc::new(|event| Some(scrub(event))));
    options.transport = Some(transport);
    let guard = sentry::init(options);
    sentry::configure_scope(|s| s.set_tag("process", process));
    Ok(Some(guard))
}

/// `vortex@<version>+<git commit>` (the commit when the build was given `VORTEX_GIT_SHA`).
pub fn release() -> String {
    match option_env!("VORTEX_GIT_SHA") {
        Some(sha) if !sha.is_empty() && sha != "unknown" => {
            format!("vortex@{}+{sha}", env!("CARGO_PKG_VERSION"))
        }
        _ => format!("vortex@{}", env!("CARGO_PKG_VERSION")),
    }
}

/// Whether events are being sent (a DSN was configured).
pub fn enabled() -> bool {
    sentry::Hub::current()
        .client()
        .is_some_and(|c| c.is_enabled())
}

/// A request answered with a server error (`status` ≥ 500). The request's hub (see
/// [`request_hub`]) carries its id and route.
pub fn server_error(method: &str, route: &str, status: u16) {
    if !enabled() {
        return;
    }
    sentry::with_scope(
        |s| {
            s.set_tag("status", status);
            s.set_fingerprint(Some(&["http", route, &status.to_string()]));
        },
        || sentry::capture_message(&format!("{method} {route} answered {status}"), Level::Error),
    );
}

/// A job that failed for good (its attempts are spent or the error is permanent): once per job.
pub fn job_failed(
    kind: &str,
    queue: &str,
    job_id: uuid::Uuid,
    request_id: Option<&str>,
    error: &str,
) {
    if !enabled() {
        return;
    }
    sentry::with_scope(
        |s| {
            s.set_tag("job_kind", kind);
            s.set_tag("queue", queue);
            s.set_tag("job_id", job_id);
            if let Some(r) = request_id.filter(|r| !r.is_empty()) {
                s.set_tag("request_id", r);
            }
            s.set_fingerprint(Some(&["job", kind]));
        },
        || sentry::capture_message(&format!("job {kind} failed: {error}"), Level::Error),
    );
}

/// A hub for one request, carrying its id and route (and, once known, the user id): bind the request's
/// future to it so that a panic or a 5xx inside it is reported with them.
pub fn request_hub(request_id: &str, route: &str) -> Option<Arc<sentry::Hub>> {
    if !enabled() {
        return None;
    }
    let hub = Arc::new(sentry::Hub::new_from_top(sentry::Hub::current()));
    hub.configure_scope(|s| {
        s.set_tag("request_id", request_id);
        s.set_tag("route", route);
    });
    Some(hub)
}

/// Runs `fut` on `hub` (what it reports carries the hub's scope).
pub fn bind<F: std::future::Future>(
    hub: Arc<sentry::Hub>,
    fut: F,
) -> impl std::future::Future<Output = F::Output> {
    use sentry::SentryFutureExt as _;
    fut.bind_hub(hub)
}

/// Runs `f` with `hub` as the current hub.
pub fn in_hub<R>(hub: Arc<sentry::Hub>, f: impl FnOnce() -> R) -> R {
    sentry::Hub::run(hub, f)
}

/// Adds the signed-in user's id (only the id) to the current request's reports.
pub fn set_user(user_id: uuid::Uuid) {
    if !enabled() {
        return;
    }
    sentry::configure_scope(|s| {
        s.set_user(Some(User {
            id: Some(user_id.to_string()),
            ..Default::default()
        }));
    });
}

fn masks() -> &'static [(Regex, &'static str)] {
    static MASKS: OnceLock<Vec<(Regex, &'static str)>> = OnceLock::new();
    MASKS.get_or_init(|| {
        [
            (r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}", "[email]"),
            (r"(?i)bearer\s+[A-Za-z0-9._~+/=-]+", "Bearer [redacted]"),
            (
                r"(?i)\b(token|secret|password|api_key|key|t|invite|sig|signature)=([^&\s]+)",
                "$1=[redacted]",
            ),
            (
                r"(?i)(postgres(?:ql)?|rediss?|smtps?|https?)://[^/\s:@]+:[^@\s]+@",
                "$1://[redacted]@",
            ),
        ]
        .into_iter()
        .map(|(p, r)| (Regex::new(p).expect("static pattern"), r))
        .collect()
    })
}

fn mask(text: &str) -> String {
    masks().iter().fold(text.to_owned(), |t, (re, with)| {
        re.replace_all(&t, *with).into_owned()
    })
}

/// What leaves the process: no request, no user but the id, no host name, masked texts.
pub fn scrub(mut event: Event<'static>) -> Event<'static> {
    event.request = None;
    event.server_name = None;
    event.user = event.user.take().and_then(|u| {
        u.id.map(|id| User {
            id: Some(id),
            ..Default::default()
        })
    });
    event.message = event.message.as_deref().map(mask);
    if let Some(l) = event.logentry.as_mut() {
        l.message = mask(&l.message);
    }
    for e in &mut event.exception.values {
        e.value = e.value.as_deref().map(mask);
    }
    event.extra.clear();
    event.breadcrumbs.values.clear();
    event
}

/// Sends envelopes from one background thread over blocking HTTP; bounded queue, counted drops.
struct HttpTransport {
    tx: mpsc::SyncSender<Envelope>,
    pending: Arc<AtomicUsize>,
}

impl HttpTransport {
    fn start(dsn: Dsn) -> Self {
        let (tx, rx) = mpsc::sync_channel::<Envelope>(QUEUE);
        let pending = Arc::new(AtomicUsize::new(0));
        let left = Arc::clone(&pending);
        std::thread::Builder::new()
            .name("error-tracking".into())
            .spawn(move || {
                let url = dsn.envelope_api_url().to_string();
                let auth = dsn
                    .to_auth(Some(&format!("vortex/{}", env!("CARGO_PKG_VERSION"))))
                    .to_string();
                let http = reqwest::blocking::Client::builder()
                    .connect_timeout(Duration::from_secs(5))
                    .timeout(Duration::from_secs(10))
                    .build();
                let Ok(http) = http else {
                    tracing::error!("error tracking: no HTTP client; reports are dropped");
                    return;
                };
                for envelope in rx {
                    let mut body = Vec::new();
                    if envelope.to_writer(&mut body).is_ok() {
                        let sent = http
                            .post(&url)
                            .header("X-Sentry-Auth", &auth)
                            .header("Content-Type", "application/x-sentry-envelope")
                            .body(body)
                            .send();
                        match sent {
                            Ok(r) if r.status().is_success() => {}
                            Ok(r) => {
                                metrics::counter!("error_reports_failed_total").increment(1);
                                tracing::warn!(status = r.status().as_u16(), "error tracking refused a report");
                            }
                            Err(e) => {
                                metrics::counter!("error_reports_failed_total").increment(1);
                                tracing::warn!(error = %e.without_url(), "error tracking unreachable");
                            }
                        }
                    }
                    left.fetch_sub(1, Ordering::SeqCst);
                }
            })
            .expect("spawn the error-tracking thread");
        Self { tx, pending }
    }
}

impl Transport for HttpTransport {
    fn send_envelope(&self, envelope: Envelope) {
        self.pending.fetch_add(1, Ordering::SeqCst);
        if self.tx.try_send(envelope).is_err() {
            self.pending.fetch_sub(1, Ordering::SeqCst);
            metrics::counter!("error_reports_dropped_total").increment(1);
        }
    }

    fn flush(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while self.pending.load(Ordering::SeqCst) > 0 {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrubbing_masks_personal_data_and_secrets_and_drops_the_request() {
        let mut e = Event {
            message: Some(
                "mail to ann@example.org failed; Authorization: Bearer vx_abc.def; /reset?token=s3cret&x=1 \
                 postgres://vortex:hunter2@db/vortex"
                    .into(),
            ),
            user: Some(User {
                id: Some("42".into()),
                email: Some("ann@example.org".into()),
                ip_address: Some(sentry::protocol::IpAddress::Auto),
                ..Default::default()
            }),
            server_name: Some("web-1".into()),
            request: Some(Default::default()),
            ..Default::default()
        };
        e.extra.insert("body".into(), "secret".into());
        let e = scrub(e);
        let m = e.message.unwrap();
        for leaked in ["ann@example.org", "vx_abc", "s3cret", "hunter2"] {
            assert!(!m.contains(leaked), "{leaked} in {m}");
        }
        assert!(
            m.contains("[email]") && m.contains("token=[redacted]"),
            "{m}"
        );
        let u = e.user.unwrap();
        assert_eq!(u.id.as_deref(), Some("42"));
        assert!(u.email.is_none() && u.ip_address.is_none());
        assert!(e.request.is_none() && e.server_name.is_none() && e.extra.is_empty());
    }

    #[test]
    fn the_release_names_the_version() {
        assert!(release().starts_with(concat!("vortex@", env!("CARGO_PKG_VERSION"))));
    }
}
