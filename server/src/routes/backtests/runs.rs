//! Backtest form posts: start runs (one per chosen instrument) and cancel one.

use app::flash::Flash;
use axum::{
    Form,
    extract::{Path, State},
    http::{HeaderValue, header},
    response::Response,
};
use backend::{
    Error,
    backtest::{actions::runs as act, runs},
};
use serde_json::json;
use uuid::Uuid;

use super::{page, parse_id, to};
use crate::{error::HtmlResult, extract::WebActor, state::AppState};

/// Builds the engine's request from the run form's fields (`param.<name>` for parameters, repeated
/// `instrument_id`, the fee in percent).
fn new_run(fields: &[(String, String)]) -> Result<runs::NewRun, Error> {
    let get = |k: &str| {
        fields
            .iter()
            .rev()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_default()
    };
    let number = |k: &str, field: &str| -> Result<f64, Error> {
        let v = get(k);
        v.parse::<f64>().map_err(|_| Error::Invalid {
            field: field.into(),
            message: format!("`{v}` is not a number"),
        })
    };
    let strategy_id = Uuid::parse_str(&get("strategy_id")).map_err(|_| Error::NotFound)?;
    let version = match get("version").as_str() {
        "" => None,
        v => Some(v.parse::<i32>().map_err(|_| Error::Invalid {
            field: "version".into(),
            message: format!("`{v}` is not a version number"),
        })?),
    };
    // One pass, one map lookup per field: a form with a hundred thousand `param.*` fields costs a hundred
    // thousand lookups, not their square. A checkbox sends a hidden "false" and, when ticked, "true": the
    // last value wins, in the position of the name's first field.
    let mut params: Vec<(String, String)> = Vec::new();
    let mut index: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for (k, v) in fields {
        if let Some(name) = k.strip_prefix("param.") {
            match index.get(name) {
                Some(&i) => params[i].1 = v.trim().to_owned(),
                None => {
                    if params.len() >= engine::strategy::limits::MAX_PARAMS {
                        return Err(Error::Invalid {
                            field: "params".into(),
                            message: format!(
                                "the form sent more than {} parameters; a strategy declares at most that many",
                                engine::strategy::limits::MAX_PARAMS
                            ),
                        });
                    }
                    index.insert(name, params.len());
                    params.push((name.to_owned(), v.trim().to_owned()));
                }
            }
        }
    }
    let mut instrument_ids = Vec::new();
    for (k, v) in fields.iter().filter(|(k, _)| k == "instrument_id") {
        let _ = k;
        instrument_ids.push(v.trim().parse::<i32>().map_err(|_| Error::Invalid {
            field: "instrument".into(),
            message: format!("`{v}` is not an instrument"),
        })?);
    }
    Ok(runs::NewRun {
        strategy_id,
        version,
        params,
        instrument_ids,
        timeframe: get("timeframe"),
        from: get("from"),
        to: get("to"),
        initial_cash: number("initial_cash", "initial_cash")?,
        fee: number("fee_pct", "fee")? / 100.0,
        slippage_bps: number("slippage_bps", "slippage_bps")?,
        fill: Some(get("fill"))
            .filter(|f| !f.is_empty())
            .unwrap_or_else(|| "next_open".into()),
    })
}

/// Back to the form with the values as typed (query string) and the error (short-lived cookie).
fn back_to_form(
    state: &AppState,
    fields: &[(String, String)],
    field: &str,
    message: &str,
) -> Response {
    // Only the form's own fields go back, clipped, so the redirect stays small whatever was posted.
    const KNOWN: &[&str] = &[
        "strategy_id",
        "version",
        "instrument_id",
        "timeframe",
        "from",
        "to",
        "initial_cash",
        "fee_pct",
        "slippage_bps",
        "fill",
    ];
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in fields
        .iter()
        .filter(|(k, _)| KNOWN.contains(&k.as_str()) || (k.starts_with("param.") && k.len() <= 80))
        .take(80)
    {
        let key = if k == "strategy_id" {
            "strategy"
        } else {
            k.as_str()
        };
        let v: String = v.chars().take(100).collect();
        q.append_pair(key, &v);
    }
    q.append_pair("failed", "1");
    let mut resp = to(&format!("/backtests/new?{}", q.finish()));
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

pub(super) async fn create(
    State(state): State<AppState>,
    WebActor(actor): WebActor,
    Form(fields): Form<Vec<(String, String)>>,
) -> HtmlResult {
    let outcome = match new_run(&fields) {
        Ok(new) => act::submit(&actor, &state.ctx, &new).await,
        Err(e) => Err(e),
    };
    match outcome {
        Ok(created) => {
            let mut resp = if created.run_ids.len() == 1 {
                to(&format!("/backtests/{}", created.run_ids[0]))
            } else {
                to(&format!("/backtests?batch={}", created.batch_id))
            };
            let clear = backend::auth::session::clear_cookie(
                &state.ctx.settings,
                backend::web::FORM_ERROR_COOKIE,
            );
            if let Ok(v) = HeaderValue::from_str(&clear) {
                resp.headers_mut().append(header::SET_COOKIE, v);
            }
            Ok(resp)
        }
        Err(Error::EmailUnconfirmed) => Ok(back_to_form(
            &state,
            &fields,
            "email",
            "Confirm your email address (see your account page) before running backtests.",
        )),
        Err(Error::Invalid { field, message }) => {
            Ok(back_to_form(&state, &fields, &field, &message))
        }
        Err(
            e @ (Error::Strategy(_) | Error::Limit(_) | Error::PlanLimit(_) | Error::Conflict(_)),
        ) => Ok(back_to_form(&state, &fields, e.code(), &e.message())),
        // No such strategy in this account (or someone else's, which looks the same): back to the form without
        // it, so the form opens on one of the user's own strategies and shows why.
        Err(Error::NotFound) => {
            let kept: Vec<(String, String)> = fields
                .iter()
                .filter(|(k, _)| k != "strategy_id" && k != "version")
                .cloned()
                .collect();
            Ok(back_to_form(
                &state,
                &kept,
                "strategy",
                "there is no such strategy in your account; choose one of yours",
            ))
        }
        Err(e) => Err(page(e)),
    }
}

pub(super) async fn cancel(
    State(state): State<AppState>,
    WebActor(actor): WebActor,
    Path(id): Path<String>,
) -> HtmlResult {
    let id = parse_id(&id)?;
    let back = format!("/backtests/{id}");
    match act::cancel(&actor, &state.ctx, id).await {
        Ok(_) => Ok(to(&Flash::CancelRequested.redirect_to(&back))),
        Err(Error::Conflict(_)) => Ok(to(&Flash::AlreadyFinished.redirect_to(&back))),
        Err(e) => Err(page(e)),
    }
}
