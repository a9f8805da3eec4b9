//! The REST API's input contract in one place: the OpenAPI schemas of constrained inputs (built from the same
//! lists the backend checks against, so they cannot drift) and the strict deserializers the DTOs use, so the
//! server refuses exactly what the document calls invalid and accepts what it calls valid. A value of the wrong
//! JSON type or an unknown field is 400 `bad_request`; a well-formed value that breaks a rule (a range, a date, a
//! length, a list of allowed words) is 400 `invalid_input`, the same code the forms and server functions give.
//! Both name the field.

use serde::{Deserialize, Deserializer};
use utoipa::openapi::{Object, ObjectBuilder, RefOr, Schema, Type, schema::AnyOfBuilder};

/// The oldest and newest dates the API accepts: candles start in 1970 and no range runs past 2099 (a later
/// date would overflow the inclusive end into the year 10000).
pub const MIN_YEAR: i64 = 1970;
pub const MAX_YEAR: i64 = 2099;

/// `YYYY-MM-DD` (1970–2099; every day that exists except February 29, which is accepted in leap years), or the
/// same followed by an RFC 3339 time `THH:MM:SS[.fff…](Z|±HH:MM)`.
pub const DATE_PATTERN: &str = r"^(19[7-9][0-9]|20[0-9][0-9])-((0[13578]|1[02])-(0[1-9]|[12][0-9]|3[01])|(0[469]|11)-(0[1-9]|[12][0-9]|30)|02-(0[1-9]|1[0-9]|2[0-8]))(T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,9})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9]))?$";

/// Text without control characters (names).
pub const NO_CONTROL_PATTERN: &str = r"^[^\x00-\x1f\x7f-\x9f]*$";
/// Text with at least one visible character and no control characters (strategy names).
pub const NAME_PATTERN: &str =
    r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$";
/// Text without control characters other than tab and line breaks (descriptions).
pub const DESCRIPTION_PATTERN: &str = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$";
/// A catalogue strategy's slug (`backend::backtest::catalogue`).
pub const TEMPLATE_PATTERN: &str = "^[a-z0-9][a-z0-9_-]{0,47}$";
/// Strategy source: anything but NUL.
pub const SOURCE_PATTERN: &str = r"^[^\x00]*$";

/// Prefix of a deserializer's refusal that is a broken rule (`invalid_input`) rather than a malformed value;
/// [`split_rule`] takes it off again.
const RULE: &str = "\u{1f}rule:";

pub(crate) fn rule<E: serde::de::Error>(message: impl std::fmt::Display) -> E {
    E::custom(format_args!("{RULE}{message}"))
}

/// The problem code of a refusal read from a body or query string, and its message without the marker.
pub fn split_rule(message: &str) -> (&'static str, String) {
    match message.find(RULE) {
        Some(at) => (
            "invalid_input",
            format!("{}{}", &message[..at], &message[at + RULE.len()..]),
        ),
        None => ("bad_request", message.to_owned()),
    }
}

fn string_enum(values: impl IntoIterator<Item = String>, description: &str) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(values))
        .description(Some(description))
        .build()
}

fn strs(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// `asc` or `desc`.
pub fn dir_schema() -> Object {
    string_enum(strs(&["asc", "desc"]), "Sort direction.")
}

/// A run's status.
pub fn status_schema() -> Object {
    string_enum(
        engine::run_state::RunState::ALL
            .iter()
            .map(|s| s.as_str().to_owned())
            .collect::<Vec<_>>(),
        "A run's status.",
    )
}

/// The columns runs sort by.
pub fn run_sort_schema() -> Object {
    string_enum(strs(backend::backtest::runs::RUN_SORTS), "Sort runs by.")
}

/// The columns trades sort by.
pub fn trade_sort_schema() -> Object {
    string_enum(
        strs(backend::backtest::runs::TRADE_SORTS),
        "Sort trades by.",
    )
}

/// A candle timeframe.
pub fn timeframe_schema() -> Object {
    string_enum(
        engine::candles::Timeframe::ALL
            .iter()
            .map(|t| t.as_str().to_owned()),
        "A candle timeframe.",
    )
}

/// A template of the catalogue.
pub fn template_schema() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(TEMPLATE_PATTERN))
        .max_length(Some(backend::backtest::catalogue::MAX_SLUG))
        .description(Some(
            "The slug of a published catalogue strategy (see `GET /api/v1/templates`), e.g. `macd`. Which slugs \
             exist is the catalogue's content, kept by admins: an unknown or hidden one is 400 `invalid_input` \
             listing the published slugs.",
        ))
        .examples([serde_json::json!("macd")])
        .build()
}

/// An IANA time zone name.
pub fn time_zone_schema() -> Object {
    string_enum(
        chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name().to_owned()),
        "An IANA time zone name, e.g. `Europe/Zurich` or `UTC`.",
    )
}

/// `fill`: the fill model.
pub fn fill_schema() -> Object {
    string_enum(
        strs(&["next_open", "same_close"]),
        "`next_open` (fill at the next bar's open) or `same_close`.",
    )
}

/// A date or timestamp within [`MIN_YEAR`]–[`MAX_YEAR`].
pub fn date_schema() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(DATE_PATTERN))
        .description(Some(
            "`YYYY-MM-DD` or RFC 3339 (`YYYY-MM-DDTHH:MM:SS[.fff](Z|±HH:MM)`), years 1970–2099.",
        ))
        .build()
}

/// A strategy parameter value: an integer, a number or a boolean, as declared (a JSON integer is also a number,
/// so the alternatives are `anyOf`, not an ambiguous `oneOf`).
pub fn param_value_schema() -> RefOr<Schema> {
    AnyOfBuilder::new()
        .item(ObjectBuilder::new().schema_type(Type::Integer))
        .item(ObjectBuilder::new().schema_type(Type::Number))
        .item(ObjectBuilder::new().schema_type(Type::Boolean))
        .description(Some(
            "A parameter value: an integer, a number or a boolean, as declared.",
        ))
        .into()
}

/// A parameter override: a number, a boolean or a string (checked against the declared type and range).
pub fn param_input_schema() -> RefOr<Schema> {
    AnyOfBuilder::new()
        .item(ObjectBuilder::new().schema_type(Type::Number))
        .item(ObjectBuilder::new().schema_type(Type::Boolean))
        .item(ObjectBuilder::new().schema_type(Type::String))
        .description(Some(
            "A parameter override: a number, a boolean or a string, checked against the declared type and range.",
        ))
        .into()
}

fn one_of<'de, D: Deserializer<'de>>(
    d: D,
    allowed: &[&str],
    what: &str,
) -> Result<Option<String>, D::Error> {
    let s = String::deserialize(d)?;
    if allowed.contains(&s.as_str()) {
        Ok(Some(s))
    } else {
        Err(rule::<D::Error>(format!(
            "`{s}` is not a {what}; use one of {}",
            allowed.join(", ")
        )))
    }
}

/// `asc` or `desc`, exactly.
pub fn de_dir<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    one_of(d, &["asc", "desc"], "direction")
}

/// A run status, exactly.
pub fn de_status<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let statuses = engine::run_state::RunState::ALL.map(engine::run_state::RunState::as_str);
    one_of(d, &statuses, "status")
}

/// A run sort column, exactly.
pub fn de_run_sort<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    one_of(d, backend::backtest::runs::RUN_SORTS, "sort column")
}

/// A trade sort column, exactly.
pub fn de_trade_sort<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    one_of(d, backend::backtest::runs::TRADE_SORTS, "sort column")
}

/// A timeframe label, exactly (`1m` … `1w`).
pub fn de_timeframe<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let all: Vec<&str> = engine::candles::Timeframe::ALL
        .iter()
        .map(|t| t.as_str())
        .collect();
    one_of(d, &all, "timeframe")
}

/// A required timeframe label, exactly.
pub fn de_timeframe_required<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    de_timeframe(d).map(Option::unwrap_or_default)
}

/// A template name of the catalogue, exactly.
pub fn de_template<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let s = String::deserialize(d)?;
    if !backend::backtest::catalogue::is_slug(&s) {
        let shown: String = s.chars().take(60).collect();
        return Err(rule::<D::Error>(format!(
            "`{shown}` is not a template slug (1 to {} lower-case letters, digits, `_` and `-`); see GET /api/v1/templates",
            backend::backtest::catalogue::MAX_SLUG
        )));
    }
    Ok(Some(s))
}

/// An IANA time zone name, exactly.
pub fn de_time_zone<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let s = String::deserialize(d)?;
    if s.parse::<chrono_tz::Tz>().is_err() {
        return Err(rule::<D::Error>(format!(
            "`{s}` is not an IANA time zone name (e.g. Europe/Zurich, UTC)"
        )));
    }
    Ok(Some(s))
}

/// The fill model, exactly.
pub fn de_fill<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    if ["next_open", "same_close"].contains(&s.as_str()) {
        Ok(s)
    } else {
        Err(rule::<D::Error>(format!(
            "`{s}` is not a fill model; use next_open or same_close"
        )))
    }
}

/// An optional integer within `MIN..=MAX`.
pub fn de_range<'de, D: Deserializer<'de>, const MIN: i64, const MAX: i64>(
    d: D,
) -> Result<Option<i64>, D::Error> {
    let n = i64::deserialize(d)?;
    if (MIN..=MAX).contains(&n) {
        Ok(Some(n))
    } else {
        Err(rule::<D::Error>(format!(
            "{n} is out of range; use {MIN} to {MAX}"
        )))
    }
}

/// Checks a date or timestamp against [`DATE_PATTERN`]'s rule: parseable, years [`MIN_YEAR`]–[`MAX_YEAR`].
fn check_date<E: serde::de::Error>(s: &str) -> Result<(), E> {
    backend::market::parse_time(s).map_err(rule::<E>)?;
    let year = s.get(..4).and_then(|y| y.parse::<i64>().ok());
    let in_range = s.len() >= 10
        && s.as_bytes()[4] == b'-'
        && year.is_some_and(|y| (MIN_YEAR..=MAX_YEAR).contains(&y));
    // The year is checked as written: an offset may put the instant just before 1970, which is still valid.
    if !in_range {
        return Err(rule::<E>(format!(
            "`{s}` is out of range; give a date between {MIN_YEAR}-01-01 and {MAX_YEAR}-12-31 as YYYY-MM-DD or RFC 3339"
        )));
    }
    Ok(())
}

/// A required date or timestamp (1970–2099).
pub fn de_date<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    // Empty (or blank) means "not given": the backend's date-range rule names what is missing.
    if !s.trim().is_empty() {
        check_date::<D::Error>(&s)?;
    }
    Ok(s)
}

/// An optional date or timestamp (1970–2099).
pub fn de_opt_date<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let s = String::deserialize(d)?;
    check_date::<D::Error>(&s)?;
    Ok(Some(s))
}

/// Optional text of at most `MAX` characters (as sent, before trimming) without control characters.
pub fn de_plain_text<'de, D: Deserializer<'de>, const MAX: usize>(
    d: D,
) -> Result<Option<String>, D::Error> {
    let s = String::deserialize(d)?;
    if s.chars().count() > MAX {
        return Err(rule::<D::Error>(format!("at most {MAX} characters")));
    }
    if s.chars().any(char::is_control) {
        return Err(rule::<D::Error>("must not contain control characters"));
    }
    Ok(Some(s))
}

/// Required text of at most `MAX` characters (as sent) without control characters.
pub fn de_required_plain_text<'de, D: Deserializer<'de>, const MAX: usize>(
    d: D,
) -> Result<String, D::Error> {
    de_plain_text::<D, MAX>(d).map(Option::unwrap_or_default)
}

/// An optional strategy name: at most 80 characters as sent, at least one visible, no control characters.
pub fn de_name<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let s = String::deserialize(d)?;
    if s.trim().is_empty() {
        return Err(rule::<D::Error>("give the strategy a name"));
    }
    if s.chars().count() > 80 {
        return Err(rule::<D::Error>("at most 80 characters"));
    }
    if s.chars().any(char::is_control) {
        return Err(rule::<D::Error>("must not contain control characters"));
    }
    Ok(Some(s))
}

/// A required name, by the rules of [`de_name`].
pub fn de_required_name<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    de_name(d).map(Option::unwrap_or_default)
}

/// A catalogue slug (`backend::backtest::catalogue::is_slug`).
pub fn de_slug<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    if backend::backtest::catalogue::is_slug(&s) {
        Ok(s)
    } else {
        Err(rule::<D::Error>(format!(
            "1 to {} characters: lower-case letters, digits, `_` and `-`, starting with a letter or digit",
            backend::backtest::catalogue::MAX_SLUG
        )))
    }
}

/// A version note: at most 500 characters, no control characters.
pub fn de_note<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let s = String::deserialize(d)?;
    if s.chars().count() > backend::backtest::catalogue::MAX_NOTE {
        return Err(rule::<D::Error>(format!(
            "at most {} characters",
            backend::backtest::catalogue::MAX_NOTE
        )));
    }
    if s.chars().any(char::is_control) {
        return Err(rule::<D::Error>("must not contain control characters"));
    }
    Ok(Some(s))
}

/// An optional description: at most 2000 characters as sent, no control characters but tab and line breaks.
pub fn de_description<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let s = String::deserialize(d)?;
    if s.chars().count() > 2000 {
        return Err(rule::<D::Error>("at most 2000 characters"));
    }
    if s.chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\t' | '\r'))
    {
        return Err(rule::<D::Error>("must not contain control characters"));
    }
    Ok(Some(s))
}

/// `instrument_ids`: 1–10 instrument ids.
pub fn instrument_ids_schema() -> utoipa::openapi::schema::Array {
    utoipa::openapi::schema::ArrayBuilder::new()
        .items(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(1))
                .maximum(Some(i32::MAX)),
        )
        .min_items(Some(1))
        .max_items(Some(10))
        .description(Some(
            "One run per instrument (1–10 ids), see `GET /api/v1/market/instruments`.",
        ))
        .build()
}

/// A trace time: epoch milliseconds (1–15 digits) or a date/timestamp as [`date_schema`].
pub fn trace_time_schema() -> RefOr<Schema> {
    AnyOfBuilder::new()
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(r"^[0-9]{1,15}$")),
        )
        .item(date_schema())
        .description(Some(
            "The bar to explain: epoch milliseconds (the open time of a bar or any time inside it), or \
             `YYYY-MM-DD` / RFC 3339.",
        ))
        .into()
}

/// A trace time, as [`trace_time_schema`].
pub fn de_trace_time<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let s = String::deserialize(d)?;
    let ms = !s.is_empty() && s.len() <= 15 && s.bytes().all(|b| b.is_ascii_digit());
    if !ms {
        check_date::<D::Error>(&s)?;
    }
    Ok(Some(s))
}

/// Strategy source when given: a string (not `null`).
pub fn de_source<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    String::deserialize(d).map(Some)
}

/// The type of a required `timeframe` query parameter (its schema is [`timeframe_schema`]).
pub struct TimeframeParam;

impl utoipa::PartialSchema for TimeframeParam {
    fn schema() -> RefOr<Schema> {
        timeframe_schema().into()
    }
}

impl utoipa::ToSchema for TimeframeParam {}

/// The type of a required trace `time` query parameter (its schema is [`trace_time_schema`]).
pub struct TraceTimeParam;

impl utoipa::PartialSchema for TraceTimeParam {
    fn schema() -> RefOr<Schema> {
        trace_time_schema()
    }
}

impl utoipa::ToSchema for TraceTimeParam {}
