//! Aroon up/down.

use super::super::util::Extreme;
use super::super::{Bar, ConfigError, Indicator, Output, check_period};
use serde::{Deserialize, Serialize};

/// Aroon output.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AroonOutput {
    pub up: f64,
    pub down: f64,
}

impl Output for AroonOutput {
    const NAN: Self = Self {
        up: f64::NAN,
        down: f64::NAN,
    };
}

/// Aroon (TA-Lib): over the last `period + 1` bars, up = `100·(period − bars since highest
/// high) / period`, down likewise with the lowest low; ties pick the most recent bar.
/// Lookback `period`.
#[derive(Debug, Clone)]
pub struct Aroon {
    period: usize,
    hi: Extreme,
    lo: Extreme,
    value: AroonOutput,
}

impl Aroon {
    /// # Errors
    /// `period` outside `2..=MAX_PERIOD`.
    pub fn new(period: usize) -> Result<Self, ConfigError> {
        check_period("period", period, 2)?;
        Ok(Self {
            period,
            hi: Extreme::new(period + 1, true),
            lo: Extreme::new(period + 1, false),
            value: AroonOutput::NAN,
        })
    }
}

impl Indicator for Aroon {
    type Input = Bar;
    type Output = AroonOutput;
    #[inline]
    fn update(&mut self, b: Bar) -> AroonOutput {
        if !(b.high.is_finite() && b.low.is_finite()) {
            return AroonOutput::NAN;
        }
        let h = self.hi.push(b.high);
        let l = self.lo.push(b.low);
        let n = self.period as f64;
        let factor = 100.0 / n;
        self.value = match (h, l) {
            (Some((_, ah)), Some((_, al))) => AroonOutput {
                up: factor * (n - ah as f64),
                down: factor * (n - al as f64),
            },
            _ => AroonOutput::NAN,
        };
        self.value
    }
    fn value(&self) -> AroonOutput {
        self.value
    }
    fn is_ready(&self) -> bool {
        !self.value.up.is_nan()
    }
    fn reset(&mut self) {
        self.hi.clear();
        self.lo.clear();
        self.value = AroonOutput::NAN;
    }
    fn lookback(&self) -> usize {
        self.period
    }
}
