//! Signed-in pages as rendered, kept per process and per session, so that a session that asks for the same page
//! again is answered without rendering it and without a database round trip (issue 16, goal 5: the backtests
//! list took 5–6 queries and ~3 ms of CPU per view).
//!
//! **What makes a kept page right.** A page is kept only if everything it shows comes from tables that announce
//! their changes on the `page_change` channel (migration `20270104000001_page_change_notify.sql`): the session
//! and account, the bell, the strategies, runs and their jobs, instruments, platform settings. A change to a
//! user's rows makes every process forget that user's pages; a change that can concern anyone makes it forget
//! all. A page rendered while a change arrived is not kept (generations, below), nor one during whose render
//! something could not be read ([`backend::web::RenderFailures`]: the page shows an error or leaves a part
//! out). While the process's listener connection is down, it keeps and serves nothing (and forgets
//! everything on losing it: changes in between were not heard). The one thing a render reads from a
//! process cache rather than the database, the maintenance banner, is read again after any change that can
//! concern everyone. A page is in any case rendered again after [`MAX_AGE`].
//!
//! **Sessions.** A kept page is filed under its session (the id in the signed session token) and URL, and served
//! only to a request with a valid (signed, unexpired) token of that session. Revoking a session, disabling or
//! changing its account are changes of its user's rows, so its pages are forgotten. An idle timeout writes
//! nothing; instead a page is not served past the moment its session could have idled out: a render records
//! the session's use at most [`session::touch_every`] late, so a page kept for at most `SESSION_IDLE -
//! touch_every` after its render cannot outlive its session. Served visits do not count as use; the next
//! render (within [`MAX_AGE`]) does.
//!
//! **Freshness.** A write by a session (any method but `GET`/`HEAD`/`OPTIONS`) makes this process forget its
//! user's pages as soon as it is done, before its answer leaves, so the page the user goes to next shows it. In
//! another process the change arrives with the notification, a moment after commit (sub-millisecond on one
//! host); until then that process may answer with the page from before: the same window a live stream has.
//!
//! **Reloads.** A request that asks for a fresh answer (`Cache-Control: no-cache` or `max-age=0`, as a
//! browser's reload sends) is rendered, and its render replaces the kept page.
//!
//! **What is never kept.** Anything but a `GET` of one of [`PATHS`] (any query string) with a session cookie and
//! no other cookie but the CSRF cookie (a flash message or form error changes the page), without
//! `Authorization`; any answer but a `200` HTML page without `Set-Cookie`; pages over [`MAX_PAGE_BYTES`]. Each
//! response has its own CSP nonce and CSRF token as a render would (the holes of [`Page`]).
//!
//! **One render at a time per page.** Requests for a page that is being rendered for the same session and URL
//! (a browser's parallel tabs, a client's concurrent retries, every connection at once when a page's time is
//! up) wait for that render (at most [`FOLLOW_FOR`]) and are answered with the page it keeps, rather than all
//! rendering the same page at the same moment. If it keeps nothing (a change arrived, an error, the request
//! went away), each renders its own, concurrently, as without the cache.
//!
//! **Bounds.** At most [`MAX_PER_USER`] pages per user (a user's pages are dropped together when more come) and
//! [`BUDGET_BYTES`] in all (whole users' pages are dropped to make room).

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, MutexGuard, PoisonError,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use axum::{
    body::Body,
    extract::{Request, State},
    http::{Method, header},
    middleware::Next,
    response::Response,
};
use backend::auth::session;
use uuid::Uuid;

use crate::page_cache::{Page, holes, only_cookies, rendered_page};

/// The pages kept per session: they show only what the `page_change` tables hold.
pub const PATHS: &[&str] = &["/backtests"];

/// The channel the tables announce their changes on (payload: a user id, or `*` for everyone).
pub const CHANNEL: &str = "page_change";

/// How long a kept page is served before it is rendered again: a backstop should a change go unheard (a
/// listener connection that died without the process noticing yet).
pub const MAX_AGE: Duration = Duration::from_secs(10);

/// Larger pages are served but not kept (the backtests list with its 200 runs stays well below).
pub const MAX_PAGE_BYTES: usize = 1024 * 1024;

/// Longer URLs (query strings) are served but not kept.
const MAX_URL_BYTES: usize = 1024;

/// Pages kept per user (sessions × URLs) before that user's are dropped.
pub const MAX_PER_USER: usize = 32;

/// Bytes of pages kept per process before whole users' pages are dropped.
pub const BUDGET_BYTES: usize = 64 * 1024 * 1024;

/// Generations are kept per stripe of users, not per user (a bounded array, whatever the number of users).
const STRIPES: usize = 256;

/// A page under its session and URL.
type Key = (String, String);

/// How long a request waits for the render of the same page by another request before it renders its own.
pub const FOLLOW_FOR: Duration = Duration::from_secs(1);

/// A render in flight: held for writing by the request that renders, for reading by those that wait for it.
type Flight = Arc<tokio::sync::RwLock<()>>;

/// What a request that missed does: render the page (and release those waiting when done) or wait for the
/// render in flight.
enum Join<'a> {
    Lead(Leader<'a>),
    Follow(Flight),
}

/// The request rendering a page. Dropped when its render is done or the request went away: the flight ends
/// first, then the lock is released, so a request that wakes finds the page kept or renders its own.
struct Leader<'a> {
    cache: &'a SignedInCache,
    id: (Uuid, Key),
    flight: Flight,
    _rendering: tokio::sync::OwnedRwLockWriteGuard<()>,
}

impl Drop for Leader<'_> {
    fn drop(&mut self) {
        let mut flights = self.cache.flights();
        if flights
            .get(&self.id)
            .is_some_and(|f| Arc::ptr_eq(f, &self.flight))
        {
            flights.remove(&self.id);
        }
    }
}

struct Entry {
    page: Page,
    /// Served until then ([`MAX_AGE`], the session's idle timeout and expiry).
    until: Instant,
}

#[derive(Default)]
struct Inner {
    users: HashMap<Uuid, HashMap<Key, Arc<Entry>>>,
    bytes: usize,
}

impl Inner {
    /// Removes `user`'s pages and returns them (for the caller to free once the lock is released).
    fn forget(&mut self, user: Uuid) -> Option<HashMap<Key, Arc<Entry>>> {
        let pages = self.users.remove(&user)?;
        self.bytes -= pages.values().map(|e| e.page.size()).sum::<usize>();
        Some(pages)
    }
}

/// The signed-in pages of this process. Shared (`Arc`) between the middleware and the listener.
pub struct SignedInCache {
    inner: Mutex<Inner>,
    /// Renders in flight, by user and key (only while they run: at most one per request in progress).
    flights: Mutex<HashMap<(Uuid, Key), Flight>>,
    /// The process's banner cache (`Ctx::banner`), cleared with everything else.
    banner: Option<Arc<backend::ctx::TtlCell<String>>>,
    /// Whether the listener is connected and hearing changes (set by the listener: [`backend::live::Dispatch`]).
    connected: AtomicBool,
    /// Changed by every change that concerns everyone (and by the listener's (re)connections).
    all: AtomicU64,
    /// Changed by every change of a user in that stripe.
    stripes: [AtomicU64; STRIPES],
}

/// The generations a render starts under: the page it renders is kept only if they have not changed when it
/// is done (a change that arrived in between may not show on it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Generation(u64, u64);

impl Default for SignedInCache {
    fn default() -> Self {
        Self {
            inner: Mutex::default(),
            flights: Mutex::default(),
            banner: None,
            connected: AtomicBool::new(false),
            all: AtomicU64::new(0),
            stripes: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

impl SignedInCache {
    /// A cache of the process with context `ctx` (whose banner cache it clears with everything else).
    pub fn new(ctx: &backend::Ctx) -> Self {
        Self {
            banner: Some(Arc::clone(&ctx.banner)),
            ..Self::default()
        }
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        // Every change under the lock leaves the maps consistent (a panic cannot stop one half-way).
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn flights(&self) -> MutexGuard<'_, HashMap<(Uuid, Key), Flight>> {
        // Only inserts and removes under the lock.
        self.flights.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Renders `key` of `user`, or waits for the request that already does.
    fn join(&self, user: Uuid, key: &Key) -> Join<'_> {
        let mut flights = self.flights();
        let id = (user, key.clone());
        if let Some(flight) = flights.get(&id) {
            return Join::Follow(Arc::clone(flight));
        }
        let flight = Flight::default();
        let Ok(rendering) = Arc::clone(&flight).try_write_owned() else {
            unreachable!("a new lock is free")
        };
        flights.insert(id.clone(), Arc::clone(&flight));
        Join::Lead(Leader {
            cache: self,
            id,
            flight,
            _rendering: rendering,
        })
    }

    fn stripe(&self, user: Uuid) -> &AtomicU64 {
        // Random (v4) ids: their low bits spread evenly. `STRIPES` fits in a u128 and the remainder in a usize.
        #[allow(clippy::cast_possible_truncation)]
        &self.stripes[(user.as_u128() % STRIPES as u128) as usize]
    }

    /// The generations now, or `None` while changes are not heard (nothing may be kept).
    pub fn generation(&self, user: Uuid) -> Option<Generation> {
        self.connected.load(Ordering::SeqCst).then(|| {
            Generation(
                self.all.load(Ordering::SeqCst),
                self.stripe(user).load(Ordering::SeqCst),
            )
        })
    }

    /// The page kept for `key` of `user`, if it may still be served.
    fn get(&self, user: Uuid, key: &Key) -> Option<Arc<Entry>> {
        if !self.connected.load(Ordering::SeqCst) {
            return None;
        }
        let inner = self.inner();
        let entry = inner.users.get(&user)?.get(key)?;
        (Instant::now() < entry.until).then(|| Arc::clone(entry))
    }

    /// Keeps `page` for `key` of `user` if nothing changed since `generation`; whether it was kept.
    fn keep(&self, user: Uuid, key: Key, generation: Generation, entry: Entry) -> bool {
        let mut dropped = Vec::new();
        let mut inner = self.inner();
        // Under the lock: a change bumps its generation before it takes the lock to forget, so either this
        // sees the bump or the change forgets this page after it is kept.
        if self.generation(user) != Some(generation) {
            return false;
        }
        let size = entry.page.size();
        if inner
            .users
            .get(&user)
            .is_some_and(|p| p.len() >= MAX_PER_USER && !p.contains_key(&key))
        {
            dropped.extend(inner.forget(user));
        }
        // Whole users' pages, whichever come first: a user who fills the budget empties it for others, which
        // costs them renders, never a wrong page.
        while inner.bytes + size > BUDGET_BYTES {
            let Some(other) = inner.users.keys().next().copied() else {
                break;
            };
            dropped.extend(inner.forget(other));
        }
        let old = inner
            .users
            .entry(user)
            .or_default()
            .insert(key, Arc::new(entry));
        inner.bytes += size;
        if let Some(old) = &old {
            inner.bytes -= old.page.size();
        }
        drop(inner);
        // Freed outside the lock.
        drop((dropped, old));
        true
    }

    /// Forgets `user`'s pages (their rows changed).
    pub fn forget_user(&self, user: Uuid) {
        self.stripe(user).fetch_add(1, Ordering::SeqCst);
        let pages = self.inner().forget(user);
        // Freed outside the lock.
        drop(pages);
    }

    /// Forgets every page and the banner as read (a change that can concern anyone; the listener
    /// (re)connected or lost its connection).
    pub fn forget_all(&self) {
        // Before the generation changes: a render that starts after it reads the banner afresh.
        if let Some(banner) = &self.banner {
            banner.clear();
        }
        self.all.fetch_add(1, Ordering::SeqCst);
        let pages = std::mem::take(&mut *self.inner());
        drop(pages);
    }

    /// How many pages are kept, and their bytes.
    pub fn size(&self) -> (usize, usize) {
        let inner = self.inner();
        (inner.users.values().map(HashMap::len).sum(), inner.bytes)
    }

    /// As the listener's handle ([`backend::live::Listener::start`]).
    pub fn handle(self: &Arc<Self>) -> std::sync::Weak<dyn backend::live::Dispatch> {
        let strong: Arc<dyn backend::live::Dispatch> = self.clone();
        Arc::downgrade(&strong)
    }
}

impl backend::live::Dispatch for SignedInCache {
    fn channel(&self) -> &'static str {
        CHANNEL
    }

    fn deliver(&self, payload: &str) {
        if payload == "*" {
            self.forget_all();
        } else if let Ok(user) = Uuid::parse_str(payload) {
            self.forget_user(user);
        } else {
            // Not from our triggers: forget everything rather than guess.
            tracing::warn!(channel = CHANNEL, "unreadable page change signal");
            self.forget_all();
        }
    }

    fn resync_all(&self) {
        self.forget_all();
        self.connected.store(true, Ordering::SeqCst);
    }

    fn disconnected(&self) {
        self.connected.store(false, Ordering::SeqCst);
        self.forget_all();
    }
}

/// Whether the browser asks for a fresh answer (`Cache-Control: no-cache` or `max-age=0`, `Pragma:
/// no-cache`): a reload. Such a request is rendered (and its render kept), so reloading always shows the
/// database as it is, even in the moment before another process's change signal arrives.
fn wants_fresh(h: &axum::http::HeaderMap) -> bool {
    let directive = |name, what: &[&str]| {
        h.get_all(name).iter().any(|v| {
            v.to_str().is_ok_and(|v| {
                v.split(',')
                    .map(|d| d.trim().to_ascii_lowercase().replace(' ', ""))
                    .any(|d| what.contains(&d.as_str()))
            })
        })
    };
    directive(
        header::CACHE_CONTROL,
        &["no-cache", "max-age=0", "no-store"],
    ) || directive(header::PRAGMA, &["no-cache"])
}

/// The URL this request may be answered from (and fill) the cache under.
fn cacheable(req: &Request, settings: &backend::settings::Settings) -> Option<String> {
    if req.method() != Method::GET || !PATHS.contains(&req.uri().path()) {
        return None;
    }
    let h = req.headers();
    let cookies = [
        session::cookie_name(settings),
        backend::auth::csrf::cookie_name(settings),
    ];
    let url = req.uri().path_and_query()?.as_str();
    (url.len() <= MAX_URL_BYTES
        && !h.contains_key(header::AUTHORIZATION)
        && only_cookies(h, &cookies))
    .then(|| url.to_owned())
}

/// The middleware (inside the security-headers and CSRF layers, whose nonce and token it uses; outside the
/// admin two-factor check, whose answer a kept page already had).
pub async fn serve(
    State((ctx, cache)): State<(Arc<backend::Ctx>, Arc<SignedInCache>)>,
    req: Request,
    next: Next,
) -> Response {
    let claims = session::read_cookie(req.headers(), session::cookie_name(&ctx.settings))
        .and_then(|token| session::peek(&ctx.keys, token));
    let Some(claims) = claims else {
        return next.run(req).await;
    };
    if !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        let resp = next.run(req).await;
        cache.forget_user(claims.user_id);
        return resp;
    }
    let Some(url) = cacheable(&req, &ctx.settings) else {
        return next.run(req).await;
    };
    let Some((nonce, token)) = holes(&req) else {
        return next.run(req).await;
    };
    let user = claims.user_id;
    let key = (claims.session_id, url);
    let fresh = wants_fresh(req.headers());
    if !fresh && let Some(entry) = cache.get(user, &key) {
        metrics::counter!("signed_in_page_cache_total", "result" => "hit").increment(1);
        return entry.page.response(nonce, token);
    }
    // Another request of this session renders this page: wait for it and answer with its page, unless it
    // keeps none or takes longer than `FOLLOW_FOR` (then render, as it did).
    let leader = match (fresh, cache.generation(user)) {
        (false, Some(_)) => match cache.join(user, &key) {
            Join::Lead(leader) => Some(leader),
            Join::Follow(flight) => {
                if tokio::time::timeout(FOLLOW_FOR, flight.read())
                    .await
                    .is_err()
                {
                    metrics::counter!("signed_in_page_cache_total", "result" => "wait_timeout")
                        .increment(1);
                } else if let Some(entry) = cache.get(user, &key) {
                    metrics::counter!("signed_in_page_cache_total", "result" => "waited")
                        .increment(1);
                    return entry.page.response(nonce, token);
                }
                None
            }
        },
        _ => None,
    };
    metrics::counter!("signed_in_page_cache_total", "result" => "miss").increment(1);
    // Taken before the render reads anything (a follower's, after its wait).
    let started = Instant::now();
    let Some(generation) = cache.generation(user) else {
        // The listener went down meanwhile: nothing this render gives can be kept; no one waits for it.
        drop(leader);
        return next.run(req).await;
    };
    let (nonce, token) = (nonce.clone(), token.clone());
    let failures = backend::web::RenderFailures::default();
    let mut req = req;
    req.extensions_mut().insert(failures.clone());
    let (parts, body) = match rendered_page(next.run(req).await, &key.1).await {
        Ok(page) => page,
        Err(resp) => return resp,
    };
    let session_left = (claims.expires_at - chrono::Utc::now())
        .to_std()
        .unwrap_or_default();
    let serve_for = MAX_AGE
        .min(
            ctx.settings
                .session_idle
                .saturating_sub(session::touch_every(&ctx.settings)),
        )
        .min(session_left);
    if body.len() <= MAX_PAGE_BYTES
        && !serve_for.is_zero()
        && !failures.any()
        && let Some(page) = Page::new(parts.headers.clone(), &body, &nonce, &token)
    {
        let entry = Entry {
            page,
            until: started + serve_for,
        };
        cache.keep(user, key, generation, entry);
    }
    // Those waiting for this render find the page now.
    drop(leader);
    Response::from_parts(parts, Body::from(body))
}

#[cfg(test)]
mod tests {
    use axum::{body::Bytes, http::HeaderMap};
    use backend::live::Dispatch;

    use super::*;

    fn entry(text: &str, for_: Duration) -> Entry {
        let body = Bytes::from(format!("<p nonce=\"N\">{text}</p><input value=\"T\">"));
        Entry {
            page: Page::new(HeaderMap::new(), &body, "N", "T").unwrap(),
            until: Instant::now() + for_,
        }
    }

    fn key(s: &str) -> Key {
        (s.to_owned(), "/backtests".to_owned())
    }

    fn connected() -> SignedInCache {
        let c = SignedInCache::default();
        c.resync_all();
        c
    }

    #[test]
    fn a_reload_asks_for_a_fresh_page() {
        let with = |name, v: &str| {
            let mut h = HeaderMap::new();
            h.insert(name, v.parse().unwrap());
            wants_fresh(&h)
        };
        assert!(!wants_fresh(&HeaderMap::new()));
        assert!(with(header::CACHE_CONTROL, "max-age=0"));
        assert!(with(header::CACHE_CONTROL, "No-Cache"));
        assert!(with(header::CACHE_CONTROL, "private, max-age = 0"));
        assert!(with(header::PRAGMA, "no-cache"));
        assert!(!with(header::CACHE_CONTROL, "max-age=60"));
        assert!(!with(header::CACHE_CONTROL, "max-age=00x"));
    }

    #[test]
    fn nothing_is_kept_or_served_while_changes_are_not_heard() {
        let c = SignedInCache::default();
        let u = Uuid::new_v4();
        assert_eq!(c.generation(u), None);
        let c = connected();
        let g = c.generation(u).unwrap();
        assert!(c.keep(u, key("s"), g, entry("a", MAX_AGE)));
        assert!(c.get(u, &key("s")).is_some());
        c.disconnected();
        assert!(c.get(u, &key("s")).is_none());
        assert_eq!(c.size(), (0, 0));
        assert_eq!(c.generation(u), None);
        // Reconnected: everything before is forgotten, a render started before is not kept.
        c.resync_all();
        assert!(!c.keep(u, key("s"), g, entry("a", MAX_AGE)));
    }

    #[test]
    fn a_change_during_the_render_is_not_kept_and_one_after_forgets() {
        let c = connected();
        let (u, v) = (Uuid::new_v4(), Uuid::new_v4());
        let g = c.generation(u).unwrap();
        c.deliver(&u.to_string());
        assert!(!c.keep(u, key("s"), g, entry("a", MAX_AGE)));
        let g = c.generation(u).unwrap();
        assert!(c.keep(u, key("s"), g, entry("a", MAX_AGE)));
        let gv = c.generation(v).unwrap();
        assert!(c.keep(v, key("t"), gv, entry("b", MAX_AGE)));
        // Another user's change leaves u's page; u's own forgets it.
        c.deliver(&v.to_string());
        assert!(c.get(u, &key("s")).is_some());
        assert!(c.get(v, &key("t")).is_none());
        c.deliver(&u.to_string());
        assert!(c.get(u, &key("s")).is_none());
        // A change for everyone (or an unreadable one) forgets all.
        let g = c.generation(u).unwrap();
        assert!(c.keep(u, key("s"), g, entry("a", MAX_AGE)));
        c.deliver("*");
        assert!(c.get(u, &key("s")).is_none());
        let g = c.generation(u).unwrap();
        assert!(c.keep(u, key("s"), g, entry("a", MAX_AGE)));
        c.deliver("garbage");
        assert!(c.get(u, &key("s")).is_none());
        assert_eq!(c.size(), (0, 0));
    }

    #[test]
    fn pages_are_per_session_and_expire() {
        let c = connected();
        let u = Uuid::new_v4();
        let g = c.generation(u).unwrap();
        assert!(c.keep(u, key("s"), g, entry("a", Duration::ZERO)));
        assert!(c.get(u, &key("s")).is_none(), "past its time");
        assert!(c.keep(u, key("s"), g, entry("a", MAX_AGE)));
        assert!(c.get(u, &key("other session")).is_none());
        assert!(c.get(Uuid::new_v4(), &key("s")).is_none());
    }

    #[tokio::test]
    async fn one_render_at_a_time_per_page_and_those_waiting_get_its_page() {
        let c = connected();
        let u = Uuid::new_v4();
        let Join::Lead(leader) = c.join(u, &key("s")) else {
            panic!("the first one renders")
        };
        let Join::Follow(flight) = c.join(u, &key("s")) else {
            panic!("the second one waits")
        };
        // Another page, session or user renders on its own.
        assert!(matches!(c.join(u, &key("t")), Join::Lead(_)));
        assert!(matches!(c.join(Uuid::new_v4(), &key("s")), Join::Lead(_)));
        let waiting = tokio::spawn(async move {
            let _done = flight.read().await;
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished(), "waits while the render runs");
        let g = c.generation(u).unwrap();
        assert!(c.keep(u, key("s"), g, entry("a", MAX_AGE)));
        drop(leader);
        waiting.await.unwrap();
        assert!(
            c.get(u, &key("s")).is_some(),
            "the page is there when it wakes"
        );
        assert!(c.flights().is_empty(), "a flight ends with its render");
    }

    #[tokio::test]
    async fn a_render_that_goes_away_releases_those_waiting() {
        let c = connected();
        let u = Uuid::new_v4();
        let leader = c.join(u, &key("s"));
        let Join::Follow(flight) = c.join(u, &key("s")) else {
            panic!("the second one waits")
        };
        drop(leader);
        let released = tokio::time::timeout(Duration::from_secs(5), flight.read()).await;
        assert!(released.is_ok(), "released");
        assert!(c.get(u, &key("s")).is_none());
        assert!(
            matches!(c.join(u, &key("s")), Join::Lead(_)),
            "the next one renders"
        );
    }

    #[test]
    fn bounded_per_user_and_in_bytes() {
        let c = connected();
        let u = Uuid::new_v4();
        let g = c.generation(u).unwrap();
        for i in 0..MAX_PER_USER {
            assert!(c.keep(u, key(&i.to_string()), g, entry("a", MAX_AGE)));
        }
        assert_eq!(c.size().0, MAX_PER_USER);
        assert!(c.keep(u, key("one more"), g, entry("a", MAX_AGE)));
        assert_eq!(c.size().0, 1, "the user's pages were dropped together");
        // Bytes: a page as large as the budget leaves room for nothing else.
        let big = "x".repeat(BUDGET_BYTES / 2);
        let v = Uuid::new_v4();
        let gv = c.generation(v).unwrap();
        assert!(c.keep(v, key("a"), gv, entry(&big, MAX_AGE)));
        let w = Uuid::new_v4();
        let gw = c.generation(w).unwrap();
        assert!(c.keep(w, key("b"), gw, entry(&big, MAX_AGE)));
        let (_, bytes) = c.size();
        assert!(bytes <= BUDGET_BYTES, "{bytes}");
        assert!(c.get(w, &key("b")).is_some());
    }
}
