//! The typed events: one payload struct per type, serialised with its `type` tag into `notify_event.payload`.
//! A payload is self-contained (everything a title, an email or a chat message needs), because `notify` never
//! reads the emitter's tables (docs/design/notifications.md §0, "Layering").

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::catalogue::{self, EventSpec};

/// At most this many points in a payload's sparkline.
pub const SPARKLINE_POINTS: usize = 200;

/// A backtest run finished (status `done`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BacktestFinished {
    /// The run's owner.
    pub user_id: Uuid,
    pub run_id: Uuid,
    pub batch_id: Uuid,
    pub strategy_id: Uuid,
    pub strategy_name: String,
    pub symbol: String,
    pub timeframe: String,
    pub range_from: DateTime<Utc>,
    pub range_to: DateTime<Utc>,
    pub total_return: Option<f64>,
    pub sharpe: Option<f64>,
    pub max_drawdown: Option<f64>,
    pub trade_count: i32,
    pub final_equity: Option<f64>,
    /// The equity curve, at most [`SPARKLINE_POINTS`] points.
    pub sparkline: Vec<f32>,
}

/// A backtest run failed (not cancelled).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BacktestFailed {
    pub user_id: Uuid,
    pub run_id: Uuid,
    pub batch_id: Uuid,
    pub strategy_name: String,
    pub symbol: String,
    pub timeframe: String,
    /// What the trader sees on the run (never an infrastructure detail).
    pub error: String,
}

/// A test notification (admin or the user's own "send a test").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SystemTest {
    pub user_id: Uuid,
    /// `admin` or `self`.
    pub sent_by: String,
    pub note: String,
    /// Only this channel (a test of one channel); `None`: every channel, as the preferences say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<super::catalogue::Channel>,
}

/// A webhook was disabled: its destination is gone (HTTP 410/404) or failed too often in a row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookDisabled {
    /// The webhook's owner.
    pub user_id: Uuid,
    pub webhook_id: Uuid,
    pub name: String,
    /// `gone` or `failing`.
    pub reason: String,
    /// The delivery whose failure disabled it (one event per disabling).
    pub delivery_id: Uuid,
}

/// The relay refused the user's address for good: no more email goes to it until the mark is cleared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmailUndeliverable {
    pub user_id: Uuid,
    pub smtp_code: Option<u16>,
    /// The relay's reply (clipped to 500 characters).
    pub smtp_message: String,
}

/// Every event with a payload. The `type` tag is the catalogue name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum Event {
    #[serde(rename = "backtest.finished")]
    BacktestFinished(BacktestFinished),
    #[serde(rename = "backtest.failed")]
    BacktestFailed(BacktestFailed),
    #[serde(rename = "system.test")]
    SystemTest(SystemTest),
    #[serde(rename = "notify.webhook_disabled")]
    WebhookDisabled(WebhookDisabled),
    #[serde(rename = "notify.email_undeliverable")]
    EmailUndeliverable(EmailUndeliverable),
}

/// Every type name with a payload variant (for tests and samples).
pub const TYPES: &[&str] = &[
    "backtest.finished",
    "backtest.failed",
    "system.test",
    "notify.webhook_disabled",
    "notify.email_undeliverable",
];

/// Cuts `s` to at most `max` characters, ending in `…` when cut.
pub fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}

/// A fraction as a signed percentage (`+1.23 %`), `–` when missing or not finite.
pub fn pct(x: Option<f64>) -> String {
    x.filter(|v| v.is_finite())
        .map_or_else(|| "–".to_owned(), |v| format!("{:+.2} %", v * 100.0))
}

impl Event {
    /// The catalogue name (`backtest.finished`).
    pub fn type_name(&self) -> &'static str {
        match self {
            Event::BacktestFinished(_) => "backtest.finished",
            Event::BacktestFailed(_) => "backtest.failed",
            Event::SystemTest(_) => "system.test",
            Event::WebhookDisabled(_) => "notify.webhook_disabled",
            Event::EmailUndeliverable(_) => "notify.email_undeliverable",
        }
    }

    /// The type's catalogue entry.
    ///
    /// # Panics
    /// Never: a unit test checks every variant has one.
    pub fn spec(&self) -> &'static EventSpec {
        catalogue::find(self.type_name()).expect("every event type is in the catalogue")
    }

    /// The user the event is about (its recipient for `user` audience types).
    pub fn user_id(&self) -> Option<Uuid> {
        match self {
            Event::BacktestFinished(e) => Some(e.user_id),
            Event::BacktestFailed(e) => Some(e.user_id),
            Event::SystemTest(e) => Some(e.user_id),
            Event::WebhookDisabled(e) => Some(e.user_id),
            Event::EmailUndeliverable(e) => Some(e.user_id),
        }
    }

    /// A second emit with the same key is a no-op (`None`: every emit is a new event).
    pub fn dedupe_key(&self) -> Option<String> {
        match self {
            Event::BacktestFinished(e) => Some(format!("backtest.finished:{}", e.run_id)),
            Event::BacktestFailed(e) => Some(format!("backtest.failed:{}", e.run_id)),
            Event::SystemTest(_) | Event::EmailUndeliverable(_) => None,
            Event::WebhookDisabled(e) => Some(format!("notify.webhook_disabled:{}", e.delivery_id)),
        }
    }

    /// The key bursts are coalesced by (for coalescible types).
    pub fn coalesce_key(&self) -> Option<String> {
        match self {
            Event::BacktestFinished(BacktestFinished { batch_id, .. })
            | Event::BacktestFailed(BacktestFailed { batch_id, .. }) => {
                Some(format!("backtest.batch:{batch_id}"))
            }
            Event::SystemTest(_) | Event::WebhookDisabled(_) | Event::EmailUndeliverable(_) => None,
        }
    }

    /// The one-line title (≤ 200 characters).
    pub fn title(&self) -> String {
        let t = match self {
            Event::BacktestFinished(e) => format!(
                "Backtest finished: {} on {} {} ({})",
                e.strategy_name,
                e.symbol,
                e.timeframe,
                pct(e.total_return)
            ),
            Event::BacktestFailed(e) => format!(
                "Backtest failed: {} on {} {}",
                e.strategy_name, e.symbol, e.timeframe
            ),
            Event::SystemTest(_) => "Test notification".to_owned(),
            Event::WebhookDisabled(e) => format!("Webhook disabled: {}", e.name),
            Event::EmailUndeliverable(_) => "We cannot deliver email to your address".to_owned(),
        };
        clip(&t, 200)
    }

    /// A short body for the in-app list (≤ 2 000 characters).
    pub fn body(&self) -> String {
        let b = match self {
            Event::BacktestFinished(e) => format!(
                "{} trades, return {}, max drawdown {}, from {} to {}.",
                e.trade_count,
                pct(e.total_return),
                pct(e.max_drawdown),
                e.range_from.format("%Y-%m-%d"),
                e.range_to.format("%Y-%m-%d"),
            ),
            Event::BacktestFailed(e) => e.error.clone(),
            Event::SystemTest(e) => {
                if e.note.is_empty() {
                    format!("Sent by {}: notifications reach you here.", e.sent_by)
                } else {
                    format!("Sent by {}: {}", e.sent_by, e.note)
                }
            }
            Event::WebhookDisabled(e) => {
                if e.reason == "gone" {
                    "The destination says this webhook no longer exists (HTTP 410 or 404), so nothing more is \
                     sent to it. Enable it again once it is fixed."
                        .to_owned()
                } else {
                    "Deliveries to this webhook failed too many times in a row, so nothing more is sent to it. \
                     Check the delivery log, fix the receiver and enable it again."
                        .to_owned()
                }
            }
            Event::EmailUndeliverable(e) => format!(
                "The mail server refused your address for good{}: {}. No more email is sent to it until you \
                 check the address and retry.",
                e.smtp_code.map(|c| format!(" ({c})")).unwrap_or_default(),
                e.smtp_message
            ),
        };
        clip(&b, 2000)
    }

    /// Where the notification leads: a path on this site.
    pub fn url(&self) -> Option<String> {
        match self {
            Event::BacktestFinished(BacktestFinished { run_id, .. })
            | Event::BacktestFailed(BacktestFailed { run_id, .. }) => {
                Some(format!("/backtests/{run_id}"))
            }
            Event::SystemTest(_) => Some("/notifications".to_owned()),
            Event::WebhookDisabled(_) => Some("/notifications/settings".to_owned()),
            Event::EmailUndeliverable(_) => Some("/account".to_owned()),
        }
    }

    /// A sample of `type_name` for `user_id` (tests, previews, "send a test").
    pub fn sample(type_name: &str, user_id: Uuid) -> Option<Event> {
        let run_id = Uuid::from_u128(0x5a4d_91e2);
        let t0 = DateTime::parse_from_rfc3339("2019-10-11T00:00:00Z")
            .ok()?
            .to_utc();
        Some(match type_name {
            "backtest.finished" => Event::BacktestFinished(BacktestFinished {
                user_id,
                run_id,
                batch_id: run_id,
                strategy_id: run_id,
                strategy_name: "MACD crossover".into(),
                symbol: "ETHBTC".into(),
                timeframe: "5m".into(),
                range_from: t0,
                range_to: t0 + chrono::Duration::days(2),
                total_return: Some(0.0412),
                sharpe: Some(1.3),
                max_drawdown: Some(-0.021),
                trade_count: 17,
                final_equity: Some(10_412.0),
                sparkline: (0..SPARKLINE_POINTS)
                    .map(|i| 10_000.0 + (i as f32 * 0.3).sin() * 50.0 + i as f32 * 2.0)
                    .collect(),
            }),
            "backtest.failed" => Event::BacktestFailed(BacktestFailed {
                user_id,
                run_id,
                batch_id: run_id,
                strategy_name: "MACD crossover".into(),
                symbol: "ETHBTC".into(),
                timeframe: "5m".into(),
                error: "only 1 candle(s) are stored for this range now; load market data for it and run again"
                    .into(),
            }),
            "system.test" => Event::SystemTest(SystemTest {
                user_id,
                sent_by: "self".into(),
                note: String::new(),
                channel: None,
            }),
            "notify.webhook_disabled" => Event::WebhookDisabled(WebhookDisabled {
                user_id,
                webhook_id: run_id,
                name: "Team channel".into(),
                reason: "failing".into(),
                delivery_id: run_id,
            }),
            "notify.email_undeliverable" => Event::EmailUndeliverable(EmailUndeliverable {
                user_id,
                smtp_code: Some(550),
                smtp_message: "5.1.1 no such user".into(),
            }),
            _ => return None,
        })
    }
}

/// Thins a series to at most [`SPARKLINE_POINTS`] finite points (every n-th, the last one kept).
pub fn sparkline(values: &[f64]) -> Vec<f32> {
    #[allow(clippy::cast_possible_truncation)]
    let f = |v: f64| v as f32;
    let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    let values = finite.as_slice();
    if values.len() <= SPARKLINE_POINTS {
        return values.iter().copied().map(f).collect();
    }
    let step = values.len().div_ceil(SPARKLINE_POINTS);
    let mut out: Vec<f32> = values.iter().step_by(step).copied().map(f).collect();
    if let (Some(last), Some(&v)) = (out.last_mut(), values.last())
        && !(values.len() - 1).is_multiple_of(step)
    {
        *last = f(v);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notif_every_event_type_has_a_spec_a_sample_and_round_trips_through_json() {
        let user = Uuid::from_u128(7);
        for &t in TYPES {
            let e = Event::sample(t, user).unwrap_or_else(|| panic!("no sample for {t}"));
            assert_eq!(e.type_name(), t);
            assert_eq!(e.spec().name, t);
            let json = serde_json::to_value(&e).unwrap();
            assert_eq!(json["type"], t);
            assert_eq!(serde_json::from_value::<Event>(json).unwrap(), e);
            assert!(!e.title().is_empty() && e.title().chars().count() <= 200);
            assert!(e.body().chars().count() <= 2000);
            assert!(e.url().is_none_or(|u| u.starts_with('/')));
            if e.spec().audience == catalogue::Audience::User {
                assert_eq!(e.user_id(), Some(user));
            }
            assert_eq!(e.coalesce_key().is_some(), e.spec().coalescible, "{t}");
        }
        assert!(Event::sample("nope", user).is_none());
    }

    #[test]
    fn notif_titles_are_clipped_and_sparklines_thinned() {
        let mut e = Event::sample("backtest.failed", Uuid::nil()).unwrap();
        if let Event::BacktestFailed(p) = &mut e {
            p.strategy_name = "x".repeat(10_000);
            p.error = "y".repeat(10_000);
        }
        assert_eq!(e.title().chars().count(), 200);
        assert_eq!(e.body().chars().count(), 2000);
        let long: Vec<f64> = (0..1001).map(f64::from).collect();
        let s = sparkline(&long);
        assert!(s.len() <= SPARKLINE_POINTS && s.len() > 150, "{}", s.len());
        assert_eq!(s[0], 0.0);
        assert_eq!(*s.last().unwrap(), 1000.0);
        assert_eq!(sparkline(&[1.0, 2.0]), vec![1.0, 2.0]);
    }
}
