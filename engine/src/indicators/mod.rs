//! Technical indicators in streaming form (one [`Indicator::update`] per bar over bounded state)
//! and batch form (a function over whole columns). Batch functions are implemented by driving
//! the streaming form, so the two agree exactly, bit for bit.
//!
//! Conventions are TA-Lib's (warm-up length, seeding, zero-division results), checked against
//! TA-Lib on real candles by `tests/golden_indicators.rs`; departures are documented in
//! `docs/indicators.md`.
//!
//! **Non-finite inputs.** A bar whose needed inputs are not finite (NaN, ±inf) is *skipped*:
//! `update` returns NaN for it and the indicator's state is unchanged. Leading NaNs (e.g. the
//! warm-up of another indicator fed into this one) therefore simply delay the warm-up, exactly
//! like TA-Lib's Python wrapper, and a NaN in the middle never poisons a running sum.
//! Before warm-up completes, outputs are NaN.

mod average;
mod momentum;
mod trend;
mod util;
mod volatility;
mod volume;

pub use average::{Dema, Ema, Hma, Kama, Sma, Tema, Wma};
pub use momentum::{
    Adx, AdxOutput, Aroon, AroonOutput, Cci, Macd, MacdOutput, Mfi, Mom, Roc, Rsi, Stoch,
    StochOutput, StochRsi, WillR,
};
pub use trend::{Highest, Ichimoku, IchimokuOutput, Lowest, Sar};
pub use volatility::{
    Atr, Bollinger, BollingerOutput, Donchian, DonchianOutput, Keltner, KeltnerOutput, StdDev,
    TrueRange,
};
pub use volume::{Cmf, Obv, Vwap};

pub use crate::candles::Bar;

use serde::{Deserialize, Serialize};

/// Largest period any indicator accepts (bounds memory: state is O(period)).
pub const MAX_PERIOD: usize = 100_000;

/// A bad indicator parameter (periods come from user input, so this is an error, not a panic).
#[derive(Debug, Clone, PartialEq, thiserror::Error, Serialize, Deserialize)]
pub enum ConfigError {
    #[error("{name} must be between {min} and {max}, got {value}")]
    OutOfRange {
        name: String,
        value: f64,
        min: f64,
        max: f64,
    },
}

pub(crate) fn check_period(name: &str, value: usize, min: usize) -> Result<usize, ConfigError> {
    if value < min || value > MAX_PERIOD {
        return Err(ConfigError::OutOfRange {
            name: name.to_string(),
            value: value as f64,
            min: min as f64,
            max: MAX_PERIOD as f64,
        });
    }
    Ok(value)
}

pub(crate) fn check_real(name: &str, value: f64, min: f64, max: f64) -> Result<f64, ConfigError> {
    if !(value >= min && value <= max) {
        return Err(ConfigError::OutOfRange {
            name: name.to_string(),
            value,
            min,
            max,
        });
    }
    Ok(value)
}

/// Output of an indicator at one bar: a number or a record of numbers, NaN when not available.
pub trait Output: Copy + std::fmt::Debug {
    /// The "no value" output (every field NaN).
    const NAN: Self;
}

impl Output for f64 {
    const NAN: Self = f64::NAN;
}

/// A streaming indicator: bounded state updated once per bar.
pub trait Indicator {
    /// `f64` for single-series indicators, [`Bar`] for indicators that need OHLCV.
    type Input: Copy;
    /// `f64` or a record of outputs.
    type Output: Output;
    /// Feeds one bar and returns the value at that bar (NaN fields before warm-up or when the
    /// input was skipped because it was not finite).
    fn update(&mut self, input: Self::Input) -> Self::Output;
    /// The value returned by the last `update` that was not skipped.
    fn value(&self) -> Self::Output;
    /// Whether warm-up is complete (the main output is defined).
    fn is_ready(&self) -> bool;
    /// Returns to the freshly constructed state.
    fn reset(&mut self);
    /// Number of (finite) inputs consumed before the first defined value (TA-Lib "lookback").
    fn lookback(&self) -> usize;
}

/// Runs a streaming indicator over a whole input column (the batch form).
pub fn run<I: Indicator>(
    mut indicator: I,
    inputs: impl IntoIterator<Item = I::Input>,
) -> Vec<I::Output> {
    inputs.into_iter().map(|x| indicator.update(x)).collect()
}

/// Bars of a candle series, for [`run`] over bar-input indicators.
pub fn bars(c: &crate::candles::Candles) -> impl Iterator<Item = Bar> + '_ {
    (0..c.len()).map(move |i| c.bar(i))
}

macro_rules! batch1 {
    ($(#[$m:meta])* $fname:ident, $ty:ident, ($($arg:ident : $at:ty),*)) => {
        $(#[$m])*
        ///
        /// # Errors
        /// [`ConfigError`] when a parameter is out of range.
        pub fn $fname(x: &[f64], $($arg: $at),*) -> Result<Vec<f64>, ConfigError> {
            Ok(run($ty::new($($arg),*)?, x.iter().copied()))
        }
    };
}

macro_rules! batch_bar {
    ($(#[$m:meta])* $fname:ident, $ty:ident, $out:ty, ($($arg:ident : $at:ty),*)) => {
        $(#[$m])*
        ///
        /// # Errors
        /// [`ConfigError`] when a parameter is out of range.
        pub fn $fname(c: &crate::candles::Candles, $($arg: $at),*) -> Result<Vec<$out>, ConfigError> {
            Ok(run($ty::new($($arg),*)?, bars(c)))
        }
    };
}

/// Batch forms over columns.
pub mod batch {
    use super::*;

    /// Simple moving average. Same operations in the same order as [`Sma`] (so bit-identical),
    /// over the slice directly when every input is finite.
    ///
    /// # Errors
    /// [`ConfigError`] when `period` is out of range.
    pub fn sma(x: &[f64], period: usize) -> Result<Vec<f64>, ConfigError> {
        let ind = Sma::new(period)?;
        // One pass that also checks finiteness; a non-finite input falls back to the
        // streaming form (which skips such values).
        // Zeroed allocation (fresh pages, no fill pass); every element is written below.
        let mut out = vec![0.0; x.len()];
        let n = period as f64;
        let mut sum = 0.0;
        let mut finite = true;
        let warm = (period - 1).min(x.len());
        for (o, &v) in out[..warm].iter_mut().zip(x) {
            finite &= v.is_finite();
            sum += v;
            *o = f64::NAN;
        }
        for ((o, &v), &old) in out[warm..].iter_mut().zip(&x[warm..]).zip(x) {
            finite &= v.is_finite();
            sum += v;
            *o = sum / n;
            sum -= old;
        }
        if !finite {
            return Ok(run(ind, x.iter().copied()));
        }
        Ok(out)
    }

    /// Exponential moving average (SMA-seeded). Bit-identical to [`Ema`]; direct slice loop
    /// when every input is finite.
    ///
    /// # Errors
    /// [`ConfigError`] when `period` is out of range.
    pub fn ema(x: &[f64], period: usize) -> Result<Vec<f64>, ConfigError> {
        let ind = Ema::new(period)?;
        if !x.iter().all(|v| v.is_finite()) {
            return Ok(run(ind, x.iter().copied()));
        }
        // Zeroed allocation (fresh pages, no fill pass); every element is written below.
        let mut out = vec![0.0; x.len()];
        if x.len() < period {
            out.fill(f64::NAN);
            return Ok(out);
        }
        let k = 2.0 / (period as f64 + 1.0);
        let mut seed = 0.0;
        let (warm, rest) = out.split_at_mut(period - 1);
        for (o, &v) in warm.iter_mut().zip(x) {
            seed += v;
            *o = f64::NAN;
        }
        seed += x[period - 1];
        let mut prev = seed / period as f64;
        rest[0] = prev;
        for (o, &v) in rest[1..].iter_mut().zip(&x[period..]) {
            prev = ((v - prev) * k) + prev;
            *o = prev;
        }
        Ok(out)
    }
    batch1!(/// Linearly weighted moving average.
        wma, Wma, (period: usize));
    batch1!(/// Double EMA.
        dema, Dema, (period: usize));
    batch1!(/// Triple EMA.
        tema, Tema, (period: usize));
    batch1!(/// Hull moving average.
        hma, Hma, (period: usize));
    batch1!(/// Kaufman adaptive moving average.
        kama, Kama, (period: usize));
    batch1!(/// Wilder RSI.
        rsi, Rsi, (period: usize));
    batch1!(/// Rate of change, percent.
        roc, Roc, (period: usize));
    batch1!(/// Momentum `x - x[n]`.
        mom, Mom, (period: usize));
    batch1!(/// Rolling population standard deviation times `nbdev`.
        stddev, StdDev, (period: usize, nbdev: f64));
    batch1!(/// Highest value over `period` bars.
        highest, Highest, (period: usize));
    batch1!(/// Lowest value over `period` bars.
        lowest, Lowest, (period: usize));

    /// MACD line, signal and histogram.
    ///
    /// # Errors
    /// [`ConfigError`] when a period is out of range.
    pub fn macd(
        x: &[f64],
        fast: usize,
        slow: usize,
        signal: usize,
    ) -> Result<Vec<MacdOutput>, ConfigError> {
        Ok(run(Macd::new(fast, slow, signal)?, x.iter().copied()))
    }
    /// Bollinger bands.
    ///
    /// # Errors
    /// [`ConfigError`] when a parameter is out of range.
    pub fn bollinger(
        x: &[f64],
        period: usize,
        k: f64,
    ) -> Result<Vec<BollingerOutput>, ConfigError> {
        Ok(run(Bollinger::new(period, k)?, x.iter().copied()))
    }
    /// Stochastic RSI (%K, %D).
    ///
    /// # Errors
    /// [`ConfigError`] when a period is out of range.
    pub fn stochrsi(
        x: &[f64],
        period: usize,
        k: usize,
        d: usize,
    ) -> Result<Vec<StochOutput>, ConfigError> {
        Ok(run(StochRsi::new(period, k, d)?, x.iter().copied()))
    }

    batch_bar!(/// Wilder ATR.
        atr, Atr, f64, (period: usize));
    batch_bar!(/// True range.
        true_range, TrueRange, f64, ());
    batch_bar!(/// ADX with +DI and −DI.
        adx, Adx, AdxOutput, (period: usize));
    batch_bar!(/// Stochastic oscillator (slow %K, %D).
        stoch, Stoch, StochOutput, (k: usize, smooth_k: usize, d: usize));
    batch_bar!(/// Commodity channel index.
        cci, Cci, f64, (period: usize));
    batch_bar!(/// Williams %R.
        willr, WillR, f64, (period: usize));
    batch_bar!(/// On-balance volume.
        obv, Obv, f64, ());
    batch_bar!(/// Rolling VWAP.
        vwap, Vwap, f64, (period: usize));
    batch_bar!(/// Money flow index.
        mfi, Mfi, f64, (period: usize));
    batch_bar!(/// Aroon up/down.
        aroon, Aroon, AroonOutput, (period: usize));
    batch_bar!(/// Parabolic SAR.
        sar, Sar, f64, (acceleration: f64, maximum: f64));
    batch_bar!(/// Donchian channel.
        donchian, Donchian, DonchianOutput, (period: usize));
    batch_bar!(/// Keltner channel.
        keltner, Keltner, KeltnerOutput, (period: usize, multiplier: f64, atr_period: usize));
    batch_bar!(/// Chaikin money flow.
        cmf, Cmf, f64, (period: usize));
    batch_bar!(/// Ichimoku lines.
        ichimoku, Ichimoku, IchimokuOutput, (tenkan: usize, kijun: usize, senkou_b: usize));
}

/// The zero test used where TA-Lib tests for a zero denominator. TA-Lib ≥ 0.8 made these
/// tests scale-free (results no longer change when all prices are multiplied by 1e-12, which
/// matters for BTC-quoted altcoins), so this is an exact test.
#[inline]
pub(crate) fn ta_is_zero(v: f64) -> bool {
    v == 0.0
}

/// TA-Lib's scale-aware zero test for a difference of comparable magnitudes
/// (`TA_IS_ZERO_SCALED`): `|v| <= 1e-14 · scale`, so rounding noise counts as a tie.
#[inline]
pub(crate) fn ta_is_zero_scaled(v: f64, scale: f64) -> bool {
    v.abs() <= 1e-14 * scale
}

#[cfg(test)]
mod tests;
