//! Bounded buffers shared by the indicators.

use std::collections::VecDeque;

/// Fixed-capacity ring buffer of the last `cap` values (oldest first).
#[derive(Debug, Clone)]
pub(crate) struct Ring {
    buf: Vec<f64>,
    head: usize,
    len: usize,
}

impl Ring {
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            buf: vec![0.0; cap.max(1)],
            head: 0,
            len: 0,
        }
    }
    /// Appends; returns the evicted oldest value when full.
    #[inline]
    pub(crate) fn push(&mut self, x: f64) -> Option<f64> {
        let cap = self.buf.len();
        if self.len < cap {
            let mut idx = self.head + self.len;
            if idx >= cap {
                idx -= cap;
            }
            self.buf[idx] = x;
            self.len += 1;
            None
        } else {
            let old = self.buf[self.head];
            self.buf[self.head] = x;
            self.head += 1;
            if self.head == cap {
                self.head = 0;
            }
            Some(old)
        }
    }
    /// `i = 0` is the oldest value.
    #[inline]
    pub(crate) fn get(&self, i: usize) -> f64 {
        let mut idx = self.head + i;
        if idx >= self.buf.len() {
            idx -= self.buf.len();
        }
        self.buf[idx]
    }
    #[inline]
    pub(crate) fn oldest(&self) -> f64 {
        self.buf[self.head]
    }
    #[inline]
    pub(crate) fn newest(&self) -> f64 {
        self.get(self.len - 1)
    }
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len
    }
    #[inline]
    pub(crate) fn is_full(&self) -> bool {
        self.len == self.buf.len()
    }
    pub(crate) fn clear(&mut self) {
        self.head = 0;
        self.len = 0;
    }
    pub(crate) fn iter(&self) -> impl Iterator<Item = f64> + '_ {
        (0..self.len).map(|i| self.get(i))
    }
}

/// Rolling maximum or minimum over the last `period` values, with the index of the extreme
/// (ties resolve to the most recent occurrence, as TA-Lib's AROON does). Amortised O(1).
#[derive(Debug, Clone)]
pub(crate) struct Extreme {
    period: u64,
    max: bool,
    deque: VecDeque<(u64, f64)>,
    count: u64,
}

impl Extreme {
    pub(crate) fn new(period: usize, max: bool) -> Self {
        Self {
            period: period as u64,
            max,
            deque: VecDeque::with_capacity(period.min(1024) + 1),
            count: 0,
        }
    }
    /// Adds a value; returns (extreme, bars since the extreme) once `period` values were seen.
    #[inline]
    pub(crate) fn push(&mut self, x: f64) -> Option<(f64, u64)> {
        let idx = self.count;
        self.count += 1;
        while let Some(&(_, b)) = self.deque.back() {
            let dominated = if self.max { b <= x } else { b >= x };
            if dominated {
                self.deque.pop_back();
            } else {
                break;
            }
        }
        self.deque.push_back((idx, x));
        while let Some(&(i, _)) = self.deque.front() {
            if i + self.period <= idx {
                self.deque.pop_front();
            } else {
                break;
            }
        }
        if self.count >= self.period {
            self.deque.front().map(|&(i, v)| (v, idx - i))
        } else {
            None
        }
    }
    pub(crate) fn clear(&mut self) {
        self.deque.clear();
        self.count = 0;
    }
}

/// TA-Lib style running sum over a window: `sum` excludes the oldest value once the window is
/// full, so output = (sum + new) / n and then the oldest leaves (the order TA-Lib uses).
#[derive(Debug, Clone)]
pub(crate) struct WindowSum {
    ring: Ring,
    sum: f64,
}

impl WindowSum {
    pub(crate) fn new(period: usize) -> Self {
        Self {
            ring: Ring::new(period),
            sum: 0.0,
        }
    }
    /// Adds `x`; returns the full-window sum once `period` values were seen.
    #[inline]
    pub(crate) fn push(&mut self, x: f64) -> Option<f64> {
        self.ring.push(x);
        self.sum += x;
        if self.ring.is_full() {
            let total = self.sum;
            self.sum -= self.ring.oldest();
            Some(total)
        } else {
            None
        }
    }
    pub(crate) fn clear(&mut self) {
        self.ring.clear();
        self.sum = 0.0;
    }
}
