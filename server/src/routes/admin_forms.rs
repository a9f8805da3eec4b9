//! The admin console's form posts (docs/admin.md; no JavaScript needed): suspend, unsuspend, change role, force
//! sign-out, assign a plan, resend the confirmation email, download the user's data and delete the account on
//! `/admin/users/{id}`; create and edit plans on `/admin/plans`; create, edit, publish, hide and feature catalogue strategies
//! on `/admin/catalogue`; retry a failed job, cancel a waiting one and queue housekeeping on `/admin/jobs`;
//! the audit log's CSV download (`GET /admin/audit.csv`, the audit page's filter); track series, run the
//! update and backfill on `/admin/market`; throw and release kill switches on `/admin/kill`; the sign-up
//! policy, invitation links and maintenance banner on `/admin`; approve and reject pending sign-ups on
//! `/admin/signups` and mark sign-up approvers on `/admin/users/{id}`; "Reconcile now" with the payment
//! provider on `/admin/subscriptions`. Each parses
//! the form, calls ONE backend action (which checks that the actor is an admin and writes the audit entry) and
//! answers with Post/Redirect/Get back to the page. A refusal of the action's rules (a missing reason, the
//! last admin) goes back to the page with its field and message; not an admin is a 403 page; an unknown id is
//! 404; anonymous visitors are sent to sign in (by [`WebActor`]). The CSRF middleware refuses posts without a
//! valid token before any of these run.

use std::collections::BTreeMap;

use app::flash::Flash;
use axum::{
    Form, Router,
    extract::{Path, Query, State},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Redirect, Response},
    routing::{get, post},
};
use backend::{
    Error,
    admin::{accounts, audit, jobs, market, signups, users},
    auth::Role,
    backtest::catalogue::{self, EntryInput},
    paper::{actions as paper, kill::Scope},
    plans::actions::{self as plans, Assignment, PlanInput},
};
use chrono::{NaiveDate, TimeZone, Utc};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use crate::{
    error::{HtmlError, HtmlResult},
    extract::WebActor,
    state::AppState,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/users/bulk", post(bulk_users))
        .route("/admin/users/{id}/suspend", post(suspend))
        .route("/admin/users/{id}/unsuspend", post(unsuspend))
        .route("/admin/users/{id}/role", post(change_role))
        .route("/admin/users/{id}/sign-out", post(sign_out))
        .route("/admin/users/{id}/verification", post(resend_verification))
        .route("/admin/users/{id}/export.json", post(export_user))
        .route("/admin/users/{id}/delete", post(delete_user))
        .route("/admin/users/{id}/two-factor/reset", post(reset_two_factor))
        .route("/admin/users/{id}/plan", post(assign_plan))
        .route("/admin/users/{id}/approver", post(set_approver))
        .route("/admin/signups/{id}/approve", post(approve_signup))
        .route("/admin/signups/{id}/reject", post(reject_signup))
        .route("/admin/plans", post(create_plan))
        .route("/admin/plans/{id}", post(update_plan))
        .route("/admin/catalogue", post(create_catalogue))
        .route("/admin/catalogue/{id}", post(update_catalogue))
        .route("/admin/jobs/housekeeping", post(housekeeping))
        .route("/admin/billing/reconcile", post(billing_reconcile))
        .route("/admin/jobs/{id}/retry", post(retry_job))
        .route("/admin/jobs/{id}/cancel", post(cancel_job))
        .route("/admin/audit.csv", get(audit_csv))
        .route("/admin/market/track", post(market_track))
        .route("/admin/market/update", post(market_update))
        .route("/admin/market/backfill", post(market_backfill))
        .route("/admin/kill", post(throw_switch))
        .route("/admin/kill/{id}/release", post(release_switch))
        .route("/admin/settings", post(save_settings))
        .route("/admin/invites", post(create_invite))
}

fn to(path: &str) -> Response {
    Redirect::to(path).into_response()
}

/// An id in the path (anything else: no such page).
fn id(text: &str) -> Result<Uuid, Error> {
    Uuid::parse_str(text.trim()).map_err(|_| Error::NotFound)
}

/// Back to `page` with the refused field and its message (short-lived cookie).
fn refused(state: &AppState, page: &str, field: &str, message: &str) -> Response {
    let mut resp = to(&Flash::AdminRefused.redirect_to(page));
    let field: String = field.chars().take(40).collect();
    let message: String = message.chars().take(400).collect();
    let value = backend::web::encode_flash(&json!([field, message]).to_string());
    let cookie = backend::auth::session::cookie(
        &state.ctx.settings,
        backend::web::FORM_ERROR_COOKIE,
        &value,
        std::time::Duration::from_secs(120),
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

/// The action's answer: success back to `page` with `flash`; its rules back on the page; permission, "not
/// found" and the rest as an error page.
fn answer<T>(state: &AppState, page: &str, flash: Flash, r: Result<T, Error>) -> Response {
    match r {
        Ok(_) => to(&flash.redirect_to(page)),
        Err(Error::Invalid { field, message }) => refused(state, page, &field, &message),
        Err(e @ (Error::Conflict(_) | Error::RateLimited { .. } | Error::Limit(_))) => {
            refused(state, page, e.code(), &e.message())
        }
        Err(Error::Forbidden(m)) => {
            HtmlError::page(StatusCode::FORBIDDEN, "Administrators only", &m).into_response()
        }
        Err(e) => HtmlError::from(e).into_response(),
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct SuspendForm {
    #[serde(default)]
    reason: String,
    /// `YYYY-MM-DD` (the suspension ends at the start of that day, UTC), or empty.
    #[serde(default)]
    until: String,
}

/// `POST /admin/users/{id}/suspend`.
async fn suspend(
    State(state): State<AppState>,
    WebActor(actor): WebActor,
    Path(user): Path<String>,
    Form(form): Form<SuspendForm>,
) -> HtmlResult {
    let user = id(&user)?;
    let page = format!("/admin/users/{user}");
    // Who may do this is decided before what the form says (a non-admin gets 403, not a form error).
    if let Err(e) = actor.admin_writer() {
        return Ok(answer(
            &state,
            &page,
            Flash::AdminSuspended,
            Err::<(), _>(e),
        ));
    }
    let until = match form.until.trim() {
        "" => None,
        d => match NaiveDate::parse_from_str(d, "%Y-%m-%d") {
            Ok(day) => day.and_hms_opt(0, 0, 0).map(|t| Utc.from_utc_datetime(&t)),
            Err(_) => {
                return Ok(refused(
                    &state,
                    &page,
                    "until",
                    "give a date as YYYY-MM-DD, or leave it empty",
                ));
            }
        },
    };
    let r = users::suspend(&actor, &state.ctx, user, &form.reason, until).await;
    Ok(answer(&state, &page, Flash::AdminSuspended, r))
}

/// `POST /admin/users/{id}/unsuspend`.
async fn unsuspend(
    State(state): State<AppState>,
    WebActor(actor): WebActor,
    Path(user): Path<String>,
) -> HtmlResult {
    let user = id(&user)?;
    let r = users::unsuspend(&actor, &state.ctx, user).await;
    Ok(answer(
        &state,
        &format!("/admin/users/{user}"),
        Flash::AdminUnsuspended,
        r,
    ))
}

/// `POST /admin/users/bulk` from the users list: `action` (`suspend`, `unsuspend`, `sign_out`), one `user_id`
/// per ticked box, and for a suspension `reason` and `until` as on the user's page; `back` is the list's query
/// string (its filters and page) to return to. The summary goes back to the list in a short-lived cookie.
async fn bulk_users(
    State(state): State<AppState>,
    WebActor(actor): WebActor,
    body: axum::body::Bytes,
) -> HtmlResult {
    let mut ids = Vec::new();
    let (mut action, mut reason, mut until, mut back) =
        (String::new(), String::new(), String::new(), String::new());
    let mut bad_id = false;
    for (k, v) in form_urlencoded::parse(&body) {
        match &*k {
            "user_id" => match Uuid::parse_str(v.trim()) {
                Ok(id) => ids.push(id),
                Err(_) => bad_id = true,
            },
            "action" => action = v.into_owned(),
            "reason" => reason = v.into_owned(),
            "until" => until = v.into_owned(),
            "back" => back = v.into_owned(),
            _ => {}
        }
    }
    // Back to the same filters and page (only a query string: never another site).
    let back: String = back
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "=&%-_.~+".contains(*c))
        .take(600)
        .collect();
    let page = if back.is_empty() {
        "/admin/users".to_owned()
    } else {
        format!("/admin/users?{back}")
    };
    if let Err(e) = actor.admin_writer() {
        return Ok(answer(&state, &page, Flash::AdminBulkDone, Err::<(), _>(e)));
    }
    if bad_id {
        return Ok(refused(&state, &page, "user_ids", "a user id is not valid"));
    }
    let action = match action.trim() {
        "suspend" => {
            let until = match until.trim() {
                "" => None,
                d => match NaiveDate::parse_from_str(d, "%Y-%m-%d") {
                    Ok(day) => day.and_hms_opt(0, 0, 0).map(|t| Utc.from_utc_datetime(&t)),
                    Err(_) => {
                        return Ok(refused(
                            &state,
                            &page,
                            "until",
                            "give a date as YYYY-MM-DD, or leave it empty",
                        ));
                    }
                },
            };
            users::BulkAction::Suspend { reason, until }
        }
        "unsuspend" => users::BulkAction::Unsuspend,
        "sign_out" => users::BulkAction::SignOut,
        _ => {
            return Ok(refused(
                &state,
                &page,
                "action",
                "choose suspend, lift the suspension or sign out everywhere",
            ));
        }
    };
    match users::bulk(&actor, &state.ctx, &ids, &action).await {
        Ok(outcomes) => {
            let summary = users::bulk_summary(&action, &outcomes);
            let mut resp = to(&Flash::AdminBulkDone.redirect_to(&page));
            let summary: String = summary.chars().take(1000).collect();
            let cookie = backend::auth::session::cookie(
                &state.ctx.settings,
                backend::web::BULK_RESULT_COOKIE,
                &backend::web::encode_flash(&summary),
                std::time::Duration::from_secs(120),
            );
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                resp.headers_mut().append(header::SET_COOKIE, v);
            }
            Ok(resp)
        }
        Err(e) => Ok(answer(&state, &page, Flash::AdminBulkDone, Err::<(), _>(e))),
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct RoleForm {
    #[serde(default)]
    role: String,
}

/// `POST /admin/users/{id}/role`.
async fn change_role(
    State(state): State<AppState>,
    WebActor(actor): WebActor,
    Path(user): Path<String>,
    Form(form): Form<RoleForm>,
) -> HtmlResult {
    let user = id(&user)?;
    let page = format!("/admin/users/{user}");
    if let Err(e) = actor.admin_writer() {
        return Ok(answer(
            &state,
            &page,
            Flash::AdminRoleChanged,
            Err::<(), _>(e),
        ));
    }
    let Some(role) = Role::parse(form.role.trim()) else {
        return Ok(refused(
            &state,
            &page,
            "role",
            "choose admin, trader or viewer",
        ));
    };
    let r = users::set_role(&actor, &state.ctx, user, role).await;
    Ok(answer(&state, &page, Flash::AdminRoleChanged, r))
}

/// `POST /admin/users/{id}/verification`.
async fn resend_verification(
    State(state): State<AppState>,
    WebActor(actor): WebActor,
    Path(user): Path<String>,
) -> HtmlResult {
    let user = id(&user)?;
    let r = accounts::resend_verification(&actor, &state.ctx, user).await;
    Ok(answer(
        &state,
        &format!("/admin/users/{user}"),
        Flash::AdminVerificationSent,
        r,
    ))
}

/// `POST /admin/users/{id}/export.json`: the user's data as a download (a form post: it is recorded, and it
/// allows the account's deletion). A refusal (the per-account limit, too
/// big) goes back to the user page with its message.
async fn export_user(
    State(state): State<AppState>,
    WebActor(actor): WebActor,
    Path(user): Path<String>,
) -> HtmlResult {
    let user = id(&user)?;
    let page = format!("/admin/users/{user}");
    Ok(match accounts::export(&actor, &state.ctx, user).await {
        Ok(doc) => crate::routes::admin_api::users_export_download(user, doc),
        Err(e @ (Error::RateLimited { .. } | Error::Limit(_) | Error::Unavailable { .. })) => {
            refused(&state, &page, e.code(), &e.message())
        }
        Err(Error::Forbidden(m)) => {
            HtmlError::page(StatusCode::FORBIDDEN, "Administrators only", &m).into_response()
        }
        Err(e) => HtmlError::from(e).into_response(),
    })
}

#[derive(Debug, Deserialize)]
pub(super) struct DeleteUserForm {
    #[serde(default)]
    confirm_email: String,
}

/// `POST /admin/users/{id}/delete`: back to the users list when done.
async fn delete_user(
    State(state): State<AppState>,
    WebActor(actor): WebActor,
    Path(user): Path<String>,
    Form(form): Form<DeleteUserForm>,
) -> HtmlResult {
    let user = id(&user)?;
    let r = accounts::delete(&actor, &state.ctx, user, &form.confirm_email).await;
    if r.is_ok() {
        return Ok(to(&Flash::AdminUserDeleted.redirect_to("/admin/users")));
    }
    Ok(answer(
        &state,
        &format!("/admin/users/{user}"),
        Flash::AdminUserDeleted,
        r,
    ))
}

/// `POST /admin/users/{id}/sign-out`.
async fn sign_out(
    State(state): State<AppState>,
    WebActor(actor): WebActor,
    Path(user): Path<String>,
) -> HtmlResult {
    let user = id(&user)?;
    let r = users::sign_out_everywhere(&actor, &state.ctx, user).await;
    Ok(answer(
        &state,
        &format!("/admin/users/{user}"),
        Flash::AdminSignedOut,
        r,
    ))
}

/// `POST /admin/users/{id}/two-factor/reset`.
async fn reset_two_factor(
    State(state): State<AppState>,
    WebActor(actor): WebActor,
    Path(user): Path<String>,
) -> HtmlResult {
    let user = id(&user)?;
    let r = backend::account::two_factor::admin_reset(&state.ctx, &actor, user).await;
    Ok(answer(
        &state,
        &format!("/admin/users/{user}"),
        Flash::AdminTwoFactorReset,
        r,
    ))
}

#[derive(Debug, Deserialize)]
pub(super) struct PlanAssignForm {
    #[serde(default)]
    plan: String,
    #[serde(default)]
    reason: String,
}

/// `POST /admin/users/{id}/plan`: the plan, without overrides (the REST API and CLI set those).
async fn assign_plan(
    State(state): State<AppState>,
    WebActor(actor): WebActor,
    Path(user): Path<String>,
    Form(form): Form<PlanAssignForm>,
) -> HtmlResult {
    let user = id(&user)?;
    let a = Assignment {
        plan: Some(form.plan.trim().to_owned()).filter(|p| !p.is_empty()),
        overrides: Default::default(),
        reason: Some(form.reason.trim().to_owned()).filter(|r| !r.is_empty()),
        ends_at: None,
    };
    let r = plans::assign(&actor, &state.ctx, user, &a).await;
    Ok(answer(
        &state,
        &format!("/admin/users/{user}"),
        Flash::AdminPlanAssigned,
        r,
    ))
}

#[derive(Debug, Deserialize)]
pub(super) struct PlanForm {
    #[serde(default)]
    slug: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    price_minor: Option<String>,
    #[serde(default)]
    currency: Option<String>,
    #[serde(default)]
    billing_period: Option<String>,
    #[serde(default)]
    trial_days: Option<String>,
    /// Empty clears it (the plan is then not sold through checkout).
    #[serde(default)]
    provider_price_id: Option<String>,
    /// The checkbox: present when ticked (edit form only).
    #[serde(default)]
    archived: Option<String>,
    /// The limit fields (`limit_<key>`; empty: the plan sets no value) and whatever else the form sent.
    #[serde(flatten)]
    rest: BTreeMap<String, String>,
}

/// A number field: empty = not given; anything else must be a whole number.
fn number(field: &str, text: Option<&str>) -> Result<Option<i64>, Error> {
    match text.map(str::trim) {
        None | Some("") => Ok(None),
        Some(t) => t
            .parse::<i64>()
            .map(Some)
            .map_err(|_| Error::invalid(field, "must be a whole number")),
    }
}

impl PlanForm {
    fn input(&self, edit: bool) -> Result<PlanInput, Error> {
        Ok(PlanInput {
            slug: self.slug.clone(),
            name: self.name.clone(),
            description: self.description.clone(),
            price_minor: number("price_minor", self.price_minor.as_deref())?,
            currency: self.currency.clone(),
            billing_period: self.billing_period.clone(),
            trial_days: number("trial_days", self.trial_days.as_deref())?,
            is_default: None,
            archived: edit.then(|| self.archived.as_deref() == Some("true")),
            limits: self.limits(edit)?,
            provider_price_id: self.provider_price_id.clone(),
        })
    }

    /// The `limit_<key>` fields as limit changes: a number sets the value, an empty field removes it (an edit)
    /// or leaves it out (a new plan). Names, count and bounds are checked by the action.
    fn limits(&self, edit: bool) -> Result<BTreeMap<String, Option<serde_json::Value>>, Error> {
        let mut out = BTreeMap::new();
        for (name, text) in &self.rest {
            let Some(key) = name.strip_prefix("limit_") else {
                continue;
            };
            match number(&format!("limits.{key}"), Some(text))? {
                Some(n) => {
                    out.insert(key.to_owned(), Some(serde_json::Value::from(n)));
                }
                None if edit => {
                    out.insert(key.to_owned(), None);
                }
                None => {}
            }
        }
        Ok(out)
    }
}

const PLANS: &str = "/admin/plans";

/// `POST /admin/plans`: a new plan with its limits.
async fn create_plan(
    State(state): State<AppState>,
    WebActor(actor): WebActor,
    Form(form): Form<PlanForm>,
) -> HtmlResult {
    // Who may do this is decided before what the form says.
    actor.admin_writer()?;
    let r = match form.input(false) {
        Ok(input) => plans::create(&actor, &state.ctx, &input).await,
        Err(e) => Err(e),
    };
    Ok(answer(&state, PLANS, Flash::AdminPlanSaved, r))
}

/// `POST /admin/plans/{id}`: changes a plan's name, description, price, period, trial, limits and archived flag.
async fn update_plan(
    State(state): State<AppState>,
    WebActor(actor): WebActor,
    Path(plan): Path<String>,
    Form(form): Form<PlanForm>,
) -> HtmlResult {
    actor.admin_writer()?;
    let plan = id(&plan)?;
    let r = match form.input(true) {
        Ok(input) => plans::update(&actor, &state.ctx, plan, &input).await,
        Err(e) => Err(e),
    };
    Ok(answer(&state, PLANS, Flash::AdminPlanSaved, r))
}

const CATALOGUE: &str = "/admin/catalogue";

#[derive(Debug, Deserialize)]
pub(super) struct CatalogueForm {
    #[serde(default)]
    slug: Option<String>,
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    source: String,
    #[serde(default)]
    note: String,
    /// A checkbox: `true` when ticked, absent otherwise.
    #[serde(default)]
    published: Option<String>,
    #[serde(default)]
    featured: Option<String>,
}

impl CatalogueForm {
    /// Every field as the form sent it (an unticked box is `false`). Browsers send line breaks as CRLF.
    fn input(self) -> EntryInput {
        EntryInput {
            slug: self.slug,
            name: Some(self.name),
            description: Some(self.description.replace("\r\n", "\n")),
            source: Some(self.source.replace("\r\n", "\n")),
            note: Some(self.note),
            published: Some(self.published.as_deref() == Some("true")),
            featured: Some(self.featured.as_deref() == Some("true")),
        }
    }
}

/// A source that does not compile goes back to the form as a refusal of `source` naming the first problems.
fn source_problems<T>(r: Result<T, Error>) -> Result<T, Error> {
    r.map_err(|e| match e {
        Error::Strategy(problems) => {
            let shown: Vec<String> = problems.iter().take(3).map(ToString::to_string).collect();
            let more = problems.len().saturating_sub(shown.len());
            let mut message = format!("the source does not compile: {}", shown.join("; "));
            if more > 0 {
                message.push_str(&format!(" (and {more} more)"));
            }
            Error::invalid("source", message)
        }
        other => other,
    })
}

/// `POST /admin/catalogue`: a new catalogue strategy.
async fn create_catalogue(
    State(state): State<AppState>,
    WebActor(actor): WebActor,
    Form(form): Form<CatalogueForm>,
) -> HtmlResult {
    let r = source_problems(catalogue::create(&actor, &state.ctx, &form.input()).await);
    Ok(match r {
        Ok(e) => to(&Flash::AdminCatalogueSaved.redirect_to(&format!("{CATALOGUE}/{}", e.id))),
        Err(e) => answer(
            &state,
            CATALOGUE,
            Flash::AdminCatalogueSaved,
            Err::<(), _>(e),
        ),
    })
}

/// `POST /admin/catalogue/{id}`: changes a catalogue strategy (a new version when the source changed),
/// publishes, hides or features it.
async fn update_catalogue(
    State(state): State<AppState>,
    WebActor(actor): WebActor,
    Path(entry): Path<String>,
    Form(form): Form<CatalogueForm>,
) -> HtmlResult {
    // Who may do this is decided before what the path or form says.
    if let Err(e) = actor.admin_writer() {
        return Ok(answer(
            &state,
            CATALOGUE,
            Flash::AdminCatalogueSaved,
            Err::<(), _>(e),
        ));
    }
    let entry = id(&entry)?;
    let page = format!("{CATALOGUE}/{entry}");
    let r = source_problems(catalogue::update(&actor, &state.ctx, entry, &form.input()).await);
    Ok(answer(&state, &page, Flash::AdminCatalogueSaved, r))
}

const JOBS: &str = "/admin/jobs";

/// `POST /admin/jobs/{id}/retry`: re-drives a failed job (the action `/ops` uses too).
async fn retry_job(
    State(state): State<AppState>,
    WebActor(actor): WebActor,
    Path(job): Path<String>,
) -> HtmlResult {
    let job = id(&job)?;
    let r = jobs::retry(&actor, &state.ctx, job).await;
    Ok(answer(&state, JOBS, Flash::AdminJobRetried, r))
}

/// `POST /admin/jobs/{id}/cancel`.
async fn cancel_job(
    State(state): State<AppState>,
    WebActor(actor): WebActor,
    Path(job): Path<String>,
) -> HtmlResult {
    let job = id(&job)?;
    let r = jobs::cancel(&actor, &state.ctx, job).await;
    Ok(answer(&state, JOBS, Flash::AdminJobCancelled, r))
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct AuditCsvQuery {
    #[serde(default)]
    user: String,
    #[serde(default)]
    actor: String,
    #[serde(default)]
    event: String,
    #[serde(default)]
    since: String,
    #[serde(default)]
    until: String,
}

/// `GET /admin/audit.csv`: the audit page's filter as a CSV download. A refused filter or export (more than
/// the cap) goes back to the page with the message.
async fn audit_csv(
    State(state): State<AppState>,
    WebActor(actor): WebActor,
    Query(q): Query<AuditCsvQuery>,
) -> HtmlResult {
    if let Err(Error::Forbidden(m)) = actor.admin() {
        return Ok(
            HtmlError::page(StatusCode::FORBIDDEN, "Administrators only", &m).into_response(),
        );
    }
    let input = audit::FilterInput {
        user: q.user.trim(),
        actor: q.actor.trim(),
        event: q.event.trim(),
        since: q.since.trim(),
        until: q.until.trim(),
    };
    let r = match audit::parse_filter(&state.ctx, &input).await {
        Ok(f) => audit::export(&actor, &state.ctx, &f).await,
        Err(e) => Err(e),
    };
    let page = app::pages::admin::url_query(&[
        ("user", q.user.trim()),
        ("actor", q.actor.trim()),
        ("event", q.event.trim()),
        ("since", q.since.trim()),
        ("until", q.until.trim()),
    ]);
    let page = if page.is_empty() {
        "/admin/audit".to_owned()
    } else {
        format!("/admin/audit?{page}")
    };
    Ok(match r {
        Ok(body) => {
            crate::routes::admin_api::audit::csv_download(axum::body::Body::from_stream(body))
        }
        Err(Error::Invalid { field, message }) => refused(&state, &page, &field, &message),
        Err(e @ Error::Conflict(_)) => refused(&state, &page, e.code(), &e.message()),
        Err(e) => HtmlError::from(e).into_response(),
    })
}

const MARKET: &str = "/admin/market";

#[derive(Debug, Deserialize)]
pub(super) struct TrackForm {
    #[serde(default)]
    pair: String,
    #[serde(default)]
    timeframe: String,
    /// `true` to keep the series updated, `false` to stop.
    #[serde(default)]
    tracked: String,
}

/// `POST /admin/market/track`.
async fn market_track(
    State(state): State<AppState>,
    WebActor(actor): WebActor,
    Form(form): Form<TrackForm>,
) -> HtmlResult {
    let r = match form.tracked.as_str() {
        "true" | "false" => {
            market::set_tracked(
                &actor,
                &state.ctx,
                form.pair.trim(),
                form.timeframe.trim(),
                form.tracked == "true",
            )
            .await
        }
        _ => Err(Error::invalid("tracked", "must be true or false")),
    };
    Ok(answer(&state, MARKET, Flash::AdminMarketTracked, r))
}

/// `POST /admin/market/update`.
async fn market_update(State(state): State<AppState>, WebActor(actor): WebActor) -> HtmlResult {
    let r = market::update_now(&actor, &state.ctx).await;
    Ok(answer(&state, MARKET, Flash::AdminMarketUpdate, r))
}

#[derive(Debug, Deserialize)]
pub(super) struct BackfillForm {
    #[serde(default)]
    pair: String,
    #[serde(default)]
    timeframe: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
}

/// `POST /admin/market/backfill`.
async fn market_backfill(
    State(state): State<AppState>,
    WebActor(actor): WebActor,
    Form(form): Form<BackfillForm>,
) -> HtmlResult {
    let r = market::backfill(
        &actor,
        &state.ctx,
        form.pair.trim(),
        form.timeframe.trim(),
        form.from.trim(),
        form.to.trim(),
    )
    .await;
    Ok(answer(&state, MARKET, Flash::AdminMarketBackfill, r))
}

/// `POST /admin/jobs/housekeeping`.
async fn housekeeping(State(state): State<AppState>, WebActor(actor): WebActor) -> HtmlResult {
    let r = jobs::housekeeping(&actor, &state.ctx).await;
    Ok(answer(&state, JOBS, Flash::AdminHousekeeping, r))
}

/// `POST /admin/billing/reconcile`: "Reconcile now" on the subscriptions page (refused with the reason when
/// billing is off or a run is already pending).
async fn billing_reconcile(State(state): State<AppState>, WebActor(actor): WebActor) -> HtmlResult {
    let r = backend::billing::reconcile::request(&actor, &state.ctx).await;
    Ok(answer(
        &state,
        "/admin/subscriptions",
        Flash::AdminReconcileQueued,
        r,
    ))
}

const KILL: &str = "/admin/kill";

#[derive(Debug, Deserialize)]
pub(super) struct ThrowForm {
    #[serde(default)]
    scope: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    mode: String,
    #[serde(default)]
    reason: String,
}

/// `POST /admin/kill`: throws a switch over the platform or one user (named by email address).
async fn throw_switch(
    State(state): State<AppState>,
    WebActor(actor): WebActor,
    Form(form): Form<ThrowForm>,
) -> HtmlResult {
    let scope = match form.scope.trim() {
        "platform" => Ok(Scope::Platform),
        "user" => users::find_by_email(&actor, &state.ctx, &form.email)
            .await
            .map(Scope::User),
        _ => Err(Error::invalid("scope", "choose the platform or one user")),
    };
    let r = match scope {
        Ok(scope) => {
            paper::throw_switch_as_admin(&actor, &state.ctx, scope, form.mode.trim(), &form.reason)
                .await
        }
        Err(e) => Err(e),
    };
    Ok(answer(&state, KILL, Flash::AdminSwitchThrown, r))
}

#[derive(Debug, Deserialize)]
pub(super) struct ReleaseForm {
    #[serde(default)]
    reason: String,
}

/// `POST /admin/kill/{id}/release`.
async fn release_switch(
    State(state): State<AppState>,
    WebActor(actor): WebActor,
    Path(switch): Path<String>,
    Form(form): Form<ReleaseForm>,
) -> HtmlResult {
    let switch = id(&switch)?;
    let reason = Some(form.reason.trim()).filter(|r| !r.is_empty());
    let r = paper::release_switch_as_admin(&actor, &state.ctx, switch, reason).await;
    Ok(answer(&state, KILL, Flash::AdminSwitchReleased, r))
}

#[derive(Debug, Deserialize)]
pub(super) struct SettingsForm {
    #[serde(default)]
    signup_policy: String,
    #[serde(default)]
    banner: String,
    /// A checkbox: present (`on`) when ticked.
    #[serde(default)]
    admin_two_factor_required: Option<String>,
    /// Domains, one per line (or separated by commas or spaces).
    #[serde(default)]
    signup_allowed_domains: String,
    #[serde(default)]
    signup_denied_domains: String,
}

/// The entries of a domain textarea.
fn domain_lines(text: &str) -> Vec<String> {
    text.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|d| !d.is_empty())
        .take(10_000)
        .map(str::to_owned)
        .collect()
}

/// `POST /admin/settings`: the sign-up policy and domain lists, the maintenance banner and mandatory two-factor
/// for admins.
async fn save_settings(
    State(state): State<AppState>,
    WebActor(actor): WebActor,
    Form(form): Form<SettingsForm>,
) -> HtmlResult {
    let change = backend::admin::settings::SettingsChange {
        signup_policy: Some(&form.signup_policy),
        banner: Some(&form.banner),
        admin_two_factor_required: Some(form.admin_two_factor_required.is_some()),
        signup_allowed_domains: Some(domain_lines(&form.signup_allowed_domains)),
        signup_denied_domains: Some(domain_lines(&form.signup_denied_domains)),
    };
    let r = backend::admin::settings::update(&actor, &state.ctx, &change).await;
    Ok(answer(&state, "/admin", Flash::AdminSettingsSaved, r))
}

/// `POST /admin/invites`: a single-use invitation link, shown once on `/admin` (short-lived cookie).
async fn create_invite(State(state): State<AppState>, WebActor(actor): WebActor) -> HtmlResult {
    let r = backend::admin::settings::create_invite(&actor, &state.ctx).await;
    let link = r.as_ref().ok().cloned();
    let mut resp = answer(&state, "/admin", Flash::AdminInviteCreated, r);
    if let Some(link) = link {
        let cookie = backend::auth::session::cookie(
            &state.ctx.settings,
            backend::admin::settings::INVITE_COOKIE,
            &backend::web::encode_flash(&link),
            std::time::Duration::from_secs(120),
        );
        if let Ok(v) = HeaderValue::from_str(&cookie) {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    Ok(resp)
}

/// The pending sign-ups page.
const SIGNUPS: &str = "/admin/signups";

/// `POST /admin/signups/{id}/approve`.
async fn approve_signup(
    State(state): State<AppState>,
    WebActor(actor): WebActor,
    Path(user): Path<String>,
) -> HtmlResult {
    let user = id(&user)?;
    let r = signups::approve(&actor, &state.ctx, user).await;
    Ok(answer(&state, SIGNUPS, Flash::AdminSignupApproved, r))
}

#[derive(Debug, Deserialize)]
pub(super) struct RejectForm {
    #[serde(default)]
    reason: String,
}

/// `POST /admin/signups/{id}/reject`: with the reason mailed to the applicant.
async fn reject_signup(
    State(state): State<AppState>,
    WebActor(actor): WebActor,
    Path(user): Path<String>,
    Form(form): Form<RejectForm>,
) -> HtmlResult {
    let user = id(&user)?;
    let r = signups::reject(&actor, &state.ctx, user, &form.reason).await;
    Ok(answer(&state, SIGNUPS, Flash::AdminSignupRejected, r))
}

#[derive(Debug, Deserialize)]
pub(super) struct ApproverForm {
    /// A checkbox: present (`on`) when ticked.
    #[serde(default)]
    approver: Option<String>,
}

/// `POST /admin/users/{id}/approver`: whether this administrator is notified of new sign-up requests.
async fn set_approver(
    State(state): State<AppState>,
    WebActor(actor): WebActor,
    Path(user): Path<String>,
    Form(form): Form<ApproverForm>,
) -> HtmlResult {
    let user = id(&user)?;
    let r = signups::set_approver(&actor, &state.ctx, user, form.approver.is_some()).await;
    Ok(answer(
        &state,
        &format!("/admin/users/{user}"),
        Flash::AdminApproverChanged,
        r,
    ))
}
