//! `POST /market/upload`: an admin uploads a CSV of candles from the Market data page. Candles are shared by
//! every user, so only admins may add them. The file is validated with the engine's reader (line-precise
//! errors; all-or-nothing unless "skip bad rows" is ticked) and stored in one transaction. The page shows the
//! upload's progress when JavaScript runs and the outcome either way.
//!
//! Nothing large is read before the request is known to be allowed: the role is checked from the session
//! before the body is touched, and the CSRF token comes either in the `x-csrf-token` header (the page's
//! script; checked by the middleware) or as the form's first field (`csrf`, before the file in document
//! order; a file that arrives before a valid token is refused unread). The file is then streamed to a
//! temporary file, one upload at a time per process (a second answers 503 with `Retry-After`), and read back
//! once for parsing.
//!
//! The outcome goes back to `/market` as codes and counts in the query (`upload_error=<code>` with a fixed
//! message, or `uploaded=<n>&written=<n>&rejected=<n>`); details such as the bad row's line travel in a
//! short-lived HttpOnly cookie ([`backend::web::UPLOAD_RESULT_COOKIE`]) that another site cannot set, so a
//! crafted link cannot make the page show an official-looking message of its choosing.

use axum::{
    Router,
    extract::{DefaultBodyLimit, Multipart, State, multipart::Field},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Redirect, Response},
    routing::post,
};
use backend::{
    auth::csrf,
    backtest::actions::upload,
    market::{
        Pair,
        csv_import::{ImportError, ImportOptions},
        parse_exchange,
    },
    web::CsrfDeferred,
};
use engine::candles::Timeframe;
use tokio::io::AsyncWriteExt;

use crate::{
    extract::{WebActor, html_error},
    middleware::UPLOAD_PATH,
    state::AppState,
};

pub fn router(upload_limit: usize) -> Router<AppState> {
    Router::new().route(
        UPLOAD_PATH,
        post(upload_csv).layer(DefaultBodyLimit::max(upload_limit)),
    )
}

/// Longest value of a text field of the upload form.
const MAX_FIELD_BYTES: usize = 1024;
/// Most fields of the upload form (it has six).
const MAX_FIELDS: usize = 16;

/// Back to the Market data page with codes and counts in the query, and `detail` (if any) in the flash cookie.
fn back(state: &AppState, params: &[(&str, &str)], detail: Option<&str>) -> Response {
    let query: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    let mut resp = Redirect::to(&format!("/market?{query}#upload")).into_response();
    let settings = &state.ctx.settings;
    let cookie = match detail {
        Some(d) => {
            let d: String = d.chars().take(1500).collect();
            backend::auth::session::cookie(
                settings,
                backend::web::UPLOAD_RESULT_COOKIE,
                &backend::web::encode_flash(&d),
                std::time::Duration::from_secs(120),
            )
        }
        None => backend::auth::session::clear_cookie(settings, backend::web::UPLOAD_RESULT_COOKIE),
    };
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

fn refused(state: &AppState, code: &str, detail: Option<&str>) -> Response {
    back(state, &[("upload_error", code)], detail)
}

fn form_expired() -> Response {
    html_error(
        StatusCode::FORBIDDEN,
        "Form expired",
        "Reload the page and upload again.",
    )
}

fn upload_failed(e: &axum::extract::multipart::MultipartError) -> Response {
    html_error(e.status(), "Upload failed", &e.body_text())
}

/// A small text field, refused when longer than [`MAX_FIELD_BYTES`].
async fn small_text(mut field: Field<'_>) -> Result<String, Response> {
    let mut buf = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(|e| upload_failed(&e))? {
        buf.extend_from_slice(&chunk);
        if buf.len() > MAX_FIELD_BYTES {
            return Err(html_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "Upload failed",
                "A form field is too long.",
            ));
        }
    }
    String::from_utf8(buf).map_err(|_| {
        html_error(
            StatusCode::BAD_REQUEST,
            "Upload failed",
            "A form field is not UTF-8 text.",
        )
    })
}

/// Streams the file field into a new temporary file; returns it and its size.
async fn receive_file(mut field: Field<'_>) -> Result<(tempfile::NamedTempFile, u64), Response> {
    let io_failed = |e: std::io::Error| {
        tracing::error!(error = %e, "upload: cannot write the temporary file");
        html_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Upload failed",
            "The file could not be received. Please try again.",
        )
    };
    let tmp = tempfile::Builder::new()
        .prefix("vortex-upload-")
        .suffix(".csv")
        .tempfile()
        .map_err(io_failed)?;
    let mut out = tokio::fs::File::from_std(tmp.reopen().map_err(io_failed)?);
    let mut size = 0u64;
    while let Some(chunk) = field.chunk().await.map_err(|e| upload_failed(&e))? {
        size += chunk.len() as u64;
        out.write_all(&chunk).await.map_err(io_failed)?;
    }
    out.flush().await.map_err(io_failed)?;
    Ok((tmp, size))
}

/// The upload form as received: its small text fields and the file (spooled to a temporary file), with the
/// upload slot held until the candles are stored.
struct UploadForm {
    fields: std::collections::HashMap<String, String>,
    file_name: String,
    tmp: tempfile::NamedTempFile,
    size: u64,
    _slot: tokio::sync::OwnedSemaphorePermit,
}

/// Reads the multipart form: at most [`MAX_FIELDS`] fields, the CSRF token checked before the file is read, one
/// upload at a time per process.
async fn read_form(
    state: &AppState,
    deferred: Option<&CsrfDeferred>,
    mut form: Multipart,
) -> Result<UploadForm, Response> {
    // Without a deferred check, the token came in the x-csrf-token header and the middleware verified it.
    let mut token_ok = deferred.is_none();
    let mut fields = std::collections::HashMap::<String, String>::new();
    let mut file: Option<(String, tempfile::NamedTempFile, u64)> = None;
    let mut slot: Option<tokio::sync::OwnedSemaphorePermit> = None;
    let mut seen = 0usize;
    while let Some(field) = form.next_field().await.map_err(|e| upload_failed(&e))? {
        seen += 1;
        if seen > MAX_FIELDS {
            return Err(html_error(
                StatusCode::BAD_REQUEST,
                "Upload failed",
                "The form has too many fields.",
            ));
        }
        let name = field.name().unwrap_or_default().to_owned();
        if name == "file" {
            // The token must have been seen by now (it is the form's first field): the file is not read
            // for a forged or expired form.
            if !token_ok || file.is_some() {
                return Err(form_expired());
            }
            let Ok(permit) = state.limits.uploads.clone().try_acquire_owned() else {
                metrics::counter!("market_uploads_refused_total", "reason" => "busy").increment(1);
                let mut r = html_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Another upload is in progress",
                    "Candles are being stored from another upload. Try again in a minute.",
                );
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("30"));
                return Err(r);
            };
            slot = Some(permit);
            let file_name: String = field
                .file_name()
                .unwrap_or("upload.csv")
                .chars()
                .filter(|c| !c.is_control())
                .take(200)
                .collect();
            let (tmp, size) = receive_file(field).await?;
            file = Some((file_name, tmp, size));
            continue;
        }
        let value = small_text(field).await?;
        if name == csrf::FORM_FIELD
            && let Some(d) = deferred
        {
            token_ok = csrf::verify(&state.ctx.keys, &d.cookie_value, &value);
            if !token_ok {
                return Err(form_expired());
            }
        }
        fields.insert(name, value);
    }
    if !token_ok {
        return Err(form_expired());
    }
    match (file, slot) {
        (Some((file_name, tmp, size)), Some(slot)) if size > 0 => Ok(UploadForm {
            fields,
            file_name,
            tmp,
            size,
            _slot: slot,
        }),
        _ => Err(refused(state, "empty", None)),
    }
}

/// The import options from the form's text fields, or the refusal code and what is wrong.
fn import_options(
    fields: &std::collections::HashMap<String, String>,
) -> Result<ImportOptions, (&'static str, String)> {
    let pair = Pair::parse(fields.get("pair").map(String::as_str).unwrap_or_default())
        .map_err(|e| ("pair", e.to_string()))?;
    let exchange = parse_exchange(
        fields
            .get("exchange")
            .map_or("upload", |s| if s.trim().is_empty() { "upload" } else { s }),
    )
    .map_err(|e| ("exchange", e.to_string()))?;
    let timeframe = fields
        .get("timeframe")
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .map(Timeframe::parse)
        .transpose()
        .map_err(|e| ("timeframe", e.to_string()))?;
    Ok(ImportOptions {
        exchange,
        pair,
        timeframe,
        skip_bad_rows: fields.contains_key("skip_bad_rows"),
    })
}

/// `POST /market/upload` (multipart: csrf, pair, exchange, timeframe, file, skip_bad_rows).
async fn upload_csv(
    State(state): State<AppState>,
    WebActor(actor): WebActor,
    deferred: Option<axum::Extension<CsrfDeferred>>,
    form: Multipart,
) -> Response {
    // The role first, from the session alone: a trader's upload is refused before its body is read.
    if upload::admit(&actor).is_err() {
        return html_error(
            StatusCode::FORBIDDEN,
            "Admins only",
            "Only admins can add market data.",
        );
    }
    let UploadForm {
        fields,
        file_name,
        tmp,
        size,
        _slot,
    } = match read_form(&state, deferred.as_ref().map(|d| &d.0), form).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let opts = match import_options(&fields) {
        Ok(o) => o,
        Err((code, detail)) => return refused(&state, code, Some(&detail)),
    };
    // Read back once: the only copy of the text in memory.
    let text = match tokio::fs::read(tmp.path()).await {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(t) => t,
            Err(_) => return refused(&state, "not_utf8", None),
        },
        Err(e) => {
            tracing::error!(error = %e, "upload: cannot read the temporary file back");
            return refused(&state, "failed", None);
        }
    };
    drop(tmp);
    if text.trim().is_empty() {
        return refused(&state, "empty", None);
    }
    let outcome = upload::import_csv(&actor, &state.ctx, &text, &file_name, size, &opts).await;
    drop(text);
    match outcome {
        Ok(Ok(report)) => {
            let rejected: Vec<String> = report
                .rejected
                .iter()
                .take(5)
                .map(ToString::to_string)
                .collect();
            let detail = (!rejected.is_empty()).then(|| rejected.join("; "));
            back(
                &state,
                &[
                    ("uploaded", &report.rows.to_string()),
                    ("written", &report.written.to_string()),
                    ("rejected", &report.rejected.len().to_string()),
                    (
                        "series",
                        &format!("{}:{}", report.instrument_id, report.timeframe.as_str()),
                    ),
                ],
                detail.as_deref(),
            )
        }
        Ok(Err(e @ ImportError::Csv { .. })) => refused(&state, "csv", Some(&e.to_string())),
        Ok(Err(e @ ImportError::Invalid(_))) => refused(&state, "invalid", Some(&e.to_string())),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "upload: storing the candles failed");
            refused(&state, "failed", None)
        }
        Err(e) => {
            tracing::error!(error = %e, "upload: storing the candles failed");
            refused(&state, "failed", None)
        }
    }
}
