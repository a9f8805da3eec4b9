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
use serde::Serialize;
use utoipa::{
    Modify, OpenApi, ToSchema,
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
};

use crate::{
    routes::{api, backtests_api, market, strategies_api},
    state::AppState,
};

/// Every API error: `{"error": code, "message": text}`, plus `field` for `invalid_input` and `problems` for
/// `invalid_strategy`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// `not_found`, `unauthorized`, `forbidden`, `bad_request`, `invalid_input`, `invalid_strategy`, `conflict`,
    /// `limit_reached`, `not_finished`, `payload_too_large`, `unsupported_media_type`, `rate_limited`,
    /// `unavailable` or `internal`.
    #[schema(example = "invalid_input")]
    pub error: String,
    /// What is wrong, in words a person can act on.
    #[schema(example = "to: the end must be after the start")]
    pub message: String,
    /// `invalid_input`: the request field at fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "to")]
    pub field: Option<String>,
    /// `invalid_strategy`: every problem in the source (1-based line and column).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problems: Option<Vec<strategies_api::Diagnostic>>,
}

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
        description = "The versioned REST API of Vortex: strategies, backtests and market data.\n\n\
            Authenticate with an API token from /account: `Authorization: Bearer vxt_…`. Reads accept `read` \
            and `read_write` tokens; writes need a `read_write` token of a trader or admin (403 otherwise). \
            Requests are limited per user per minute (429 with `Retry-After`).\n\n\
            Errors are JSON `{\"error\": code, \"message\": text}`; `invalid_input` adds `field`, \
            `invalid_strategy` adds `problems` (`line`, `column`, `len`, `message`). Another user's strategy or \
            run is answered 404, like one that does not exist."
    ),
    paths(
        api::get_me,
        api::update_me,
        api::my_audit,
        api::all_audit,
        market::get_candles::get_candles,
        market::get_coverage::get_coverage,
        market::get_instruments::get_instruments,
        strategies_api::list_templates,
        strategies_api::list_strategies,
        strategies_api::create_strategy,
        strategies_api::validate_strategy,
        strategies_api::get_strategy,
        strategies_api::update_strategy,
        strategies_api::archive_strategy,
        strategies_api::restore_strategy,
        strategies_api::duplicate_strategy,
        strategies_api::get_strategy_version,
        backtests_api::create_backtest,
        backtests_api::list_backtests,
        backtests_api::get_backtest,
        backtests_api::get_backtest_result,
        backtests_api::list_backtest_trades,
        backtests_api::export_backtest_trades,
        backtests_api::cancel_backtest,
        backtests_api::trace_backtest,
    ),
    components(schemas(ErrorBody)),
    modifiers(&BearerToken),
    tags(
        (name = "strategies", description = "The template catalogue and your strategies; each save of changed source is an immutable version."),
        (name = "backtests", description = "Backtest runs: queue (one run per instrument), follow, cancel, and read results, trades and the decision trace."),
        (name = "market", description = "Instruments and candles stored for backtests."),
        (name = "account", description = "The token's user and security events."),
        (name = "admin", description = "Admin-only reads."),
    )
)]
pub struct ApiDoc;

/// The document as JSON, built once.
pub fn openapi_json() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| {
        ApiDoc::openapi()
            .to_pretty_json()
            .unwrap_or_else(|e| format!("{{\"error\":\"internal\",\"message\":\"{e}\"}}"))
    })
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/openapi.json", get(get_openapi))
        .route("/api/docs", get(get_docs))
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
