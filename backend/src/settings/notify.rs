//! Notification volume: the tick, coalescing windows, the hourly cap and digests (docs/design/notifications.md
//! §4.3, §4.5 and §9).

use std::time::Duration;

use super::reader::Reader;

/// How notifications are released (see `backend::notify::release` and `backend::notify::tick`).
#[derive(Debug, Clone)]
pub struct NotifySettings {
    /// `NOTIFY_TICK_SECS`: how often the `notify_tick` job releases due batches and digests (0 = never
    /// scheduled; tests call `notify::tick::run_once`).
    pub tick_secs: u64,
    /// `NOTIFY_COALESCE_SECS`: a burst of one coalescible kind within this window is one message.
    pub coalesce_secs: i64,
    /// `NOTIFY_HOURLY_CAP`: messages per user × channel × destination per hour; more wait for one "N more".
    pub hourly_cap: i64,
    /// `NOTIFY_DIGEST_MAX_ITEMS`: items listed per digest section or batch message ("and N more" after).
    pub digest_max_items: usize,
    /// `NOTIFY_DIGEST_LOOKBACK_DAYS`: the oldest item a digest lists.
    pub digest_lookback_days: i64,
}

impl Default for NotifySettings {
    /// The documented defaults (as with no `NOTIFY_*` variable set).
    fn default() -> Self {
        Self {
            tick_secs: 10,
            coalesce_secs: 60,
            hourly_cap: 20,
            digest_max_items: 50,
            digest_lookback_days: 8,
        }
    }
}

/// `NOTIFY_*`.
pub(super) fn parse(r: &mut Reader<'_>) -> NotifySettings {
    let d = NotifySettings::default();
    NotifySettings {
        tick_secs: r.bounded("NOTIFY_TICK_SECS", d.tick_secs, 0, 3600),
        coalesce_secs: r.bounded("NOTIFY_COALESCE_SECS", d.coalesce_secs, 1, 3600),
        hourly_cap: r.bounded("NOTIFY_HOURLY_CAP", d.hourly_cap, 1, 10_000),
        digest_max_items: r.bounded("NOTIFY_DIGEST_MAX_ITEMS", d.digest_max_items, 1, 1000),
        digest_lookback_days: r.bounded(
            "NOTIFY_DIGEST_LOOKBACK_DAYS",
            d.digest_lookback_days,
            1,
            90,
        ),
    }
}

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
