//! The REST API's OpenAPI 3.1 description, generated from the handlers' `#[utoipa::path]` attributes and the
//! DTOs' `ToSchema` derives (so it cannot drift from the code), served at `GET /api/openapi.json`; and the
//! interactive reference at `GET /api/docs` (the page `api-docs.html` from the site root, which loads the
//! vendored Swagger UI). Both are public and GET-only.

use std::sync::OnceLock;

use axum::{
    Router,
    extract::State,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use serde_json::{Value, json};
use utoipa::{
    Modify, OpenApi,
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
};

use crate::{
    routes::{
        admin_api, api, backtests_api, billing_api, market, notifications_api, paper_api,
        plans_api, strategies_api,
    },
    state::AppState,
};

/// The name the route attributes use for the error body: the RFC 9457 problem of `crate::error`.
pub use crate::error::Problem as ErrorBody;

/// The bearer scheme of API tokens (`vxt_…`, created on `/account`).
struct BearerToken;

impl Modify for BearerToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("vxt_…")
                    .description(Some(
                        "An API token from /account (`read` or `read_write`), sent as `Authorization: Bearer vxt_…`.",
                    ))
                    .build(),
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Vortex API",
        version = "1",
        description = "The versioned REST API of Vortex: strategies, backtests, market data and notifications.\n\n\
            Authenticate with an API token from /account: `Authorization: Bearer vxt_…`. Reads accept `read` \
            and `read_write` tokens; writes need a `read_write` token of a trader or admin (403 otherwise). \
            Requests are limited per user per minute (429 with `Retry-After`).\n\n\
            Every error is an RFC 9457 problem (`application/problem+json`): `type` (a stable URI per problem \
            code, `/api/problems/<code>`, which GET describes), `title`, `status`, `detail`, `code` (the code to \
            switch on) and `request_id` (as in the `x-request-id` header); `invalid_input` adds `field`, \
            `invalid_strategy` adds `problems` (`line`, `column`, `len`, `message`); `plan_limit` (403: a limit of \
            the user's plan) and `plan_read_only` (403: a strategy over the user's plan, read-only after the \
            grace period) add `limit`, `usage` and `allowed`; 429 and 503 carry \
            `Retry-After`. Another user's strategy or run is answered 404, like one that does not exist."
    ),
    paths(
        api::get_me,
        api::update_me,
        api::my_audit,
        api::my_export,
        market::get_candles::get_candles,
        market::get_coverage::get_coverage,
        market::get_instruments::get_instruments,
        strategies_api::catalogue::list_templates,
        strategies_api::catalogue::list_catalogue,
        strategies_api::catalogue::create_catalogue_entry,
        strategies_api::catalogue::get_catalogue_entry,
        strategies_api::catalogue::update_catalogue_entry,
        strategies_api::strategies::list_strategies,
        strategies_api::strategies::create_strategy,
        strategies_api::catalogue::validate_strategy,
        strategies_api::strategies::get_strategy,
        strategies_api::strategies::update_strategy,
        strategies_api::strategies::archive_strategy,
        strategies_api::strategies::restore_strategy,
        strategies_api::strategies::duplicate_strategy,
        strategies_api::strategies::get_strategy_version,
        backtests_api::runs::create_backtest,
        backtests_api::runs::list_backtests,
        backtests_api::runs::get_backtest,
        backtests_api::results::get_backtest_result,
        backtests_api::results::list_backtest_trades,
        backtests_api::results::export_backtest_trades,
        backtests_api::runs::cancel_backtest,
        backtests_api::trace::trace_backtest,
        notifications_api::api::list_notifications,
        notifications_api::api::unread_count,
        notifications_api::api::mark_read,
        notifications_api::api::mark_all_read,
        notifications_api::prefs::get_catalogue,
        notifications_api::prefs::get_preferences,
        notifications_api::prefs::put_preferences,
        notifications_api::api::list_webhooks,
        notifications_api::api::create_webhook,
        notifications_api::api::delete_webhook,
        notifications_api::api::test_webhook,
        notifications_api::api::enable_webhook,
        notifications_api::api::rotate_secret,
        notifications_api::api::list_deliveries,
        notifications_api::api::replay_delivery,
        notifications_api::admin::user_deliveries,
        notifications_api::admin::send_test,
        paper_api::runs::start_paper_run,
        paper_api::runs::list_paper_runs,
        paper_api::runs::get_paper_run,
        paper_api::runs::list_paper_fills,
        paper_api::runs::list_paper_trades,
        paper_api::runs::list_paper_candles,
        paper_api::runs::paper_equity,
        paper_api::runs::paper_parity,
        paper_api::runs::pause_paper_run,
        paper_api::runs::resume_paper_run,
        paper_api::runs::stop_paper_run,
        paper_api::runs::set_paper_risk_limits,
        paper_api::runs::release_paper_risk_locks,
        paper_api::signals::list_paper_signals,
        paper_api::signals::set_paper_signals,
        paper_api::signals::receive_signal,
        paper_api::kill::list_kill_switches,
        paper_api::kill::throw_kill_switch,
        paper_api::kill::release_kill_switch,
        paper_api::kill::admin_list_kill_switches,
        paper_api::kill::admin_throw_kill_switch,
        plans_api::my_plan,
        plans_api::list_plans,
        plans_api::create_plan,
        plans_api::get_plan,
        plans_api::update_plan,
        plans_api::get_user_plan,
        plans_api::assign_user_plan,
        billing_api::billing_webhook,
        billing_api::my_billing,
        billing_api::billing_checkout,
        billing_api::billing_portal,
        billing_api::admin_subscriptions,
        billing_api::reconcile_now,
        billing_api::reconcile_runs,
        admin_api::list_users,
        admin_api::get_user,
        admin_api::update_user,
        admin_api::suspend_user,
        admin_api::unsuspend_user,
        admin_api::sign_out_user,
        admin_api::bulk_users,
        admin_api::delete_user,
        admin_api::resend_user_verification,
        admin_api::export_user,
        admin_api::list_admin_jobs,
        admin_api::retry_admin_job,
        admin_api::cancel_admin_job,
        admin_api::audit::admin_audit,
        admin_api::audit::admin_audit_export,
        admin_api::market::admin_market,
        admin_api::settings::get_settings,
        admin_api::settings::update_settings,
        admin_api::settings::create_invite,
        admin_api::market::track_series,
        admin_api::market::update_market,
        admin_api::market::backfill_market,
        admin_api::signups::list_signups,
        admin_api::signups::approve_signup,
        admin_api::signups::reject_signup,
        admin_api::signups::set_signup_approver,
        admin_api::signups::reset_user_two_factor,
    ),
    components(schemas(crate::error::Problem, crate::error::SourceProblem)),
    modifiers(&BearerToken),
    tags(
        (name = "strategies", description = "The template catalogue and your strategies; each save of changed source is an immutable version."),
        (name = "backtests", description = "Backtest runs: queue (one run per instrument), follow, cancel, and read results, trades and the decision trace."),
        (name = "paper", description = "Paper runs on live candles: start (one run per instrument), follow fills, trades, equity and each candle's decision, pause, resume, stop (optionally flattening first) and the parity report against a backtest of the same window."),
        (name = "market", description = "Instruments and candles stored for backtests."),
        (name = "notifications", description = "In-app notifications, webhooks (Slack, Discord, generic signed) and the delivery log of email and webhook messages."),
        (name = "account", description = "The token's user and security events."),
        (name = "billing", description = "Payments (when the instance takes them): your subscription and invoices, checkout and the billing portal of the provider, and the provider's signed webhook."),
        (name = "admin", description = "Admin-only routes: users (list, detail, suspend, role, sign-out, bulk actions, two-factor reset, sign-up approvers), pending sign-ups (approve, reject), jobs, the audit trail, notification tools, plans, users' plans and subscriptions, the reconciliation with the payment provider, kill switches."),
    )
)]
pub struct ApiDoc;

/// The document as JSON, built once: the generated description with [`problem_responses`] applied.
pub fn openapi_json() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| {
        let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
        problem_responses(&mut doc);
        serde_json::to_string_pretty(&doc).unwrap_or_default()
    })
}

/// The error answers every operation can give, written once instead of on every route: each 4xx/5xx response is
/// `application/problem+json` with the `Problem` schema (429 and 503 with `Retry-After`), and each operation
/// lists the errors the shared layers give: 400 (unreadable parameters or body, when it has any), 401 and 429
/// (the token and its rate limit, when it needs one), 413 and 415 (the body limit and type, when it has a body),
/// 500 and 503 (unexpected error, database or Redis unavailable).
fn problem_responses(doc: &mut Value) {
    let problem = json!({ "application/problem+json": { "schema": { "$ref": "#/components/schemas/Problem" } } });
    let retry_after = json!({ "Retry-After": {
        "description": "Seconds to wait before retrying.",
        "required": true,
        "schema": { "type": "integer", "minimum": 0 }
    } });
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for item in paths.values_mut().filter_map(Value::as_object_mut) {
        for op in item.values_mut().filter_map(Value::as_object_mut) {
            let has_params = op
                .get("parameters")
                .and_then(Value::as_array)
                .is_some_and(|p| !p.is_empty());
            let has_body = op.contains_key("requestBody");
            let secured = op
                .get("security")
                .is_some_and(|s| s.to_string().contains("bearer"));
            let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else {
                continue;
            };
            let mut add = |status: &str, description: &str| {
                responses
                    .entry(status)
                    .or_insert_with(|| json!({ "description": description }));
            };
            if has_params || has_body {
                add(
                    "400",
                    "`bad_request`: a malformed parameter or body (wrong type, unknown field, not a JSON object)",
                );
            }
            if secured {
                add(
                    "401",
                    "`unauthorized`: no, unknown, revoked or expired token",
                );
                add(
                    "429",
                    "`rate_limited`: too many requests from this user (see `Retry-After`)",
                );
            }
            if has_body {
                add(
                    "413",
                    "`payload_too_large`: the body is larger than the server accepts",
                );
                add(
                    "415",
                    "`unsupported_media_type`: the body is not `application/json`",
                );
            }
            add(
                "500",
                "`internal`: an unexpected error (logged under the request id)",
            );
            add(
                "503",
                "`unavailable`: the database or Redis cannot serve right now (see `Retry-After`)",
            );
            for (status, response) in responses.iter_mut() {
                if !(status.starts_with('4') || status.starts_with('5')) {
                    continue;
                }
                let Some(r) = response.as_object_mut() else {
                    continue;
                };
                r.insert("content".into(), problem.clone());
                if status == "429" || status == "503" {
                    r.insert("headers".into(), retry_after.clone());
                }
            }
        }
    }
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/openapi.json", get(get_openapi))
        .route("/api/docs", get(get_docs))
        .merge(crate::error::router())
}

/// `GET /api/openapi.json`: the OpenAPI 3.1 description (public).
async fn get_openapi() -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        openapi_json(),
    )
        .into_response()
}

/// The page of the interactive reference, in the site root (copied there from `public/` by scripts/build.sh).
pub const DOCS_PAGE: &str = "api-docs.html";

/// `GET /api/docs`: the interactive API reference (public). The page is read at request time, so a deploy that
/// updates the site root needs no restart; without it, 503 says what is missing.
async fn get_docs(State(state): State<AppState>) -> Response {
    let path = state.ctx.settings.site_root.join(DOCS_PAGE);
    match tokio::fs::read_to_string(&path).await {
        Ok(html) => {
            let mut resp = (
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/html; charset=utf-8"),
                )],
                html,
            )
                .into_response();
            resp.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            resp
        }
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "API reference page missing");
            crate::extract::html_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "API reference unavailable",
                &format!(
                    "The API reference page ({DOCS_PAGE}) is not installed in the site root; build the site \
                     with scripts/build.sh. The OpenAPI description is at /api/openapi.json."
                ),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    #[test]
    fn every_operation_has_a_tag_an_id_and_documented_errors() {
        let doc: Value = serde_json::from_str(super::openapi_json()).unwrap();
        if let Ok(path) = std::env::var("OPENAPI_DUMP") {
            std::fs::write(path, super::openapi_json()).unwrap();
        }
        assert_eq!(doc["openapi"], "3.1.0");
        let paths = doc["paths"].as_object().unwrap();
        assert!(paths.len() >= 20, "{}", paths.len());
        for (path, ops) in paths {
            assert!(path.starts_with("/api/v1/"), "{path}");
            for (method, op) in ops.as_object().unwrap() {
                assert!(op["tags"][0].is_string(), "{method} {path}: tag");
                assert!(op["operationId"].is_string(), "{method} {path}: id");
                let responses = op["responses"].as_object().unwrap();
                assert!(
                    responses.keys().any(|s| s.starts_with('2')),
                    "{method} {path}: success"
                );
                // Public market reads aside, every operation needs the bearer token and documents 401.
                if op["security"] != serde_json::json!([{}]) {
                    assert_eq!(
                        op["security"],
                        serde_json::json!([{"bearer": []}]),
                        "{method} {path}"
                    );
                    assert!(responses.contains_key("401"), "{method} {path}: 401");
                }
            }
        }
    }
}
