//! Momentum and oscillator indicators, one file per indicator family.

mod adx;
mod aroon;
mod macd;
mod mfi;
mod oscillators;
mod rsi;
mod stoch;

pub use adx::*;
pub use aroon::*;
pub use macd::*;
pub use mfi::*;
pub use oscillators::*;
pub use rsi::*;
pub use stoch::*;

use super::Bar;

pub(super) fn finite_hlc(b: &Bar) -> bool {
    b.high.is_finite() && b.low.is_finite() && b.close.is_finite()
}
