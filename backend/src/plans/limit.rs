//! The limits a plan sets: names, words, bounds, and their checked parsing from JSON.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// One limit of a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Limit {
    /// Backtests queued or running at a time.
    ConcurrentBacktests,
    /// Backtests started per day (UTC).
    BacktestsPerDay,
    /// Candles one backtest may load (never above `BACKTEST_MAX_BARS`).
    CandlesPerBacktest,
    /// Paper-trading runs active at a time.
    ActivePaperRuns,
    /// Strategies kept (archived ones included).
    Strategies,
    /// REST API requests per minute.
    ApiRequestsPerMinute,
    /// How far back a backtest's range may start, in days.
    HistoryDays,
    /// Rows (trades) one export may contain.
    ExportRows,
    /// Trials of one optimisation (stored; optimisation does not exist yet).
    OptimisationTrials,
}

/// A set of limit values (a plan's, or an override).
pub type LimitValues = BTreeMap<Limit, i64>;

impl Limit {
    pub const ALL: [Limit; 9] = [
        Limit::ConcurrentBacktests,
        Limit::BacktestsPerDay,
        Limit::CandlesPerBacktest,
        Limit::ActivePaperRuns,
        Limit::Strategies,
        Limit::ApiRequestsPerMinute,
        Limit::HistoryDays,
        Limit::ExportRows,
        Limit::OptimisationTrials,
    ];

    /// The stable name (JSON keys, the CLI, problem bodies).
    pub fn key(self) -> &'static str {
        match self {
            Limit::ConcurrentBacktests => "concurrent_backtests",
            Limit::BacktestsPerDay => "backtests_per_day",
            Limit::CandlesPerBacktest => "candles_per_backtest",
            Limit::ActivePaperRuns => "active_paper_runs",
            Limit::Strategies => "strategies",
            Limit::ApiRequestsPerMinute => "api_requests_per_minute",
            Limit::HistoryDays => "history_days",
            Limit::ExportRows => "export_rows",
            Limit::OptimisationTrials => "optimisation_trials",
        }
    }

    /// Words for people.
    pub fn label(self) -> &'static str {
        match self {
            Limit::ConcurrentBacktests => "concurrent backtests",
            Limit::BacktestsPerDay => "backtests per day",
            Limit::CandlesPerBacktest => "candles per backtest",
            Limit::ActivePaperRuns => "active paper runs",
            Limit::Strategies => "strategies",
            Limit::ApiRequestsPerMinute => "API requests per minute",
            Limit::HistoryDays => "history depth (days)",
            Limit::ExportRows => "rows per export",
            Limit::OptimisationTrials => "optimisation trials",
        }
    }

    /// The limit by its name.
    pub fn parse(key: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|l| l.key() == key)
    }

    /// The values a plan or override may set (inclusive).
    pub fn bounds(self) -> (i64, i64) {
        match self {
            Limit::ConcurrentBacktests => (0, 1000),
            Limit::BacktestsPerDay => (0, 1_000_000),
            Limit::CandlesPerBacktest => (1000, 100_000_000),
            Limit::ActivePaperRuns => (0, 10_000),
            Limit::Strategies => (0, 1_000_000),
            Limit::ApiRequestsPerMinute => (1, 1_000_000),
            Limit::HistoryDays => (1, 36_500),
            Limit::ExportRows => (1, 1_000_000_000),
            Limit::OptimisationTrials => (0, 10_000_000),
        }
    }

    /// Checks one value, naming the field (`<prefix>.<key>`) when it is wrong.
    ///
    /// # Errors
    /// [`Error::Invalid`].
    pub fn check(self, prefix: &str, v: &serde_json::Value) -> Result<i64> {
        let (lo, hi) = self.bounds();
        v.as_i64().filter(|n| (lo..=hi).contains(n)).ok_or_else(|| {
            Error::invalid(
                &format!("{prefix}.{}", self.key()),
                format!("must be a whole number from {lo} to {hi} (or null for no specific value)"),
            )
        })
    }
}

/// Values stored by the actions (already checked); unknown names and wrong values are skipped.
pub fn parse_values(v: &serde_json::Value) -> LimitValues {
    v.as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((Limit::parse(k)?, v.as_i64()?)))
                .collect()
        })
        .unwrap_or_default()
}

/// The most entries a limits object may have (every limit once).
pub const MAX_ENTRIES: usize = Limit::ALL.len();

/// Applies changes (`name → value`, `null` removes the value) to `base`, checking every name and value.
///
/// # Errors
/// [`Error::Invalid`] naming `<prefix>.<name>` (unknown name, value out of bounds) or `<prefix>` (too many).
pub fn apply(
    base: &mut LimitValues,
    prefix: &str,
    changes: &BTreeMap<String, Option<serde_json::Value>>,
) -> Result<()> {
    if changes.len() > MAX_ENTRIES {
        return Err(Error::invalid(
            prefix,
            format!("at most {MAX_ENTRIES} limits"),
        ));
    }
    for (k, v) in changes {
        let limit = Limit::parse(k).ok_or_else(|| {
            let k: String = k.chars().take(40).collect();
            Error::invalid(
                &format!("{prefix}.{k}"),
                format!(
                    "unknown limit; use one of {}",
                    Limit::ALL.map(Limit::key).join(", ")
                ),
            )
        })?;
        match v {
            None | Some(serde_json::Value::Null) => {
                base.remove(&limit);
            }
            Some(v) => {
                base.insert(limit, limit.check(prefix, v)?);
            }
        }
    }
    Ok(())
}

/// The values as a JSON object (for storing and audit entries).
pub fn to_json(values: &LimitValues) -> serde_json::Value {
    serde_json::Value::Object(
        values
            .iter()
            .map(|(k, v)| (k.key().to_owned(), (*v).into()))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_values_are_bounded() {
        for l in Limit::ALL {
            assert_eq!(Limit::parse(l.key()), Some(l));
        }
        let mut base = LimitValues::new();
        let ok: BTreeMap<String, Option<serde_json::Value>> =
            [("strategies".to_owned(), Some(5.into()))].into();
        apply(&mut base, "limits", &ok).unwrap();
        assert_eq!(base.get(&Limit::Strategies), Some(&5));
        for (k, v, field) in [
            ("strategies", serde_json::json!(-1), "limits.strategies"),
            ("strategies", serde_json::json!(1e30), "limits.strategies"),
            ("strategies", serde_json::json!("5"), "limits.strategies"),
            ("nope", serde_json::json!(1), "limits.nope"),
        ] {
            let bad: BTreeMap<String, Option<serde_json::Value>> = [(k.to_owned(), Some(v))].into();
            match apply(&mut base, "limits", &bad) {
                Err(Error::Invalid { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{k}: {other:?}"),
            }
        }
        let clear: BTreeMap<String, Option<serde_json::Value>> =
            [("strategies".to_owned(), None)].into();
        apply(&mut base, "limits", &clear).unwrap();
        assert!(base.is_empty());
    }
}
