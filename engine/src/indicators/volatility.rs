//! Volatility indicators and channels.

use serde::{Deserialize, Serialize};

use super::average::Ema;
use super::util::{Extreme, Ring, WindowSum};
use super::{Bar, ConfigError, Indicator, Output, check_period, check_real};

/// True range: `max(high − low, |high − prev close|, |low − prev close|)`. Lookback 1 (TA-Lib).
#[derive(Debug, Clone, Default)]
pub struct TrueRange {
    prev_close: Option<f64>,
    value: f64,
}

impl TrueRange {
    /// # Errors
    /// Never; `Result` for uniformity.
    pub fn new() -> Result<Self, ConfigError> {
        Ok(Self {
            prev_close: None,
            value: f64::NAN,
        })
    }
}

#[inline]
fn true_range(b: &Bar, prev_close: f64) -> f64 {
    let mut g = b.high - b.low;
    let v = (prev_close - b.high).abs();
    if v > g {
        g = v;
    }
    let v = (b.low - prev_close).abs();
    if v > g {
        g = v;
    }
    g
}

impl Indicator for TrueRange {
    type Input = Bar;
    type Output = f64;
    #[inline]
    fn update(&mut self, b: Bar) -> f64 {
        if !(b.high.is_finite() && b.low.is_finite() && b.close.is_finite()) {
            return f64::NAN;
        }
        let out = match self.prev_close {
            Some(pc) => true_range(&b, pc),
            None => f64::NAN,
        };
        self.prev_close = Some(b.close);
        self.value = out;
        out
    }
    fn value(&self) -> f64 {
        self.value
    }
    fn is_ready(&self) -> bool {
        !self.value.is_nan()
    }
    fn reset(&mut self) {
        self.prev_close = None;
        self.value = f64::NAN;
    }
    fn lookback(&self) -> usize {
        1
    }
}

/// Average true range with Wilder smoothing, seeded with the mean of the first `period` true
/// ranges (TA-Lib). Lookback `period`.
#[derive(Debug, Clone)]
pub struct Atr {
    period: usize,
    tr: TrueRange,
    count: usize,
    seed: f64,
    value: f64,
}

impl Atr {
    /// # Errors
    /// `period` outside `1..=MAX_PERIOD`.
    pub fn new(period: usize) -> Result<Self, ConfigError> {
        check_period("period", period, 1)?;
        Ok(Self {
            period,
            tr: TrueRange::default(),
            count: 0,
            seed: 0.0,
            value: f64::NAN,
        })
    }
}

impl Indicator for Atr {
    type Input = Bar;
    type Output = f64;
    #[inline]
    fn update(&mut self, b: Bar) -> f64 {
        let tr = self.tr.update(b);
        if tr.is_nan() {
            return f64::NAN;
        }
        let n = self.period as f64;
        self.count += 1;
        if self.period == 1 {
            self.value = tr;
            return tr;
        }
        if self.count < self.period {
            self.seed += tr;
            return f64::NAN;
        }
        if self.count == self.period {
            self.seed += tr;
            self.value = self.seed / n;
        } else {
            self.value *= n - 1.0;
            self.value += tr;
            self.value /= n;
        }
        self.value
    }
    fn value(&self) -> f64 {
        self.value
    }
    fn is_ready(&self) -> bool {
        self.count >= self.period
    }
    fn reset(&mut self) {
        self.tr.reset();
        self.count = 0;
        self.seed = 0.0;
        self.value = f64::NAN;
    }
    fn lookback(&self) -> usize {
        self.period
    }
}

/// Rolling mean (TA-Lib running sum) and population variance, the variance computed in two
/// passes over the window (`Σ(x − mean)² / n`) like TA-Lib ≥ 0.8: accurate for tiny prices
/// and flat windows, where the sum-of-squares shortcut cancels catastrophically.
#[derive(Debug, Clone)]
struct RollingVar {
    ring: Ring,
    sum: WindowSum,
}

impl RollingVar {
    fn new(period: usize) -> Self {
        Self {
            ring: Ring::new(period),
            sum: WindowSum::new(period),
        }
    }
    /// (mean, variance) once the window is full.
    #[inline]
    fn push(&mut self, x: f64) -> Option<(f64, f64)> {
        self.ring.push(x);
        let total = self.sum.push(x)?;
        let n = self.ring.len() as f64;
        let mean = total / n;
        let mut acc = 0.0;
        for v in self.ring.iter() {
            let d = v - mean;
            acc += d * d;
        }
        Some((mean, acc / n))
    }
    fn clear(&mut self) {
        self.ring.clear();
        self.sum.clear();
    }
}

#[inline]
fn sqrt_var(v: f64) -> f64 {
    if v > 0.0 { v.sqrt() } else { 0.0 }
}

/// Rolling population standard deviation times `nbdev` (TA-Lib `STDDEV`). Lookback
/// `period − 1`.
#[derive(Debug, Clone)]
pub struct StdDev {
    period: usize,
    nbdev: f64,
    var: RollingVar,
    value: f64,
}

impl StdDev {
    /// # Errors
    /// `period` outside `2..=MAX_PERIOD` or a non-finite `nbdev`.
    pub fn new(period: usize, nbdev: f64) -> Result<Self, ConfigError> {
        check_period("period", period, 2)?;
        check_real("nbdev", nbdev, -1e6, 1e6)?;
        Ok(Self {
            period,
            nbdev,
            var: RollingVar::new(period),
            value: f64::NAN,
        })
    }
}

impl Indicator for StdDev {
    type Input = f64;
    type Output = f64;
    #[inline]
    fn update(&mut self, x: f64) -> f64 {
        if !x.is_finite() {
            return f64::NAN;
        }
        self.value = match self.var.push(x) {
            Some((_, v)) => sqrt_var(v) * self.nbdev,
            None => f64::NAN,
        };
        self.value
    }
    fn value(&self) -> f64 {
        self.value
    }
    fn is_ready(&self) -> bool {
        !self.value.is_nan()
    }
    fn reset(&mut self) {
        self.var.clear();
        self.value = f64::NAN;
    }
    fn lookback(&self) -> usize {
        self.period - 1
    }
}

/// Bollinger bands output.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BollingerOutput {
    pub upper: f64,
    pub middle: f64,
    pub lower: f64,
    /// `(x − lower) / (upper − lower)`; NaN when the bands have zero width.
    pub percent_b: f64,
    /// `(upper − lower) / middle`.
    pub bandwidth: f64,
}

impl Output for BollingerOutput {
    const NAN: Self = Self {
        upper: f64::NAN,
        middle: f64::NAN,
        lower: f64::NAN,
        percent_b: f64::NAN,
        bandwidth: f64::NAN,
    };
}

/// Bollinger bands (TA-Lib `BBANDS` with SMA): middle = SMA(`period`), bands = middle ± `k` ·
/// population standard deviation. Lookback `period − 1`.
#[derive(Debug, Clone)]
pub struct Bollinger {
    period: usize,
    k: f64,
    var: RollingVar,
    value: BollingerOutput,
}

impl Bollinger {
    /// # Errors
    /// `period` outside `2..=MAX_PERIOD` or `k` outside `0..=100`.
    pub fn new(period: usize, k: f64) -> Result<Self, ConfigError> {
        check_period("period", period, 2)?;
        check_real("k", k, 0.0, 100.0)?;
        Ok(Self {
            period,
            k,
            var: RollingVar::new(period),
            value: BollingerOutput::NAN,
        })
    }
}

impl Indicator for Bollinger {
    type Input = f64;
    type Output = BollingerOutput;
    #[inline]
    fn update(&mut self, x: f64) -> BollingerOutput {
        if !x.is_finite() {
            return BollingerOutput::NAN;
        }
        let Some((mean, var)) = self.var.push(x) else {
            return BollingerOutput::NAN;
        };
        let dev = sqrt_var(var) * self.k;
        let upper = mean + dev;
        let lower = mean - dev;
        let width = upper - lower;
        self.value = BollingerOutput {
            upper,
            middle: mean,
            lower,
            percent_b: if width != 0.0 {
                (x - lower) / width
            } else {
                f64::NAN
            },
            bandwidth: if mean != 0.0 { width / mean } else { f64::NAN },
        };
        self.value
    }
    fn value(&self) -> BollingerOutput {
        self.value
    }
    fn is_ready(&self) -> bool {
        !self.value.middle.is_nan()
    }
    fn reset(&mut self) {
        self.var.clear();
        self.value = BollingerOutput::NAN;
    }
    fn lookback(&self) -> usize {
        self.period - 1
    }
}

/// Donchian channel output.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DonchianOutput {
    pub upper: f64,
    pub middle: f64,
    pub lower: f64,
}

impl Output for DonchianOutput {
    const NAN: Self = Self {
        upper: f64::NAN,
        middle: f64::NAN,
        lower: f64::NAN,
    };
}

/// Donchian channel: highest high and lowest low of the last `period` bars (current bar
/// included, as TA-Lib `DONCHIAN`), middle = their mean. Lookback `period − 1`.
#[derive(Debug, Clone)]
pub struct Donchian {
    period: usize,
    hi: Extreme,
    lo: Extreme,
    value: DonchianOutput,
}

impl Donchian {
    /// # Errors
    /// `period` outside `1..=MAX_PERIOD`.
    pub fn new(period: usize) -> Result<Self, ConfigError> {
        check_period("period", period, 1)?;
        Ok(Self {
            period,
            hi: Extreme::new(period, true),
            lo: Extreme::new(period, false),
            value: DonchianOutput::NAN,
        })
    }
}

impl Indicator for Donchian {
    type Input = Bar;
    type Output = DonchianOutput;
    #[inline]
    fn update(&mut self, b: Bar) -> DonchianOutput {
        if !(b.high.is_finite() && b.low.is_finite()) {
            return DonchianOutput::NAN;
        }
        let h = self.hi.push(b.high);
        let l = self.lo.push(b.low);
        self.value = match (h, l) {
            (Some((u, _)), Some((d, _))) => DonchianOutput {
                upper: u,
                middle: (u + d) / 2.0,
                lower: d,
            },
            _ => DonchianOutput::NAN,
        };
        self.value
    }
    fn value(&self) -> DonchianOutput {
        self.value
    }
    fn is_ready(&self) -> bool {
        !self.value.upper.is_nan()
    }
    fn reset(&mut self) {
        self.hi.clear();
        self.lo.clear();
        self.value = DonchianOutput::NAN;
    }
    fn lookback(&self) -> usize {
        self.period - 1
    }
}

/// Keltner channel output.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct KeltnerOutput {
    pub upper: f64,
    pub middle: f64,
    pub lower: f64,
}

impl Output for KeltnerOutput {
    const NAN: Self = Self {
        upper: f64::NAN,
        middle: f64::NAN,
        lower: f64::NAN,
    };
}

/// Keltner channel (not in TA-Lib; modern definition): middle = EMA(close, `period`), bands =
/// middle ± `multiplier` · ATR(`atr_period`). Lookback `max(period − 1, atr_period)`.
#[derive(Debug, Clone)]
pub struct Keltner {
    params: (usize, f64, usize),
    ema: Ema,
    atr: Atr,
    value: KeltnerOutput,
}

impl Keltner {
    /// # Errors
    /// Periods out of range or `multiplier` outside `0..=100`.
    pub fn new(period: usize, multiplier: f64, atr_period: usize) -> Result<Self, ConfigError> {
        check_real("multiplier", multiplier, 0.0, 100.0)?;
        Ok(Self {
            params: (period, multiplier, atr_period),
            ema: Ema::new(period)?,
            atr: Atr::new(atr_period)?,
            value: KeltnerOutput::NAN,
        })
    }
}

impl Indicator for Keltner {
    type Input = Bar;
    type Output = KeltnerOutput;
    #[inline]
    fn update(&mut self, b: Bar) -> KeltnerOutput {
        if !(b.high.is_finite() && b.low.is_finite() && b.close.is_finite()) {
            return KeltnerOutput::NAN;
        }
        let m = self.ema.update(b.close);
        let a = self.atr.update(b);
        if m.is_nan() || a.is_nan() {
            return KeltnerOutput::NAN;
        }
        let w = self.params.1 * a;
        self.value = KeltnerOutput {
            upper: m + w,
            middle: m,
            lower: m - w,
        };
        self.value
    }
    fn value(&self) -> KeltnerOutput {
        self.value
    }
    fn is_ready(&self) -> bool {
        self.ema.is_ready() && self.atr.is_ready()
    }
    fn reset(&mut self) {
        self.ema.reset();
        self.atr.reset();
        self.value = KeltnerOutput::NAN;
    }
    fn lookback(&self) -> usize {
        (self.params.0 - 1).max(self.params.2)
    }
}
