//! Volume indicators.

use super::util::{Ring, WindowSum};
use super::{Bar, ConfigError, Indicator, check_period};

/// On-balance volume (TA-Lib): starts at the first bar's volume, then adds the volume on an up
/// close and subtracts it on a down close. Lookback 0.
#[derive(Debug, Clone, Default)]
pub struct Obv {
    prev_close: Option<f64>,
    value: f64,
}

impl Obv {
    /// # Errors
    /// Never; `Result` for uniformity.
    pub fn new() -> Result<Self, ConfigError> {
        Ok(Self {
            prev_close: None,
            value: f64::NAN,
        })
    }
}

impl Indicator for Obv {
    type Input = Bar;
    type Output = f64;
    #[inline]
    fn update(&mut self, b: Bar) -> f64 {
        if !(b.close.is_finite() && b.volume.is_finite()) {
            return f64::NAN;
        }
        match self.prev_close {
            None => self.value = b.volume,
            Some(pc) => {
                if b.close > pc {
                    self.value += b.volume;
                } else if b.close < pc {
                    self.value -= b.volume;
                }
            }
        }
        self.prev_close = Some(b.close);
        self.value
    }
    fn value(&self) -> f64 {
        self.value
    }
    fn is_ready(&self) -> bool {
        self.prev_close.is_some()
    }
    fn reset(&mut self) {
        self.prev_close = None;
        self.value = f64::NAN;
    }
    fn lookback(&self) -> usize {
        0
    }
}

/// Rolling VWAP over `period` bars: `Σ tp·v / Σ v` with tp = (h+l+c)/3. When the window's
/// volume is zero, every bar weighs the same (the mean typical price). Lookback `period − 1`.
#[derive(Debug, Clone)]
pub struct Vwap {
    period: usize,
    pv: WindowSum,
    v: WindowSum,
    tp: WindowSum,
    value: f64,
}

impl Vwap {
    /// # Errors
    /// `period` outside `1..=MAX_PERIOD`.
    pub fn new(period: usize) -> Result<Self, ConfigError> {
        check_period("period", period, 1)?;
        Ok(Self {
            period,
            pv: WindowSum::new(period),
            v: WindowSum::new(period),
            tp: WindowSum::new(period),
            value: f64::NAN,
        })
    }
}

impl Indicator for Vwap {
    type Input = Bar;
    type Output = f64;
    #[inline]
    fn update(&mut self, b: Bar) -> f64 {
        if !(b.high.is_finite() && b.low.is_finite() && b.close.is_finite() && b.volume.is_finite())
        {
            return f64::NAN;
        }
        let tp = (b.high + b.low + b.close) / 3.0;
        let pv = self.pv.push(tp * b.volume);
        let v = self.v.push(b.volume);
        let t = self.tp.push(tp);
        self.value = match (pv, v, t) {
            (Some(pv), Some(v), Some(t)) => {
                if v > 0.0 {
                    pv / v
                } else {
                    t / self.period as f64
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
        self.pv.clear();
        self.v.clear();
        self.tp.clear();
        self.value = f64::NAN;
    }
    fn lookback(&self) -> usize {
        self.period - 1
    }
}

/// Chaikin money flow: `Σ mfv / Σ v` over `period` bars, with money-flow volume
/// `mfv = ((c − l) − (h − c)) / (h − l) · v` (0 when h = l). 0 when the window's volume is 0.
/// Lookback `period − 1`.
#[derive(Debug, Clone)]
pub struct Cmf {
    period: usize,
    mfv: Ring,
    vol: Ring,
    value: f64,
}

impl Cmf {
    /// # Errors
    /// `period` outside `1..=MAX_PERIOD`.
    pub fn new(period: usize) -> Result<Self, ConfigError> {
        check_period("period", period, 1)?;
        Ok(Self {
            period,
            mfv: Ring::new(period),
            vol: Ring::new(period),
            value: f64::NAN,
        })
    }
}

impl Indicator for Cmf {
    type Input = Bar;
    type Output = f64;
    fn update(&mut self, b: Bar) -> f64 {
        if !(b.high.is_finite() && b.low.is_finite() && b.close.is_finite() && b.volume.is_finite())
        {
            return f64::NAN;
        }
        let range = b.high - b.low;
        let mfv = if range > 0.0 {
            (((b.close - b.low) - (b.high - b.close)) / range) * b.volume
        } else {
            0.0
        };
        self.mfv.push(mfv);
        self.vol.push(b.volume);
        if !self.mfv.is_full() {
            return f64::NAN;
        }
        // Sums are recomputed over the window (O(period)) so long runs accumulate no drift.
        let mut s = 0.0;
        let mut v = 0.0;
        for i in 0..self.period {
            s += self.mfv.get(i);
            v += self.vol.get(i);
        }
        self.value = if v > 0.0 { s / v } else { 0.0 };
        self.value
    }
    fn value(&self) -> f64 {
        self.value
    }
    fn is_ready(&self) -> bool {
        !self.value.is_nan()
    }
    fn reset(&mut self) {
        self.mfv.clear();
        self.vol.clear();
        self.value = f64::NAN;
    }
    fn lookback(&self) -> usize {
        self.period - 1
    }
}
