//! Moving average convergence/divergence.

use super::super::average::Ema;
use super::super::util::Ring;
use super::super::{ConfigError, Indicator, Output, check_period};
use serde::{Deserialize, Serialize};

/// MACD output: line, signal, histogram.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MacdOutput {
    pub macd: f64,
    pub signal: f64,
    pub hist: f64,
}

impl Output for MacdOutput {
    const NAN: Self = Self {
        macd: f64::NAN,
        signal: f64::NAN,
        hist: f64::NAN,
    };
}

/// MACD (TA-Lib): `EMA(fast) − EMA(slow)`, signal = `EMA(signal)` of the line, histogram =
/// line − signal. As in TA-Lib the fast EMA is seeded at bar `slow − 1` with the mean of the
/// `fast` values ending there, and all three outputs start at lookback
/// `(slow − 1) + (signal − 1)`. If `slow < fast` the two are swapped (TA-Lib).
#[derive(Debug, Clone)]
pub struct Macd {
    fast_p: usize,
    slow_p: usize,
    signal_p: usize,
    recent: Ring,
    fast: Ema,
    slow: Ema,
    signal: Ema,
    count: usize,
    value: MacdOutput,
}

impl Macd {
    /// # Errors
    /// Periods outside `2..=MAX_PERIOD` (signal: `1..`).
    pub fn new(fast: usize, slow: usize, signal: usize) -> Result<Self, ConfigError> {
        check_period("fast", fast, 2)?;
        check_period("slow", slow, 2)?;
        check_period("signal", signal, 1)?;
        let (fast, slow) = if slow < fast {
            (slow, fast)
        } else {
            (fast, slow)
        };
        Ok(Self {
            fast_p: fast,
            slow_p: slow,
            signal_p: signal,
            recent: Ring::new(fast),
            fast: Ema::new(fast)?,
            slow: Ema::new(slow)?,
            signal: Ema::new(signal)?,
            count: 0,
            value: MacdOutput::NAN,
        })
    }
}

impl Indicator for Macd {
    type Input = f64;
    type Output = MacdOutput;
    #[inline]
    fn update(&mut self, x: f64) -> MacdOutput {
        if !x.is_finite() {
            return MacdOutput::NAN;
        }
        self.count += 1;
        let s = self.slow.update(x);
        let f = if self.count < self.slow_p {
            self.recent.push(x);
            return MacdOutput::NAN;
        } else if self.count == self.slow_p {
            self.recent.push(x);
            let mut sum = 0.0;
            for v in self.recent.iter() {
                sum += v;
            }
            let seed = sum / self.fast_p as f64;
            self.fast.seed(seed);
            seed
        } else {
            self.fast.update(x)
        };
        let line = f - s;
        let sig = self.signal.update(line);
        if sig.is_nan() {
            return MacdOutput::NAN;
        }
        self.value = MacdOutput {
            macd: line,
            signal: sig,
            hist: line - sig,
        };
        self.value
    }
    fn value(&self) -> MacdOutput {
        self.value
    }
    fn is_ready(&self) -> bool {
        self.signal.is_ready()
    }
    fn reset(&mut self) {
        *self =
            Self::new(self.fast_p, self.slow_p, self.signal_p).unwrap_or_else(|_| unreachable!());
    }
    fn lookback(&self) -> usize {
        self.slow_p - 1 + self.signal_p - 1
    }
}
