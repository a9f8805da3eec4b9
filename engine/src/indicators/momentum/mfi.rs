//! Money flow index.

use super::super::util::Ring;
use super::super::{Bar, ConfigError, Indicator, check_period, ta_is_zero_scaled};
use super::finite_hlc;

/// Money flow index (TA-Lib): typical-price money flow split into positive/negative by the
/// change of typical price, `100·pos / (pos + neg)` over `period` changes; 0 when both are 0.
/// Lookback `period`.
#[derive(Debug, Clone)]
pub struct Mfi {
    period: usize,
    prev_tp: f64,
    count: usize,
    pos: Ring,
    neg: Ring,
    pos_sum: f64,
    neg_sum: f64,
    value: f64,
}

impl Mfi {
    /// # Errors
    /// `period` outside `2..=MAX_PERIOD`.
    pub fn new(period: usize) -> Result<Self, ConfigError> {
        check_period("period", period, 2)?;
        Ok(Self {
            period,
            prev_tp: f64::NAN,
            count: 0,
            pos: Ring::new(period),
            neg: Ring::new(period),
            pos_sum: 0.0,
            neg_sum: 0.0,
            value: f64::NAN,
        })
    }
}

impl Indicator for Mfi {
    type Input = Bar;
    type Output = f64;
    #[inline]
    fn update(&mut self, b: Bar) -> f64 {
        if !finite_hlc(&b) || !b.volume.is_finite() {
            return f64::NAN;
        }
        let tp = (b.high + b.low + b.close) / 3.0;
        self.count += 1;
        if self.count == 1 {
            self.prev_tp = tp;
            return f64::NAN;
        }
        let diff = tp - self.prev_tp;
        let tie = ta_is_zero_scaled(diff, tp.abs() + self.prev_tp.abs());
        self.prev_tp = tp;
        let flow = tp * b.volume;
        let (p, n) = if tie {
            (0.0, 0.0)
        } else if diff < 0.0 {
            (0.0, flow)
        } else if diff > 0.0 {
            (flow, 0.0)
        } else {
            (0.0, 0.0)
        };
        if let Some(old) = self.pos.push(p) {
            self.pos_sum -= old;
        }
        if let Some(old) = self.neg.push(n) {
            self.neg_sum -= old;
        }
        self.pos_sum += p;
        self.neg_sum += n;
        if self.count <= self.period {
            return f64::NAN;
        }
        let total = self.pos_sum + self.neg_sum;
        self.value = if total == 0.0 {
            0.0
        } else {
            100.0 * (self.pos_sum / total)
        };
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
