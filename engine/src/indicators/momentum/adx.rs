//! Average directional index.

use super::super::{Bar, ConfigError, Indicator, Output, check_period, ta_is_zero};
use super::finite_hlc;
use serde::{Deserialize, Serialize};

/// ADX output with the directional indicators.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AdxOutput {
    pub adx: f64,
    pub plus_di: f64,
    pub minus_di: f64,
}

impl Output for AdxOutput {
    const NAN: Self = Self {
        adx: f64::NAN,
        plus_di: f64::NAN,
        minus_di: f64::NAN,
    };
}

/// Wilder's ADX with +DI/−DI (TA-Lib): DM and TR summed over the first `period − 1` changes,
/// then Wilder-smoothed (`s − s/n + x`); DI = 100·DM/TR (0 when TR is zero); first ADX = mean of
/// the first `period` DX values. Lookback: DI `period`, ADX `2·period − 1`.
#[derive(Debug, Clone)]
pub struct Adx {
    period: usize,
    count: usize,
    prev: Bar,
    plus_dm: f64,
    minus_dm: f64,
    tr: f64,
    sum_dx: f64,
    adx: f64,
    value: AdxOutput,
}

impl Adx {
    /// # Errors
    /// `period` outside `2..=MAX_PERIOD`.
    pub fn new(period: usize) -> Result<Self, ConfigError> {
        check_period("period", period, 2)?;
        Ok(Self {
            period,
            count: 0,
            prev: Bar::default(),
            plus_dm: 0.0,
            minus_dm: 0.0,
            tr: 0.0,
            sum_dx: 0.0,
            adx: f64::NAN,
            value: AdxOutput::NAN,
        })
    }
}

impl Indicator for Adx {
    type Input = Bar;
    type Output = AdxOutput;
    #[inline]
    fn update(&mut self, b: Bar) -> AdxOutput {
        if !finite_hlc(&b) {
            return AdxOutput::NAN;
        }
        self.count += 1;
        let prev = self.prev;
        self.prev = b;
        if self.count == 1 {
            return AdxOutput::NAN;
        }
        let n = self.period as f64;
        let diff_p = b.high - prev.high;
        let diff_m = prev.low - b.low;
        let mut tr = b.high - b.low;
        let t = (b.high - prev.close).abs();
        if t > tr {
            tr = t;
        }
        let t = (b.low - prev.close).abs();
        if t > tr {
            tr = t;
        }
        let changes = self.count - 1;
        if changes < self.period {
            if diff_m > 0.0 && diff_p < diff_m {
                self.minus_dm += diff_m;
            } else if diff_p > 0.0 && diff_p > diff_m {
                self.plus_dm += diff_p;
            }
            self.tr += tr;
            return AdxOutput::NAN;
        }
        self.minus_dm -= self.minus_dm / n;
        self.plus_dm -= self.plus_dm / n;
        if diff_m > 0.0 && diff_p < diff_m {
            self.minus_dm += diff_m;
        } else if diff_p > 0.0 && diff_p > diff_m {
            self.plus_dm += diff_p;
        }
        self.tr = self.tr - self.tr / n + tr;
        let (plus_di, minus_di, dx) = if ta_is_zero(self.tr) {
            (0.0, 0.0, None)
        } else {
            let minus_di = 100.0 * (self.minus_dm / self.tr);
            let plus_di = 100.0 * (self.plus_dm / self.tr);
            let sum = minus_di + plus_di;
            let dx = if ta_is_zero(sum) {
                None
            } else {
                Some(100.0 * ((minus_di - plus_di).abs() / sum))
            };
            (plus_di, minus_di, dx)
        };
        // changes = period .. 2·period − 1 accumulate the first DX values.
        let dx_index = changes - self.period + 1; // 1-based count of DX bars
        if dx_index < self.period {
            if let Some(dx) = dx {
                self.sum_dx += dx;
            }
        } else if dx_index == self.period {
            if let Some(dx) = dx {
                self.sum_dx += dx;
            }
            self.adx = self.sum_dx / n;
        } else if let Some(dx) = dx {
            self.adx = (self.adx * (n - 1.0) + dx) / n;
        }
        self.value = AdxOutput {
            adx: self.adx,
            plus_di,
            minus_di,
        };
        self.value
    }
    fn value(&self) -> AdxOutput {
        self.value
    }
    fn is_ready(&self) -> bool {
        !self.adx.is_nan()
    }
    fn reset(&mut self) {
        *self = Self::new(self.period).unwrap_or_else(|_| unreachable!());
    }
    fn lookback(&self) -> usize {
        2 * self.period - 1
    }
}
