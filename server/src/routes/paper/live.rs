//! The process's listener on the `paper_run` channel: `backend::paper::advance` (and control) do
//! `pg_notify('paper_run', '<run id>')` in the transaction that changed a run, so a change is announced on
//! commit, to every web replica. One Postgres connection per process fans each signal out to this
//! process's open streams of that run.
//!
//! The map run → `broadcast::Sender` holds an entry only while someone listens: the first subscriber
//! creates it, the last one's drop removes it. When the connection is lost the task reconnects with
//! back-off and then tells every stream to re-read (changes in between were not heard); a receiver that
//! lagged behind is told the same. Either way a stream's answer is one re-read, so a signal is just "look".

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, Weak},
    time::Duration,
};

use sqlx::{PgPool, postgres::PgListener};
use tokio::sync::broadcast;
use uuid::Uuid;

/// The Postgres channel.
pub const PG_CHANNEL: &str = "paper_run";
/// Signals buffered per run before a slow stream lags.
const CHANNEL_CAPACITY: usize = 16;
const BACKOFF_MIN: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

type Runs = HashMap<Uuid, broadcast::Sender<()>>;

#[derive(Default)]
struct Inner {
    runs: Mutex<Runs>,
    listening: std::sync::atomic::AtomicBool,
}

impl Inner {
    fn runs(&self) -> std::sync::MutexGuard<'_, Runs> {
        self.runs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn send(&self, run: Uuid) {
        if let Some(tx) = self.runs().get(&run) {
            let _ = tx.send(());
        }
    }

    fn resync_all(&self) {
        for tx in self.runs().values() {
            let _ = tx.send(());
        }
    }
}

/// The process's hub of paper-run changes. Cheap to clone.
#[derive(Clone, Default)]
pub struct Hub {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PaperHub")
            .field("runs", &self.inner.runs().len())
            .finish_non_exhaustive()
    }
}

impl Hub {
    pub fn new() -> Self {
        Self::default()
    }

    /// Spawns the listener task; it ends when the last handle of the hub is dropped.
    pub fn start(&self, db: &PgPool) {
        tokio::spawn(listen(Arc::downgrade(&self.inner), db.clone()));
    }

    /// Whether the listener is connected now.
    pub fn is_listening(&self) -> bool {
        self.inner
            .listening
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Listens for `run`'s changes until the subscription is dropped.
    pub fn subscribe(&self, run: Uuid) -> Subscription {
        let rx = self
            .inner
            .runs()
            .entry(run)
            .or_insert_with(|| broadcast::channel(CHANNEL_CAPACITY).0)
            .subscribe();
        Subscription {
            run,
            rx: Some(rx),
            hub: Arc::clone(&self.inner),
        }
    }

    /// How many runs have at least one stream in this process.
    pub fn runs(&self) -> usize {
        self.inner.runs().len()
    }
}

/// One stream's subscription.
pub struct Subscription {
    run: Uuid,
    rx: Option<broadcast::Receiver<()>>,
    hub: Arc<Inner>,
}

impl Subscription {
    /// Waits for the next change (or a reason to re-read); `None` once the hub is gone.
    pub async fn recv(&mut self) -> Option<()> {
        let rx = self.rx.as_mut()?;
        match rx.recv().await {
            Ok(()) | Err(broadcast::error::RecvError::Lagged(_)) => Some(()),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }

    /// Drops the signals already queued (they ask for the re-read about to happen).
    pub fn drain(&mut self) {
        if let Some(rx) = self.rx.as_mut() {
            while !matches!(
                rx.try_recv(),
                Err(broadcast::error::TryRecvError::Empty | broadcast::error::TryRecvError::Closed)
            ) {}
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut runs = self.hub.runs();
        drop(self.rx.take());
        if runs
            .get(&self.run)
            .is_some_and(|tx| tx.receiver_count() == 0)
        {
            runs.remove(&self.run);
        }
    }
}

async fn connect(db: &PgPool) -> sqlx::Result<PgListener> {
    let mut l = PgListener::connect_with(db).await?;
    l.listen(PG_CHANNEL).await?;
    Ok(l)
}

async fn listen(hub: Weak<Inner>, db: PgPool) {
    let mut backoff = BACKOFF_MIN;
    loop {
        if hub.strong_count() == 0 {
            return;
        }
        let mut listener = match connect(&db).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?backoff, "paper listener cannot connect");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
                continue;
            }
        };
        backoff = BACKOFF_MIN;
        {
            let Some(inner) = hub.upgrade() else { return };
            inner
                .listening
                .store(true, std::sync::atomic::Ordering::Relaxed);
            // Streams opened while it was away may have missed changes.
            inner.resync_all();
        }
        loop {
            let next = tokio::time::timeout(Duration::from_secs(30), listener.try_recv()).await;
            let Some(inner) = hub.upgrade() else { return };
            match next {
                Err(_) => {}
                Ok(Ok(Some(n))) => match Uuid::parse_str(n.payload().trim()) {
                    Ok(run) => inner.send(run),
                    Err(e) => tracing::warn!(error = %e, "unreadable paper_run signal"),
                },
                Ok(Ok(None)) | Ok(Err(_)) => {
                    inner
                        .listening
                        .store(false, std::sync::atomic::Ordering::Relaxed);
                    tracing::warn!("paper listener lost its connection; reconnecting");
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_run_entry_lives_as_long_as_its_subscribers_and_others_hear_nothing() {
        let hub = Hub::new();
        let (r, s) = (Uuid::new_v4(), Uuid::new_v4());
        let mut a = hub.subscribe(r);
        let b = hub.subscribe(s);
        assert_eq!(hub.runs(), 2);
        hub.inner.send(r);
        assert_eq!(a.recv().await, Some(()));
        drop(b);
        assert_eq!(hub.runs(), 1);
        for _ in 0..CHANNEL_CAPACITY + 3 {
            hub.inner.send(r);
        }
        a.drain();
        assert!(
            tokio::time::timeout(Duration::from_millis(50), a.recv())
                .await
                .is_err()
        );
        drop(a);
        assert_eq!(hub.runs(), 0);
    }
}
