//! `POST /account/sessions/{public_id}/revoke`.

use app::flash::Flash;
use axum::{
    extract::{Path, State},
    http::StatusCode,
    response::Response,
};
use backend::{Error, account::sessions};

use super::{signed_out, to};
use crate::{
    error::{HtmlError, HtmlResult},
    extract::WebActor,
    state::AppState,
};

/// Only the owner's sessions are found (others: 404). Ending the current one signs this browser out.
pub async fn revoke_session(
    State(state): State<AppState>,
    WebActor(actor): WebActor,
    Path(public_id): Path<String>,
) -> HtmlResult<Response> {
    let revoked = sessions::revoke(&state.ctx, &actor, &public_id)
        .await
        .map_err(|e| match e {
            Error::NotFound => HtmlError::page(
                StatusCode::NOT_FOUND,
                "Not found",
                "That session does not exist or has already ended.",
            ),
            e => e.into(),
        })?;
    if revoked.current {
        return Ok(signed_out(&state));
    }
    Ok(to("/account", Flash::SessionRevoked, "#sessions"))
}
