//! `GET /api/events/paper/{id}`: the live stream of one of the signed-in user's paper runs (server-sent
//! events) that the run page listens to after hydration. A browser route, not part of the REST document: it
//! authenticates with the session cookie only and answers 401 itself; another user's run (or no such run)
//! is 404. Under `/api/events/`, so nginx passes it unbuffered (nginx/templates/vortex.conf.template).
//!
//! The contract the page is written against:
//!
//! * `event: changed`, `data: {"status", "candles", "last_candle"}` first (with `retry: 5000`), and again
//!   after every change of the run (a processed candle, a fill, pause/resume/stop, an error), at most one
//!   per [`COALESCE`]: the page re-reads its data.
//! * A comment line every `NOTIFY_SSE_HEARTBEAT_SECS` keeps proxies from closing the stream.
//!
//! Limits as the notification stream's: the session is checked again every 60 s and before anything is
//! sent, the stream ends after `NOTIFY_SSE_MAX_SECS` (the browser reconnects), and at most
//! `NOTIFY_SSE_MAX_PER_USER` paper streams per user and `NOTIFY_SSE_MAX_TOTAL` per process are open
//! (their own slots, apart from the notification streams'): beyond, 429 with `Retry-After: 30`.

use std::{convert::Infallible, time::Duration};

use axum::{
    extract::{Path, State},
    http::{HeaderValue, header},
    response::{
        IntoResponse, Response,
        sse::{Event, KeepAlive, Sse},
    },
};
use backend::{
    Actor, Error,
    actor::Surface,
    auth::session,
    paper::actions::{self as act, Owner},
};
use futures::StreamExt;
use serde_json::json;
use tokio::sync::mpsc;
use uuid::Uuid;

use super::live::Subscription;
use crate::{error::ApiError, extract::request_meta, state::AppState};

/// The stream's path without the run id.
pub const PATH_PREFIX: &str = "/api/events/paper/";
const SESSION_RECHECK: Duration = Duration::from_secs(60);
const RETRY_MS: u64 = 5000;
const BUSY_RETRY_SECS: u64 = 30;
/// Changes closer together than this are announced once (a catch-up processes many candles in a row).
pub const COALESCE: Duration = Duration::from_millis(250);

pub(super) async fn stream(
    State(state): State<AppState>,
    Path(id): Path<String>,
    parts: axum::http::request::Parts,
) -> Response {
    match open(&state, &id, &parts).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

fn signed_out() -> ApiError {
    ApiError::coded(
        axum::http::StatusCode::UNAUTHORIZED,
        "unauthorized",
        "sign in first: the stream needs a browser session",
    )
}

/// The run's state as the event's data, or why it cannot be read.
async fn changed(state: &AppState, actor: &Actor, id: Uuid) -> Result<Event, Error> {
    let d = act::get(actor, &state.ctx, Owner::Me, id).await?;
    let s = &d.summary;
    Ok(Event::default().event("changed").data(
        json!({
            "status": s.status.as_str(),
            "candles": s.candles_processed,
            "last_candle": s.last_candle,
        })
        .to_string(),
    ))
}

async fn open(
    state: &AppState,
    id: &str,
    parts: &axum::http::request::Parts,
) -> Result<Response, ApiError> {
    let ctx = &state.ctx;
    let token = session::read_cookie(&parts.headers, session::cookie_name(&ctx.settings))
        .ok_or_else(signed_out)?
        .to_owned();
    let user = session::authenticate(&ctx.db, &ctx.keys, &ctx.settings, &token)
        .await?
        .ok_or_else(signed_out)?;
    let run = Uuid::parse_str(id.trim()).map_err(|_| Error::NotFound)?;
    let user_id = user.user_id;
    let actor = Actor::user(user, Surface::Web, request_meta(parts), None);
    // Another user's run is 404 before any slot is taken.
    act::get(&actor, ctx, Owner::Me, run).await?;
    let slot = state
        .limits
        .paper_sse
        .try_acquire(user_id)
        .ok_or(ApiError::RateLimited(BUSY_RETRY_SECS))?;
    // Subscribe before reading, so nothing committed after the read is missed.
    let sub = state.paper_hub.subscribe(run);
    let first = changed(state, &actor, run)
        .await?
        .retry(Duration::from_millis(RETRY_MS));
    let (tx, rx) = mpsc::channel::<Event>(8);
    tokio::spawn(feed(state.clone(), actor, token, run, sub, tx));
    let events = futures::stream::once(async move { first })
        .chain(futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|e| (e, rx))
        }))
        // The slot lives as long as the response body: a closed tab frees it at once.
        .map(move |e| {
            let _ = &slot;
            Ok::<_, Infallible>(e)
        });
    let mut resp = Sse::new(events)
        .keep_alive(KeepAlive::new().interval(ctx.settings.notify_sse.heartbeat))
        .into_response();
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(resp)
}

/// Turns the hub's signals into events until the client goes, the session ends, the run is gone or the
/// time is up.
async fn feed(
    state: AppState,
    actor: Actor,
    token: String,
    run: Uuid,
    mut sub: Subscription,
    tx: mpsc::Sender<Event>,
) {
    let ctx = &state.ctx;
    let deadline = tokio::time::Instant::now() + ctx.settings.notify_sse.max_duration;
    let mut recheck = tokio::time::interval_at(
        tokio::time::Instant::now() + SESSION_RECHECK,
        SESSION_RECHECK,
    );
    loop {
        tokio::select! {
            () = tx.closed() => return,
            () = tokio::time::sleep_until(deadline) => return,
            _ = recheck.tick() => {
                match session::is_live(&ctx.db, &ctx.keys, &ctx.settings, &token).await {
                    Ok(false) => return,
                    Ok(true) => continue,
                    Err(e) => {
                        tracing::warn!(error = %e, "paper stream: session check failed");
                        continue;
                    }
                }
            }
            s = sub.recv() => if s.is_none() { return },
        }
        tokio::time::sleep(COALESCE).await;
        sub.drain();
        if matches!(
            session::is_live(&ctx.db, &ctx.keys, &ctx.settings, &token).await,
            Ok(false)
        ) {
            return;
        }
        let event = match changed(&state, &actor, run).await {
            Ok(e) => e,
            Err(Error::NotFound) => return,
            Err(e) => {
                tracing::warn!(error = %e, "paper stream: cannot read the run");
                continue;
            }
        };
        if tx.send(event).await.is_err() {
            return;
        }
    }
}
