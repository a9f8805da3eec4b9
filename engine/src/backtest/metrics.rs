//! Performance metrics. Definitions: `docs/metrics.md`. Every metric carries its basis and,
//! when it would be meaningless for the sample, `value = None` with the reason.

use serde::{Deserialize, Serialize};

use super::{BacktestConfig, Trade};
use crate::candles::Candles;
use crate::time::DAY_MS;

/// Shortest period (days) for which annualised growth (CAGR, Calmar) is reported.
pub const MIN_DAYS_ANNUALISED: f64 = 90.0;
/// Fewest daily returns for volatility, Sharpe and Sortino.
pub const MIN_DAILY_RETURNS: usize = 10;
/// Fewest trades for Sharpe and Sortino (a ratio from two trades is noise).
pub const MIN_TRADES_RATIO: usize = 5;

/// A metric value, or n/a with the reason.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metric {
    pub value: Option<f64>,
    /// `fraction` (0.05 = 5 %), `ratio`, `currency` (quote), `count` or `bars`.
    pub unit: String,
    /// How it was computed, e.g. "daily mark-to-market returns, 365 days/year".
    pub basis: String,
    /// Why `value` is `None`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub na_reason: Option<String>,
}

impl Metric {
    fn ok(v: f64, unit: &str, basis: impl Into<String>) -> Self {
        if v.is_finite() {
            Self {
                value: Some(v),
                unit: unit.into(),
                basis: basis.into(),
                na_reason: None,
            }
        } else {
            Self::na(unit, basis, "not a finite number for this sample")
        }
    }
    fn na(unit: &str, basis: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            value: None,
            unit: unit.into(),
            basis: basis.into(),
            na_reason: Some(reason.into()),
        }
    }
    fn from(r: Result<f64, String>, unit: &str, basis: impl Into<String>) -> Self {
        match r {
            Ok(v) => Self::ok(v, unit, basis),
            Err(why) => Self::na(unit, basis, why),
        }
    }
}

/// All metrics of a result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    pub final_equity: Metric,
    pub total_return: Metric,
    pub cagr: Metric,
    pub annualised_volatility: Metric,
    pub sharpe: Metric,
    pub sortino: Metric,
    pub calmar: Metric,
    pub max_drawdown: Metric,
    pub max_drawdown_duration: Metric,
    pub trade_count: Metric,
    pub win_rate: Metric,
    pub profit_factor: Metric,
    pub expectancy: Metric,
    pub average_win: Metric,
    pub average_loss: Metric,
    pub best_trade: Metric,
    pub worst_trade: Metric,
    pub exposure: Metric,
    pub fees_paid: Metric,
    pub buy_and_hold_return: Metric,
}

impl Metrics {
    /// `(name, metric)` pairs in display order (for tables).
    pub fn iter(&self) -> [(&'static str, &Metric); 20] {
        [
            ("final_equity", &self.final_equity),
            ("total_return", &self.total_return),
            ("cagr", &self.cagr),
            ("annualised_volatility", &self.annualised_volatility),
            ("sharpe", &self.sharpe),
            ("sortino", &self.sortino),
            ("calmar", &self.calmar),
            ("max_drawdown", &self.max_drawdown),
            ("max_drawdown_duration", &self.max_drawdown_duration),
            ("trade_count", &self.trade_count),
            ("win_rate", &self.win_rate),
            ("profit_factor", &self.profit_factor),
            ("expectancy", &self.expectancy),
            ("average_win", &self.average_win),
            ("average_loss", &self.average_loss),
            ("best_trade", &self.best_trade),
            ("worst_trade", &self.worst_trade),
            ("exposure", &self.exposure),
            ("fees_paid", &self.fees_paid),
            ("buy_and_hold_return", &self.buy_and_hold_return),
        ]
    }
}

/// Equity at the last bar of each UTC day, as returns (the first relative to initial cash).
/// For timeframes longer than a day, one return per bar.
pub(crate) fn daily_returns(c: &Candles, equity: &[f64], initial: f64) -> Vec<f64> {
    let period = c.timeframe.millis().max(DAY_MS);
    let mut closes = Vec::new();
    // One division per day, not per bar: track the next day boundary.
    let mut boundary = match c.time.first() {
        Some(&t) => (t.div_euclid(period) + 1) * period,
        None => return closes,
    };
    for (i, &e) in equity.iter().enumerate().take(c.time.len()) {
        let next = c.time.get(i + 1).copied();
        if next.is_none_or(|u| u >= boundary) {
            closes.push(e);
            if let Some(u) = next {
                boundary = (u.div_euclid(period) + 1) * period;
            }
        }
    }
    let mut prev = initial;
    closes
        .into_iter()
        .map(|e| {
            let r = if prev > 0.0 { e / prev - 1.0 } else { 0.0 };
            prev = e;
            r
        })
        .collect()
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

pub(crate) fn compute(
    c: &Candles,
    cfg: &BacktestConfig,
    trades: &[Trade],
    equity: &[f64],
) -> Metrics {
    let n = equity.len();
    let initial = cfg.initial_cash;
    let last = equity.last().copied().unwrap_or(initial);
    let dpy = cfg.days_per_year;
    let tf = c.timeframe;
    let span_ms = (c.time[n - 1] - c.time[0]) + tf.millis();
    let days = span_ms as f64 / DAY_MS as f64;
    let period_label = if tf.millis() > DAY_MS {
        tf.to_string()
    } else {
        "daily".to_string()
    };
    let periods_per_year = dpy * DAY_MS as f64 / tf.millis().max(DAY_MS) as f64;
    let ret_basis =
        format!("{period_label} mark-to-market returns (UTC), {dpy} days/year, risk-free rate 0");

    let total_return = last / initial - 1.0;
    let cagr: Result<f64, String> = if days < MIN_DAYS_ANNUALISED {
        Err(format!(
            "the sample covers {days:.1} days; annualising needs at least {MIN_DAYS_ANNUALISED} days"
        ))
    } else if last <= 0.0 {
        Err("final equity is not positive".into())
    } else {
        Ok((last / initial).powf(dpy / days) - 1.0)
    };

    let rets = daily_returns(c, equity, initial);
    let enough_rets = |what: &str| -> Result<(), String> {
        if rets.len() < MIN_DAILY_RETURNS {
            Err(format!(
                "{what} needs at least {MIN_DAILY_RETURNS} {period_label} returns; the sample has {}",
                rets.len()
            ))
        } else {
            Ok(())
        }
    };
    let std = || {
        let m = mean(&rets);
        (rets.iter().map(|r| (r - m) * (r - m)).sum::<f64>() / (rets.len() as f64 - 1.0)).sqrt()
    };
    let vol = enough_rets("volatility").map(|_| std() * periods_per_year.sqrt());
    let enough_trades = |what: &str| -> Result<(), String> {
        if trades.len() < MIN_TRADES_RATIO {
            Err(format!(
                "{what} needs at least {MIN_TRADES_RATIO} trades; the run has {}",
                trades.len()
            ))
        } else {
            Ok(())
        }
    };
    let sharpe = enough_rets("Sharpe")
        .and_then(|_| enough_trades("Sharpe"))
        .and_then(|_| {
            let s = std();
            if s == 0.0 {
                Err("returns have zero variance".into())
            } else {
                Ok(mean(&rets) / s * periods_per_year.sqrt())
            }
        });
    let sortino = enough_rets("Sortino")
        .and_then(|_| enough_trades("Sortino"))
        .and_then(|_| {
            let dd =
                (rets.iter().map(|r| r.min(0.0).powi(2)).sum::<f64>() / rets.len() as f64).sqrt();
            if dd == 0.0 {
                Err("no negative returns (downside deviation is 0)".into())
            } else {
                Ok(mean(&rets) / dd * periods_per_year.sqrt())
            }
        });

    // Drawdown over the per-bar mark-to-market equity (the peak includes the initial cash).
    let mut peak = initial;
    let mut peak_i: isize = -1;
    let mut max_dd = 0.0f64;
    let mut max_dur = 0usize;
    let mut dd_start: Option<isize> = None;
    for (i, &e) in equity.iter().enumerate() {
        if e >= peak {
            if let Some(s) = dd_start.take() {
                max_dur = max_dur.max((i as isize - s) as usize);
            }
            peak = e;
            peak_i = i as isize;
        } else {
            dd_start.get_or_insert(peak_i);
            // Divide only when this bar can be a new worst drawdown.
            if e < peak * (1.0 + max_dd) {
                max_dd = max_dd.min(e / peak - 1.0);
            }
        }
    }
    if let Some(s) = dd_start {
        max_dur = max_dur.max((n as isize - 1 - s) as usize);
    }
    let calmar = cagr.clone().and_then(|g| {
        if max_dd == 0.0 {
            Err("no drawdown".into())
        } else {
            Ok(g / max_dd.abs())
        }
    });

    let wins: Vec<f64> = trades
        .iter()
        .filter(|t| t.pnl > 0.0)
        .map(|t| t.pnl)
        .collect();
    let losses: Vec<f64> = trades
        .iter()
        .filter(|t| t.pnl <= 0.0)
        .map(|t| t.pnl)
        .collect();
    let no_trades = || Err::<f64, String>("no trades".into());
    let trade_basis = "closed trades, net of fees (quote currency)";
    let gross_win: f64 = wins.iter().sum();
    let gross_loss: f64 = -losses.iter().sum::<f64>();
    let bars_in = trades.iter().map(|t| t.bars_held.max(1)).sum::<usize>();
    let first_close = c.close[0];

    Metrics {
        final_equity: Metric::ok(
            last,
            "currency",
            "equity at the last close after closing any position",
        ),
        total_return: Metric::ok(total_return, "fraction", "final equity / initial cash − 1"),
        cagr: Metric::from(
            cagr,
            "fraction",
            format!("(final / initial)^({dpy} / days) − 1 over {days:.1} days"),
        ),
        annualised_volatility: Metric::from(
            vol,
            "fraction",
            format!("sample std of {ret_basis} × sqrt({periods_per_year})"),
        ),
        sharpe: Metric::from(
            sharpe,
            "ratio",
            format!("mean / std of {ret_basis} × sqrt({periods_per_year})"),
        ),
        sortino: Metric::from(
            sortino,
            "ratio",
            format!("mean / downside deviation of {ret_basis} × sqrt({periods_per_year})"),
        ),
        calmar: Metric::from(calmar, "ratio", "CAGR / |max drawdown|"),
        max_drawdown: Metric::ok(
            max_dd,
            "fraction",
            "largest fall of per-bar mark-to-market equity from its running peak",
        ),
        max_drawdown_duration: Metric::ok(
            max_dur as f64,
            "bars",
            format!("longest time below a previous equity peak, in {tf} bars"),
        ),
        trade_count: Metric::ok(
            trades.len() as f64,
            "count",
            "closed trades (including end-of-data exits)",
        ),
        win_rate: Metric::from(
            if trades.is_empty() {
                no_trades()
            } else {
                Ok(wins.len() as f64 / trades.len() as f64)
            },
            "fraction",
            "trades with pnl > 0 / all trades",
        ),
        profit_factor: Metric::from(
            if trades.is_empty() {
                no_trades()
            } else if gross_loss == 0.0 {
                Err("no losing trades (division by zero)".into())
            } else {
                Ok(gross_win / gross_loss)
            },
            "ratio",
            "gross profit / gross loss, currency, net of fees",
        ),
        expectancy: Metric::from(
            if trades.is_empty() {
                no_trades()
            } else {
                Ok(trades.iter().map(|t| t.pnl).sum::<f64>() / trades.len() as f64)
            },
            "currency",
            format!("mean pnl per trade; {trade_basis}"),
        ),
        average_win: Metric::from(
            if wins.is_empty() {
                Err("no winning trades".into())
            } else {
                Ok(mean(&wins))
            },
            "currency",
            trade_basis,
        ),
        average_loss: Metric::from(
            if losses.is_empty() {
                Err("no losing trades".into())
            } else {
                Ok(mean(&losses))
            },
            "currency",
            trade_basis,
        ),
        best_trade: Metric::from(
            trades
                .iter()
                .map(|t| t.return_pct)
                .reduce(f64::max)
                .ok_or_else(|| "no trades".to_string()),
            "fraction",
            "highest trade return (pnl / entry cost)",
        ),
        worst_trade: Metric::from(
            trades
                .iter()
                .map(|t| t.return_pct)
                .reduce(f64::min)
                .ok_or_else(|| "no trades".to_string()),
            "fraction",
            "lowest trade return (pnl / entry cost)",
        ),
        exposure: Metric::ok(
            bars_in as f64 / n as f64,
            "fraction",
            "bars with a position / all bars",
        ),
        fees_paid: Metric::ok(
            trades.iter().map(|t| t.fees).sum(),
            "currency",
            "entry and exit fees of all trades",
        ),
        buy_and_hold_return: Metric::ok(
            c.close[n - 1] / first_close - 1.0,
            "fraction",
            "last close / first close − 1, no fees",
        ),
    }
}
