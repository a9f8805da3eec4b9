//! Momentum and oscillator indicators.

use serde::{Deserialize, Serialize};

use super::average::{Ema, Sma};
use super::util::{Extreme, Ring};
use super::{Bar, ConfigError, Indicator, Output, check_period, ta_is_zero, ta_is_zero_scaled};

fn finite_hlc(b: &Bar) -> bool {
    b.high.is_finite() && b.low.is_finite() && b.close.is_finite()
}

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
