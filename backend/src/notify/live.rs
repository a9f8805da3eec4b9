//! Live in-app updates (docs/design/notifications.md §7): one Postgres listener per web process on
//! [`PG_CHANNEL`] (the fan-out and mark-read `pg_notify` it in their transactions, so a change is announced on
//! commit, to every replica), fanned out to the process's open streams of that user.
//!
//! [`Hub::start`] spawns the listener task; [`Hub::subscribe`] gives a stream its [`Subscription`]. The map
//! user → `tokio::sync::broadcast::Sender` holds an entry only while someone listens: the first subscriber
//! creates it, the last one's drop removes it. When the connection is lost the task reconnects with back-off
//! and then sends [`Signal::Resync`] to every stream (changes in between were not heard); a receiver that
//! lagged behind gets [`Signal::Resync`] too. Streams answer a signal by re-reading ([`updates`]).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, Weak},
    time::Duration,
};

use serde::{Deserialize, Serialize};
use sqlx::{PgPool, postgres::PgListener};
use tokio::sync::broadcast;
use uuid::Uuid;

use super::PG_CHANNEL;
use crate::{Actor, Ctx, Result};

/// What a stream hears.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// The user's notifications changed (a new one, or read marks).
    Changed,
    /// Changes may have been missed (the listener reconnected, or this receiver lagged): re-read everything.
    Resync,
}

/// Signals buffered per user before a slow stream lags (and is told to resync).
const CHANNEL_CAPACITY: usize = 16;
/// Reconnect back-off: from 1 s, doubling, at most 30 s.
const BACKOFF_MIN: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

#[derive(Default)]
struct Inner {
    users: Mutex<HashMap<Uuid, broadcast::Sender<Signal>>>,
    /// Whether the listener is connected and listening (streams may say so in health checks and tests).
    listening: std::sync::atomic::AtomicBool,
}

impl Inner {
    fn users(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, broadcast::Sender<Signal>>> {
        // A panic while holding the lock leaves a consistent map (every operation is one insert/remove).
        self.users
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn send(&self, user_id: Uuid, signal: Signal) {
        if let Some(tx) = self.users().get(&user_id) {
            let _ = tx.send(signal);
        }
    }

    fn resync_all(&self) {
        for tx in self.users().values() {
            let _ = tx.send(Signal::Resync);
        }
    }
}

/// The process's hub of live in-app updates. Cheap to clone.
#[derive(Clone, Default)]
pub struct Hub {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("users", &self.inner.users().len())
            .finish_non_exhaustive()
    }
}

/// The `pg_notify` payload: `{"u": "<user id>"}`.
#[derive(Debug, Deserialize)]
struct Payload {
    u: Uuid,
}

impl Hub {
    /// A hub that hears nothing until [`Hub::start`]ed.
    pub fn new() -> Self {
        Self::default()
    }

    /// Spawns the listener task (one Postgres connection, outside the pool's budget). It ends when the last
    /// handle of the hub is dropped.
    pub fn start(&self, db: &PgPool) {
        let inner = Arc::downgrade(&self.inner);
        let db = db.clone();
        tokio::spawn(listen(inner, db));
    }

    /// Whether the listener is connected now.
    pub fn is_listening(&self) -> bool {
        self.inner
            .listening
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Listens for `user_id`'s changes until the subscription is dropped.
    pub fn subscribe(&self, user_id: Uuid) -> Subscription {
        let rx = self
            .inner
            .users()
            .entry(user_id)
            .or_insert_with(|| broadcast::channel(CHANNEL_CAPACITY).0)
            .subscribe();
        Subscription {
            user_id,
            rx: Some(rx),
            hub: Arc::clone(&self.inner),
        }
    }

    /// How many users have at least one stream in this process.
    pub fn users(&self) -> usize {
        self.inner.users().len()
    }

    /// Announces a change to this process's streams of `user_id` (tests; production changes arrive through
    /// Postgres).
    pub fn notify_local(&self, user_id: Uuid) {
        self.inner.send(user_id, Signal::Changed);
    }
}

/// One stream's subscription: [`Subscription::recv`] the next signal.
pub struct Subscription {
    user_id: Uuid,
    rx: Option<broadcast::Receiver<Signal>>,
    hub: Arc<Inner>,
}

impl Subscription {
    /// The next signal; a receiver that fell behind gets [`Signal::Resync`]. `None` never happens while the
    /// hub lives.
    pub async fn recv(&mut self) -> Option<Signal> {
        let rx = self.rx.as_mut()?;
        match rx.recv().await {
            Ok(s) => Some(s),
            Err(broadcast::error::RecvError::Lagged(_)) => Some(Signal::Resync),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut users = self.hub.users();
        drop(self.rx.take());
        // Under the lock, so a concurrent subscribe either joins before (count > 0) or creates anew after.
        if users
            .get(&self.user_id)
            .is_some_and(|tx| tx.receiver_count() == 0)
        {
            users.remove(&self.user_id);
        }
    }
}

async fn connect(db: &PgPool) -> sqlx::Result<PgListener> {
    let mut l = PgListener::connect_with(db).await?;
    l.listen(PG_CHANNEL).await?;
    Ok(l)
}

/// The listener task: connect, listen, dispatch; on a lost connection reconnect with back-off and resync.
async fn listen(hub: Weak<Inner>, db: PgPool) {
    let mut backoff = BACKOFF_MIN;
    let mut first = true;
    loop {
        if hub.strong_count() == 0 {
            return;
        }
        let mut listener = match connect(&db).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?backoff, "notification listener cannot connect");
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
            if !first {
                tracing::info!("notification listener reconnected; streams resync");
                inner.resync_all();
            }
        }
        first = false;
        loop {
            // Wake now and then to notice a dropped hub even when nothing happens.
            let next = tokio::time::timeout(Duration::from_secs(30), listener.try_recv()).await;
            let Some(inner) = hub.upgrade() else { return };
            match next {
                Err(_) => {}
                Ok(Ok(Some(n))) => match serde_json::from_str::<Payload>(n.payload()) {
                    Ok(p) => inner.send(p.u, Signal::Changed),
                    Err(e) => tracing::warn!(error = %e, "unreadable notification signal"),
                },
                Ok(Ok(None)) | Ok(Err(_)) => {
                    inner
                        .listening
                        .store(false, std::sync::atomic::Ordering::Relaxed);
                    tracing::warn!("notification listener lost its connection; reconnecting");
                    break;
                }
            }
        }
    }
}

/// A new notification as a stream shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Item {
    pub id: Uuid,
    pub seq: i64,
    pub title: String,
    pub url: Option<String>,
}

/// What changed for the actor since `after_seq`: the notifications newer than it (oldest first, at most
/// `limit`), the newest `seq` seen and the unread count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Updates {
    pub items: Vec<Item>,
    pub last_seq: i64,
    pub unread: i64,
}

/// The actor's notifications after `after_seq` (at most `limit`, oldest first) and the unread count now.
/// `after_seq = None` reads only the newest `seq` (a stream's start).
///
/// # Errors
/// [`crate::Error::Unauthenticated`]; database errors.
pub async fn updates(
    ctx: &Ctx,
    actor: &Actor,
    after_seq: Option<i64>,
    limit: i64,
) -> Result<Updates> {
    let user = actor.reader()?;
    let head = sqlx::query!(
        r#"select coalesce(max(seq), 0) as "last!",
                  count(*) filter (where read_at is null) as "unread!"
           from notification where user_id = $1"#,
        user.user_id,
    )
    .fetch_one(&ctx.db)
    .await?;
    let Some(after) = after_seq else {
        return Ok(Updates {
            items: Vec::new(),
            last_seq: head.last,
            unread: head.unread,
        });
    };
    let items = sqlx::query_as!(
        Item,
        r#"select notification_id as id, seq, title, url from notification
           where user_id = $1 and seq > $2 order by seq limit $3"#,
        user.user_id,
        after,
        limit.clamp(1, 100),
    )
    .fetch_all(&ctx.db)
    .await?;
    let limit = limit.clamp(1, 100);
    // More than `limit` new ones: the rest are skipped (the unread count still tells).
    let last_seq = if items.len() as i64 >= limit {
        head.last
    } else {
        items.last().map_or(after, |i| i.seq)
    };
    Ok(Updates {
        last_seq,
        items,
        unread: head.unread,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_first_subscriber_creates_and_the_last_drops() {
        let hub = Hub::new();
        let u = Uuid::new_v4();
        let mut a = hub.subscribe(u);
        let b = hub.subscribe(u);
        assert_eq!(hub.users(), 1);
        hub.notify_local(u);
        assert_eq!(a.recv().await, Some(Signal::Changed));
        drop(b);
        assert_eq!(hub.users(), 1);
        drop(a);
        assert_eq!(hub.users(), 0);
        // A signal for nobody is dropped quietly.
        hub.notify_local(u);
    }

    #[tokio::test]
    async fn a_lagging_stream_is_told_to_resync() {
        let hub = Hub::new();
        let u = Uuid::new_v4();
        let mut a = hub.subscribe(u);
        for _ in 0..CHANNEL_CAPACITY + 5 {
            hub.notify_local(u);
        }
        assert_eq!(a.recv().await, Some(Signal::Resync));
        assert_eq!(a.recv().await, Some(Signal::Changed));
    }

    #[tokio::test]
    async fn other_users_hear_nothing() {
        let hub = Hub::new();
        let (u, v) = (Uuid::new_v4(), Uuid::new_v4());
        let mut a = hub.subscribe(u);
        let _b = hub.subscribe(v);
        hub.notify_local(v);
        hub.inner.resync_all();
        assert_eq!(a.recv().await, Some(Signal::Resync));
    }
}
