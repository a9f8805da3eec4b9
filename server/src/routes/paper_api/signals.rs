//! Inbound signals (docs/paper-trading.md, "Inbound signals"): the public signal URL of a run
//! (`POST /api/v1/signals/{run_id}`: no session, no API token, the run's secret or signature is the authority;
//! exempt from CSRF like every `/api/v1/` path) and the owner's settings and received list
//! (`/api/v1/paper-runs/{id}/signals`, the same authorization as the run page). `backend::paper::signals`
//! decides everything.

use axum::{
    Json,
    body::Body,
    extract::State,
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use backend::paper::{
    actions::{self as act, Owner},
    signals::{self, Inbound, NewSecret, SignalChange, SignalRecord, SignalSettings, Verdict},
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::{
    error::{ApiError, ApiResult},
    extract::{ApiActor, ApiJson, ApiPath, ApiQuery},
    routes::openapi::ErrorBody,
    state::AppState,
};

/// `?token=` for senders whose body cannot carry it.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SignalQuery {
    /// The run's signal secret (`vsig_…`); prefer the body's `token` or the signature header.
    pub token: Option<String>,
}

/// The answer to an accepted or duplicate signal.
#[derive(Debug, Serialize, ToSchema)]
pub struct SignalAck {
    /// `accepted`, or `duplicate` (received before: nothing changed).
    #[schema(example = "accepted")]
    pub verdict: String,
    pub signal_id: Uuid,
    pub reason: Option<String>,
}

/// `POST /api/v1/signals/{run_id}`: a trading signal for a paper run in `gate` mode (TradingView's alert
/// webhook, or any sender). Checked, stored with its verdict and answered at once.
#[utoipa::path(
    post,
    path = "/api/v1/signals/{run_id}",
    tag = "paper",
    security(()),
    params(
        ("run_id" = Uuid, Path, description = "Paper run id"),
        ("X-Vortex-Signature" = Option<String>, Header, description = "`t=<unix seconds>,v1=<hex HMAC-SHA256 of \"t.body\">`, keyed with the run's signing key; without it the body's `token` (or `?token=`) must be the run's secret"),
        SignalQuery,
    ),
    request_body(content = Object, content_type = "text/plain", description = "JSON (any content type; TradingView sends text/plain), at most 8 KiB: `{\"action\": \"buy\"|\"sell\"|\"exit\", \"ticker\": \"ETHBTC\", \"time\": unix s or ms or RFC 3339, \"id\"?: \"…\", \"token\"?: \"vsig_…\"}`"),
    responses(
        (status = 200, description = "`accepted`, or `duplicate` (the same `id`, or ticker and time, was accepted before: nothing changed)", body = SignalAck),
        (status = 400, description = "`bad_request`: not JSON, or no or an unknown action, no ticker, no time (stored as rejected)", body = ErrorBody),
        (status = 401, description = "`unauthorized`: no or a wrong signature or token (stored as rejected)", body = ErrorBody),
        (status = 403, description = "`forbidden`: the sender's address is not on the run's allow-list (stored as rejected)", body = ErrorBody),
        (status = 404, description = "No such run, or its signals are off (nothing stored)", body = ErrorBody),
        (status = 409, description = "`conflict`: the run is stopped or failed (stored as rejected)", body = ErrorBody),
        (status = 413, description = "Body over 8 KiB (stored as rejected, without the body)", body = ErrorBody),
        (status = 422, description = "`stale_signal`: the signal's time or the signature's timestamp is more than 300 s from now; `wrong_ticker`: another instrument (stored as rejected)", body = ErrorBody),
        (status = 429, description = "More than 30 requests in a minute for this run (stored as rejected)", body = ErrorBody),
    )
)]
pub async fn receive_signal(
    State(state): State<AppState>,
    ApiPath(run_id): ApiPath<Uuid>,
    ApiQuery(q): ApiQuery<SignalQuery>,
    ip: Option<axum::Extension<backend::web::ClientIp>>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let bytes = axum::body::to_bytes(body, signals::MAX_BODY).await.ok();
    let signature = headers
        .get(signals::SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok());
    let r = signals::receive(
        &state.ctx,
        run_id,
        Inbound {
            signature,
            token: q.token.as_deref(),
            body: bytes.as_deref(),
            ip: ip.map(|axum::Extension(c)| c.0),
        },
    )
    .await?;
    let reason = r.reason.clone().unwrap_or_default();
    match r.status {
        200 => Ok(Json(SignalAck {
            verdict: r.verdict.as_str().to_owned(),
            signal_id: r.signal_id,
            reason: r.reason,
        })
        .into_response()),
        429 => Err(ApiError::RateLimited(r.retry_after.unwrap_or(60))),
        422 if reason.contains("ticker") => Err(ApiError::coded(
            StatusCode::UNPROCESSABLE_ENTITY,
            "wrong_ticker",
            reason,
        )),
        422 => Err(ApiError::coded(
            StatusCode::UNPROCESSABLE_ENTITY,
            "stale_signal",
            reason,
        )),
        s => {
            let status = StatusCode::from_u16(s).unwrap_or(StatusCode::BAD_REQUEST);
            let mut e = ApiError::from_status(status);
            if let ApiError::Detailed { message, .. } = &mut e {
                *message = reason;
            }
            debug_assert!(r.verdict == Verdict::Rejected);
            Err(e)
        }
    }
}

/// A run's inbound-signal settings (never the secret).
#[derive(Debug, Serialize, ToSchema)]
pub struct SignalSettingsDto {
    pub paper_run_id: Uuid,
    /// `off` or `gate`.
    #[schema(example = "gate")]
    pub mode: String,
    /// A secret exists (it was shown once; rotate for a new one).
    pub has_secret: bool,
    /// Sender addresses allowed (empty: any).
    pub allow_ips: Vec<String>,
    pub rotated_at: Option<DateTime<Utc>>,
    /// The URL senders post to.
    #[schema(example = "/api/v1/signals/3f2c…")]
    pub webhook_path: String,
    /// Requests received in the last 3 minutes.
    pub recent: i64,
    /// More than 12 in 3 minutes: TradingView stops alerts that trigger about 15 times in 3 minutes.
    pub near_tradingview_limit: bool,
}

impl From<SignalSettings> for SignalSettingsDto {
    fn from(s: SignalSettings) -> Self {
        Self {
            paper_run_id: s.paper_run_id,
            mode: s.mode.as_str().to_owned(),
            has_secret: s.has_secret,
            allow_ips: s.allow_ips,
            rotated_at: s.rotated_at,
            webhook_path: format!("/api/v1/signals/{}", s.paper_run_id),
            recent: s.recent,
            near_tradingview_limit: s.near_tradingview_limit,
        }
    }
}

/// A new secret, shown once: `token` goes in the body (TradingView), `signing_key` keys the HMAC of
/// `X-Vortex-Signature`.
#[derive(Debug, Serialize, ToSchema)]
pub struct NewSecretDto {
    pub token: String,
    pub signing_key: String,
}

impl From<NewSecret> for NewSecretDto {
    fn from(s: NewSecret) -> Self {
        Self {
            token: s.token,
            signing_key: s.signing_key,
        }
    }
}

/// The settings after a change, and the new secret when one was made.
#[derive(Debug, Serialize, ToSchema)]
pub struct SignalsChangedDto {
    pub settings: SignalSettingsDto,
    /// Only when a secret was made now (rotation, or the first switch to `gate`); never shown again.
    pub secret: Option<NewSecretDto>,
}

/// A change of a run's inbound signals (absent fields unchanged).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignalChangeInput {
    /// `off` or `gate`.
    #[schema(pattern = "^(off|gate)$")]
    pub mode: Option<String>,
    /// Sender addresses allowed (replaces the list; empty: any; at most 16).
    #[schema(max_items = 16)]
    pub allow_ips: Option<Vec<String>>,
    /// A new secret; the old one stops working at once.
    #[serde(default)]
    pub rotate: bool,
}

/// One request the run's signal URL received.
#[derive(Debug, Serialize, ToSchema)]
pub struct SignalRecordDto {
    pub signal_id: Uuid,
    pub received_at: DateTime<Utc>,
    /// `accepted`, `rejected` or `duplicate`.
    pub verdict: String,
    /// The HTTP status it was answered with.
    pub status: i16,
    pub reason: Option<String>,
    /// `buy` or `exit`.
    pub action: Option<String>,
    pub ticker: Option<String>,
    pub signal_time: Option<DateTime<Utc>>,
    pub client_id: Option<String>,
    /// `signature` or `token`.
    pub auth: Option<String>,
    pub source_ip: Option<String>,
    /// The candle whose gate it set.
    pub applied_to: Option<DateTime<Utc>>,
    /// The body as received (at most 8 KiB; a token in it redacted).
    pub body: String,
}

impl From<SignalRecord> for SignalRecordDto {
    fn from(s: SignalRecord) -> Self {
        Self {
            signal_id: s.signal_id,
            received_at: s.received_at,
            verdict: s.verdict,
            status: s.status,
            reason: s.reason,
            action: s.action,
            ticker: s.ticker,
            signal_time: s.signal_time,
            client_id: s.client_id,
            auth: s.auth,
            source_ip: s.source_ip,
            applied_to: s.applied_to,
            body: s.body,
        }
    }
}

/// The settings and a page of received requests, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct SignalList {
    pub settings: SignalSettingsDto,
    pub signals: Vec<SignalRecordDto>,
}

/// A page of received signals.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SignalPage {
    /// Received before this time (RFC 3339), for the next page.
    pub before: Option<DateTime<Utc>>,
    /// 1–500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
}

/// `GET /api/v1/paper-runs/{id}/signals`: the run's signal settings and the requests its signal URL
/// received, newest first, each with its verdict.
#[utoipa::path(
    get,
    path = "/api/v1/paper-runs/{id}/signals",
    tag = "paper",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Paper run id"), SignalPage),
    responses(
        (status = 200, description = "Settings and received signals", body = SignalList),
        (status = 400, description = "`invalid_input` (`limit`), a malformed query or id", body = ErrorBody),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 404, description = "No such run of yours", body = ErrorBody),
    )
)]
pub async fn list_paper_signals(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(q): ApiQuery<SignalPage>,
) -> ApiResult<Json<SignalList>> {
    let list = act::received_signals(
        &actor,
        &state.ctx,
        Owner::Me,
        id,
        q.before,
        q.limit.unwrap_or(100),
    )
    .await?;
    let settings = act::signal_settings(&actor, &state.ctx, Owner::Me, id).await?;
    Ok(Json(SignalList {
        settings: settings.into(),
        signals: list.into_iter().map(Into::into).collect(),
    }))
}

/// `PUT /api/v1/paper-runs/{id}/signals`: sets the run's signal mode (`off`, `gate`), the sender allow-list,
/// and (`rotate`) a new secret. The first switch to `gate` makes a secret too. A new secret is in the answer
/// once and never again. Applies from the run's next candle.
#[utoipa::path(
    put,
    path = "/api/v1/paper-runs/{id}/signals",
    tag = "paper",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Paper run id")),
    request_body = SignalChangeInput,
    responses(
        (status = 200, description = "The settings now, and the new secret if one was made", body = SignalsChangedDto),
        (status = 400, description = "`invalid_input` (`mode`, `allow_ips`), the id is not a UUID, malformed JSON or unknown field", body = ErrorBody),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 403, description = "Read-only token or viewer", body = ErrorBody),
        (status = 404, description = "No such run of yours", body = ErrorBody),
        (status = 409, description = "`conflict`: the run is stopped or failed", body = ErrorBody),
        (status = 413, description = "Body larger than the limit", body = ErrorBody),
        (status = 415, description = "Body is not application/json", body = ErrorBody),
    )
)]
pub async fn set_paper_signals(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<SignalChangeInput>,
) -> ApiResult<Response> {
    let change = SignalChange {
        mode: body.mode,
        allow_ips: body.allow_ips,
        rotate: body.rotate,
    };
    let changed = act::configure_signals(&actor, &state.ctx, Owner::Me, id, &change)
        .await
        .map_err(|e| match e {
            backend::paper::Error::Invalid { field, message } if field == "signal_mode" => {
                backend::paper::Error::Invalid {
                    field: "mode".into(),
                    message,
                }
            }
            other => other,
        })?;
    let out = SignalsChangedDto {
        settings: changed.settings.into(),
        secret: changed.secret.map(Into::into),
    };
    // The secret is in this answer only: no cache may keep it.
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(out)).into_response())
}
