//! Paper trading: the runs list (filters in the query string), the start form (prefilled from the query
//! string by the "Paper-trade this" buttons of a strategy and of a finished backtest), one run's page and
//! its parity report.
//!
//! Without JavaScript every page works as plain HTML: the forms post to `server::routes::paper` (CSRF token,
//! Post/Redirect/Get) and a run page shows the state at the time of the request. After hydration the run
//! page listens to `/api/events/paper/{id}` (server-sent events) and re-reads its data whenever the run
//! changes, without a reload.

mod list;
mod live;
mod new;
mod parity;
mod run;

pub use list::PaperRunsPage;
pub use new::NewPaperRunPage;
pub use parity::ParityPage;
pub use run::PaperRunPage;

/// What a gate means, in words (the engine's `Gate`).
pub(crate) fn gate_words(gate: &str) -> &'static str {
    match gate {
        "open" => "open: the strategy trades normally",
        "halt" => {
            "halt: no new orders; protective stops and targets attached at entry keep working"
        }
        "no_entry" => "no entry: no buy signal arrived, so no new entry here; exits work",
        "reduce_only" => "reduce-only: exits allowed, no new entries",
        "flatten" => "flatten: the position is sold at the next fill, then the run halts",
        "warmup" => "warm-up: indicators see the candle, nothing is decided",
        _ => "unknown gate",
    }
}

/// The path of the start form prefilled with a run's settings ("Paper-trade this").
pub fn start_link(
    strategy_id: &str,
    version: i32,
    params: &[(String, String)],
    instrument_id: Option<i32>,
    timeframe: Option<&str>,
    config: Option<&engine::backtest::BacktestConfig>,
) -> String {
    let mut q = vec![
        ("strategy".to_owned(), strategy_id.to_owned()),
        ("version".to_owned(), version.to_string()),
    ];
    for (k, v) in params {
        q.push((format!("param.{k}"), v.clone()));
    }
    if let Some(i) = instrument_id {
        q.push(("instrument_id".into(), i.to_string()));
    }
    if let Some(t) = timeframe {
        q.push(("timeframe".into(), t.to_owned()));
    }
    if let Some(c) = config {
        q.push(("initial_cash".into(), c.initial_cash.to_string()));
        // In percent, without the float noise of the multiplication (0.001 × 100 = 0.1, not 0.10000000000000002).
        let fee_pct = (c.fee * 100.0 * 1e9).round() / 1e9;
        q.push(("fee_pct".into(), fee_pct.to_string()));
        q.push(("slippage_bps".into(), c.slippage_bps.to_string()));
        let fill = match c.fill {
            engine::backtest::Fill::NextOpen => "next_open",
            engine::backtest::Fill::SameClose => "same_close",
        };
        q.push(("fill".into(), fill.into()));
    }
    let query = q
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    format!("/paper/new?{query}")
}

/// Percent-encodes a query component.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char);
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_start_link_carries_the_settings_encoded() {
        let cfg = engine::backtest::BacktestConfig {
            fee: 0.001,
            ..Default::default()
        };
        let l = super::start_link(
            "s1",
            3,
            &[("fast".into(), "12".into()), ("a b".into(), "x&y".into())],
            Some(7),
            Some("5m"),
            Some(&cfg),
        );
        assert!(l.starts_with("/paper/new?strategy=s1&version=3&param.fast=12&param.a%20b=x%26y&instrument_id=7&timeframe=5m&initial_cash=10000&fee_pct=0.1&"), "{l}");
        assert!(l.ends_with("fill=next_open"), "{l}");
    }
}
