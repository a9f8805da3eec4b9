//! Notifications (docs/design/notifications.md §9).

use std::time::Duration;

use super::reader::Reader;

// --- Live in-app updates (server-sent events), per web process -------------------------------------------

/// `NOTIFY_SSE_*`: the live stream of in-app notifications (`GET /api/events/notifications`).
#[derive(Debug, Clone)]
pub struct NotifySseSettings {
    /// `NOTIFY_SSE_HEARTBEAT_SECS`: a comment line this often keeps proxies from closing an idle stream.
    pub heartbeat: Duration,
    /// `NOTIFY_SSE_MAX_SECS`: a stream ends after this long (the browser reconnects and re-authenticates).
    pub max_duration: Duration,
    /// `NOTIFY_SSE_MAX_PER_USER`: open streams one user may hold in one process (tabs).
    pub max_per_user: usize,
    /// `NOTIFY_SSE_MAX_TOTAL`: open streams in one process.
    pub max_total: usize,
}

/// `NOTIFY_SSE_*`.
pub(super) fn parse_sse(r: &mut Reader<'_>) -> NotifySseSettings {
    NotifySseSettings {
        heartbeat: r.seconds("NOTIFY_SSE_HEARTBEAT_SECS", 15.0, 1.0, 300.0),
        max_duration: r.seconds("NOTIFY_SSE_MAX_SECS", 1800.0, 10.0, 86_400.0),
        max_per_user: r.bounded("NOTIFY_SSE_MAX_PER_USER", 5usize, 1, 100),
        max_total: r.bounded("NOTIFY_SSE_MAX_TOTAL", 2000usize, 1, 100_000),
    }
}

// --- end of NOTIFY_SSE_* ---------------------------------------------------------------------------------
