//! What the run forms (a backtest's `/backtests/new`, a paper run's `/paper/new`) share: reading their fields
//! (`param.<name>` for parameters, repeated `instrument_id`, the fee in percent) and the answer to a post (the
//! new run, or back to the form with the values as typed and the error in place).

use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Redirect, Response},
};
use backend::Error;
use serde_json::json;
use uuid::Uuid;

use crate::{
    error::{HtmlError, HtmlResult},
    state::AppState,
};

/// A Post/Redirect/Get answer.
pub fn to(path: &str) -> Response {
    Redirect::to(path).into_response()
}

/// A refusal as an HTML page; a refused write of a read-only account says so in its title.
pub fn page(e: Error) -> HtmlError {
    match e {
        Error::Forbidden(m) => HtmlError::page(StatusCode::FORBIDDEN, "Read-only account", &m),
        other => other.into(),
    }
}

/// A run form's posted fields (the body limit and the form extractor bound their number).
pub struct Fields<'a>(pub &'a [(String, String)]);

impl<'a> Fields<'a> {
    /// The fields, refused when there are more than `max`.
    pub fn at_most(fields: &'a [(String, String)], max: usize) -> Result<Self, Error> {
        if fields.len() > max {
            return Err(Error::invalid(
                "params",
                format!("the form sent more than {max} fields"),
            ));
        }
        Ok(Self(fields))
    }

    /// The last value of `k`, trimmed (`""` when absent).
    pub fn get(&self, k: &str) -> String {
        self.0
            .iter()
            .rev()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_default()
    }

    /// `k` as a number; an error names `field`.
    pub fn number(&self, k: &str, field: &str) -> Result<f64, Error> {
        let v = self.get(k);
        v.parse::<f64>()
            .map_err(|_| Error::invalid(field, format!("`{v}` is not a number")))
    }

    /// `k` parsed, or `None` when empty; an error names `field` and says it is not `what`.
    pub fn optional<T: std::str::FromStr>(
        &self,
        k: &str,
        field: &str,
        what: &str,
    ) -> Result<Option<T>, Error> {
        match self.get(k).as_str() {
            "" => Ok(None),
            v => v
                .parse::<T>()
                .map(Some)
                .map_err(|_| Error::invalid(field, format!("`{v}` is not {what}"))),
        }
    }

    /// The strategy (a malformed id is "not found", like another user's) and the version (`None`: the latest).
    pub fn strategy(&self) -> Result<(Uuid, Option<i32>), Error> {
        let id = Uuid::parse_str(&self.get("strategy_id")).map_err(|_| Error::NotFound)?;
        Ok((id, self.optional("version", "version", "a version number")?))
    }

    /// The `param.<name>` fields in the order of each name's first field. A checkbox sends a hidden "false"
    /// and, when ticked, "true": the last value wins. One map lookup per field.
    pub fn params(&self) -> Result<Vec<(String, String)>, Error> {
        let mut params: Vec<(String, String)> = Vec::new();
        let mut index: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
        for (k, v) in self.0 {
            let Some(name) = k.strip_prefix("param.") else {
                continue;
            };
            match index.get(name) {
                Some(&i) => params[i].1 = v.trim().to_owned(),
                None => {
                    if params.len() >= engine::strategy::limits::MAX_PARAMS {
                        return Err(Error::invalid(
                            "params",
                            format!(
                                "the form sent more than {} parameters; a strategy declares at most that many",
                                engine::strategy::limits::MAX_PARAMS
                            ),
                        ));
                    }
                    index.insert(name, params.len());
                    params.push((name.to_owned(), v.trim().to_owned()));
                }
            }
        }
        Ok(params)
    }

    /// Every `instrument_id` field.
    pub fn instrument_ids(&self) -> Result<Vec<i32>, Error> {
        self.0
            .iter()
            .filter(|(k, _)| k == "instrument_id")
            .map(|(_, v)| {
                v.trim().parse::<i32>().map_err(|_| {
                    Error::invalid("instrument", format!("`{v}` is not an instrument"))
                })
            })
            .collect()
    }

    /// The fill model (`next_open` when not chosen).
    pub fn fill(&self) -> String {
        Some(self.get("fill"))
            .filter(|f| !f.is_empty())
            .unwrap_or_else(|| "next_open".into())
    }
}

/// Where a run form lives and what its answers say.
pub struct Form {
    /// The form's page, e.g. `/backtests/new`.
    pub page: &'static str,
    /// Where runs live: one run is `{runs}/{id}`, a batch `{runs}?batch={id}`.
    pub runs: &'static str,
    /// The fields that go back to the form when it is shown again (besides `param.*`).
    pub known: &'static [&'static str],
    /// What the form says to a user whose email is not confirmed.
    pub unconfirmed: &'static str,
}

impl Form {
    /// The answer to a post: the new run (or batch), or back to the form with the error in place. Refusals a
    /// trader can act on go back to the form; the rest are error pages.
    // Every form handler answers `HtmlResult` (a `Response` either way); boxing it here alone buys nothing.
    #[allow(clippy::result_large_err)]
    pub fn answer(
        &self,
        state: &AppState,
        fields: &[(String, String)],
        outcome: Result<(Vec<Uuid>, Uuid), Error>,
    ) -> HtmlResult {
        match outcome {
            Ok((run_ids, batch_id)) => {
                let mut resp = match run_ids.as_slice() {
                    [one] => to(&format!("{}/{one}", self.runs)),
                    _ => to(&format!("{}?batch={batch_id}", self.runs)),
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
            Err(Error::EmailUnconfirmed) => Ok(self.back(state, fields, "email", self.unconfirmed)),
            Err(Error::Invalid { field, message }) => {
                Ok(self.back(state, fields, &field, &message))
            }
            Err(
                e @ (Error::Strategy(_)
                | Error::Limit(_)
                | Error::PlanLimit(_)
                | Error::PlanReadOnly(_)
                | Error::Conflict(_)),
            ) => Ok(self.back(state, fields, e.code(), &e.message())),
            // No such strategy in this account (or someone else's, which looks the same): back to the form
            // without it, so the form opens on one of the user's own strategies and shows why.
            Err(Error::NotFound) => {
                let kept: Vec<(String, String)> = fields
                    .iter()
                    .filter(|(k, _)| k != "strategy_id" && k != "version")
                    .cloned()
                    .collect();
                Ok(self.back(
                    state,
                    &kept,
                    "strategy",
                    "there is no such strategy in your account; choose one of yours",
                ))
            }
            Err(e) => Err(page(e)),
        }
    }

    /// Back to the form with the values as typed (query string) and the error (short-lived cookie).
    fn back(
        &self,
        state: &AppState,
        fields: &[(String, String)],
        field: &str,
        message: &str,
    ) -> Response {
        // Only the form's own fields go back, clipped, so the redirect stays small whatever was posted.
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in fields
            .iter()
            .filter(|(k, _)| {
                self.known.contains(&k.as_str()) || (k.starts_with("param.") && k.len() <= 80)
            })
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
        let mut resp = to(&format!("{}?{}", self.page, q.finish()));
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
}
