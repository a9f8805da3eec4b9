//! How many columns a compiled strategy holds while it is evaluated, for the memory estimate of a
//! run ([`crate::backtest::estimate_memory`]). Mirrors [`CompiledStrategy::evaluate`]: nodes are
//! evaluated in order, an input column is freed after its last use unless it is kept (named
//! series, rule inputs and rule results), and the kept columns are moved out at the end.

use super::compile::{Op, Ty};
use super::{CompiledStrategy, inputs};

/// Scratch columns an indicator may allocate while it computes (e.g. `tema` is an EMA of an EMA
/// of an EMA; `hma` two WMAs and their difference).
const INDICATOR_SCRATCH_COLUMNS: u64 = 3;

/// The columns of one evaluation, per bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ColumnPlan {
    /// Numeric columns kept after evaluation: named series and the series rules use directly
    /// (`Evaluation::columns.len()`).
    pub kept_numeric: usize,
    /// Boolean rule columns (`Evaluation::entry.len() + Evaluation::exit.len()`).
    pub rule_columns: usize,
    /// Columns alive at once at the worst point of the evaluation (numeric and boolean, indicator
    /// scratch included), as bytes per bar.
    pub peak_bytes_per_bar: u64,
    /// Bytes per bar of the result ([`Self::kept_numeric`] × 8 + [`Self::rule_columns`]).
    pub kept_bytes_per_bar: u64,
    /// Most rule-reference values one trade stores (its entry rule's and its exit rule's, each
    /// capped at [`crate::backtest::MAX_TRADE_VALUES`]).
    pub values_per_trade: usize,
}

fn column_bytes(ty: Ty) -> u64 {
    match ty {
        Ty::Bool => 1,
        Ty::Num => 8,
        Ty::Multi(k) => 8 * k as u64,
    }
}

impl CompiledStrategy {
    /// The column plan of [`Self::evaluate`] (independent of the number of bars).
    pub fn column_plan(&self) -> ColumnPlan {
        let n = self.nodes.len();
        let mut keep = vec![false; n];
        for r in &self.rules {
            keep[r.node] = true;
            for (_, id) in &r.refs {
                keep[*id] = true;
            }
        }
        for (_, id) in &self.lets {
            keep[*id] = true;
        }
        let mut last_use = vec![0usize; n];
        for (i, node) in self.nodes.iter().enumerate() {
            for inp in inputs(&node.op) {
                last_use[inp] = i;
            }
        }
        // Bytes per bar each node's value owns while it is alive.
        let mut owned = vec![0u64; n];
        let mut live: u64 = 0;
        let mut derived_fields = 0u64;
        let mut peak: u64 = 0;
        for (i, node) in self.nodes.iter().enumerate() {
            let (own, transient) = match &node.op {
                Op::Const(_) | Op::ConstBool(_) => (0, 0),
                // open/high/low/close/volume are the candles' own; hl2/hlc3/ohlc4 are computed once.
                Op::Field(f) => {
                    if *f >= 5 {
                        derived_fields += 8;
                    }
                    (0, 0)
                }
                // The picked column is moved out of the indicator's outputs.
                Op::Pick(..) => (0, 0),
                Op::Func { .. } => (column_bytes(node.ty), 8 * INDICATOR_SCRATCH_COLUMNS),
                _ => (column_bytes(node.ty), 0),
            };
            peak = peak.max(live + derived_fields.min(24) + own + transient);
            owned[i] = own;
            if let Op::Pick(src, _) = node.op {
                // Moves 8 bytes per bar from the indicator to this node.
                let moved = 8.min(owned[src]);
                owned[src] -= moved;
                owned[i] = moved;
            }
            live += own;
            for inp in inputs(&node.op) {
                if last_use[inp] == i && !keep[inp] {
                    live -= owned[inp];
                    owned[inp] = 0;
                }
            }
        }
        // Kept numeric columns: one per distinct named series or rule input.
        let mut kept: Vec<usize> = Vec::new();
        for id in self.lets.iter().map(|(_, id)| *id).chain(
            self.rules
                .iter()
                .flat_map(|r| r.refs.iter().map(|(_, id)| *id)),
        ) {
            if !kept.contains(&id) {
                kept.push(id);
            }
        }
        // Moving them out copies the ones that do not own a numeric column (a boolean or a field
        // used as a series is converted), on top of what is alive.
        let copies: u64 = kept
            .iter()
            .filter(|&&id| !(self.nodes[id].ty == Ty::Num && owned[id] == 8))
            .count() as u64
            * 8;
        // A rule node used by several rules is copied for the later ones.
        let mut distinct_rules: Vec<usize> = Vec::new();
        for r in &self.rules {
            if !distinct_rules.contains(&r.node) {
                distinct_rules.push(r.node);
            }
        }
        let rule_copies = (self.rules.len() - distinct_rules.len()) as u64;
        peak = peak.max(live + derived_fields.min(24) + copies + rule_copies);
        let entry_refs = self
            .rules
            .iter()
            .filter(|r| r.entry)
            .map(|r| r.refs.len().min(crate::backtest::MAX_TRADE_VALUES))
            .max()
            .unwrap_or(0);
        let exit_refs = self
            .rules
            .iter()
            .filter(|r| !r.entry)
            .map(|r| r.refs.len().min(crate::backtest::MAX_TRADE_VALUES))
            .max()
            .unwrap_or(0);
        ColumnPlan {
            kept_numeric: kept.len(),
            rule_columns: self.rules.len(),
            peak_bytes_per_bar: peak,
            kept_bytes_per_bar: kept.len() as u64 * 8 + self.rules.len() as u64,
            values_per_trade: entry_refs + exit_refs,
        }
    }
}
