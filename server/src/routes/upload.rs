//! `POST /market/upload`: an admin uploads a CSV of candles from the Market data page. Candles are shared by
//! every user, so only admins may add them. The file is validated with the engine's reader (line-precise
//! errors; all-or-nothing unless "skip bad rows" is ticked) and stored in one transaction. The page shows the
//! upload's progress when JavaScript runs and the outcome either way.

use axum::{
    Router,
    extract::{DefaultBodyLimit, Multipart, State},
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
    routing::post,
};
use backend::{
    auth::{
        audit::{self, Entry},
        csrf,
    },
    market::{
        Pair,
        csv_import::{ImportOptions, import_text},
        parse_exchange,
    },
    web::CsrfDeferred,
};
use engine::candles::Timeframe;
use serde_json::json;

use crate::{
    extract::{Meta, SignedIn, html_error},
    middleware::UPLOAD_PATH,
    startup::AppState,
};

pub fn router(upload_limit: usize) -> Router<AppState> {
    Router::new().route(
        UPLOAD_PATH,
        post(upload_csv).layer(DefaultBodyLimit::max(upload_limit)),
    )
}

fn back(params: &[(&str, &str)]) -> Response {
    let query: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    Redirect::to(&format!("/market?{query}#upload")).into_response()
}

/// `POST /market/upload` (multipart: csrf, pair, exchange, timeframe, skip_bad_rows, file).
async fn upload_csv(
    State(state): State<AppState>,
    Meta(meta): Meta,
    SignedIn(user): SignedIn,
    deferred: Option<axum::Extension<CsrfDeferred>>,
    mut form: Multipart,
) -> Response {
    let mut fields = std::collections::HashMap::<String, String>::new();
    let mut file: Option<(String, String)> = None;
    loop {
        let field = match form.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => return html_error(e.status(), "Upload failed", &e.body_text()),
        };
        let name = field.name().unwrap_or_default().to_owned();
        if name == "file" {
            let file_name = field.file_name().unwrap_or("upload.csv").to_owned();
            let bytes = match field.bytes().await {
                Ok(b) => b,
                Err(e) => return html_error(e.status(), "Upload failed", &e.body_text()),
            };
            match String::from_utf8(bytes.to_vec()) {
                Ok(text) => file = Some((file_name, text)),
                Err(_) => {
                    return back(&[(
                        "upload_error",
                        "The file is not UTF-8 text (expected a CSV file).",
                    )]);
                }
            }
        } else {
            match field.text().await {
                Ok(v) => {
                    fields.insert(name, v);
                }
                Err(e) => return html_error(e.status(), "Upload failed", &e.body_text()),
            }
        }
    }
    // CSRF: the middleware checked the origin and left the token check to us (multipart body).
    let token_ok = match &deferred {
        Some(axum::Extension(d)) => fields
            .get("csrf")
            .is_some_and(|t| csrf::verify(&state.ctx.keys, &d.cookie_value, t)),
        None => true, // the token came in the x-csrf-token header and was verified by the middleware
    };
    if !token_ok {
        return html_error(
            StatusCode::FORBIDDEN,
            "Form expired",
            "Reload the page and upload again.",
        );
    }
    if !user.is_admin() {
        return html_error(
            StatusCode::FORBIDDEN,
            "Admins only",
            "Only admins can add market data.",
        );
    }
    let Some((file_name, text)) = file.filter(|(_, t)| !t.trim().is_empty()) else {
        return back(&[("upload_error", "Choose a non-empty CSV file.")]);
    };
    let pair = match Pair::parse(fields.get("pair").map(String::as_str).unwrap_or_default()) {
        Ok(p) => p,
        Err(e) => return back(&[("upload_error", &format!("Pair: {e}"))]),
    };
    let exchange = match parse_exchange(
        fields
            .get("exchange")
            .map_or("upload", |s| if s.trim().is_empty() { "upload" } else { s }),
    ) {
        Ok(e) => e,
        Err(e) => return back(&[("upload_error", &format!("Exchange: {e}"))]),
    };
    let timeframe = match fields
        .get("timeframe")
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
    {
        None => None,
        Some(tf) => match Timeframe::parse(tf) {
            Ok(t) => Some(t),
            Err(e) => return back(&[("upload_error", &format!("Timeframe: {e}"))]),
        },
    };
    let opts = ImportOptions {
        exchange,
        pair,
        timeframe,
        skip_bad_rows: fields.contains_key("skip_bad_rows"),
    };
    match import_text(&state.ctx.db, &text, &file_name, &opts).await {
        Ok(report) => {
            let _ = audit::record_now(
                &state.ctx.db,
                &meta,
                Entry {
                    user_id: Some(user.user_id),
                    event: "market_data_uploaded",
                    detail: json!({ "file": file_name, "rows": report.rows, "written": report.written, "rejected": report.rejected.len() }),
                    ..Entry::default()
                },
            )
            .await;
            let rejected: Vec<String> = report
                .rejected
                .iter()
                .take(5)
                .map(ToString::to_string)
                .collect();
            back(&[
                ("uploaded", &report.rows.to_string()),
                ("written", &report.written.to_string()),
                ("rejected", &rejected.join("; ")),
                (
                    "series",
                    &format!("{}:{}", report.instrument_id, report.timeframe.as_str()),
                ),
            ])
        }
        Err(e) => back(&[("upload_error", &e.to_string())]),
    }
}
