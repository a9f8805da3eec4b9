//! `GET /account/export.json`: "Download my data" (the signed-in user's own data as one JSON file).

use axum::{
    Json,
    extract::State,
    http::header,
    response::{IntoResponse, Response},
};
use backend::account::export;

use crate::{error::HtmlResult, extract::WebActor, state::AppState};

/// The export as a download (`vortex-export-YYYY-MM-DD.json`), never cached.
pub async fn download(
    State(state): State<AppState>,
    WebActor(actor): WebActor,
) -> HtmlResult<Response> {
    let doc = export::export(&state.ctx, &actor).await?;
    let name = format!(
        "attachment; filename=\"vortex-export-{}.json\"",
        chrono::Utc::now().format("%Y-%m-%d")
    );
    Ok((
        [
            (header::CONTENT_DISPOSITION, name),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        Json(doc),
    )
        .into_response())
}
