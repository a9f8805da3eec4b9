//! Moving averages.

use super::util::{Ring, WindowSum};
use super::{ConfigError, Indicator, check_period, ta_is_zero};

/// Simple moving average: mean of the last `period` values. Lookback `period - 1`.
#[derive(Debug, Clone)]
pub struct Sma {
    period: usize,
    sum: WindowSum,
    value: f64,
}

impl Sma {
    /// # Errors
    /// `period` outside `1..=MAX_PERIOD`.
    pub fn new(period: usize) -> Result<Self, ConfigError> {
        check_period("period", period, 1)?;
        Ok(Self {
            period,
            sum: WindowSum::new(period),
            value: f64::NAN,
        })
    }
}

impl Indicator for Sma {
    type Input = f64;
    type Output = f64;
    #[inline]
    fn update(&mut self, x: f64) -> f64 {
        if !x.is_finite() {
            return f64::NAN;
        }
        self.value = match self.sum.push(x) {
            Some(total) => total / self.period as f64,
            None => f64::NAN,
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
        self.sum.clear();
        self.value = f64::NAN;
    }
    fn lookback(&self) -> usize {
        self.period - 1
    }
}

/// Exponential moving average, `k = 2 / (period + 1)`, seeded with the SMA of the first
/// `period` values (TA-Lib default). Lookback `period - 1`.
#[derive(Debug, Clone)]
pub struct Ema {
    period: usize,
    k: f64,
    seed_sum: f64,
    count: usize,
    value: f64,
}

impl Ema {
    /// # Errors
    /// `period` outside `1..=MAX_PERIOD`.
    pub fn new(period: usize) -> Result<Self, ConfigError> {
        check_period("period", period, 1)?;
        Ok(Self::with_k(period, 2.0 / (period as f64 + 1.0)))
    }
    pub(crate) fn with_k(period: usize, k: f64) -> Self {
        Self {
            period,
            k,
            seed_sum: 0.0,
            count: 0,
            value: f64::NAN,
        }
    }
    /// Seeds directly with a given value (used by MACD, whose fast EMA TA-Lib seeds late).
    pub(crate) fn seed(&mut self, value: f64) {
        self.count = self.period;
        self.value = value;
    }
}

impl Indicator for Ema {
    type Input = f64;
    type Output = f64;
    #[inline]
    fn update(&mut self, x: f64) -> f64 {
        if !x.is_finite() {
            return f64::NAN;
        }
        if self.count >= self.period {
            self.value = ((x - self.value) * self.k) + self.value;
            return self.value;
        }
        self.seed_sum += x;
        self.count += 1;
        if self.count == self.period {
            self.value = self.seed_sum / self.period as f64;
            self.value
        } else {
            f64::NAN
        }
    }
    fn value(&self) -> f64 {
        self.value
    }
    fn is_ready(&self) -> bool {
        self.count >= self.period
    }
    fn reset(&mut self) {
        self.seed_sum = 0.0;
        self.count = 0;
        self.value = f64::NAN;
    }
    fn lookback(&self) -> usize {
        self.period - 1
    }
}

/// Linearly weighted moving average (weights 1..=period, newest heaviest). Lookback
/// `period - 1`. Uses TA-Lib's incremental weighted-sum update.
#[derive(Debug, Clone)]
pub struct Wma {
    period: usize,
    ring: Ring,
    sum: f64,
    sub: f64,
    divider: f64,
    value: f64,
}

impl Wma {
    /// # Errors
    /// `period` outside `1..=MAX_PERIOD`.
    pub fn new(period: usize) -> Result<Self, ConfigError> {
        check_period("period", period, 1)?;
        Ok(Self {
            period,
            ring: Ring::new(period),
            sum: 0.0,
            sub: 0.0,
            divider: (period * (period + 1)) as f64 / 2.0,
            value: f64::NAN,
        })
    }
}

impl Indicator for Wma {
    type Input = f64;
    type Output = f64;
    #[inline]
    fn update(&mut self, x: f64) -> f64 {
        if !x.is_finite() {
            return f64::NAN;
        }
        let n = self.period as f64;
        if !self.ring.is_full() && self.ring.len() + 1 < self.period {
            self.ring.push(x);
            self.sub += x;
            self.sum += x * self.ring.len() as f64;
            return f64::NAN;
        }
        // `trailing` is the value that leaves the window with this update (0 on the first output).
        let trailing = if self.ring.is_full() {
            self.ring.oldest()
        } else {
            0.0
        };
        self.ring.push(x);
        self.sub += x;
        self.sub -= trailing;
        self.sum += x * n;
        self.value = self.sum / self.divider;
        self.sum -= self.sub;
        self.value
    }
    fn value(&self) -> f64 {
        self.value
    }
    fn is_ready(&self) -> bool {
        !self.value.is_nan()
    }
    fn reset(&mut self) {
        self.ring.clear();
        self.sum = 0.0;
        self.sub = 0.0;
        self.value = f64::NAN;
    }
    fn lookback(&self) -> usize {
        self.period - 1
    }
}

/// Double EMA: `2·EMA(x) − EMA(EMA(x))`. Lookback `2·(period − 1)`.
#[derive(Debug, Clone)]
pub struct Dema {
    e1: Ema,
    e2: Ema,
    value: f64,
}

impl Dema {
    /// # Errors
    /// `period` outside `1..=MAX_PERIOD`.
    pub fn new(period: usize) -> Result<Self, ConfigError> {
        Ok(Self {
            e1: Ema::new(period)?,
            e2: Ema::new(period)?,
            value: f64::NAN,
        })
    }
}

impl Indicator for Dema {
    type Input = f64;
    type Output = f64;
    #[inline]
    fn update(&mut self, x: f64) -> f64 {
        if !x.is_finite() {
            return f64::NAN;
        }
        let a = self.e1.update(x);
        let b = self.e2.update(a);
        self.value = if b.is_nan() { f64::NAN } else { (2.0 * a) - b };
        self.value
    }
    fn value(&self) -> f64 {
        self.value
    }
    fn is_ready(&self) -> bool {
        self.e2.is_ready()
    }
    fn reset(&mut self) {
        self.e1.reset();
        self.e2.reset();
        self.value = f64::NAN;
    }
    fn lookback(&self) -> usize {
        2 * self.e1.lookback()
    }
}

/// Triple EMA: `3·e1 − 3·e2 + e3`. Lookback `3·(period − 1)`.
#[derive(Debug, Clone)]
pub struct Tema {
    e1: Ema,
    e2: Ema,
    e3: Ema,
    value: f64,
}

impl Tema {
    /// # Errors
    /// `period` outside `1..=MAX_PERIOD`.
    pub fn new(period: usize) -> Result<Self, ConfigError> {
        Ok(Self {
            e1: Ema::new(period)?,
            e2: Ema::new(period)?,
            e3: Ema::new(period)?,
            value: f64::NAN,
        })
    }
}

impl Indicator for Tema {
    type Input = f64;
    type Output = f64;
    #[inline]
    fn update(&mut self, x: f64) -> f64 {
        if !x.is_finite() {
            return f64::NAN;
        }
        let a = self.e1.update(x);
        let b = self.e2.update(a);
        let c = self.e3.update(b);
        self.value = if c.is_nan() {
            f64::NAN
        } else {
            c + ((3.0 * a) - (3.0 * b))
        };
        self.value
    }
    fn value(&self) -> f64 {
        self.value
    }
    fn is_ready(&self) -> bool {
        self.e3.is_ready()
    }
    fn reset(&mut self) {
        self.e1.reset();
        self.e2.reset();
        self.e3.reset();
        self.value = f64::NAN;
    }
    fn lookback(&self) -> usize {
        3 * self.e1.lookback()
    }
}

/// Hull moving average: `WMA(2·WMA(x, n/2) − WMA(x, n), floor(sqrt(n)))`. Lookback
/// `n − 1 + floor(sqrt(n)) − 1`.
#[derive(Debug, Clone)]
pub struct Hma {
    half: Wma,
    full: Wma,
    outer: Wma,
    value: f64,
}

impl Hma {
    /// # Errors
    /// `period` outside `2..=MAX_PERIOD`.
    pub fn new(period: usize) -> Result<Self, ConfigError> {
        check_period("period", period, 2)?;
        let sqrt = ((period as f64).sqrt().floor() as usize).max(1);
        Ok(Self {
            half: Wma::new((period / 2).max(1))?,
            full: Wma::new(period)?,
            outer: Wma::new(sqrt)?,
            value: f64::NAN,
        })
    }
}

impl Indicator for Hma {
    type Input = f64;
    type Output = f64;
    #[inline]
    fn update(&mut self, x: f64) -> f64 {
        if !x.is_finite() {
            return f64::NAN;
        }
        let h = self.half.update(x);
        let f = self.full.update(x);
        self.value = if f.is_nan() {
            f64::NAN
        } else {
            self.outer.update((2.0 * h) - f)
        };
        self.value
    }
    fn value(&self) -> f64 {
        self.value
    }
    fn is_ready(&self) -> bool {
        self.outer.is_ready()
    }
    fn reset(&mut self) {
        self.half.reset();
        self.full.reset();
        self.outer.reset();
        self.value = f64::NAN;
    }
    fn lookback(&self) -> usize {
        self.full.lookback() + self.outer.lookback()
    }
}

/// Kaufman adaptive moving average (TA-Lib: fast 2, slow 30, efficiency ratio over `period`,
/// seeded with the previous close). Lookback `period`.
#[derive(Debug, Clone)]
pub struct Kama {
    period: usize,
    ring: Ring,
    sum_roc: f64,
    value: f64,
    ready: bool,
}

const KAMA_SLOW: f64 = 2.0 / 31.0;
const KAMA_DIFF: f64 = 2.0 / 3.0 - KAMA_SLOW;

impl Kama {
    /// # Errors
    /// `period` outside `1..=MAX_PERIOD`.
    pub fn new(period: usize) -> Result<Self, ConfigError> {
        check_period("period", period, 1)?;
        Ok(Self {
            period,
            ring: Ring::new(period + 1),
            sum_roc: 0.0,
            value: f64::NAN,
            ready: false,
        })
    }
}

impl Indicator for Kama {
    type Input = f64;
    type Output = f64;
    #[inline]
    fn update(&mut self, x: f64) -> f64 {
        if !x.is_finite() {
            return f64::NAN;
        }
        let filled = self.ring.len();
        if filled == 0 {
            self.ring.push(x);
            return f64::NAN;
        }
        let prev = self.ring.newest();
        if filled < self.period {
            self.sum_roc += (prev - x).abs();
            self.ring.push(x);
            return f64::NAN;
        }
        let prev_kama = if self.ready { self.value } else { prev };
        if self.ring.is_full() {
            // The window moves: drop |x[t-n-1] - x[t-n]|, add |x[t] - x[t-1]|.
            let trailing_value = self.ring.get(0);
            let trailing = self.ring.get(1);
            self.sum_roc -= (trailing_value - trailing).abs();
            self.sum_roc += (x - prev).abs();
        } else {
            self.sum_roc += (prev - x).abs();
        }
        self.ring.push(x);
        let period_roc = x - self.ring.get(0);
        let er = if self.sum_roc <= period_roc || ta_is_zero(self.sum_roc) {
            1.0
        } else {
            (period_roc / self.sum_roc).abs()
        };
        let mut sc = er * KAMA_DIFF + KAMA_SLOW;
        sc *= sc;
        self.value = ((x - prev_kama) * sc) + prev_kama;
        self.ready = true;
        self.value
    }
    fn value(&self) -> f64 {
        self.value
    }
    fn is_ready(&self) -> bool {
        self.ready
    }
    fn reset(&mut self) {
        self.ring.clear();
        self.sum_roc = 0.0;
        self.value = f64::NAN;
        self.ready = false;
    }
    fn lookback(&self) -> usize {
        self.period
    }
}
