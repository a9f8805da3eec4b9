//! The state every route receives: Leptos options, the backend context and per-process web limits.

use backend::Ctx;
use leptos::prelude::LeptosOptions;

/// State shared by every route: a handle to [`Shared`], so that a clone is one reference count. axum clones a
/// route's state for every request it routes (issue 16, goal 5: a clone of every field was a fifth of the CPU
/// of a cached page).
#[derive(Clone)]
pub struct AppState(std::sync::Arc<Shared>);

/// What every route can reach through [`AppState`].
pub struct Shared {
    pub leptos: LeptosOptions,
    pub ctx: Ctx,
    pub limits: WebLimits,
    /// Live in-app updates: the process's Postgres listener and its per-user channels.
    pub hub: backend::notify::live::Hub,
    /// Live paper-run updates: the process's `LISTEN paper_run` and its per-run channels.
    pub paper_hub: crate::routes::paper::live::Hub,
    /// The anonymous public pages as rendered ([`crate::page_cache`]).
    pub pages: std::sync::Arc<crate::page_cache::PageCache>,
    /// Signed-in pages as rendered, per session ([`crate::signed_in_cache`]).
    pub signed_in: std::sync::Arc<crate::signed_in_cache::SignedInCache>,
}

impl AppState {
    pub fn new(shared: Shared) -> Self {
        Self(std::sync::Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl axum::extract::FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos.clone()
    }
}

impl axum::extract::FromRef<AppState> for Ctx {
    fn from_ref(state: &AppState) -> Self {
        state.ctx.clone()
    }
}

/// Per-process limits on the web routes that do heavy work (refused with 503/429 and `Retry-After` when
/// full, never queued).
#[derive(Clone)]
pub struct WebLimits {
    /// Exports being streamed (`EXPORT_MAX_CONCURRENT`).
    pub exports: std::sync::Arc<tokio::sync::Semaphore>,
    /// CSV uploads being received and stored: one at a time.
    pub uploads: std::sync::Arc<tokio::sync::Semaphore>,
    /// Open live-update streams (`NOTIFY_SSE_MAX_PER_USER`, `NOTIFY_SSE_MAX_TOTAL`).
    pub sse: SseSlots,
    /// Open paper-run streams (same limits as `sse`, counted apart).
    pub paper_sse: SseSlots,
}

impl WebLimits {
    pub fn new(settings: &backend::settings::Settings) -> Self {
        Self {
            exports: std::sync::Arc::new(tokio::sync::Semaphore::new(
                settings.backtest.export_max_concurrent,
            )),
            uploads: std::sync::Arc::new(tokio::sync::Semaphore::new(1)),
            sse: SseSlots::new(
                settings.notify_sse.max_per_user,
                settings.notify_sse.max_total,
            ),
            paper_sse: SseSlots::new(
                settings.notify_sse.max_per_user,
                settings.notify_sse.max_total,
            ),
        }
    }
}

/// The open live-update streams of this process, per user and in total. A stream holds an [`SseSlot`] for
/// its lifetime; dropping it (the tab closed, the stream ended) frees the slot.
#[derive(Clone)]
pub struct SseSlots {
    inner: std::sync::Arc<std::sync::Mutex<SseCounts>>,
    max_per_user: usize,
    max_total: usize,
}

#[derive(Default)]
struct SseCounts {
    total: usize,
    per_user: std::collections::HashMap<uuid::Uuid, usize>,
}

impl SseSlots {
    pub fn new(max_per_user: usize, max_total: usize) -> Self {
        Self {
            inner: std::sync::Arc::default(),
            max_per_user,
            max_total,
        }
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, SseCounts> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A slot for one more stream of `user_id`, or `None` when the user or the process has as many as allowed.
    pub fn try_acquire(&self, user_id: uuid::Uuid) -> Option<SseSlot> {
        let mut c = self.counts();
        let mine = c.per_user.get(&user_id).copied().unwrap_or(0);
        if mine >= self.max_per_user || c.total >= self.max_total {
            return None;
        }
        c.total += 1;
        c.per_user.insert(user_id, mine + 1);
        Some(SseSlot {
            slots: self.clone(),
            user_id,
        })
    }

    /// Streams open now in this process.
    pub fn open(&self) -> usize {
        self.counts().total
    }
}

/// One open stream's slot (RAII).
pub struct SseSlot {
    slots: SseSlots,
    user_id: uuid::Uuid,
}

impl Drop for SseSlot {
    fn drop(&mut self) {
        let mut c = self.slots.counts();
        c.total = c.total.saturating_sub(1);
        if let Some(n) = c.per_user.get_mut(&self.user_id) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                c.per_user.remove(&self.user_id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::SseSlots;

    #[test]
    fn slots_are_bounded_per_user_and_in_total_and_freed_on_drop() {
        let slots = SseSlots::new(2, 3);
        let (a, b) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
        let a1 = slots.try_acquire(a).unwrap();
        let _a2 = slots.try_acquire(a).unwrap();
        assert!(slots.try_acquire(a).is_none(), "third of one user");
        let _b1 = slots.try_acquire(b).unwrap();
        assert!(slots.try_acquire(b).is_none(), "fourth in total");
        drop(a1);
        assert_eq!(slots.open(), 2);
        assert!(slots.try_acquire(a).is_some());
    }
}
