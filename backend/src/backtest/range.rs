//! The one date-range rule of every surface (form, REST API, server functions, `run-strategy`, `run-etl`):
//! a range is `[from, to)` in epoch milliseconds; a bound is a date (`YYYY-MM-DD`, 00:00 UTC), an ISO 8601
//! timestamp or epoch milliseconds; and an END given as a bare date is inclusive: "to 2024-01-31" means up to
//! the end of the 31st (the exclusive bound is the next midnight). A timestamp end is exclusive as written.

use super::Error;

/// Which end of a range a bound is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Start,
    End,
}

/// Whether `text` is a bare calendar date (`YYYY-MM-DD`).
fn is_date(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}

/// Parses one bound to epoch milliseconds under the rule above; `field` names the input in the error.
///
/// # Errors
/// [`Error::Invalid`] naming `field` (empty, or not a date or timestamp).
pub fn bound(field: &str, text: &str, end: End) -> Result<i64, Error> {
    let t = text.trim();
    if t.is_empty() {
        return Err(Error::invalid(
            field,
            format!(
                "give {} date",
                if end == End::End { "an end" } else { "a start" }
            ),
        ));
    }
    let ms = engine::time::parse_timestamp(t)
        .map_err(|e| Error::invalid(field, format!("`{t}` is not a date or timestamp: {e}")))?;
    Ok(if end == End::End && is_date(t) {
        ms + engine::time::DAY_MS
    } else {
        ms
    })
}

/// Parses a range: both bounds, and the end after the start.
///
/// # Errors
/// [`Error::Invalid`] naming `from` or `to`.
pub fn range(from: &str, to: &str) -> Result<(i64, i64), Error> {
    let from = bound("from", from, End::Start)?;
    let to = bound("to", to, End::End)?;
    if to <= from {
        return Err(Error::invalid("to", "the end must be after the start"));
    }
    Ok((from, to))
}

/// A start bound for a command-line parser (`clap`'s `value_parser`).
///
/// # Errors
/// The message of [`bound`]'s error.
pub fn start_arg(text: &str) -> Result<i64, String> {
    bound("from", text, End::Start).map_err(|e| e.message())
}

/// An end bound for a command-line parser (`clap`'s `value_parser`): a bare date includes that day.
///
/// # Errors
/// The message of [`bound`]'s error.
pub fn end_arg(text: &str) -> Result<i64, String> {
    bound("to", text, End::End).map_err(|e| e.message())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_end_date_includes_that_day_a_timestamp_does_not() {
        let day = engine::time::DAY_MS;
        let from = bound("from", "2024-01-31", End::Start).unwrap();
        assert_eq!(bound("to", "2024-01-31", End::End).unwrap(), from + day);
        assert_eq!(bound("to", "2024-01-31T00:00:00Z", End::End).unwrap(), from);
        assert_eq!(bound("to", &from.to_string(), End::End).unwrap(), from);
        assert_eq!(end_arg("2024-01-31").unwrap(), from + day);
        assert_eq!(start_arg("2024-01-31").unwrap(), from);
        assert!(
            matches!(range("2024-01-02", "2024-01-01"), Err(Error::Invalid { field, .. }) if field == "to")
        );
        assert_eq!(
            range("2024-01-31", "2024-01-31").unwrap(),
            (from, from + day)
        );
        assert!(matches!(
            bound("from", " ", End::Start),
            Err(Error::Invalid { .. })
        ));
        assert!(matches!(
            bound("from", "yesterday", End::Start),
            Err(Error::Invalid { .. })
        ));
    }
}
