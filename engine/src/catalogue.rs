//! Built-in strategy templates, written in the strategy language.

use serde::Serialize;

/// A published template.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Template {
    pub name: &'static str,
    pub description: &'static str,
    pub source: &'static str,
}

static TEMPLATES: &[Template] = &[
    Template {
        name: "sma_cross",
        description: "Long when the fast simple moving average crosses above the slow one; out when it crosses back below.",
        source: "\
# SMA crossover
param fast: int = 10 in 2..200
param slow: int = 30 in 3..500
let fast_ma = sma(close, fast)
let slow_ma = sma(close, slow)
entry long when crosses_above(fast_ma, slow_ma)
exit long when crosses_below(fast_ma, slow_ma)
",
    },
    Template {
        name: "ema_cross",
        description: "Long when the fast EMA crosses above the slow EMA; out when it crosses back below.",
        source: "\
# EMA crossover
param fast: int = 12 in 2..200
param slow: int = 26 in 3..500
let fast_ema = ema(close, fast)
let slow_ema = ema(close, slow)
entry long when crosses_above(fast_ema, slow_ema)
exit long when crosses_below(fast_ema, slow_ema)
",
    },
    Template {
        name: "macd",
        description: "Long when the MACD line crosses above its signal line; out when it crosses below.",
        source: "\
# MACD line / signal crossover
param fast: int = 12 in 2..200
param slow: int = 26 in 3..500
param signal: int = 9 in 1..200
let line = macd(close, fast, slow, signal).macd
let signal_line = macd(close, fast, slow, signal).signal
entry long when crosses_above(line, signal_line)
exit long when crosses_below(line, signal_line)
",
    },
    Template {
        name: "rsi",
        description: "Mean reversion: long when RSI(14) is below 30 (oversold); out when it rises above 70.",
        source: "\
# RSI oversold / overbought
param period: int = 14 in 2..200
param lower: float = 30 in 1..99
param upper: float = 70 in 1..99
let r = rsi(close, period)
entry long when r < lower
exit long when r > upper
",
    },
    Template {
        name: "bollinger",
        description: "Mean reversion: long when the close falls below the lower Bollinger band (20, 2); out when it closes above the middle band.",
        source: "\
# Bollinger band reversion
param period: int = 20 in 2..500
param k: float = 2 in 0.5..5
let lower = bollinger(close, period, k).lower
let middle = bollinger(close, period, k).middle
entry long when crosses_below(close, lower)
exit long when close > middle
",
    },
    Template {
        name: "adx_trend",
        description: "Trend following: long when ADX(14) shows a trend (> 25) and +DI is above −DI; out when the trend fades (< 20) or −DI takes over.",
        source: "\
# ADX trend filter with directional indicators
param period: int = 14 in 2..200
param strong: float = 25 in 1..100
param weak: float = 20 in 1..100
let trend = adx(period)
let plus = adx(period).plus_di
let minus = adx(period).minus_di
entry long when trend > strong and plus > minus
exit long when trend < weak or crosses_above(minus, plus)
",
    },
    Template {
        name: "donchian_breakout",
        description: "Breakout: long when the close exceeds the previous 20-bar high; out when it falls below the previous 10-bar low.",
        source: "\
# Donchian channel breakout (turtle style)
param entry_period: int = 20 in 2..500
param exit_period: int = 10 in 2..500
let upper = donchian(entry_period).upper[1]
let lower = donchian(exit_period).lower[1]
entry long when close > upper
exit long when close < lower
",
    },
];

/// Every built-in template.
pub fn templates() -> &'static [Template] {
    TEMPLATES
}

/// A template by case-insensitive name (`SMA_Cross` finds `sma_cross`; `-` and `_` are
/// interchangeable).
pub fn template(name: &str) -> Option<&'static Template> {
    let n = name.trim().to_ascii_lowercase().replace('-', "_");
    TEMPLATES.iter().find(|t| t.name == n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_compiles_and_lookup_is_case_insensitive() {
        for t in templates() {
            let s = crate::strategy::compile(t.source, &[]);
            assert!(s.is_ok(), "{}: {:?}", t.name, s.err());
        }
        assert_eq!(template("SMA_Cross").unwrap().name, "sma_cross");
        assert_eq!(
            template("donchian-breakout").unwrap().name,
            "donchian_breakout"
        );
        assert!(template("nope").is_none());
        let s = crate::strategy::compile(
            template("rsi").unwrap().source,
            &[("period".into(), "7".into())],
        )
        .unwrap();
        assert_eq!(s.params()[0].value, crate::strategy::ParamValue::Int(7));
    }
}
