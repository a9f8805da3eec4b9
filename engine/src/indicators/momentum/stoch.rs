//! Stochastic oscillators: %K/%D and stochastic RSI.

use super::super::average::Sma;
use super::super::util::Extreme;
use super::super::{Bar, ConfigError, Indicator, Output, check_period, ta_is_zero_scaled};
use super::finite_hlc;
use super::rsi::Rsi;
use serde::{Deserialize, Serialize};

/// Two-line oscillator output (%K and %D).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StochOutput {
    pub k: f64,
    pub d: f64,
}

impl Output for StochOutput {
    const NAN: Self = Self {
        k: f64::NAN,
        d: f64::NAN,
    };
}

/// Raw stochastic: `100·(x − lowest) / (highest − lowest)` with TA-Lib's zero-range rule (0).
#[derive(Debug, Clone)]
struct FastK {
    hi: Extreme,
    lo: Extreme,
}

impl FastK {
    fn new(period: usize) -> Self {
        Self {
            hi: Extreme::new(period, true),
            lo: Extreme::new(period, false),
        }
    }
    #[inline]
    fn push(&mut self, high: f64, low: f64, close: f64) -> f64 {
        let h = self.hi.push(high);
        let l = self.lo.push(low);
        match (h, l) {
            (Some((hh, _)), Some((ll, _))) => {
                let range = hh - ll;
                if ta_is_zero_scaled(range, hh.abs() + ll.abs()) {
                    0.0
                } else {
                    (close - ll) / (range / 100.0)
                }
            }
            _ => f64::NAN,
        }
    }
    fn clear(&mut self) {
        self.hi.clear();
        self.lo.clear();
    }
}

/// Slow stochastic (TA-Lib `STOCH` with SMA smoothing): fast %K over `k` bars, slow %K =
/// SMA(fast %K, `smooth_k`), %D = SMA(slow %K, `d`). Both outputs start at lookback
/// `(k − 1) + (smooth_k − 1) + (d − 1)`.
#[derive(Debug, Clone)]
pub struct Stoch {
    params: (usize, usize, usize),
    fast: FastK,
    slow_k: Sma,
    slow_d: Sma,
    value: StochOutput,
}

impl Stoch {
    /// # Errors
    /// Periods outside `1..=MAX_PERIOD`.
    pub fn new(k: usize, smooth_k: usize, d: usize) -> Result<Self, ConfigError> {
        check_period("k", k, 1)?;
        Ok(Self {
            params: (k, smooth_k, d),
            fast: FastK::new(k),
            slow_k: Sma::new(smooth_k)?,
            slow_d: Sma::new(d)?,
            value: StochOutput::NAN,
        })
    }
}

impl Indicator for Stoch {
    type Input = Bar;
    type Output = StochOutput;
    #[inline]
    fn update(&mut self, b: Bar) -> StochOutput {
        if !finite_hlc(&b) {
            return StochOutput::NAN;
        }
        let fk = self.fast.push(b.high, b.low, b.close);
        let k = self.slow_k.update(fk);
        let d = self.slow_d.update(k);
        if d.is_nan() {
            return StochOutput::NAN;
        }
        self.value = StochOutput { k, d };
        self.value
    }
    fn value(&self) -> StochOutput {
        self.value
    }
    fn is_ready(&self) -> bool {
        self.slow_d.is_ready()
    }
    fn reset(&mut self) {
        self.fast.clear();
        self.slow_k.reset();
        self.slow_d.reset();
        self.value = StochOutput::NAN;
    }
    fn lookback(&self) -> usize {
        self.params.0 - 1 + self.params.1 - 1 + self.params.2 - 1
    }
}

/// Stochastic RSI (TA-Lib `STOCHRSI`): fast stochastic of RSI(`period`) over `k` bars, %D =
/// SMA(%K, `d`). Both outputs start at lookback `period + (k − 1) + (d − 1)`.
#[derive(Debug, Clone)]
pub struct StochRsi {
    params: (usize, usize, usize),
    rsi: Rsi,
    fast: FastK,
    d: Sma,
    value: StochOutput,
}

impl StochRsi {
    /// # Errors
    /// Periods out of range.
    pub fn new(period: usize, k: usize, d: usize) -> Result<Self, ConfigError> {
        check_period("k", k, 1)?;
        Ok(Self {
            params: (period, k, d),
            rsi: Rsi::new(period)?,
            fast: FastK::new(k),
            d: Sma::new(d)?,
            value: StochOutput::NAN,
        })
    }
}

impl Indicator for StochRsi {
    type Input = f64;
    type Output = StochOutput;
    #[inline]
    fn update(&mut self, x: f64) -> StochOutput {
        if !x.is_finite() {
            return StochOutput::NAN;
        }
        let r = self.rsi.update(x);
        if r.is_nan() {
            return StochOutput::NAN;
        }
        let k = self.fast.push(r, r, r);
        let d = self.d.update(k);
        if d.is_nan() {
            return StochOutput::NAN;
        }
        self.value = StochOutput { k, d };
        self.value
    }
    fn value(&self) -> StochOutput {
        self.value
    }
    fn is_ready(&self) -> bool {
        self.d.is_ready()
    }
    fn reset(&mut self) {
        self.rsi.reset();
        self.fast.clear();
        self.d.reset();
        self.value = StochOutput::NAN;
    }
    fn lookback(&self) -> usize {
        self.params.0 + self.params.1 - 1 + self.params.2 - 1
    }
}
