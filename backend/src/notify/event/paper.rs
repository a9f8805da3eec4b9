//! The payloads of paper-trading events (audience: the run's owner). Each names the run, so per-run
//! preference overrides apply (`notify_event.paper_run_id`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// What every paper event says about its run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaperRunRef {
    pub user_id: Uuid,
    pub run_id: Uuid,
    pub strategy_name: String,
    pub symbol: String,
    pub timeframe: String,
}

impl PaperRunRef {
    /// `MACD crossover on ETHBTC 5m`.
    pub fn label(&self) -> String {
        format!(
            "{} on {} {}",
            self.strategy_name, self.symbol, self.timeframe
        )
    }

    pub fn url(&self) -> String {
        format!("/paper/{}", self.run_id)
    }
}

/// A rule fired at a candle's close and an order was submitted (fills at the next open).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaperSignal {
    #[serde(flatten)]
    pub run: PaperRunRef,
    /// `buy` or `sell`.
    pub side: String,
    /// The rule's text, or the exit reason when no rule fired (max bars, flatten).
    pub rule: String,
    /// Open time of the candle whose close decided it.
    pub candle_time: DateTime<Utc>,
    pub close: f64,
}

/// An order filled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaperFill {
    #[serde(flatten)]
    pub run: PaperRunRef,
    pub side: String,
    pub price: f64,
    pub units: f64,
    pub fee: f64,
    /// `entry`, or the exit reason (`signal`, `stop_loss`, …).
    pub reason: String,
    /// Net profit of the round trip this fill closed.
    pub pnl: Option<f64>,
    pub candle_time: DateTime<Utc>,
}

/// An order decided at the previous close was cancelled before it filled (a kill switch or risk lock).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaperOrderCancelled {
    #[serde(flatten)]
    pub run: PaperRunRef,
    pub side: String,
    /// The gate that cancelled it (`reduce_only`, `halt`, `flatten`).
    pub gate: String,
    pub candle_time: DateTime<Utc>,
}

/// The run stopped because of an error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaperStoppedError {
    #[serde(flatten)]
    pub run: PaperRunRef,
    pub error: String,
}

/// Candles are missing between two the run processed (a gap in the feed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaperDataGap {
    #[serde(flatten)]
    pub run: PaperRunRef,
    pub gap_from: DateTime<Utc>,
    pub gap_to: DateTime<Utc>,
    pub candles: i32,
}

fn num(x: f64) -> String {
    if x.abs() >= 1000.0 {
        format!("{x:.2}")
    } else {
        format!("{x:.6}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_owned()
    }
}

impl PaperSignal {
    pub fn title(&self) -> String {
        format!("Paper {} signal: {}", self.side, self.run.label())
    }
    pub fn body(&self) -> String {
        format!(
            "At the close of the {} UTC candle ({}), `{}` fired: a {} order fills at the next open.",
            self.candle_time.format("%Y-%m-%d %H:%M"),
            num(self.close),
            self.rule,
            self.side
        )
    }
}

impl PaperFill {
    pub fn title(&self) -> String {
        let verb = if self.side == "buy" { "Bought" } else { "Sold" };
        format!(
            "{verb} {} at {}: {}",
            num(self.units),
            num(self.price),
            self.run.label()
        )
    }
    pub fn body(&self) -> String {
        let pnl = self
            .pnl
            .map(|p| format!(" The round trip made {}.", num(p)))
            .unwrap_or_default();
        format!(
            "{} {} units at {} (fee {}) in the {} UTC candle, reason: {}.{pnl}",
            if self.side == "buy" { "Bought" } else { "Sold" },
            num(self.units),
            num(self.price),
            num(self.fee),
            self.candle_time.format("%Y-%m-%d %H:%M"),
            self.reason.replace('_', " "),
        )
    }
}

impl PaperOrderCancelled {
    pub fn title(&self) -> String {
        format!("Paper order cancelled: {}", self.run.label())
    }
    pub fn body(&self) -> String {
        format!(
            "The {} order decided before the {} UTC candle was cancelled: the run is {}.",
            self.side,
            self.candle_time.format("%Y-%m-%d %H:%M"),
            self.gate.replace('_', "-")
        )
    }
}

impl PaperStoppedError {
    pub fn title(&self) -> String {
        format!("Paper run stopped by an error: {}", self.run.label())
    }
    pub fn body(&self) -> String {
        format!(
            "The run stopped and processes no more candles: {}",
            self.error
        )
    }
}

impl PaperDataGap {
    pub fn title(&self) -> String {
        format!("Data gap in a paper run: {}", self.run.label())
    }
    pub fn body(&self) -> String {
        format!(
            "{} candle(s) from {} to {} UTC are missing from the feed. The run went on with the next stored \
             candle; nothing was filled in. The parity report lists the gap.",
            self.candles,
            self.gap_from.format("%Y-%m-%d %H:%M"),
            self.gap_to.format("%Y-%m-%d %H:%M")
        )
    }
}

/// A paper run breached one of its risk limits: from its next candle it runs under `mode`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RiskLimitHit {
    #[serde(flatten)]
    pub run: PaperRunRef,
    /// `max_drawdown`, `daily_loss`, `consecutive_losses`, `max_position_value`, `max_orders_per_day`,
    /// `stale_feed`.
    pub limit: String,
    pub value: f64,
    pub threshold: f64,
    /// `reduce_only`, `halt` or `flatten`.
    pub mode: String,
    pub reason: String,
    /// The candle at whose close it was found.
    pub candle_time: DateTime<Utc>,
    /// When the lock ends by itself (daily limits), else it holds until released on the run page.
    pub until: Option<DateTime<Utc>>,
}

impl RiskLimitHit {
    pub fn title(&self) -> String {
        format!(
            "Risk limit hit ({}): {}",
            self.limit.replace('_', " "),
            self.run.label()
        )
    }
    pub fn body(&self) -> String {
        let until = self.until.map_or_else(
            || "until you release it on the run page".to_owned(),
            |u| format!("until {} UTC", u.format("%Y-%m-%d %H:%M")),
        );
        format!(
            "At the close of the {} UTC candle {}. The run is {} from its next candle, {until}.",
            self.candle_time.format("%Y-%m-%d %H:%M"),
            self.reason,
            self.mode.replace('_', "-"),
        )
    }
}

/// Samples (tests, previews, "send a test").
pub(super) fn sample_run(user_id: Uuid, run_id: Uuid) -> PaperRunRef {
    PaperRunRef {
        user_id,
        run_id,
        strategy_name: "SMA crossover".into(),
        symbol: "ETHBTC".into(),
        timeframe: "1m".into(),
    }
}

/// A kill switch was thrown or released over some of the user's runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KillSwitchChange {
    /// The recipient (a user whose runs it affects).
    pub user_id: Uuid,
    pub switch_id: Uuid,
    /// `platform`, `user` or `run`.
    pub scope: String,
    pub run_id: Option<Uuid>,
    /// `reduce_only`, `halt` or `flatten`.
    pub mode: String,
    pub reason: String,
    /// `an administrator` or `you`.
    pub by: String,
}

impl KillSwitchChange {
    fn what(&self) -> &'static str {
        match self.scope.as_str() {
            "platform" => "every paper run on the platform",
            "user" => "all your paper runs",
            _ => "one of your paper runs",
        }
    }

    fn mode_words(&self) -> &'static str {
        match self.mode.as_str() {
            "reduce_only" => "reduce-only: exits still work, no new entries",
            "flatten" => "flatten: open positions are sold at the next open, then no new orders",
            _ => "halt: no new orders (protective stops and targets keep working)",
        }
    }

    pub fn title(&self, thrown: bool) -> String {
        if thrown {
            format!(
                "Kill switch thrown: {} ({})",
                self.what(),
                self.mode.replace('_', "-")
            )
        } else {
            format!("Kill switch released: {}", self.what())
        }
    }

    pub fn body(&self, thrown: bool) -> String {
        if thrown {
            format!(
                "{} threw a kill switch over {} from their next candle — {}. Reason: {}",
                capitalised(&self.by),
                self.what(),
                self.mode_words(),
                self.reason
            )
        } else {
            let why = if self.reason.is_empty() {
                String::new()
            } else {
                format!(" Reason: {}", self.reason)
            };
            format!(
                "{} released the kill switch over {}; the runs trade normally again from their next candle.{why}",
                capitalised(&self.by),
                self.what()
            )
        }
    }

    pub fn url(&self) -> String {
        self.run_id
            .map_or_else(|| "/paper".to_owned(), |r| format!("/paper/{r}"))
    }
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}
