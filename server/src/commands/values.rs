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

/// `--timeframe`: a candle timeframe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TimeframeArg {
    #[value(name = "1m")]
    M1,
    #[value(name = "5m")]
    M5,
    #[value(name = "15m")]
    M15,
    #[value(name = "30m")]
    M30,
    #[value(name = "1h")]
    H1,
    #[value(name = "4h")]
    H4,
    #[value(name = "1d")]
    D1,
    #[value(name = "1w")]
    W1,
}

impl From<TimeframeArg> for Timeframe {
    fn from(t: TimeframeArg) -> Self {
        match t {
            TimeframeArg::M1 => Timeframe::M1,
            TimeframeArg::M5 => Timeframe::M5,
            TimeframeArg::M15 => Timeframe::M15,
            TimeframeArg::M30 => Timeframe::M30,
            TimeframeArg::H1 => Timeframe::H1,
            TimeframeArg::H4 => Timeframe::H4,
            TimeframeArg::D1 => Timeframe::D1,
            TimeframeArg::W1 => Timeframe::W1,
        }
    }
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
            let arg = TimeframeArg::from_str(tf.as_str(), true).unwrap();
            assert_eq!(Timeframe::from(arg), tf);
        }
        assert_eq!(
            Timeframe::from(TimeframeArg::from_str("1H", true).unwrap()),
            Timeframe::H1
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
