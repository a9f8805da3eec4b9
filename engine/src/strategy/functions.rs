//! The built-in functions of the strategy language: indicators and helpers.

use crate::candles::Candles;
use crate::indicators::{
    Adx, Aroon, Bollinger, ConfigError, Donchian, Ichimoku, Keltner, Macd, Stoch, StochRsi, batch,
};

/// Whether a parameter is an integer (period) or a real number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ArgKind {
    Int,
    Real,
}

/// One indicator of the language.
#[derive(Debug)]
pub(crate) struct FuncSpec {
    pub name: &'static str,
    /// Takes a series as first argument (otherwise it reads the candles' OHLCV).
    pub series: bool,
    /// (name, kind, default, min, max)
    pub params: &'static [(&'static str, ArgKind, f64, f64, f64)],
    pub outputs: &'static [&'static str],
    pub summary: &'static str,
}

const P: f64 = super::limits::MAX_LOOKBACK as f64;

macro_rules! f {
    ($name:literal, $series:expr, [$(($p:literal, $k:ident, $d:expr, $lo:expr, $hi:expr)),*], [$($o:literal),*], $sum:literal) => {
        FuncSpec { name: $name, series: $series, params: &[$(($p, ArgKind::$k, $d, $lo, $hi)),*], outputs: &[$($o),*], summary: $sum }
    };
}

pub(crate) static FUNCS: &[FuncSpec] = &[
    f!(
        "sma",
        true,
        [("period", Int, 30.0, 1.0, P)],
        [],
        "simple moving average"
    ),
    f!(
        "ema",
        true,
        [("period", Int, 30.0, 1.0, P)],
        [],
        "exponential moving average (SMA-seeded)"
    ),
    f!(
        "wma",
        true,
        [("period", Int, 30.0, 1.0, P)],
        [],
        "linearly weighted moving average"
    ),
    f!(
        "dema",
        true,
        [("period", Int, 30.0, 1.0, P)],
        [],
        "double EMA"
    ),
    f!(
        "tema",
        true,
        [("period", Int, 30.0, 1.0, P)],
        [],
        "triple EMA"
    ),
    f!(
        "hma",
        true,
        [("period", Int, 20.0, 2.0, P)],
        [],
        "Hull moving average"
    ),
    f!(
        "kama",
        true,
        [("period", Int, 30.0, 1.0, P)],
        [],
        "Kaufman adaptive moving average"
    ),
    f!(
        "rsi",
        true,
        [("period", Int, 14.0, 2.0, P)],
        [],
        "relative strength index (Wilder)"
    ),
    f!(
        "roc",
        true,
        [("period", Int, 10.0, 1.0, P)],
        [],
        "rate of change, percent"
    ),
    f!(
        "mom",
        true,
        [("period", Int, 10.0, 1.0, P)],
        [],
        "momentum x - x[n]"
    ),
    f!(
        "stddev",
        true,
        [("period", Int, 20.0, 2.0, P), ("k", Real, 1.0, -1e6, 1e6)],
        [],
        "rolling population standard deviation"
    ),
    f!(
        "highest",
        true,
        [("period", Int, 20.0, 1.0, P)],
        [],
        "highest value over n bars"
    ),
    f!(
        "lowest",
        true,
        [("period", Int, 20.0, 1.0, P)],
        [],
        "lowest value over n bars"
    ),
    f!(
        "macd",
        true,
        [
            ("fast", Int, 12.0, 2.0, P),
            ("slow", Int, 26.0, 2.0, P),
            ("signal", Int, 9.0, 1.0, P)
        ],
        ["macd", "signal", "hist"],
        "MACD line, signal, histogram"
    ),
    f!(
        "bollinger",
        true,
        [("period", Int, 20.0, 2.0, P), ("k", Real, 2.0, 0.0, 100.0)],
        ["middle", "upper", "lower", "percent_b", "bandwidth"],
        "Bollinger bands"
    ),
    f!(
        "stochrsi",
        true,
        [
            ("period", Int, 14.0, 2.0, P),
            ("k", Int, 5.0, 1.0, P),
            ("d", Int, 3.0, 1.0, P)
        ],
        ["k", "d"],
        "stochastic RSI"
    ),
    f!(
        "atr",
        false,
        [("period", Int, 14.0, 1.0, P)],
        [],
        "average true range (Wilder)"
    ),
    f!("true_range", false, [], [], "true range"),
    f!(
        "adx",
        false,
        [("period", Int, 14.0, 2.0, P)],
        ["adx", "plus_di", "minus_di"],
        "ADX with +DI/-DI"
    ),
    f!("plus_di", false, [("period", Int, 14.0, 2.0, P)], [], "+DI"),
    f!(
        "minus_di",
        false,
        [("period", Int, 14.0, 2.0, P)],
        [],
        "-DI"
    ),
    f!(
        "stoch",
        false,
        [
            ("k", Int, 5.0, 1.0, P),
            ("smooth_k", Int, 3.0, 1.0, P),
            ("d", Int, 3.0, 1.0, P)
        ],
        ["k", "d"],
        "stochastic oscillator (slow %K, %D)"
    ),
    f!(
        "cci",
        false,
        [("period", Int, 14.0, 2.0, P)],
        [],
        "commodity channel index"
    ),
    f!(
        "willr",
        false,
        [("period", Int, 14.0, 2.0, P)],
        [],
        "Williams %R"
    ),
    f!("obv", false, [], [], "on-balance volume"),
    f!(
        "vwap",
        false,
        [("period", Int, 20.0, 1.0, P)],
        [],
        "rolling volume-weighted average price"
    ),
    f!(
        "mfi",
        false,
        [("period", Int, 14.0, 2.0, P)],
        [],
        "money flow index"
    ),
    f!(
        "aroon",
        false,
        [("period", Int, 14.0, 2.0, P)],
        ["up", "down"],
        "Aroon up/down"
    ),
    f!(
        "sar",
        false,
        [
            ("acceleration", Real, 0.02, 0.0, 1.0),
            ("maximum", Real, 0.2, 0.0, 1.0)
        ],
        [],
        "parabolic SAR"
    ),
    f!(
        "donchian",
        false,
        [("period", Int, 20.0, 1.0, P)],
        ["upper", "middle", "lower"],
        "Donchian channel"
    ),
    f!(
        "keltner",
        false,
        [
            ("period", Int, 20.0, 1.0, P),
            ("multiplier", Real, 2.0, 0.0, 100.0),
            ("atr_period", Int, 10.0, 1.0, P)
        ],
        ["middle", "upper", "lower"],
        "Keltner channel"
    ),
    f!(
        "cmf",
        false,
        [("period", Int, 20.0, 1.0, P)],
        [],
        "Chaikin money flow"
    ),
    f!(
        "ichimoku",
        false,
        [
            ("tenkan", Int, 9.0, 1.0, P),
            ("kijun", Int, 26.0, 1.0, P),
            ("senkou_b", Int, 52.0, 1.0, P)
        ],
        ["tenkan", "kijun", "senkou_a", "senkou_b"],
        "Ichimoku lines (causal)"
    ),
];

/// Helpers that are not indicators: (name, arity, summary).
pub(crate) static HELPERS: &[(&str, usize, &str)] = &[
    ("crosses_above", 2, "a[t-1] < b[t-1] and a[t] > b[t]"),
    ("crosses_below", 2, "a[t-1] > b[t-1] and a[t] < b[t]"),
    ("abs", 1, "absolute value"),
    ("min", 2, "smaller of two values"),
    ("max", 2, "larger of two values"),
];

/// Price fields usable as series.
pub(crate) static FIELDS: &[&str] = &[
    "open", "high", "low", "close", "volume", "hl2", "hlc3", "ohlc4",
];

pub(crate) fn find(name: &str) -> Option<(usize, &'static FuncSpec)> {
    FUNCS.iter().enumerate().find(|(_, f)| f.name == name)
}

/// Runs a multi-output streaming indicator straight into `K` columns (no intermediate
/// vector of records: this is what keeps 10 M-bar runs within memory).
fn split<I: crate::indicators::Indicator, const K: usize>(
    mut ind: I,
    inputs: impl ExactSizeIterator<Item = I::Input>,
    f: impl Fn(I::Output) -> [f64; K],
) -> Vec<Vec<f64>> {
    let n = inputs.len();
    let mut cols: Vec<Vec<f64>> = (0..K).map(|_| Vec::with_capacity(n)).collect();
    for x in inputs {
        let o = f(ind.update(x));
        for (c, v) in cols.iter_mut().zip(o) {
            c.push(v);
        }
    }
    cols
}

fn bars(c: &Candles) -> impl ExactSizeIterator<Item = crate::candles::Bar> + '_ {
    (0..c.len()).map(move |i| c.bar(i))
}

/// Computes every output of function `idx` (an index into [`FUNCS`]).
pub(crate) fn compute(
    idx: usize,
    p: &[f64],
    input: Option<&[f64]>,
    c: &Candles,
) -> Result<Vec<Vec<f64>>, ConfigError> {
    let x = input.unwrap_or(&c.close);
    let u = |i: usize| p[i] as usize;
    let one = |v: Vec<f64>| Ok(vec![v]);
    match FUNCS[idx].name {
        "sma" => one(batch::sma(x, u(0))?),
        "ema" => one(batch::ema(x, u(0))?),
        "wma" => one(batch::wma(x, u(0))?),
        "dema" => one(batch::dema(x, u(0))?),
        "tema" => one(batch::tema(x, u(0))?),
        "hma" => one(batch::hma(x, u(0))?),
        "kama" => one(batch::kama(x, u(0))?),
        "rsi" => one(batch::rsi(x, u(0))?),
        "roc" => one(batch::roc(x, u(0))?),
        "mom" => one(batch::mom(x, u(0))?),
        "stddev" => one(batch::stddev(x, u(0), p[1])?),
        "highest" => one(batch::highest(x, u(0))?),
        "lowest" => one(batch::lowest(x, u(0))?),
        "macd" => Ok(split(
            Macd::new(u(0), u(1), u(2))?,
            x.iter().copied(),
            |o| [o.macd, o.signal, o.hist],
        )),
        "bollinger" => Ok(split(Bollinger::new(u(0), p[1])?, x.iter().copied(), |o| {
            [o.middle, o.upper, o.lower, o.percent_b, o.bandwidth]
        })),
        "stochrsi" => Ok(split(
            StochRsi::new(u(0), u(1), u(2))?,
            x.iter().copied(),
            |o| [o.k, o.d],
        )),
        "atr" => one(batch::atr(c, u(0))?),
        "true_range" => one(batch::true_range(c)?),
        "adx" => Ok(split(Adx::new(u(0))?, bars(c), |o| {
            [o.adx, o.plus_di, o.minus_di]
        })),
        "plus_di" => Ok(split(Adx::new(u(0))?, bars(c), |o| [o.plus_di])),
        "minus_di" => Ok(split(Adx::new(u(0))?, bars(c), |o| [o.minus_di])),
        "stoch" => Ok(split(Stoch::new(u(0), u(1), u(2))?, bars(c), |o| {
            [o.k, o.d]
        })),
        "cci" => one(batch::cci(c, u(0))?),
        "willr" => one(batch::willr(c, u(0))?),
        "obv" => one(batch::obv(c)?),
        "vwap" => one(batch::vwap(c, u(0))?),
        "mfi" => one(batch::mfi(c, u(0))?),
        "aroon" => Ok(split(Aroon::new(u(0))?, bars(c), |o| [o.up, o.down])),
        "sar" => one(batch::sar(c, p[0], p[1])?),
        "donchian" => Ok(split(Donchian::new(u(0))?, bars(c), |o| {
            [o.upper, o.middle, o.lower]
        })),
        "keltner" => Ok(split(Keltner::new(u(0), p[1], u(2))?, bars(c), |o| {
            [o.middle, o.upper, o.lower]
        })),
        "cmf" => one(batch::cmf(c, u(0))?),
        "ichimoku" => Ok(split(Ichimoku::new(u(0), u(1), u(2))?, bars(c), |o| {
            [o.tenkan, o.kijun, o.senkou_a, o.senkou_b]
        })),
        _ => Ok(vec![vec![f64::NAN; c.len()]]),
    }
}
