//! Live change signals from Postgres `LISTEN/NOTIFY` to a process's open streams (server-sent events).
//!
//! A transaction that changes something a stream shows does `pg_notify(<channel>, <payload>)`, so the change is
//! announced on commit, to every web replica. Each process keeps ONE listener connection ([`Listener`]) on all
//! its channels and hands each payload to that channel's [`Topic`], which fans it out to the process's
//! subscribers of the payload's key (a user for notifications, a run for paper trading).
//!
//! A topic's map key → `broadcast::Sender` holds an entry only while someone listens: the first subscriber
//! creates it, the last one's drop removes it. When the connection is lost the listener reconnects with back-off
//! and then sends every subscriber of every topic the topic's *resync* signal (changes in between were not
//! heard); a receiver that lagged behind gets the resync signal too. Streams answer a resync by re-reading.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, MutexGuard, PoisonError, Weak,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use sqlx::{PgPool, postgres::PgListener};
use tokio::sync::broadcast;
use uuid::Uuid;

/// Signals buffered per key before a slow stream lags (and is told to resync).
const CHANNEL_CAPACITY: usize = 16;
/// Reconnect back-off: from 1 s, doubling, at most 30 s.
const BACKOFF_MIN: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// The listener wakes this often to notice that every topic is gone.
const IDLE_WAKE: Duration = Duration::from_secs(30);

/// Reads a channel's payload: the key it concerns and the signal to send (`None`: unreadable, logged).
pub type Parse<S> = fn(&str) -> Option<(Uuid, S)>;

struct TopicInner<S> {
    channel: &'static str,
    parse: Parse<S>,
    resync: S,
    keys: Mutex<HashMap<Uuid, broadcast::Sender<S>>>,
}

impl<S: Clone> TopicInner<S> {
    fn keys(&self) -> MutexGuard<'_, HashMap<Uuid, broadcast::Sender<S>>> {
        // A panic while holding the lock leaves a consistent map (every operation is one insert/remove).
        self.keys.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn send(&self, key: Uuid, signal: S) {
        if let Some(tx) = self.keys().get(&key) {
            let _ = tx.send(signal);
        }
    }
}

/// What the listener needs of a topic, whatever its signal type (see [`Topic::handle`]).
pub trait Dispatch: Send + Sync {
    fn channel(&self) -> &'static str;
    fn deliver(&self, payload: &str);
    /// The listener is (re)connected: changes made while it was not were not heard.
    fn resync_all(&self);
    /// The listener lost its connection: changes are not heard until the next [`Dispatch::resync_all`].
    fn disconnected(&self) {}
}

impl<S: Clone + Send + Sync + 'static> Dispatch for TopicInner<S> {
    fn channel(&self) -> &'static str {
        self.channel
    }

    fn deliver(&self, payload: &str) {
        match (self.parse)(payload) {
            Some((key, signal)) => self.send(key, signal),
            None => tracing::warn!(channel = self.channel, "unreadable live signal"),
        }
    }

    fn resync_all(&self) {
        for tx in self.keys().values() {
            let _ = tx.send(self.resync.clone());
        }
    }
}

/// One channel's fan-out in this process. Cheap to clone.
pub struct Topic<S> {
    inner: Arc<TopicInner<S>>,
}

impl<S> Clone for Topic<S> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<S: Clone> std::fmt::Debug for Topic<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Topic")
            .field("channel", &self.inner.channel)
            .field("keys", &self.inner.keys().len())
            .finish_non_exhaustive()
    }
}

impl<S: Clone + Send + Sync + 'static> Topic<S> {
    /// A topic on `channel` that hears nothing until a [`Listener`] is started with it.
    pub fn new(channel: &'static str, parse: Parse<S>, resync: S) -> Self {
        Self {
            inner: Arc::new(TopicInner {
                channel,
                parse,
                resync,
                keys: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Listens for `key`'s signals until the subscription is dropped.
    pub fn subscribe(&self, key: Uuid) -> Subscription<S> {
        let rx = self
            .inner
            .keys()
            .entry(key)
            .or_insert_with(|| broadcast::channel(CHANNEL_CAPACITY).0)
            .subscribe();
        Subscription {
            key,
            rx: Some(rx),
            topic: Arc::clone(&self.inner),
        }
    }

    /// How many keys have at least one subscriber in this process.
    pub fn keys(&self) -> usize {
        self.inner.keys().len()
    }

    /// Sends `signal` to this process's subscribers of `key` (tests; production signals arrive through
    /// Postgres).
    pub fn notify_local(&self, key: Uuid, signal: S) {
        self.inner.send(key, signal);
    }

    /// The topic as [`Listener::start`] takes it (a weak handle: the listener does not keep it alive).
    pub fn handle(&self) -> Weak<dyn Dispatch> {
        let strong: Arc<dyn Dispatch> = self.inner.clone();
        Arc::downgrade(&strong)
    }

    /// Sends every subscriber the resync signal, as a reconnect does.
    pub fn resync_local(&self) {
        Dispatch::resync_all(&*self.inner);
    }
}

/// One stream's subscription: [`Subscription::recv`] the next signal.
pub struct Subscription<S: Clone> {
    key: Uuid,
    rx: Option<broadcast::Receiver<S>>,
    topic: Arc<TopicInner<S>>,
}

impl<S: Clone> Subscription<S> {
    /// The next signal; a receiver that fell behind gets the topic's resync signal. `None` never happens while
    /// the topic lives.
    pub async fn recv(&mut self) -> Option<S> {
        let rx = self.rx.as_mut()?;
        match rx.recv().await {
            Ok(s) => Some(s),
            Err(broadcast::error::RecvError::Lagged(_)) => Some(self.topic.resync.clone()),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }

    /// Drops the signals already queued (for streams whose answer to any signal is one full re-read).
    pub fn drain(&mut self) {
        if let Some(rx) = self.rx.as_mut() {
            while !matches!(
                rx.try_recv(),
                Err(broadcast::error::TryRecvError::Empty | broadcast::error::TryRecvError::Closed)
            ) {}
        }
    }
}

impl<S: Clone> Drop for Subscription<S> {
    fn drop(&mut self) {
        let mut keys = self.topic.keys();
        drop(self.rx.take());
        // Under the lock, so a concurrent subscribe either joins before (count > 0) or creates anew after.
        if keys
            .get(&self.key)
            .is_some_and(|tx| tx.receiver_count() == 0)
        {
            keys.remove(&self.key);
        }
    }
}

/// The process's one listener connection. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct Listener {
    listening: Arc<AtomicBool>,
}

impl Listener {
    /// Spawns the listener task on every topic's channel (one Postgres connection, outside the pool's
    /// budget). The task ends when every topic's last handle is dropped.
    pub fn start(db: &PgPool, topics: Vec<Weak<dyn Dispatch>>) -> Self {
        let listening = Arc::new(AtomicBool::new(false));
        tokio::spawn(listen(topics, db.clone(), Arc::clone(&listening)));
        Self { listening }
    }

    /// Whether the listener is connected and listening now.
    pub fn is_listening(&self) -> bool {
        self.listening.load(Ordering::Relaxed)
    }
}

async fn connect(db: &PgPool, channels: &[&'static str]) -> sqlx::Result<PgListener> {
    let mut l = PgListener::connect_with(db).await?;
    l.listen_all(channels.iter().copied()).await?;
    Ok(l)
}

/// The live topics, or `None` once all are gone.
fn alive(topics: &[Weak<dyn Dispatch>]) -> Option<Vec<Arc<dyn Dispatch>>> {
    let live: Vec<_> = topics.iter().filter_map(Weak::upgrade).collect();
    (!live.is_empty()).then_some(live)
}

/// Whatever ends the listener task (a panic included), its topics are told they hear nothing any more.
struct Gone<'a> {
    topics: &'a [Weak<dyn Dispatch>],
    listening: &'a AtomicBool,
}

impl Drop for Gone<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            tracing::error!(
                "live listener failed; streams and the signed-in page cache stop until restart"
            );
        }
        self.listening.store(false, Ordering::Relaxed);
        for t in self.topics.iter().filter_map(Weak::upgrade) {
            t.disconnected();
        }
    }
}

/// The listener task: connect, listen, dispatch; on a lost connection reconnect with back-off and resync.
async fn listen(topics: Vec<Weak<dyn Dispatch>>, db: PgPool, listening: Arc<AtomicBool>) {
    let _gone = Gone {
        topics: &topics,
        listening: &listening,
    };
    let Some(first) = alive(&topics) else { return };
    let channels: Vec<&'static str> = first.iter().map(|t| t.channel()).collect();
    drop(first);
    let mut backoff = BACKOFF_MIN;
    let mut reconnect = false;
    loop {
        if alive(&topics).is_none() {
            return;
        }
        let mut listener = match connect(&db, &channels).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?backoff, ?channels, "live listener cannot connect");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
                continue;
            }
        };
        backoff = BACKOFF_MIN;
        listening.store(true, Ordering::Relaxed);
        if reconnect {
            tracing::info!(?channels, "live listener reconnected; streams resync");
        }
        reconnect = true;
        // Streams opened while it was away (or before a slow first connect) may have missed changes.
        let Some(live) = alive(&topics) else { return };
        live.iter().for_each(|t| t.resync_all());
        drop(live);
        loop {
            let next = tokio::time::timeout(IDLE_WAKE, listener.try_recv()).await;
            let Some(live) = alive(&topics) else { return };
            match next {
                Err(_) => {}
                Ok(Ok(Some(n))) => {
                    if let Some(t) = live.iter().find(|t| t.channel() == n.channel()) {
                        t.deliver(n.payload());
                    }
                }
                Ok(Ok(None)) | Ok(Err(_)) => {
                    listening.store(false, Ordering::Relaxed);
                    live.iter().for_each(|t| t.disconnected());
                    tracing::warn!(?channels, "live listener lost its connection; reconnecting");
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(p: &str) -> Option<(Uuid, u8)> {
        Uuid::parse_str(p).ok().map(|u| (u, 1))
    }

    #[tokio::test]
    async fn the_first_subscriber_creates_and_the_last_drops() {
        let topic = Topic::new("t", parse, 0u8);
        let u = Uuid::new_v4();
        let mut a = topic.subscribe(u);
        let b = topic.subscribe(u);
        assert_eq!(topic.keys(), 1);
        topic.notify_local(u, 1);
        assert_eq!(a.recv().await, Some(1));
        drop(b);
        assert_eq!(topic.keys(), 1);
        drop(a);
        assert_eq!(topic.keys(), 0);
        // A signal for nobody is dropped quietly.
        topic.notify_local(u, 1);
    }

    #[tokio::test]
    async fn a_lagging_stream_is_told_to_resync_and_drain_empties_the_queue() {
        let topic = Topic::new("t", parse, 0u8);
        let u = Uuid::new_v4();
        let mut a = topic.subscribe(u);
        for _ in 0..CHANNEL_CAPACITY + 5 {
            topic.notify_local(u, 1);
        }
        assert_eq!(a.recv().await, Some(0));
        assert_eq!(a.recv().await, Some(1));
        a.drain();
        assert!(
            tokio::time::timeout(Duration::from_millis(50), a.recv())
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn other_keys_hear_nothing_but_a_resync_reaches_everyone() {
        let topic = Topic::new("t", parse, 0u8);
        let (u, v) = (Uuid::new_v4(), Uuid::new_v4());
        let mut a = topic.subscribe(u);
        let _b = topic.subscribe(v);
        topic.notify_local(v, 1);
        Dispatch::deliver(&*topic.inner, &v.to_string());
        Dispatch::deliver(&*topic.inner, "not a uuid");
        topic.resync_local();
        assert_eq!(a.recv().await, Some(0));
    }
}
