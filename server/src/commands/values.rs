//! Closed sets of command-line values as clap `ValueEnum`s: `--help` lists them and a bad value gets clap's
//! error naming the flag and the choices (exit status 2). Matching ignores case; the spellings the
//! commands accepted as free strings are kept as aliases.

use backend::market::etl::Mode;
use clap::ValueEnum;
use engine::{backtest::Fill, candles::Timeframe};

/// `--fill`: when an order triggered at a bar's close is filled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FillArg {
    /// At the next bar's open (the default).
    #[value(name = "next-open", alias = "open", alias = "next_open")]
    NextOpen,
    /// At the signal bar's own close.
    #[value(name = "close", alias = "same-close", alias = "same_close")]
    SameClose,
}

impl From<FillArg> for Fill {
    fn from(f: FillArg) -> Self {
        match f {
            FillArg::NextOpen => Fill::NextOpen,
            FillArg::SameClose => Fill::SameClose,
        }
    }
}

/// `--timeframe`: a candle timeframe (1m 5m 15m 30m 1h 4h 1d 1w, any case), typed at parse time. Not a
/// `ValueEnum`: the engine's own message (`unknown timeframe `2h` (expected one of …)`) is kept, inside
/// clap's error for the flag.
///
/// # Errors
/// The engine's message for an unknown timeframe.
pub fn timeframe(s: &str) -> Result<Timeframe, String> {
    Timeframe::parse(s).map_err(|e| e.to_string())
}

/// `run-etl --mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    /// From the newest stored candle up to now.
    Daily,
    /// The `--from`/`--to` range (default: the last 30 days).
    Backfill,
}

impl From<ModeArg> for Mode {
    fn from(m: ModeArg) -> Self {
        match m {
            ModeArg::Daily => Mode::Daily,
            ModeArg::Backfill => Mode::Backfill,
        }
    }
}

/// `jobs list --status`: a job row's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum JobStatusArg {
    Queued,
    Running,
    Done,
    Failed,
    Cancelled,
}

impl JobStatusArg {
    /// The `job.status` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Done => "done",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::ValueEnum;

    use super::*;

    #[test]
    fn every_timeframe_is_accepted_under_its_canonical_label() {
        for tf in Timeframe::ALL {
            assert_eq!(timeframe(tf.as_str()), Ok(tf));
        }
        assert_eq!(timeframe("1H"), Ok(Timeframe::H1));
        assert!(
            timeframe("2h")
                .unwrap_err()
                .contains("unknown timeframe `2h`")
        );
    }

    #[test]
    fn fill_keeps_the_spellings_it_accepted_as_a_string() {
        for s in [
            "next-open",
            "open",
            "NEXT_OPEN",
            "close",
            "same-close",
            "Same_Close",
        ] {
            let arg = FillArg::from_str(s, true).unwrap();
            assert_eq!(Some(Fill::from(arg)), Fill::parse(s), "{s}");
        }
        assert!(FillArg::from_str("sometimes", true).is_err());
    }
}
