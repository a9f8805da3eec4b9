//! Commodity channel index, Williams %R, rate of change and momentum.

use super::super::util::{Extreme, Ring};
use super::super::{Bar, ConfigError, Indicator, check_period};
use super::finite_hlc;

/// Commodity channel index: `(tp − SMA(tp)) / (0.015 · mean |tp − SMA(tp)|)`, tp = (h+l+c)/3;
/// 0 when either term is 0 (TA-Lib). Lookback `period − 1`.
#[derive(Debug, Clone)]
pub struct Cci {
    period: usize,
    ring: Ring,
    value: f64,
}

impl Cci {
    /// # Errors
    /// `period` outside `2..=MAX_PERIOD`.
    pub fn new(period: usize) -> Result<Self, ConfigError> {
        check_period("period", period, 2)?;
        Ok(Self {
            period,
            ring: Ring::new(period),
            value: f64::NAN,
        })
    }
}

impl Indicator for Cci {
    type Input = Bar;
    type Output = f64;
    fn update(&mut self, b: Bar) -> f64 {
        if !finite_hlc(&b) {
            return f64::NAN;
        }
        let tp = (b.high + b.low + b.close) / 3.0;
        self.ring.push(tp);
        if !self.ring.is_full() {
            return f64::NAN;
        }
        let n = self.period as f64;
        let mut avg = 0.0;
        for v in self.ring.iter() {
            avg += v;
        }
        avg /= n;
        let mut dev = 0.0;
        for v in self.ring.iter() {
            dev += (v - avg).abs();
        }
        let num = tp - avg;
        self.value = if num != 0.0 && dev != 0.0 {
            num / (0.015 * (dev / n))
        } else {
            0.0
        };
        self.value
    }
    fn value(&self) -> f64 {
        self.value
    }
    fn is_ready(&self) -> bool {
        self.ring.is_full()
    }
    fn reset(&mut self) {
        self.ring.clear();
        self.value = f64::NAN;
    }
    fn lookback(&self) -> usize {
        self.period - 1
    }
}

/// Williams %R: `−100·(highest − close) / (highest − lowest)`, 0 on a zero range (TA-Lib).
/// Lookback `period − 1`.
#[derive(Debug, Clone)]
pub struct WillR {
    period: usize,
    hi: Extreme,
    lo: Extreme,
    value: f64,
}

impl WillR {
    /// # Errors
    /// `period` outside `2..=MAX_PERIOD`.
    pub fn new(period: usize) -> Result<Self, ConfigError> {
        check_period("period", period, 2)?;
        Ok(Self {
            period,
            hi: Extreme::new(period, true),
            lo: Extreme::new(period, false),
            value: f64::NAN,
        })
    }
}

impl Indicator for WillR {
    type Input = Bar;
    type Output = f64;
    #[inline]
    fn update(&mut self, b: Bar) -> f64 {
        if !finite_hlc(&b) {
            return f64::NAN;
        }
        let h = self.hi.push(b.high);
        let l = self.lo.push(b.low);
        self.value = match (h, l) {
            (Some((hh, _)), Some((ll, _))) => {
                let diff = (hh - ll) / -100.0;
                if diff != 0.0 {
                    (hh - b.close) / diff
                } else {
                    0.0
                }
            }
            _ => f64::NAN,
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
        self.hi.clear();
        self.lo.clear();
        self.value = f64::NAN;
    }
    fn lookback(&self) -> usize {
        self.period - 1
    }
}

/// Rate of change in percent: `(x / x[n] − 1)·100`, 0 when `x[n] = 0` (TA-Lib). Lookback `n`.
#[derive(Debug, Clone)]
pub struct Roc {
    period: usize,
    ring: Ring,
    value: f64,
}

impl Roc {
    /// # Errors
    /// `period` outside `1..=MAX_PERIOD`.
    pub fn new(period: usize) -> Result<Self, ConfigError> {
        check_period("period", period, 1)?;
        Ok(Self {
            period,
            ring: Ring::new(period + 1),
            value: f64::NAN,
        })
    }
}

impl Indicator for Roc {
    type Input = f64;
    type Output = f64;
    #[inline]
    fn update(&mut self, x: f64) -> f64 {
        if !x.is_finite() {
            return f64::NAN;
        }
        self.ring.push(x);
        if !self.ring.is_full() {
            return f64::NAN;
        }
        let old = self.ring.oldest();
        self.value = if old != 0.0 {
            ((x / old) - 1.0) * 100.0
        } else {
            0.0
        };
        self.value
    }
    fn value(&self) -> f64 {
        self.value
    }
    fn is_ready(&self) -> bool {
        self.ring.is_full()
    }
    fn reset(&mut self) {
        self.ring.clear();
        self.value = f64::NAN;
    }
    fn lookback(&self) -> usize {
        self.period
    }
}

/// Momentum: `x − x[n]`. Lookback `n`.
#[derive(Debug, Clone)]
pub struct Mom {
    period: usize,
    ring: Ring,
    value: f64,
}

impl Mom {
    /// # Errors
    /// `period` outside `1..=MAX_PERIOD`.
    pub fn new(period: usize) -> Result<Self, ConfigError> {
        check_period("period", period, 1)?;
        Ok(Self {
            period,
            ring: Ring::new(period + 1),
            value: f64::NAN,
        })
    }
}

impl Indicator for Mom {
    type Input = f64;
    type Output = f64;
    #[inline]
    fn update(&mut self, x: f64) -> f64 {
        if !x.is_finite() {
            return f64::NAN;
        }
        self.ring.push(x);
        if !self.ring.is_full() {
            return f64::NAN;
        }
        self.value = x - self.ring.oldest();
        self.value
    }
    fn value(&self) -> f64 {
        self.value
    }
    fn is_ready(&self) -> bool {
        self.ring.is_full()
    }
    fn reset(&mut self) {
        self.ring.clear();
        self.value = f64::NAN;
    }
    fn lookback(&self) -> usize {
        self.period
    }
}
