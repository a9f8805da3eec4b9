//! Trend indicators: highest/lowest, Parabolic SAR, Ichimoku.

use serde::{Deserialize, Serialize};

use super::util::{Extreme, Ring};
use super::{Bar, ConfigError, Indicator, Output, check_period, check_real};

/// Highest value of the last `period` inputs (TA-Lib `MAX`). Lookback `period − 1`.
#[derive(Debug, Clone)]
pub struct Highest {
    period: usize,
    ext: Extreme,
    value: f64,
}

impl Highest {
    /// # Errors
    /// `period` outside `1..=MAX_PERIOD`.
    pub fn new(period: usize) -> Result<Self, ConfigError> {
        check_period("period", period, 1)?;
        Ok(Self {
            period,
            ext: Extreme::new(period, true),
            value: f64::NAN,
        })
    }
}

impl Indicator for Highest {
    type Input = f64;
    type Output = f64;
    #[inline]
    fn update(&mut self, x: f64) -> f64 {
        if !x.is_finite() {
            return f64::NAN;
        }
        self.value = self.ext.push(x).map_or(f64::NAN, |(v, _)| v);
        self.value
    }
    fn value(&self) -> f64 {
        self.value
    }
    fn is_ready(&self) -> bool {
        !self.value.is_nan()
    }
    fn reset(&mut self) {
        self.ext.clear();
        self.value = f64::NAN;
    }
    fn lookback(&self) -> usize {
        self.period - 1
    }
}

/// Lowest value of the last `period` inputs (TA-Lib `MIN`). Lookback `period − 1`.
#[derive(Debug, Clone)]
pub struct Lowest {
    period: usize,
    ext: Extreme,
    value: f64,
}

impl Lowest {
    /// # Errors
    /// `period` outside `1..=MAX_PERIOD`.
    pub fn new(period: usize) -> Result<Self, ConfigError> {
        check_period("period", period, 1)?;
        Ok(Self {
            period,
            ext: Extreme::new(period, false),
            value: f64::NAN,
        })
    }
}

impl Indicator for Lowest {
    type Input = f64;
    type Output = f64;
    #[inline]
    fn update(&mut self, x: f64) -> f64 {
        if !x.is_finite() {
            return f64::NAN;
        }
        self.value = self.ext.push(x).map_or(f64::NAN, |(v, _)| v);
        self.value
    }
    fn value(&self) -> f64 {
        self.value
    }
    fn is_ready(&self) -> bool {
        !self.value.is_nan()
    }
    fn reset(&mut self) {
        self.ext.clear();
        self.value = f64::NAN;
    }
    fn lookback(&self) -> usize {
        self.period - 1
    }
}

/// Parabolic SAR (TA-Lib `SAR`): the initial direction is short when the second bar has a
/// positive −DM (down move larger than the up move), else long; the SAR never enters the
/// previous two bars' range. Lookback 1.
#[derive(Debug, Clone)]
pub struct Sar {
    accel: f64,
    max: f64,
    count: usize,
    first: Bar,
    is_long: bool,
    af: f64,
    ep: f64,
    sar: f64,
    new_high: f64,
    new_low: f64,
    value: f64,
}

impl Sar {
    /// # Errors
    /// `acceleration` or `maximum` outside `0..=1`.
    pub fn new(acceleration: f64, maximum: f64) -> Result<Self, ConfigError> {
        check_real("acceleration", acceleration, 0.0, 1.0)?;
        check_real("maximum", maximum, 0.0, 1.0)?;
        let accel = acceleration.min(maximum);
        Ok(Self {
            accel,
            max: maximum,
            count: 0,
            first: Bar::default(),
            is_long: true,
            af: accel,
            ep: 0.0,
            sar: 0.0,
            new_high: 0.0,
            new_low: 0.0,
            value: f64::NAN,
        })
    }
}

impl Indicator for Sar {
    type Input = Bar;
    type Output = f64;
    fn update(&mut self, b: Bar) -> f64 {
        if !(b.high.is_finite() && b.low.is_finite()) {
            return f64::NAN;
        }
        self.count += 1;
        if self.count == 1 {
            self.first = b;
            return f64::NAN;
        }
        if self.count == 2 {
            let diff_p = b.high - self.first.high;
            let diff_m = self.first.low - b.low;
            let minus_dm = diff_m > 0.0 && diff_p < diff_m;
            self.is_long = !minus_dm;
            if self.is_long {
                self.ep = b.high;
                self.sar = self.first.low;
            } else {
                self.ep = b.low;
                self.sar = self.first.high;
            }
            // TA-Lib "cheats" the previous extremes with the current bar's for the first step.
            self.new_low = b.low;
            self.new_high = b.high;
        }
        let prev_low = self.new_low;
        let prev_high = self.new_high;
        self.new_low = b.low;
        self.new_high = b.high;
        let (new_low, new_high) = (b.low, b.high);
        let out;
        if self.is_long {
            if new_low <= self.sar {
                self.is_long = false;
                self.sar = self.ep;
                if self.sar < prev_high {
                    self.sar = prev_high;
                }
                if self.sar < new_high {
                    self.sar = new_high;
                }
                out = self.sar;
                self.af = self.accel;
                self.ep = new_low;
                self.sar += self.af * (self.ep - self.sar);
                if self.sar < prev_high {
                    self.sar = prev_high;
                }
                if self.sar < new_high {
                    self.sar = new_high;
                }
            } else {
                out = self.sar;
                if new_high > self.ep {
                    self.ep = new_high;
                    self.af += self.accel;
                    if self.af > self.max {
                        self.af = self.max;
                    }
                }
                self.sar += self.af * (self.ep - self.sar);
                if self.sar > prev_low {
                    self.sar = prev_low;
                }
                if self.sar > new_low {
                    self.sar = new_low;
                }
            }
        } else if new_high >= self.sar {
            self.is_long = true;
            self.sar = self.ep;
            if self.sar > prev_low {
                self.sar = prev_low;
            }
            if self.sar > new_low {
                self.sar = new_low;
            }
            out = self.sar;
            self.af = self.accel;
            self.ep = new_high;
            self.sar += self.af * (self.ep - self.sar);
            if self.sar > prev_low {
                self.sar = prev_low;
            }
            if self.sar > new_low {
                self.sar = new_low;
            }
        } else {
            out = self.sar;
            if new_low < self.ep {
                self.ep = new_low;
                self.af += self.accel;
                if self.af > self.max {
                    self.af = self.max;
                }
            }
            self.sar += self.af * (self.ep - self.sar);
            if self.sar < prev_high {
                self.sar = prev_high;
            }
            if self.sar < new_high {
                self.sar = new_high;
            }
        }
        self.value = out;
        out
    }
    fn value(&self) -> f64 {
        self.value
    }
    fn is_ready(&self) -> bool {
        self.count >= 2
    }
    fn reset(&mut self) {
        *self = Self::new(self.accel, self.max).unwrap_or_else(|_| unreachable!());
    }
    fn lookback(&self) -> usize {
        1
    }
}

/// Ichimoku lines as known at bar t (no look-ahead).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct IchimokuOutput {
    /// Conversion line: midpoint of the `tenkan`-bar high/low range.
    pub tenkan: f64,
    /// Base line: midpoint of the `kijun`-bar range.
    pub kijun: f64,
    /// Leading span A as plotted at t: `(tenkan + kijun) / 2` computed `kijun` bars ago.
    pub senkou_a: f64,
    /// Leading span B as plotted at t: midpoint of the `senkou_b`-bar range `kijun` bars ago.
    pub senkou_b: f64,
}

impl Output for IchimokuOutput {
    const NAN: Self = Self {
        tenkan: f64::NAN,
        kijun: f64::NAN,
        senkou_a: f64::NAN,
        senkou_b: f64::NAN,
    };
}

/// Ichimoku Kinko Hyo (not in TA-Lib). The leading spans are displaced forward by `kijun`
/// bars, so at bar t they use data up to t − kijun; the lagging span (close plotted `kijun`
/// bars back) is omitted because at bar t it would need future closes.
#[derive(Debug, Clone)]
pub struct Ichimoku {
    params: (usize, usize, usize),
    t_hi: Extreme,
    t_lo: Extreme,
    k_hi: Extreme,
    k_lo: Extreme,
    b_hi: Extreme,
    b_lo: Extreme,
    span_a: Ring,
    span_b: Ring,
    value: IchimokuOutput,
}

impl Ichimoku {
    /// # Errors
    /// Periods outside `1..=MAX_PERIOD`.
    pub fn new(tenkan: usize, kijun: usize, senkou_b: usize) -> Result<Self, ConfigError> {
        check_period("tenkan", tenkan, 1)?;
        check_period("kijun", kijun, 1)?;
        check_period("senkou_b", senkou_b, 1)?;
        Ok(Self {
            params: (tenkan, kijun, senkou_b),
            t_hi: Extreme::new(tenkan, true),
            t_lo: Extreme::new(tenkan, false),
            k_hi: Extreme::new(kijun, true),
            k_lo: Extreme::new(kijun, false),
            b_hi: Extreme::new(senkou_b, true),
            b_lo: Extreme::new(senkou_b, false),
            span_a: Ring::new(kijun + 1),
            span_b: Ring::new(kijun + 1),
            value: IchimokuOutput::NAN,
        })
    }
}

fn mid(h: Option<(f64, u64)>, l: Option<(f64, u64)>) -> f64 {
    match (h, l) {
        (Some((h, _)), Some((l, _))) => (h + l) / 2.0,
        _ => f64::NAN,
    }
}

impl Indicator for Ichimoku {
    type Input = Bar;
    type Output = IchimokuOutput;
    fn update(&mut self, b: Bar) -> IchimokuOutput {
        if !(b.high.is_finite() && b.low.is_finite()) {
            return IchimokuOutput::NAN;
        }
        let tenkan = mid(self.t_hi.push(b.high), self.t_lo.push(b.low));
        let kijun = mid(self.k_hi.push(b.high), self.k_lo.push(b.low));
        let span_b_now = mid(self.b_hi.push(b.high), self.b_lo.push(b.low));
        self.span_a.push((tenkan + kijun) / 2.0);
        self.span_b.push(span_b_now);
        let (senkou_a, senkou_b) = if self.span_a.is_full() {
            (self.span_a.oldest(), self.span_b.oldest())
        } else {
            (f64::NAN, f64::NAN)
        };
        self.value = IchimokuOutput {
            tenkan,
            kijun,
            senkou_a,
            senkou_b,
        };
        self.value
    }
    fn value(&self) -> IchimokuOutput {
        self.value
    }
    fn is_ready(&self) -> bool {
        !self.value.senkou_b.is_nan()
    }
    fn reset(&mut self) {
        *self = Self::new(self.params.0, self.params.1, self.params.2)
            .unwrap_or_else(|_| unreachable!());
    }
    fn lookback(&self) -> usize {
        let (t, k, b) = self.params;
        (t.max(k) - 1 + k).max(b - 1 + k)
    }
}
