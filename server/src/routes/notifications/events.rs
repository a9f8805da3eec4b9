//! `GET /api/events/notifications`: the live stream of the signed-in user's in-app notifications
//! (server-sent events; docs/design/notifications.md §7). A browser route, not part of the REST document:
//! it authenticates with the session cookie only and answers 401 itself (no redirect, an `EventSource`
//! cannot follow one usefully).
//!
//! The contract the bell's `EventSource` is written against:
//!
//! * `event: unread`, `data: {"unread": n}`, first (with `retry: 5000`), and again whenever the count
//!   changes without a new notification (read marks, here or in another tab).
//! * `event: notification`, `data: {"id", "title", "url", "unread"}` for each new notification (`url` is a
//!   path on this site or null; `unread` the count after it).
//! * `event: resync`, `data: {"unread": n}` when changes may have been missed (the process's listener
//!   reconnected, or the stream fell behind): re-read the list.
//! * A comment line every `NOTIFY_SSE_HEARTBEAT_SECS` (15 s) keeps proxies from closing the stream.
//!
//! Headers `Cache-Control: no-store` and `X-Accel-Buffering: no`. The session is checked again every 60 s
//! (signed out, revoked or expired: the stream ends) and the stream ends after `NOTIFY_SSE_MAX_SECS`; the
//! browser reconnects by itself. At most `NOTIFY_SSE_MAX_PER_USER` streams per user and
//! `NOTIFY_SSE_MAX_TOTAL` per process: beyond, 429 with `Retry-After: 30`.

use std::{convert::Infallible, time::Duration};

use axum::{
    extract::State,
    http::{HeaderValue, header},
    response::{
        IntoResponse, Response,
        sse::{Event, KeepAlive, Sse},
    },
};
use backend::{
    Actor,
    actor::Surface,
    auth::session,
    notify::live::{self, Signal},
};
use futures::StreamExt;
use serde_json::json;
use tokio::sync::mpsc;

use crate::{error::ApiError, extract::request_meta, state::AppState};

/// The path of the stream.
pub const PATH: &str = "/api/events/notifications";
/// How often the session is checked again.
pub const SESSION_RECHECK: Duration = Duration::from_secs(60);
/// What the browser waits before reconnecting (the `retry:` field).
pub const RETRY_MS: u64 = 5000;
/// The `Retry-After` of a refused stream (no free slot).
pub const BUSY_RETRY_SECS: u64 = 30;
/// New notifications sent one by one per change (more: the count says the rest).
const ITEMS_PER_CHANGE: i64 = 20;

fn unread(n: i64) -> Event {
    Event::default()
        .event("unread")
        .data(json!({ "unread": n }).to_string())
}

/// Opens the stream.
pub async fn notifications_stream(
    State(state): State<AppState>,
    parts: axum::http::request::Parts,
) -> Response {
    match open(&state, &parts).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn open(state: &AppState, parts: &axum::http::request::Parts) -> Result<Response, ApiError> {
    let ctx = &state.ctx;
    let token = session::read_cookie(&parts.headers, session::cookie_name(&ctx.settings))
        .ok_or(ApiError::Unauthorized)?
        .to_owned();
    let user = session::authenticate(&ctx.db, &ctx.keys, &ctx.settings, &token)
        .await?
        .ok_or(ApiError::Unauthorized)?;
    let user_id = user.user_id;
    let slot = state
        .limits
        .sse
        .try_acquire(user_id)
        .ok_or(ApiError::RateLimited(BUSY_RETRY_SECS))?;
    let actor = Actor::user(user, Surface::Web, request_meta(parts), None);
    // Subscribe before reading, so nothing committed after the read is missed.
    let sub = state.hub.subscribe(user_id);
    let start = live::updates(ctx, &actor, None, 1).await?;
    let first = unread(start.unread).retry(Duration::from_millis(RETRY_MS));

    let (tx, rx) = mpsc::channel::<Event>(32);
    tokio::spawn(feed(state.clone(), actor, token, sub, start, tx));
    let events = futures::stream::once(async move { first })
        .chain(futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|e| (e, rx))
        }))
        // The slot lives as long as the response body: a closed tab frees it at once.
        .map(move |e| {
            let _ = &slot;
            Ok::<_, Infallible>(e)
        });
    let heartbeat = ctx.settings.notify_sse.heartbeat;
    let mut resp = Sse::new(events)
        .keep_alive(KeepAlive::new().interval(heartbeat))
        .into_response();
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(resp)
}

/// Turns the hub's signals into events until the client goes, the session ends or the time is up.
async fn feed(
    state: AppState,
    actor: Actor,
    token: String,
    mut sub: live::Subscription,
    start: live::Updates,
    tx: mpsc::Sender<Event>,
) {
    let ctx = &state.ctx;
    let deadline = tokio::time::Instant::now() + ctx.settings.notify_sse.max_duration;
    let mut recheck = tokio::time::interval_at(
        tokio::time::Instant::now() + SESSION_RECHECK,
        SESSION_RECHECK,
    );
    let (mut last_seq, mut last_unread) = (start.last_seq, start.unread);
    loop {
        let signal = tokio::select! {
            () = tx.closed() => return,
            () = tokio::time::sleep_until(deadline) => return,
            _ = recheck.tick() => {
                match session::authenticate(&ctx.db, &ctx.keys, &ctx.settings, &token).await {
                    Ok(Some(_)) => continue,
                    Ok(None) => return,
                    // The database is away: keep the stream; the next check decides.
                    Err(e) => {
                        tracing::warn!(error = %e, "live stream: session check failed");
                        continue;
                    }
                }
            }
            s = sub.recv() => match s {
                Some(s) => s,
                None => return,
            },
        };
        let u = match live::updates(ctx, &actor, Some(last_seq), ITEMS_PER_CHANGE).await {
            Ok(u) => u,
            Err(e) => {
                tracing::warn!(error = %e, "live stream: cannot read notifications");
                continue;
            }
        };
        let mut events = Vec::new();
        if signal == Signal::Resync {
            events.push(
                Event::default()
                    .event("resync")
                    .data(json!({ "unread": u.unread }).to_string()),
            );
        } else if u.items.is_empty() {
            if u.unread != last_unread {
                events.push(unread(u.unread));
            }
        } else {
            for item in &u.items {
                events.push(
                    Event::default().event("notification").data(
                        json!({ "id": item.id, "title": item.title, "url": item.url, "unread": u.unread })
                            .to_string(),
                    ),
                );
            }
        }
        last_seq = u.last_seq;
        last_unread = u.unread;
        for e in events {
            if tx.send(e).await.is_err() {
                return;
            }
        }
    }
}
