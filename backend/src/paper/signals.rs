//! Inbound signals (docs/paper-trading.md, "Inbound signals"): a run in `gate` mode takes an entry only when an
//! accepted `buy` signal arrived since its previous processed close, and an accepted `exit` (or `sell`) closes
//! its position at the next fill.
//!
//! * **Receiving** ([`receive`], `POST /api/v1/signals/{run_id}`, no session): at most [`MAX_BODY`] bytes of
//!   JSON (any content type: TradingView sends `text/plain`), authenticated by the `X-Vortex-Signature` header
//!   (`t=<unix>,v1=<hex HMAC-SHA256 of "t.body">`, verified like the billing webhook's, keyed with the run's
//!   signing key) or by the run's secret as `token` in the body (or the query), compared in constant time. Then
//!   the sender's IP allow-list, a per-run rate limit, the timestamp window ([`WINDOW_SECS`] of the clock), the
//!   ticker (the run's instrument) and the idempotency key (`id`, else ticker and time): a replay changes
//!   nothing and is answered `duplicate`. Every request for a run with signals is stored with its verdict
//!   ([`Verdict`]) and HTTP status; nothing else is written. The answer is immediate (TradingView waits about
//!   3 s).
//! * **Effect**: the `paper_advance` step reads the accepted signals not used yet (in its transaction, with the
//!   run row locked), gives each to the first new candle whose close is at or after its arrival (else the last
//!   new candle), and sets that candle's gate: `flatten` for an exit, `open` for a buy, `no_entry` otherwise;
//!   the strictest of that and the run's other gates applies. The signal is marked with its candle in the same
//!   transaction, and the candle's gate is stored, so replays stay deterministic.
//! * **Secret**: shown once when created or rotated; only its SHA-256 is stored. The signing key is that hash in
//!   hex (senders that sign use it as the HMAC key; the token is the secret itself).

use std::net::IpAddr;

use chrono::{DateTime, TimeZone, Utc};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::actions::{Owner, owner_read, owner_write};
use super::{Error, Result};
use crate::auth::{constant_time_eq, random_secret, sha256};
use crate::billing::signature::{self, SignatureError};
use crate::settings::hex;
use crate::{Actor, Ctx};

/// Largest body accepted (bytes).
pub const MAX_BODY: usize = 8192;
/// Requests one run accepts per minute (counted before authentication; over it: 429).
pub const RATE_PER_MINUTE: u64 = 30;
/// Largest difference between a signal's time (and a signature's timestamp) and now, either way.
pub const WINDOW_SECS: i64 = signature::TOLERANCE_SECS;
/// Requests kept per run (the newest; accepted signals the step has not used yet are kept anyway).
pub const KEEP_PER_RUN: i64 = 1000;
/// Most addresses in a run's sender allow-list.
pub const MAX_ALLOW_IPS: usize = 16;
/// Most rows one page of received signals returns.
pub const MAX_LIST: i64 = 500;
/// TradingView stops alerts that trigger more than about 15 times in 3 minutes: the run warns above this many.
pub const TRADINGVIEW_WARN_COUNT: i64 = 12;
/// The window of that warning (seconds).
pub const TRADINGVIEW_WARN_SECS: i64 = 180;
/// The header a signing sender sets.
pub const SIGNATURE_HEADER: &str = "x-vortex-signature";
const SECRET_PREFIX: &str = "vsig_";
const REDACTED: &str = "[redacted]";

/// Whether a run listens to signals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// The strategy's rules alone (the signal URL answers 404).
    #[default]
    Off,
    /// Entries need an accepted buy signal since the previous processed close; an exit signal closes the
    /// position at the next fill.
    Gate,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Off => "off",
            Mode::Gate => "gate",
        }
    }

    /// Parses `off` or `gate`.
    ///
    /// # Errors
    /// [`Error::Invalid`] on `signal_mode`.
    pub fn parse(text: &str) -> Result<Mode> {
        match text.trim().to_ascii_lowercase().as_str() {
            "off" => Ok(Mode::Off),
            "gate" => Ok(Mode::Gate),
            _ => Err(Error::invalid(
                "signal_mode",
                format!("`{}` is not a signal mode; use off or gate", text.trim()),
            )),
        }
    }
}

/// A run's signal settings (never the secret).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SignalSettings {
    pub paper_run_id: Uuid,
    pub mode: Mode,
    /// A secret exists (it was shown once; rotate to get a new one).
    pub has_secret: bool,
    /// Sender addresses allowed (empty: any).
    pub allow_ips: Vec<String>,
    pub rotated_at: Option<DateTime<Utc>>,
    /// Requests received in the last [`TRADINGVIEW_WARN_SECS`] seconds.
    pub recent: i64,
    /// More than [`TRADINGVIEW_WARN_COUNT`] of them: TradingView may stop the alert soon.
    pub near_tradingview_limit: bool,
}

/// What a change asks for (absent: unchanged).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SignalChange {
    /// `off` or `gate`.
    #[serde(default)]
    pub mode: Option<String>,
    /// Sender addresses allowed (replaces the list; empty: any).
    #[serde(default)]
    pub allow_ips: Option<Vec<String>>,
    /// A new secret (the old one stops working at once).
    #[serde(default)]
    pub rotate: bool,
}

/// The settings after a change, and the new secret when one was made (shown once).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SignalsChanged {
    pub settings: SignalSettings,
    pub secret: Option<NewSecret>,
}

/// A new secret: the token (for the body) and the signing key (for the HMAC header).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NewSecret {
    pub token: String,
    pub signing_key: String,
}

/// A received request's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Accepted,
    Rejected,
    /// The idempotency key was accepted before: nothing changed.
    Duplicate,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Accepted => "accepted",
            Verdict::Rejected => "rejected",
            Verdict::Duplicate => "duplicate",
        }
    }
}

/// One stored request.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SignalRecord {
    pub signal_id: Uuid,
    pub received_at: DateTime<Utc>,
    pub verdict: String,
    /// The HTTP status it was answered with.
    pub status: i16,
    pub reason: Option<String>,
    /// `buy` or `exit` (`sell` is stored as `exit`).
    pub action: Option<String>,
    pub ticker: Option<String>,
    pub signal_time: Option<DateTime<Utc>>,
    pub client_id: Option<String>,
    /// `signature` or `token`.
    pub auth: Option<String>,
    pub source_ip: Option<String>,
    /// The candle whose gate it set (accepted signals, once the run processed a candle after it).
    pub applied_to: Option<DateTime<Utc>>,
    /// The body as received (at most 8 KiB; a token in it redacted).
    pub body: String,
}

/// A request to a run's signal URL.
#[derive(Debug, Clone, Copy, Default)]
pub struct Inbound<'a> {
    /// `X-Vortex-Signature`.
    pub signature: Option<&'a str>,
    /// `?token=` (for senders whose body is fixed).
    pub token: Option<&'a str>,
    /// The body; `None` when it was larger than [`MAX_BODY`].
    pub body: Option<&'a [u8]>,
    pub ip: Option<IpAddr>,
}

/// The answer to a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// 200 accepted or duplicate; 400 unreadable; 401 bad signature or token; 403 address not allowed; 409 run
    /// not live; 413 too large; 422 stale or another ticker; 429 rate limited.
    pub status: u16,
    pub verdict: Verdict,
    pub reason: Option<String>,
    pub signal_id: Uuid,
    pub retry_after: Option<u64>,
}

/// A new secret: 32 random bytes, hex, with a prefix that log redaction recognises.
fn new_secret() -> String {
    format!("{SECRET_PREFIX}{}", random_secret())
}

/// The signing key of a secret's hash (what signers use as the HMAC key).
fn signing_key(hash: &[u8]) -> String {
    hex(hash)
}

/// Checks an allow-list entry (an IP address).
fn parse_ips(ips: &[String]) -> Result<Vec<String>> {
    if ips.len() > MAX_ALLOW_IPS {
        return Err(Error::invalid(
            "allow_ips",
            format!("at most {MAX_ALLOW_IPS} addresses"),
        ));
    }
    let mut out = Vec::new();
    for ip in ips.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
        let parsed: IpAddr = ip
            .parse()
            .map_err(|_| Error::invalid("allow_ips", format!("`{ip}` is not an IP address")))?;
        let s = parsed.to_string();
        if !out.contains(&s) {
            out.push(s);
        }
    }
    Ok(out)
}

async fn load_settings(
    conn: &mut sqlx::PgConnection,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<SignalSettings> {
    let r = sqlx::query!(
        r#"select signal_mode, signal_secret_hash is not null as "has_secret!", signal_allow_ips, signal_rotated_at,
                  (select count(*) from paper_signal s where s.paper_run_id = r.paper_run_id
                     and s.received_at > $2) as "recent!"
           from paper_run r where paper_run_id = $1"#,
        id,
        now - chrono::Duration::seconds(TRADINGVIEW_WARN_SECS),
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(Error::NotFound)?;
    Ok(SignalSettings {
        paper_run_id: id,
        mode: Mode::parse(&r.signal_mode).unwrap_or_default(),
        has_secret: r.has_secret,
        allow_ips: r.signal_allow_ips,
        rotated_at: r.signal_rotated_at,
        recent: r.recent,
        near_tradingview_limit: r.recent > TRADINGVIEW_WARN_COUNT,
    })
}

/// One of the actor's runs' signal settings (owners, or administrators for `Owner::User`).
///
/// # Errors
/// [`Error::Unauthenticated`], [`Error::Forbidden`], [`Error::NotFound`], database errors.
pub async fn settings(actor: &Actor, ctx: &Ctx, who: Owner, id: Uuid) -> Result<SignalSettings> {
    let user = owner_read(actor, who)?;
    super::query::owned(&ctx.db, user, id).await?;
    let mut conn = ctx.db.acquire().await?;
    load_settings(&mut conn, id, ctx.clock.now()).await
}

/// Changes one of the actor's runs' signal settings: the mode, the allow-list, a new secret (also made when
/// the mode becomes `gate` and there is none yet). Audited (`paper_signals_changed`, never the secret). Locks
/// the run row, so it applies from the next candle.
///
/// # Errors
/// [`Error::Unauthenticated`], [`Error::Forbidden`], [`Error::NotFound`], [`Error::Conflict`] (the run is not
/// live), [`Error::Invalid`] (`signal_mode`, `allow_ips`), database errors.
pub async fn configure(
    actor: &Actor,
    ctx: &Ctx,
    who: Owner,
    id: Uuid,
    change: &SignalChange,
) -> Result<SignalsChanged> {
    let user = owner_write(actor, who)?;
    let mode = change.mode.as_deref().map(Mode::parse).transpose()?;
    let ips = change.allow_ips.as_deref().map(parse_ips).transpose()?;
    let mut tx = ctx.db.begin().await?;
    let row = sqlx::query!(
        r#"select status, signal_mode, signal_secret_hash is not null as "has_secret!" from paper_run
           where paper_run_id = $1 and user_id = $2 for update"#,
        id,
        user,
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(Error::NotFound)?;
    let status = super::Status::parse(&row.status).unwrap_or(super::Status::Failed);
    if !status.is_live() {
        return Err(Error::Conflict(format!(
            "the run is {status}: its signals can no longer change"
        )));
    }
    let before = Mode::parse(&row.signal_mode).unwrap_or_default();
    let after = mode.unwrap_or(before);
    let rotate = change.rotate || (after == Mode::Gate && !row.has_secret);
    let now = ctx.clock.now();
    let secret = rotate.then(new_secret);
    let hash = secret.as_deref().map(sha256);
    sqlx::query!(
        r#"update paper_run set signal_mode = $2,
               signal_since = case when $3 then $4 else signal_since end,
               signal_allow_ips = coalesce($5, signal_allow_ips),
               signal_secret_hash = coalesce($6, signal_secret_hash),
               signal_rotated_at = case when $6::bytea is not null then $4 else signal_rotated_at end
           where paper_run_id = $1"#,
        id,
        after.as_str(),
        after != before,
        now,
        ips.as_deref(),
        hash.as_deref(),
    )
    .execute(&mut *tx)
    .await?;
    actor
        .audit(
            &mut tx,
            "paper_signals_changed",
            Some(user),
            serde_json::json!({
                "paper_run_id": id,
                "from": before.as_str(),
                "to": after.as_str(),
                "allow_ips": ips.as_ref().map(Vec::len),
                "rotated": rotate,
            }),
        )
        .await?;
    super::advance::notify_changed(&mut tx, &[id.to_string()]).await?;
    let settings = load_settings(&mut tx, id, now).await?;
    tx.commit().await?;
    Ok(SignalsChanged {
        settings,
        secret: secret.map(|token| NewSecret {
            signing_key: signing_key(&sha256(&token)),
            token,
        }),
    })
}

/// The requests one of the actor's runs received, newest first (at most `limit`, 1..=[`MAX_LIST`]).
///
/// # Errors
/// [`Error::Unauthenticated`], [`Error::Forbidden`], [`Error::NotFound`], [`Error::Invalid`] (`limit`),
/// database errors.
pub async fn list(
    actor: &Actor,
    ctx: &Ctx,
    who: Owner,
    id: Uuid,
    before: Option<DateTime<Utc>>,
    limit: i64,
) -> Result<Vec<SignalRecord>> {
    if !(1..=MAX_LIST).contains(&limit) {
        return Err(Error::invalid(
            "limit",
            format!("must be between 1 and {MAX_LIST}"),
        ));
    }
    let user = owner_read(actor, who)?;
    super::query::owned(&ctx.db, user, id).await?;
    Ok(sqlx::query_as!(
        SignalRecord,
        r#"select signal_id, received_at, verdict, status, reason, action, ticker, signal_time, client_id, auth,
                  source_ip, applied_to, body
           from paper_signal where paper_run_id = $1 and ($2::timestamptz is null or received_at < $2)
           order by received_at desc, signal_id limit $3"#,
        id,
        before,
        limit,
    )
    .fetch_all(&ctx.db)
    .await?)
}

/// What a body said.
#[derive(Debug, Default, Clone)]
struct Parsed {
    action: Option<&'static str>,
    ticker: Option<String>,
    time: Option<DateTime<Utc>>,
    id: Option<String>,
}

/// The run's ticker and a sender's, compared without exchange prefix, separators or case.
fn normalise_ticker(t: &str) -> String {
    let t = t.rsplit(':').next().unwrap_or(t);
    t.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

fn parse_time(v: &serde_json::Value) -> Option<DateTime<Utc>> {
    let from_number = |n: i64| {
        if n.unsigned_abs() >= 100_000_000_000 {
            Utc.timestamp_millis_opt(n).single()
        } else {
            Utc.timestamp_opt(n, 0).single()
        }
    };
    match v {
        serde_json::Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().map(|f| f as i64))
            .and_then(from_number),
        serde_json::Value::String(s) => {
            let s = s.trim();
            s.parse::<i64>().ok().map_or_else(
                || {
                    DateTime::parse_from_rfc3339(s)
                        .ok()
                        .map(|d| d.with_timezone(&Utc))
                },
                from_number,
            )
        }
        _ => None,
    }
}

/// Reads `{action, ticker, time, id?}`; the message says what is wrong.
fn parse_fields(body: &serde_json::Value) -> std::result::Result<Parsed, (Parsed, String)> {
    let mut p = Parsed::default();
    let Some(o) = body.as_object() else {
        return Err((p, "the body is not a JSON object".into()));
    };
    let text = |k: &str| -> Option<String> {
        match o.get(k)? {
            serde_json::Value::String(s) => Some(s.trim().to_owned()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    };
    p.id = text("id")
        .filter(|s| !s.is_empty())
        .map(|s| s.chars().take(128).collect());
    p.ticker = text("ticker").map(|s| s.chars().take(64).collect());
    p.time = o.get("time").and_then(parse_time);
    p.action = match text("action").map(|s| s.to_ascii_lowercase()).as_deref() {
        Some("buy") => Some("buy"),
        Some("sell" | "exit") => Some("exit"),
        Some(other) => {
            let msg = format!(
                "action `{}` is not buy, sell or exit",
                other.chars().take(32).collect::<String>()
            );
            return Err((p, msg));
        }
        None => return Err((p, "no action (buy, sell or exit)".into())),
    };
    if p.ticker.as_deref().is_none_or(str::is_empty) {
        return Err((p, "no ticker".into()));
    }
    if p.time.is_none() {
        return Err((
            p,
            "no time (unix seconds or milliseconds, or RFC 3339 such as TradingView's {{timenow}})"
                .into(),
        ));
    }
    Ok(p)
}

/// The body as stored: at most [`MAX_BODY`] bytes of text, with the token (and anything that looks like a
/// secret) replaced.
fn stored_body(body: &[u8], token: Option<&str>) -> String {
    let mut s = String::from_utf8_lossy(body).into_owned();
    // A token shorter than 8 characters is no secret of ours (and replacing it would mangle the body).
    if let Some(t) = token.filter(|t| t.len() >= 8) {
        s = s.replace(t, REDACTED);
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s.as_str();
    while let Some(i) = rest.find(SECRET_PREFIX) {
        out.push_str(&rest[..i]);
        out.push_str(REDACTED);
        let tail = &rest[i + SECRET_PREFIX.len()..];
        let n = tail
            .find(|c: char| !c.is_ascii_alphanumeric())
            .unwrap_or(tail.len());
        rest = &tail[n..];
    }
    out.push_str(rest);
    if out.len() > MAX_BODY {
        let mut cut = MAX_BODY;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
    }
    out
}

/// One row to store.
struct Row {
    run: Uuid,
    now: DateTime<Utc>,
    body: String,
    key: Option<String>,
    auth: Option<&'static str>,
    ip: Option<IpAddr>,
}

impl Row {
    async fn store(
        &self,
        conn: &mut sqlx::PgConnection,
        parsed: &Parsed,
        verdict: Verdict,
        status: u16,
        reason: Option<&str>,
    ) -> sqlx::Result<Option<Uuid>> {
        let id = Uuid::new_v4();
        let reason = reason.map(|r| r.chars().take(500).collect::<String>());
        let stored = sqlx::query_scalar!(
            r#"insert into paper_signal (signal_id, paper_run_id, received_at, body, action, ticker, signal_time,
                   client_id, idempotency_key, auth, verdict, status, reason, source_ip)
               values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
               on conflict (paper_run_id, idempotency_key) where verdict = 'accepted' do nothing
               returning signal_id"#,
            id,
            self.run,
            self.now,
            self.body,
            parsed.action,
            parsed.ticker,
            parsed.time,
            parsed.id,
            if verdict == Verdict::Accepted { self.key.as_deref() } else { None },
            self.auth,
            verdict.as_str(),
            i16::try_from(status).unwrap_or(500),
            reason,
            self.ip.map(|i| i.to_string()),
        )
        .fetch_optional(&mut *conn)
        .await?;
        Ok(stored)
    }
}

/// Handles one request to a run's signal URL (see the module docs). Unknown runs, runs whose signals are off
/// and runs without a secret are [`Error::NotFound`] (nothing stored); every other request is stored with its
/// verdict and answered with [`Received`].
///
/// # Errors
/// [`Error::NotFound`], database errors.
pub async fn receive(ctx: &Ctx, run_id: Uuid, req: Inbound<'_>) -> Result<Received> {
    let run = sqlx::query!(
        r#"select r.status, r.signal_mode, r.signal_secret_hash, r.signal_allow_ips, i.symbol
           from paper_run r join instrument i on i.instrument_id = r.instrument_id
           where r.paper_run_id = $1"#,
        run_id,
    )
    .fetch_optional(&ctx.db)
    .await?
    .ok_or(Error::NotFound)?;
    let Some(hash) = run
        .signal_secret_hash
        .filter(|_| matches!(Mode::parse(&run.signal_mode), Ok(Mode::Gate)))
    else {
        return Err(Error::NotFound);
    };
    let now = ctx.clock.now();
    let body = req.body.unwrap_or_default();
    let json: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let body_token = json
        .as_ref()
        .and_then(|j| j.get("token"))
        .and_then(serde_json::Value::as_str);
    let mut parsed = Parsed::default();
    let mut row = Row {
        run: run_id,
        now,
        body: stored_body(body, body_token.or(req.token)),
        key: None,
        auth: None,
        ip: req.ip,
    };
    let mut conn = ctx.db.acquire().await?;
    let reject = |status: u16, reason: String| (status, reason);
    let verdict: std::result::Result<(), (u16, String)> = async {
        let status = super::Status::parse(&run.status).unwrap_or(super::Status::Failed);
        if !status.is_live() {
            return Err(reject(409, format!("the run is {status}")));
        }
        if !run.signal_allow_ips.is_empty()
            && !req
                .ip
                .is_some_and(|ip| run.signal_allow_ips.iter().any(|a| *a == ip.to_string()))
        {
            return Err(reject(403, "the sender's address is not on the run's allow-list".into()));
        }
        if req.body.is_none() {
            return Err(reject(413, format!("the body is larger than {MAX_BODY} bytes")));
        }
        // Authentication: a signature when there is one, else the token.
        if let Some(sig) = req.signature {
            let key = SecretString::from(signing_key(&hash));
            match signature::verify(Some(sig), body, &[key], now.timestamp()) {
                Ok(_) => row.auth = Some("signature"),
                Err(SignatureError::Stale) => {
                    return Err(reject(
                        422,
                        format!("the signature's timestamp is more than {WINDOW_SECS} s from now (stale or replayed)"),
                    ));
                }
                Err(SignatureError::Malformed(m)) => {
                    return Err(reject(401, format!("the X-Vortex-Signature header is malformed: {m}")));
                }
                Err(_) => return Err(reject(401, "the signature does not match".into())),
            }
        } else {
            let Some(token) = body_token.or(req.token) else {
                return Err(reject(401, "no X-Vortex-Signature header and no token".into()));
            };
            if !constant_time_eq(&sha256(token), &hash) {
                return Err(reject(401, "the token does not match".into()));
            }
            row.auth = Some("token");
        }
        let Some(j) = json.as_ref() else {
            return Err(reject(400, "the body is not JSON".into()));
        };
        parsed = match parse_fields(j) {
            Ok(p) => p,
            Err((p, why)) => {
                parsed = p;
                return Err(reject(400, why));
            }
        };
        let time = parsed.time.unwrap_or(now);
        if (now - time).num_seconds().abs() > WINDOW_SECS {
            return Err(reject(
                422,
                format!("the signal's time {} is more than {WINDOW_SECS} s from now (stale)", time.to_rfc3339()),
            ));
        }
        let ticker = normalise_ticker(parsed.ticker.as_deref().unwrap_or_default());
        if ticker != normalise_ticker(&run.symbol) {
            return Err(reject(
                422,
                format!("ticker {ticker} is not this run's instrument {}", run.symbol),
            ));
        }
        Ok(())
    }
    .await;
    // The rate limit counts every request that reached a run with signals (authenticated or not).
    let limited = crate::redis::rate_limit(
        &ctx.redis,
        &ctx.settings.redis_namespace,
        &format!("signals:{run_id}"),
        RATE_PER_MINUTE,
    )
    .await;
    let (verdict, status, reason, retry_after) = match (verdict, limited) {
        (_, Some(wait)) => (
            Verdict::Rejected,
            429,
            Some(format!(
                "more than {RATE_PER_MINUTE} requests in a minute for this run"
            )),
            Some(wait),
        ),
        (Err((status, why)), None) => (Verdict::Rejected, status, Some(why), None),
        (Ok(()), None) => (Verdict::Accepted, 200, None, None),
    };
    if verdict == Verdict::Accepted {
        row.key = Some(match &parsed.id {
            Some(id) => format!("id:{id}"),
            None => format!(
                "{}:{}",
                normalise_ticker(parsed.ticker.as_deref().unwrap_or_default()),
                parsed.time.map_or(0, |t| t.timestamp_millis())
            ),
        });
    }
    let mut stored = row
        .store(&mut conn, &parsed, verdict, status, reason.as_deref())
        .await?;
    let mut out = Received {
        status,
        verdict,
        reason,
        signal_id: Uuid::nil(),
        retry_after,
    };
    if stored.is_none() {
        // The idempotency key was accepted before: a replay changes nothing.
        out.verdict = Verdict::Duplicate;
        out.reason = Some("this signal (its id, or ticker and time) was received before".into());
        stored = row
            .store(
                &mut conn,
                &parsed,
                Verdict::Duplicate,
                200,
                out.reason.as_deref(),
            )
            .await?;
    }
    out.signal_id = stored.unwrap_or_default();
    // Retention: the newest KEEP_PER_RUN requests (accepted signals not used yet stay).
    sqlx::query!(
        r#"delete from paper_signal where signal_id in (
               select signal_id from paper_signal where paper_run_id = $1
               order by received_at desc, signal_id offset $2)
           and not (verdict = 'accepted' and applied_to is null)"#,
        run_id,
        KEEP_PER_RUN,
    )
    .execute(&mut *conn)
    .await?;
    super::advance::notify_changed(&mut conn, &[run_id.to_string()]).await?;
    Ok(out)
}

/// An accepted signal the step has not used yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pending {
    pub signal_id: Uuid,
    pub received_ms: i64,
    /// An exit (else a buy).
    pub exit: bool,
}

/// The accepted, unused signals of the runs in `gate` mode among `runs` (with the run rows locked by the
/// caller), by run, in arrival order. Runs not in `gate` mode are absent.
///
/// # Errors
/// Database errors.
pub async fn pending(
    conn: &mut sqlx::PgConnection,
    runs: &[Uuid],
) -> sqlx::Result<std::collections::HashMap<Uuid, Vec<Pending>>> {
    let mut out: std::collections::HashMap<Uuid, Vec<Pending>> = sqlx::query_scalar!(
        "select paper_run_id from paper_run where paper_run_id = any($1) and signal_mode = 'gate'",
        runs,
    )
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(|id| (id, Vec::new()))
    .collect();
    for s in sqlx::query!(
        r#"select s.paper_run_id, s.signal_id, s.received_at, s.action as "action!"
           from paper_signal s join paper_run r on r.paper_run_id = s.paper_run_id
           where s.paper_run_id = any($1) and r.signal_mode = 'gate' and s.verdict = 'accepted'
             and s.applied_to is null and s.action is not null
             and (r.signal_since is null or s.received_at >= r.signal_since)
           order by s.paper_run_id, s.received_at, s.signal_id"#,
        runs,
    )
    .fetch_all(&mut *conn)
    .await?
    {
        out.entry(s.paper_run_id).or_default().push(Pending {
            signal_id: s.signal_id,
            received_ms: s.received_at.timestamp_millis(),
            exit: s.action == "exit",
        });
    }
    Ok(out)
}

/// Marks the signals each candle used (in the step's transaction).
///
/// # Errors
/// Database errors.
pub async fn mark_applied(
    conn: &mut sqlx::PgConnection,
    ids: &[Uuid],
    candles: &[DateTime<Utc>],
) -> sqlx::Result<()> {
    if !ids.is_empty() {
        sqlx::query!(
            r#"update paper_signal s set applied_to = u.candle
               from unnest($1::uuid[], $2::timestamptz[]) as u(id, candle)
               where s.signal_id = u.id and s.applied_to is null"#,
            ids,
            candles,
        )
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tickers_compare_without_prefix_separators_or_case() {
        assert_eq!(normalise_ticker("BINANCE:ethbtc"), "ETHBTC");
        assert_eq!(normalise_ticker("ETH/BTC"), "ETHBTC");
        assert_eq!(normalise_ticker("ETH-BTC"), "ETHBTC");
    }

    #[test]
    fn times_in_seconds_milliseconds_and_rfc3339() {
        let t = Utc.timestamp_opt(1_700_000_000, 0).unwrap();
        assert_eq!(parse_time(&serde_json::json!(1_700_000_000)), Some(t));
        assert_eq!(
            parse_time(&serde_json::json!(1_700_000_000_000_i64)),
            Some(t)
        );
        assert_eq!(parse_time(&serde_json::json!("1700000000")), Some(t));
        assert_eq!(
            parse_time(&serde_json::json!("2023-11-14T22:13:20Z")),
            Some(t)
        );
        assert_eq!(parse_time(&serde_json::json!("yesterday")), None);
    }

    #[test]
    fn stored_bodies_hide_tokens_and_stay_bounded() {
        let b = br#"{"token":"vsig_abc123","action":"buy"}"#;
        let s = stored_body(b, Some("vsig_abc123"));
        assert!(!s.contains("abc123"), "{s}");
        let s = stored_body(br#"{"token":"other-secret"}"#, Some("other-secret"));
        assert!(!s.contains("other-secret"));
        let s = stored_body(br#"x vsig_0123 y"#, None);
        assert_eq!(s, "x [redacted] y");
        assert!(stored_body(&vec![b'a'; MAX_BODY * 2], None).len() <= MAX_BODY);
    }

    #[test]
    fn fields_are_read_leniently() {
        let p = parse_fields(&serde_json::json!({"action": "SELL", "ticker": "ETHBTC", "time": 1_700_000_000, "id": 7}))
            .unwrap();
        assert_eq!(p.action, Some("exit"));
        assert_eq!(p.id.as_deref(), Some("7"));
        assert!(
            parse_fields(&serde_json::json!({"action": "hold", "ticker": "X", "time": 1})).is_err()
        );
        assert!(parse_fields(&serde_json::json!([1])).is_err());
    }
}
