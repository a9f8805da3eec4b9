//! Strategy form posts: create, save, duplicate, archive, restore, delete, discard the draft.

use app::flash::Flash;
use axum::{
    Form,
    extract::{Path, State},
    response::Response,
};
use backend::{
    Error,
    backtest::{actions::strategies as act, strategies},
};
use serde::Deserialize;

use super::{page, parse_id, to};
use crate::{error::HtmlResult, extract::WebActor, state::AppState};

/// The flash code of a refused field (`strategy_name`, `strategy_source`, …).
fn field_flash(field: &str) -> Flash {
    Flash::from_code(&format!("strategy_{field}")).unwrap_or(Flash::Invalid)
}

#[derive(Deserialize)]
pub(super) struct CreateForm {
    #[serde(default)]
    template: String,
    #[serde(default)]
    name: String,
}

pub(super) async fn create(
    State(state): State<AppState>,
    WebActor(actor): WebActor,
    Form(f): Form<CreateForm>,
) -> HtmlResult {
    let new = strategies::NewStrategy {
        name: Some(f.name),
        description: None,
        template: Some(f.template).filter(|t| !t.trim().is_empty()),
        source: None,
    };
    match act::create(&actor, &state.ctx, new).await {
        Ok(id) => Ok(to(
            &Flash::StrategyCreated.redirect_to(&format!("/strategies/{id}"))
        )),
        Err(Error::Invalid { field, .. }) => {
            Ok(to(&field_flash(&field).redirect_to("/strategies")))
        }
        Err(Error::Limit(_) | Error::PlanLimit(_)) => {
            Ok(to(&Flash::StrategyQuota.redirect_to("/strategies")))
        }
        Err(e) => Err(page(e)),
    }
}

#[derive(Deserialize)]
pub(super) struct SaveForm {
    name: Option<String>,
    description: Option<String>,
    source: Option<String>,
    base_version: Option<i32>,
    draft_rev: Option<i32>,
}

pub(super) async fn save(
    State(state): State<AppState>,
    WebActor(actor): WebActor,
    Path(id): Path<String>,
    Form(f): Form<SaveForm>,
) -> HtmlResult {
    let id = parse_id(&id)?;
    let back = format!("/strategies/{id}");
    let edit = strategies::SaveStrategy {
        name: f.name,
        description: f.description,
        source: f.source.map(|s| s.replace("\r\n", "\n")),
        base_version: f.base_version,
        draft_rev: f.draft_rev,
    };
    let flash = match act::save(&actor, &state.ctx, id, edit).await {
        Ok(saved) if saved.new_version => Flash::StrategySaved,
        Ok(_) => Flash::StrategyUnchanged,
        Err(Error::Strategy(_)) => Flash::StrategyInvalid,
        Err(Error::PlanReadOnly(_)) => Flash::StrategyReadOnly,
        // Archived, a stale draft (another tab), or a newer version saved meanwhile: say which.
        Err(Error::Conflict(m)) if m == strategies::ARCHIVED => Flash::StrategyIsArchived,
        Err(Error::Conflict(m)) if m == strategies::STALE_DRAFT => Flash::StrategyDraftStale,
        Err(Error::Conflict(_)) => Flash::StrategyStale,
        Err(Error::Limit(_) | Error::PlanLimit(_)) => Flash::StrategyQuota,
        Err(Error::Invalid { field, .. }) => field_flash(&field),
        Err(e) => return Err(page(e)),
    };
    Ok(to(&flash.redirect_to(&back)))
}

pub(super) async fn duplicate(
    State(state): State<AppState>,
    WebActor(actor): WebActor,
    Path(id): Path<String>,
) -> HtmlResult {
    let id = parse_id(&id)?;
    match act::duplicate(&actor, &state.ctx, id).await {
        Ok(new) => Ok(to(
            &Flash::StrategyDuplicated.redirect_to(&format!("/strategies/{new}"))
        )),
        Err(Error::Limit(_) | Error::PlanLimit(_)) => Ok(to(
            &Flash::StrategyQuota.redirect_to(&format!("/strategies/{id}"))
        )),
        Err(e) => Err(page(e)),
    }
}

async fn set_archived(
    state: &AppState,
    actor: &backend::Actor,
    id: &str,
    archived: bool,
) -> HtmlResult<Response> {
    let id = parse_id(id)?;
    act::set_archived(actor, &state.ctx, id, archived)
        .await
        .map_err(page)?;
    let flash = if archived {
        Flash::StrategyArchived
    } else {
        Flash::StrategyRestored
    };
    Ok(to(&flash.redirect_to("/strategies")))
}

pub(super) async fn archive(
    State(state): State<AppState>,
    WebActor(actor): WebActor,
    Path(id): Path<String>,
) -> HtmlResult {
    set_archived(&state, &actor, &id, true).await
}

#[derive(Deserialize)]
pub(super) struct DeleteForm {
    /// The "delete for good" box, ticked.
    #[serde(default)]
    confirm: String,
}

/// Deletes the strategy for good (the form's box must be ticked); refused while it has open work.
pub(super) async fn delete(
    State(state): State<AppState>,
    WebActor(actor): WebActor,
    Path(id): Path<String>,
    Form(f): Form<DeleteForm>,
) -> HtmlResult {
    let id = parse_id(&id)?;
    let back = format!("/strategies/{id}");
    if f.confirm != "yes" {
        return Ok(to(&Flash::StrategyDeleteUnconfirmed.redirect_to(&back)));
    }
    match act::delete(&actor, &state.ctx, id).await {
        Ok(_) => Ok(to(&Flash::StrategyDeleted.redirect_to("/strategies"))),
        Err(Error::Conflict(_)) => Ok(to(&Flash::StrategyInUse.redirect_to(&back))),
        Err(e) => Err(page(e)),
    }
}

pub(super) async fn restore(
    State(state): State<AppState>,
    WebActor(actor): WebActor,
    Path(id): Path<String>,
) -> HtmlResult {
    set_archived(&state, &actor, &id, false).await
}

pub(super) async fn discard_draft(
    State(state): State<AppState>,
    WebActor(actor): WebActor,
    Path(id): Path<String>,
) -> HtmlResult {
    let id = parse_id(&id)?;
    act::discard_draft(&actor, &state.ctx, id)
        .await
        .map_err(page)?;
    Ok(to(
        &Flash::DraftDiscarded.redirect_to(&format!("/strategies/{id}"))
    ))
}
