//! Relative strength index.

use super::super::{ConfigError, Indicator, check_period, ta_is_zero};

/// Relative strength index with Wilder smoothing; the first averages are plain means of the
/// first `period` gains/losses (TA-Lib). Lookback `period`.
#[derive(Debug, Clone)]
pub struct Rsi {
    period: usize,
    prev: f64,
    count: usize,
    gain: f64,
    loss: f64,
    value: f64,
}

impl Rsi {
    /// # Errors
    /// `period` outside `2..=MAX_PERIOD`.
    pub fn new(period: usize) -> Result<Self, ConfigError> {
        check_period("period", period, 2)?;
        Ok(Self {
            period,
            prev: f64::NAN,
            count: 0,
            gain: 0.0,
            loss: 0.0,
            value: f64::NAN,
        })
    }
    fn out(&self) -> f64 {
        let sum = self.gain + self.loss;
        if ta_is_zero(sum) {
            0.0
        } else {
            100.0 * (self.gain / sum)
        }
    }
}

impl Indicator for Rsi {
    type Input = f64;
    type Output = f64;
    #[inline]
    fn update(&mut self, x: f64) -> f64 {
        if !x.is_finite() {
            return f64::NAN;
        }
        self.count += 1;
        if self.count == 1 {
            self.prev = x;
            return f64::NAN;
        }
        let diff = x - self.prev;
        self.prev = x;
        let n = self.period as f64;
        if self.count <= self.period {
            if diff < 0.0 {
                self.loss -= diff;
            } else {
                self.gain += diff;
            }
            return f64::NAN;
        }
        if self.count == self.period + 1 {
            if diff < 0.0 {
                self.loss -= diff;
            } else {
                self.gain += diff;
            }
            self.loss /= n;
            self.gain /= n;
        } else {
            self.loss *= n - 1.0;
            self.gain *= n - 1.0;
            if diff < 0.0 {
                self.loss -= diff;
            } else {
                self.gain += diff;
            }
            self.loss /= n;
            self.gain /= n;
        }
        self.value = self.out();
        self.value
    }
    fn value(&self) -> f64 {
        self.value
    }
    fn is_ready(&self) -> bool {
        self.count > self.period
    }
    fn reset(&mut self) {
        *self = Self::new(self.period).unwrap_or_else(|_| unreachable!());
    }
    fn lookback(&self) -> usize {
        self.period
    }
}
