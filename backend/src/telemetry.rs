//! Logging and metrics set-up.
//!
//! Logs go to stdout for the long-running processes (`serve`, `worker`, `mock-exchange`) and to stderr for
//! the one-shot commands, whose stdout is their answer (JSON, tables) for scripts to read: JSON lines in
//! production (`LOG_FORMAT=json`), human-readable otherwise. Span fields (for
//! example the `request_id` recorded by the HTTP trace layer, or a job's `job_id` and `request_id`) are
//! included in every JSON line emitted inside the span, which is how a request can be followed into the jobs it
//! enqueued. Nothing here logs headers; the HTTP layer only records method, path, status and latency.

use std::sync::{OnceLock, PoisonError};

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::{EnvFilter, fmt, layer::SubscriberExt, util::SubscriberInitExt};

use crate::settings::LogFormat;

/// Where logs go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogTo {
    /// Services: the log is the output.
    Stdout,
    /// One-shot commands: stdout carries the answer.
    Stderr,
}

/// Log lines a service holds in memory while its log thread writes them. A burst beyond this (the log's
/// reader stalled: a full pipe, a slow disk) drops lines rather than stalling requests; they are counted in
/// `log_lines_dropped_total`. About 300 bytes a line: a few MiB at most.
pub const LOG_BUFFER_LINES: usize = 16 * 1024;

/// The services' log thread: its guard (dropped by [`flush`], which writes out what is buffered) and its
/// count of dropped lines.
static LOG_THREAD: std::sync::Mutex<Option<tracing_appender::non_blocking::WorkerGuard>> =
    std::sync::Mutex::new(None);
static DROPPED: OnceLock<tracing_appender::non_blocking::ErrorCounter> = OnceLock::new();

/// Installs the global tracing subscriber. Safe to call more than once (later calls are ignored), so tests
/// that build several apps in one process work.
///
/// A service's log (stdout) is written by a thread of its own, in batches: a request or job formats its line
/// and goes on, never waiting for a write to the log (one system call per line on the request's thread took
/// a fifth of a cached page's CPU, and a log reader that stalls would stall every request). Call [`flush`]
/// before the process ends. A one-shot command's log (stderr) is written as it happens.
pub fn init(level: &str, format: LogFormat, to: LogTo) {
    let filter = EnvFilter::try_new(level).unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter);
    let writer = match to {
        LogTo::Stdout => {
            let mut thread = LOG_THREAD.lock().unwrap_or_else(PoisonError::into_inner);
            if thread.is_some() {
                // Already initialised (tests): the first subscriber stays.
                return;
            }
            let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
                .lossy(true)
                .buffered_lines_limit(LOG_BUFFER_LINES)
                .thread_name("vortex-log")
                // Lines are written out when the queue is empty: one system call per batch.
                .finish(std::io::BufWriter::with_capacity(
                    64 * 1024,
                    std::io::stdout(),
                ));
            let _ = DROPPED.set(writer.error_counter());
            *thread = Some(guard);
            fmt::writer::BoxMakeWriter::new(writer)
        }
        LogTo::Stderr => fmt::writer::BoxMakeWriter::new(std::io::stderr),
    };
    let result = match format {
        LogFormat::Json => registry
            .with(
                fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false)
                    .with_target(true)
                    .with_writer(writer),
            )
            .try_init(),
        LogFormat::Pretty => registry
            .with(
                fmt::layer()
                    .compact()
                    .with_target(false)
                    .with_writer(writer),
            )
            .try_init(),
    };
    // Already initialised (tests): keep the first subscriber.
    let _ = result;
}

/// Writes out the log lines a service's log thread still holds and ends it (at the end of `main`; lines
/// logged after this are dropped). Does nothing for a process that logs to stderr.
pub fn flush() {
    let guard = LOG_THREAD
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take();
    drop(guard);
}

/// Log lines dropped so far because the log thread's buffer was full.
pub fn dropped_log_lines() -> usize {
    DROPPED.get().map_or(0, |c| c.dropped_lines())
}

static PROMETHEUS: OnceLock<PrometheusHandle> = OnceLock::new();

/// Latency buckets in seconds, shared by HTTP and job histograms.
const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

/// The process-wide Prometheus recorder (installed on first use).
pub fn prometheus() -> &'static PrometheusHandle {
    PROMETHEUS.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), BUCKETS)
            .expect("static bucket list is non-empty")
            .build_recorder();
        let handle = recorder.handle();
        // If another recorder is already installed (only possible in tests), metrics go there instead.
        let _ = metrics::set_global_recorder(recorder);
        describe();
        metrics::gauge!(
            "vortex_build_info",
            "version" => env!("CARGO_PKG_VERSION"),
            "git_sha" => option_env!("VORTEX_GIT_SHA").unwrap_or("unknown"),
        )
        .set(1.0);
        handle
    })
}

/// How often the recorder is maintained (histogram samples folded into their buckets).
pub const UPKEEP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

/// Starts the recorder's periodic upkeep on the current Tokio runtime (once per process; later calls do
/// nothing). Without it, histogram samples pile up in memory until something scrapes `/metrics`.
pub fn start_upkeep() {
    use std::sync::atomic::{AtomicBool, Ordering};
    static STARTED: AtomicBool = AtomicBool::new(false);
    if tokio::runtime::Handle::try_current().is_err() || STARTED.swap(true, Ordering::SeqCst) {
        return;
    }
    let handle = prometheus();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(UPKEEP_INTERVAL);
        loop {
            tick.tick().await;
            handle.run_upkeep();
            metrics::counter!("metrics_upkeep_runs_total").increment(1);
            metrics::counter!("log_lines_dropped_total").absolute(dropped_log_lines() as u64);
            crate::market::lag::refresh();
        }
    });
}

/// Runs `f` on a blocking thread inside the current tracing span, so its logs keep the request/job context.
pub async fn spawn_blocking_in_span<F, R>(f: F) -> Result<R, tokio::task::JoinError>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || span.in_scope(f)).await
}

/// HELP texts for every metric Vortex exports.
fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "http_requests_total",
        "HTTP requests by method, route template and status"
    );
    describe_histogram!(
        "http_request_duration_seconds",
        "HTTP request latency by method, route and status"
    );
    describe_counter!("jobs_enqueued_total", "Jobs enqueued by queue and kind");
    describe_counter!(
        "jobs_total",
        "Job attempts finished by queue, kind and outcome"
    );
    describe_histogram!(
        "job_duration_seconds",
        "Job attempt duration by queue and kind"
    );
    describe_counter!(
        "jobs_reenqueued_total",
        "Jobs re-delivered from Postgres by the reconciler"
    );
    describe_counter!(
        "worker_restarts_total",
        "apalis worker restarts after a Redis failure"
    );
    describe_gauge!(
        "jobs_pending",
        "Unfinished jobs by status (sampled at scrape time)"
    );
    describe_gauge!(
        "jobs_failed",
        "Jobs that failed permanently and await a re-drive"
    );
    describe_gauge!("db_pool_connections", "Postgres pool connections by state");
    describe_gauge!(
        "vortex_build_info",
        "Always 1; the labels name the running version and git commit"
    );
    describe_counter!(
        "log_lines_dropped_total",
        "Log lines dropped because the log's reader did not keep up (the log thread's buffer was full)"
    );
    describe_counter!(
        "metrics_upkeep_runs_total",
        "Maintenance passes of the metrics recorder (one every 5 s)"
    );
    describe_counter!(
        "jobs_pushed_total",
        "Job ids handed to Redis by queue (one per delivery)"
    );
    describe_counter!(
        "job_retries_total",
        "Failed job attempts scheduled for a retry with back-off"
    );
    describe_gauge!(
        "market_data_lag_seconds",
        "How far the newest stored candle of a series is behind the newest closed candle the exchange has"
    );
    describe_counter!(
        "billing_reconcile_runs_total",
        "Reconciliation runs with the payment provider by outcome (ok, partial, failed)"
    );
    describe_gauge!(
        "billing_reconcile_last_ok_timestamp_seconds",
        "When a reconciliation with the payment provider last finished ok (Unix seconds; before any did, when the first run started)"
    );
    describe_gauge!(
        "billing_reconcile_interval_seconds",
        "BILLING_RECONCILE_INTERVAL_SECS: how often a reconciliation is due (only exported with a schedule)"
    );
    describe_counter!(
        "billing_reconcile_events_total",
        "Provider events listed by reconciliation runs by result (processed now, duplicate, failed)"
    );
    describe_counter!(
        "billing_reconcile_subscriptions_total",
        "Subscriptions read from the provider by reconciliation runs by result (synced, failed)"
    );
    describe_gauge!("db_pool_max_connections", "Postgres pool size limit");
    describe_gauge!("redis_pool_connections", "Redis pool connections by state");
    describe_gauge!(
        "redis_pool_waiting",
        "Requests waiting for a Redis connection"
    );
}
