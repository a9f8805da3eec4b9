//! Column-at-a-time evaluation of a compiled strategy. Never panics: every operation is total
//! (NaN semantics: arithmetic propagates NaN, comparisons with NaN are false, look-backs before
//! the first bar are NaN / false).

use super::compile::{Node, NodeId, Op};
use super::functions;
use super::parser::BinOp;
use crate::candles::Candles;

#[derive(Debug, Clone)]
pub(crate) enum Value {
    Num(Vec<f64>),
    Bool(Vec<bool>),
    Multi(Vec<Vec<f64>>),
    Const(f64),
    ConstBool(bool),
    Field(u8),
}

/// A read-only view of a numeric value.
#[derive(Clone, Copy)]
enum NumRef<'a> {
    Slice(&'a [f64]),
    Const(f64),
}

impl NumRef<'_> {
    #[inline(always)]
    fn at(&self, i: usize) -> f64 {
        match self {
            NumRef::Slice(s) => s[i],
            NumRef::Const(c) => *c,
        }
    }
}

fn field<'a>(c: &'a Candles, f: u8, scratch: &'a mut Option<Vec<f64>>) -> &'a [f64] {
    match f {
        0 => &c.open,
        1 => &c.high,
        2 => &c.low,
        3 => &c.close,
        4 => &c.volume,
        _ => {
            let n = c.len();
            let v: Vec<f64> = (0..n)
                .map(|i| match f {
                    5 => (c.high[i] + c.low[i]) / 2.0,
                    6 => (c.high[i] + c.low[i] + c.close[i]) / 3.0,
                    _ => (c.open[i] + c.high[i] + c.low[i] + c.close[i]) / 4.0,
                })
                .collect();
            scratch.insert(v)
        }
    }
}

pub(crate) struct Evaluator<'c> {
    c: &'c Candles,
    pub values: Vec<Option<Value>>,
    derived_fields: Vec<Option<Vec<f64>>>,
}

impl<'c> Evaluator<'c> {
    pub(crate) fn new(c: &'c Candles, n_nodes: usize) -> Self {
        Self {
            c,
            values: vec![None; n_nodes],
            derived_fields: vec![None, None, None],
        }
    }

    fn num(&self, id: NodeId) -> NumRef<'_> {
        match &self.values[id] {
            Some(Value::Num(v)) => NumRef::Slice(v),
            Some(Value::Multi(v)) => match v.first() {
                Some(col) if col.len() == self.c.len() => NumRef::Slice(col),
                _ => NumRef::Const(f64::NAN),
            },
            Some(Value::Const(c)) => NumRef::Const(*c),
            Some(Value::Field(f)) => match f {
                0 => NumRef::Slice(&self.c.open),
                1 => NumRef::Slice(&self.c.high),
                2 => NumRef::Slice(&self.c.low),
                3 => NumRef::Slice(&self.c.close),
                4 => NumRef::Slice(&self.c.volume),
                k => match &self.derived_fields[(*k as usize).saturating_sub(5).min(2)] {
                    Some(v) => NumRef::Slice(v),
                    None => NumRef::Const(f64::NAN),
                },
            },
            _ => NumRef::Const(f64::NAN),
        }
    }

    fn boolean(&self, id: NodeId, i: usize) -> bool {
        match &self.values[id] {
            Some(Value::Bool(v)) => v[i],
            Some(Value::ConstBool(b)) => *b,
            _ => false,
        }
    }

    /// Numeric column of a node as an owned or borrowed slice.
    pub(crate) fn column(&self, id: NodeId) -> Vec<f64> {
        let n = self.c.len();
        match &self.values[id] {
            Some(Value::Bool(v)) => v.iter().map(|&b| if b { 1.0 } else { 0.0 }).collect(),
            Some(Value::ConstBool(b)) => vec![if *b { 1.0 } else { 0.0 }; n],
            _ => {
                let r = self.num(id);
                (0..n).map(|i| r.at(i)).collect()
            }
        }
    }

    /// Moves a numeric column out (the node's value is left in place when it is not an owned
    /// column, and a copy is made).
    pub(crate) fn take_column(&mut self, id: NodeId) -> Vec<f64> {
        if matches!(self.values[id], Some(Value::Num(_)))
            && let Some(Value::Num(v)) = self.values[id].take()
        {
            return v;
        }
        self.column(id)
    }

    /// [`Self::bools`], moving the column out when the node owns one.
    pub(crate) fn take_bools(&mut self, id: NodeId) -> Vec<bool> {
        if matches!(&self.values[id], Some(Value::Bool(v)) if v.len() == self.c.len())
            && let Some(Value::Bool(v)) = self.values[id].take()
        {
            return v;
        }
        self.bools(id)
    }

    pub(crate) fn bools(&self, id: NodeId) -> Vec<bool> {
        match &self.values[id] {
            Some(Value::Bool(v)) if v.len() == self.c.len() => v.clone(),
            Some(Value::ConstBool(b)) => vec![*b; self.c.len()],
            _ => vec![false; self.c.len()],
        }
    }

    /// Evaluates node `id` (its inputs must already be evaluated).
    pub(crate) fn eval(&mut self, id: NodeId, node: &Node) {
        let n = self.c.len();
        let v = match &node.op {
            Op::Field(f) => {
                if *f >= 5 {
                    let mut scratch = None;
                    field(self.c, *f, &mut scratch);
                    self.derived_fields[(*f as usize - 5).min(2)] = scratch;
                }
                Value::Field(*f)
            }
            Op::Const(c) => Value::Const(*c),
            Op::ConstBool(b) => Value::ConstBool(*b),
            Op::Func {
                func,
                params,
                input,
            } => {
                let p: Vec<f64> = params.iter().map(|b| f64::from_bits(*b)).collect();
                let owned;
                let inp: Option<&[f64]> = match input {
                    None => None,
                    Some(i) => match self.num(*i) {
                        NumRef::Slice(s) => Some(s),
                        NumRef::Const(c) => {
                            owned = vec![c; n];
                            Some(&owned)
                        }
                    },
                };
                match functions::compute(*func, &p, inp, self.c) {
                    Ok(mut cols) if cols.len() == 1 => Value::Num(cols.pop().unwrap_or_default()),
                    Ok(cols) => Value::Multi(cols),
                    Err(_) => Value::Num(vec![f64::NAN; n]),
                }
            }
            // De-duplication makes each (source, output) pick unique, so the column is moved out.
            Op::Pick(src, k) => match &mut self.values[*src] {
                Some(Value::Multi(cols)) => match cols.get_mut(*k) {
                    Some(col) if col.len() == n => Value::Num(std::mem::take(col)),
                    _ => Value::Num(vec![f64::NAN; n]),
                },
                _ => Value::Num(vec![f64::NAN; n]),
            },
            Op::Neg(a) => {
                let a = self.num(*a);
                Value::Num((0..n).map(|i| -a.at(i)).collect())
            }
            Op::Abs(a) => {
                let a = self.num(*a);
                Value::Num((0..n).map(|i| a.at(i).abs()).collect())
            }
            Op::Not(a) => Value::Bool((0..n).map(|i| !self.boolean(*a, i)).collect()),
            Op::MinMax(is_max, a, b) => {
                let (a, b) = (self.num(*a), self.num(*b));
                // NaN if either side is NaN (f64::max would silently pick the other side).
                Value::Num(
                    (0..n)
                        .map(|i| {
                            let (x, y) = (a.at(i), b.at(i));
                            if x.is_nan() || y.is_nan() {
                                f64::NAN
                            } else if *is_max {
                                x.max(y)
                            } else {
                                x.min(y)
                            }
                        })
                        .collect(),
                )
            }
            Op::Bin(op, a, b) => self.binary(*op, *a, *b, n),
            Op::Shift(a, k) => {
                let k = *k;
                match &self.values[*a] {
                    Some(Value::Bool(v)) => {
                        Value::Bool((0..n).map(|i| i >= k && v[i - k]).collect())
                    }
                    _ => {
                        let a = self.num(*a);
                        Value::Num(
                            (0..n)
                                .map(|i| if i >= k { a.at(i - k) } else { f64::NAN })
                                .collect(),
                        )
                    }
                }
            }
            Op::Cross(above, a, b) => {
                let (a, b) = (self.num(*a), self.num(*b));
                let above = *above;
                let cross = |a0: f64, b0: f64, a1: f64, b1: f64| {
                    if above {
                        a0 < b0 && a1 > b1
                    } else {
                        a0 > b0 && a1 < b1
                    }
                };
                let mut out = vec![false; n];
                match (a, b) {
                    (NumRef::Slice(x), NumRef::Slice(y)) if x.len() == n && y.len() == n => {
                        // Branch-free over four shifted views (vectorises).
                        if n > 1 {
                            let (x0, x1, y0, y1) = (&x[..n - 1], &x[1..], &y[..n - 1], &y[1..]);
                            for ((((o, &a0), &a1), &b0), &b1) in
                                out[1..].iter_mut().zip(x0).zip(x1).zip(y0).zip(y1)
                            {
                                *o = if above {
                                    (a0 < b0) & (a1 > b1)
                                } else {
                                    (a0 > b0) & (a1 < b1)
                                };
                            }
                        }
                    }
                    _ => {
                        for (i, o) in out.iter_mut().enumerate().skip(1) {
                            *o = cross(a.at(i - 1), b.at(i - 1), a.at(i), b.at(i));
                        }
                    }
                }
                Value::Bool(out)
            }
        };
        self.values[id] = Some(v);
    }

    fn binary(&self, op: BinOp, a: NodeId, b: NodeId, n: usize) -> Value {
        match op {
            BinOp::And => Value::Bool(
                (0..n)
                    .map(|i| self.boolean(a, i) && self.boolean(b, i))
                    .collect(),
            ),
            BinOp::Or => Value::Bool(
                (0..n)
                    .map(|i| self.boolean(a, i) || self.boolean(b, i))
                    .collect(),
            ),
            BinOp::Eq | BinOp::Ne
                if matches!(self.values[a], Some(Value::Bool(_) | Value::ConstBool(_))) =>
            {
                let eq = op == BinOp::Eq;
                Value::Bool(
                    (0..n)
                        .map(|i| (self.boolean(a, i) == self.boolean(b, i)) == eq)
                        .collect(),
                )
            }
            _ => {
                let (x, y) = (self.num(a), self.num(b));
                macro_rules! cmp {
                    ($f:expr) => {
                        Value::Bool((0..n).map(|i| $f(x.at(i), y.at(i))).collect())
                    };
                }
                macro_rules! ar {
                    ($f:expr) => {
                        Value::Num((0..n).map(|i| $f(x.at(i), y.at(i))).collect())
                    };
                }
                match op {
                    BinOp::Lt => cmp!(|p: f64, q: f64| p < q),
                    BinOp::Le => cmp!(|p: f64, q: f64| p <= q),
                    BinOp::Gt => cmp!(|p: f64, q: f64| p > q),
                    BinOp::Ge => cmp!(|p: f64, q: f64| p >= q),
                    BinOp::Eq => cmp!(|p: f64, q: f64| p == q),
                    // `!=` with NaN is false too: every comparison involving NaN is false.
                    BinOp::Ne => cmp!(|p: f64, q: f64| !p.is_nan() && !q.is_nan() && p != q),
                    BinOp::Add => ar!(|p: f64, q: f64| p + q),
                    BinOp::Sub => ar!(|p: f64, q: f64| p - q),
                    BinOp::Mul => ar!(|p: f64, q: f64| p * q),
                    _ => ar!(|p: f64, q: f64| if q == 0.0 { f64::NAN } else { p / q }),
                }
            }
        }
    }
}
