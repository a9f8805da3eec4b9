//! The Vortex strategy language: parsing, checking and evaluation.
//!
//! ```text
//! param fast: int = 10 in 2..200
//! param slow: int = 30 in 2..400
//! let fast_ma = sma(close, fast)
//! let slow_ma = sma(close, slow)
//! entry long when crosses_above(fast_ma, slow_ma)
//! exit long when crosses_below(fast_ma, slow_ma)
//! risk {
//!   stop_loss = 5%
//!   size = 100%
//! }
//! ```
//!
//! See `docs/strategy-language.md` for the grammar, semantics and limits.

mod compile;
mod eval;
pub(crate) mod functions;
mod lexer;
mod parser;
mod plan;

pub use plan::ColumnPlan;

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::candles::Candles;
use compile::{Compiler, NodeId, Op, Ty};
use eval::{Evaluator, Value};

/// Resource limits: a hostile strategy cannot make a worker do unbounded work.
pub mod limits {
    /// Largest accepted source, in bytes.
    pub const MAX_SOURCE_BYTES: usize = 64 * 1024;
    /// Highest expression tree: every operator of a chain (`a + b + c` is 3 high), `not`, unary `-`,
    /// call, look-back `[n]` and pair of parentheses counts one level. The parser refuses deeper
    /// trees, so compiling, evaluating and dropping a tree never recurses more than this.
    pub const MAX_DEPTH: usize = 64;
    /// Most statements.
    pub const MAX_STATEMENTS: usize = 512;
    /// Most named series (`let`).
    pub const MAX_SERIES: usize = 128;
    /// Most parameters.
    pub const MAX_PARAMS: usize = 64;
    /// Most distinct operations after de-duplication (each costs one pass over the bars).
    pub const MAX_NODES: usize = 1024;
    /// Longest look-back: `x[n]` and every indicator period.
    pub const MAX_LOOKBACK: usize = 10_000;
    /// Most arguments of one call.
    pub const MAX_ARGS: usize = 16;
    /// Most diagnostics reported at once.
    pub const MAX_DIAGNOSTICS: usize = 20;
}

/// An error in a strategy, with its 1-based position (`line = 0` when it concerns no source
/// position, e.g. a parameter override).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diagnostic {
    pub line: usize,
    pub column: usize,
    /// Number of characters to underline (at least 1 when `line > 0`).
    pub len: usize,
    pub message: String,
}

impl Diagnostic {
    pub(crate) fn at(src: &str, start: usize, end: usize, message: impl Into<String>) -> Self {
        let start = start.min(src.len());
        let end = end.clamp(start, src.len());
        let before = src.get(..start).unwrap_or("");
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = src
            .get(line_start..start)
            .map_or(1, |s| s.chars().count() + 1);
        let len = src
            .get(start..end)
            .map_or(1, |s| s.chars().take_while(|&c| c != '\n').count().max(1));
        Self {
            line,
            column,
            len,
            message: message.into(),
        }
    }

    pub(crate) fn global(message: impl Into<String>) -> Self {
        Self {
            line: 0,
            column: 0,
            len: 0,
            message: message.into(),
        }
    }

    /// Renders the error with the offending line and a caret under the problem:
    ///
    /// ```text
    /// error: unknown indicator `rsj`, did you mean `rsi`?
    ///  --> line 2, column 9
    ///   |
    /// 2 | let r = rsj(close, 14)
    ///   |         ^^^
    /// ```
    pub fn render(&self, source: &str) -> String {
        let mut out = format!("error: {}\n", self.message);
        if self.line == 0 {
            return out;
        }
        let text = source.lines().nth(self.line - 1).unwrap_or("");
        let num = self.line.to_string();
        let pad = " ".repeat(num.len());
        let indent: String = text
            .chars()
            .take(self.column.saturating_sub(1))
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        out.push_str(&format!(
            "{pad}--> line {}, column {}\n",
            self.line, self.column
        ));
        out.push_str(&format!(
            "{pad} |\n{num} | {text}\n{pad} | {indent}{}\n",
            "^".repeat(self.len.max(1))
        ));
        out
    }
}

impl std::fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line == 0 {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}:{}: {}", self.line, self.column, self.message)
        }
    }
}

/// A parameter value.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ParamValue {
    Int(i64),
    Float(f64),
    Bool(bool),
}

impl ParamValue {
    /// The numeric value (`None` for booleans).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            ParamValue::Int(v) => Some(*v as f64),
            ParamValue::Float(v) => Some(*v),
            ParamValue::Bool(_) => None,
        }
    }
}

impl std::fmt::Display for ParamValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ParamValue::Int(v) => write!(f, "{v}"),
            ParamValue::Float(v) => write!(f, "{v}"),
            ParamValue::Bool(v) => write!(f, "{v}"),
        }
    }
}

/// A declared parameter, for building a form: name, type (`int`, `float`, `bool`), default,
/// inclusive range and the value in effect (default or override).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParamInfo {
    pub name: String,
    pub kind: String,
    pub default: ParamValue,
    pub value: ParamValue,
    pub min: Option<f64>,
    pub max: Option<f64>,
}

/// How much to buy on entry.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum PositionSize {
    /// Fraction of current equity (1.0 = all cash), fees included.
    PercentOfEquity(f64),
    /// A fixed amount of quote currency (capped at the cash available), fees included.
    FixedQuote(f64),
}

/// The risk block. Percentages are stored as fractions (5% = 0.05).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct RiskSpec {
    pub stop_loss: Option<f64>,
    pub take_profit: Option<f64>,
    pub trailing_stop: Option<f64>,
    pub size: Option<PositionSize>,
    pub max_bars: Option<usize>,
}

/// One `entry`/`exit` rule.
#[derive(Debug, Clone)]
pub struct Rule {
    pub entry: bool,
    /// The rule's source line, e.g. `entry long when crosses_above(fast_ma, slow_ma)`.
    pub text: String,
    pub(crate) node: NodeId,
    /// Series the rule uses directly (named series and indicator calls), for trade context.
    pub(crate) refs: Vec<(String, NodeId)>,
}

/// A checked strategy, ready to evaluate on any candles.
#[derive(Debug, Clone)]
pub struct CompiledStrategy {
    source: String,
    source_hash: String,
    nodes: Vec<compile::Node>,
    params: Vec<ParamInfo>,
    lets: Vec<(String, NodeId)>,
    rules: Vec<Rule>,
    risk: RiskSpec,
}

/// The columns a strategy produces over a candle series.
#[derive(Debug, Clone, Default)]
pub struct Evaluation {
    /// Per entry rule (in source order): true at bar t when the rule holds at t's close.
    pub entry: Vec<Vec<bool>>,
    /// Per exit rule.
    pub exit: Vec<Vec<bool>>,
    /// Retained numeric columns (booleans as 1/0), shared by `series` and `rule_refs`.
    pub columns: Vec<Vec<f64>>,
    /// Named series (`let`): (name, index into `columns`).
    pub series: Vec<(String, usize)>,
    /// For each entry rule, then each exit rule: (label, index into `columns`) of the series it
    /// uses directly.
    pub rule_refs: Vec<Vec<(String, usize)>>,
}

impl Evaluation {
    /// A named series by name.
    pub fn series(&self, name: &str) -> Option<&[f64]> {
        self.series
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, k)| self.columns[*k].as_slice())
    }
}

impl CompiledStrategy {
    /// Declared parameters (with the values in effect).
    pub fn params(&self) -> &[ParamInfo] {
        &self.params
    }
    /// The risk block.
    pub fn risk(&self) -> &RiskSpec {
        &self.risk
    }
    /// The source text.
    pub fn source(&self) -> &str {
        &self.source
    }
    /// SHA-256 (hex) of the source text.
    pub fn source_hash(&self) -> &str {
        &self.source_hash
    }
    /// Entry rules then exit rules, in source order within each.
    pub fn rules(&self) -> impl Iterator<Item = &Rule> {
        self.rules
            .iter()
            .filter(|r| r.entry)
            .chain(self.rules.iter().filter(|r| !r.entry))
    }
    /// Names of the named series.
    pub fn series_names(&self) -> impl Iterator<Item = &str> {
        self.lets.iter().map(|(n, _)| n.as_str())
    }

    /// Evaluates every rule and named series over `candles`. Total: never panics; memory is
    /// O(bars × retained series); intermediate columns are freed after their last use.
    pub fn evaluate(&self, candles: &Candles) -> Evaluation {
        let entry_rules: Vec<&Rule> = self.rules.iter().filter(|r| r.entry).collect();
        let exit_rules: Vec<&Rule> = self.rules.iter().filter(|r| !r.entry).collect();
        let mut keep = vec![false; self.nodes.len()];
        for r in &self.rules {
            keep[r.node] = true;
            for (_, id) in &r.refs {
                keep[*id] = true;
            }
        }
        for (_, id) in &self.lets {
            keep[*id] = true;
        }
        let mut last_use = vec![0usize; self.nodes.len()];
        for (i, node) in self.nodes.iter().enumerate() {
            for inp in inputs(&node.op) {
                last_use[inp] = i;
            }
        }
        let mut ev = Evaluator::new(candles, self.nodes.len());
        for (i, node) in self.nodes.iter().enumerate() {
            ev.eval(i, node);
            for inp in inputs(&node.op) {
                if last_use[inp] == i && !keep[inp] {
                    ev.values[inp] = None;
                }
            }
        }
        // Move (not copy) each retained column out once; series and rule refs share it.
        let mut columns = Vec::new();
        let mut index: HashMap<NodeId, usize> = HashMap::new();
        let mut col = |id: NodeId, ev: &mut Evaluator<'_>| -> usize {
            *index.entry(id).or_insert_with(|| {
                columns.push(ev.take_column(id));
                columns.len() - 1
            })
        };
        let series = self
            .lets
            .iter()
            .map(|(n, id)| (n.clone(), col(*id, &mut ev)))
            .collect();
        let rule_refs = entry_rules
            .iter()
            .chain(exit_rules.iter())
            .map(|r| {
                r.refs
                    .iter()
                    .map(|(l, id)| (l.clone(), col(*id, &mut ev)))
                    .collect()
            })
            .collect();
        // Rule columns are moved out too (after the numeric columns, which may read them);
        // a node used by several rules is copied for the later ones.
        let mut taken: Vec<(NodeId, usize)> = Vec::new();
        let mut rule_cols: Vec<Vec<bool>> = Vec::with_capacity(self.rules.len());
        for r in entry_rules.iter().chain(exit_rules.iter()) {
            let v = match taken.iter().find(|(id, _)| *id == r.node) {
                Some(&(_, k)) => rule_cols[k].clone(),
                None => {
                    taken.push((r.node, rule_cols.len()));
                    ev.take_bools(r.node)
                }
            };
            rule_cols.push(v);
        }
        let exit = rule_cols.split_off(entry_rules.len());
        let entry = rule_cols;
        Evaluation {
            entry,
            exit,
            columns,
            series,
            rule_refs,
        }
    }
}

fn inputs(op: &Op) -> Vec<NodeId> {
    match op {
        Op::Field(_) | Op::Const(_) | Op::ConstBool(_) => vec![],
        Op::Func { input, .. } => input.iter().copied().collect(),
        Op::Pick(a, _) | Op::Neg(a) | Op::Not(a) | Op::Abs(a) | Op::Shift(a, _) => vec![*a],
        Op::Bin(_, a, b) | Op::MinMax(_, a, b) | Op::Cross(_, a, b) => vec![*a, *b],
    }
}

/// Closest candidate by edit distance (for "did you mean").
pub(crate) fn suggest<'a>(
    name: &str,
    candidates: impl Iterator<Item = &'a str>,
) -> Option<&'a str> {
    let max = match name.chars().count() {
        0..=2 => 1,
        3..=5 => 2,
        _ => 3,
    };
    candidates
        .map(|c| {
            // A prefix (`sig` for `signal`) is as good as a one-letter typo.
            let d = if name.len() >= 2 && c.starts_with(name) {
                1
            } else {
                levenshtein(name, c)
            };
            (d, c)
        })
        .filter(|(d, _)| *d <= max)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn levenshtein(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

fn check_size(source: &str) -> Result<(), Vec<Diagnostic>> {
    if source.len() > limits::MAX_SOURCE_BYTES {
        return Err(vec![Diagnostic::global(format!(
            "strategy source is {} bytes; the limit is {}",
            source.len(),
            limits::MAX_SOURCE_BYTES
        ))]);
    }
    Ok(())
}

/// Parses and checks a strategy. `overrides` are `(parameter, value)` pairs as text (from a
/// form or `--param k=v`), checked against each parameter's type and range.
///
/// # Errors
/// Every problem found (up to [`limits::MAX_DIAGNOSTICS`]), each with line and column.
pub fn compile(
    source: &str,
    overrides: &[(String, String)],
) -> Result<CompiledStrategy, Vec<Diagnostic>> {
    check_size(source)?;
    let toks = lexer::lex(source).map_err(|d| vec![d])?;
    let stmts = parser::Parser::new(source, toks)
        .program()
        .map_err(|d| vec![d])?;
    let mut ov: HashMap<String, String> = HashMap::new();
    for (k, v) in overrides {
        ov.insert(k.trim().to_string(), v.clone());
    }
    let mut c = Compiler::new(source);
    for s in &stmts {
        if let Err(d) = c.statement(s, &ov) {
            c.diags.push(d);
            if c.diags.len() >= limits::MAX_DIAGNOSTICS {
                break;
            }
        }
    }
    let declared: Vec<&str> = stmts
        .iter()
        .filter_map(|s| match s {
            parser::Stmt::Param { name, .. } => Some(name.as_str()),
            _ => None,
        })
        .collect();
    for (k, _) in overrides {
        let k = k.trim();
        if !declared.contains(&k) {
            let hint = suggest(k, declared.iter().copied())
                .map(|s| format!(", did you mean `{s}`?"))
                .unwrap_or_default();
            let list = if declared.is_empty() {
                "this strategy has no parameters".to_string()
            } else {
                format!("parameters: {}", declared.join(", "))
            };
            c.diags.push(Diagnostic::global(format!(
                "unknown parameter `{k}`{hint} ({list})"
            )));
        }
    }
    if c.diags.is_empty() && !c.rules.iter().any(|r| r.entry) {
        let end = source.trim_end().len();
        c.diags.push(Diagnostic::at(
            source,
            end.saturating_sub(1),
            end,
            "the strategy has no entry rule: add `entry long when <condition>`",
        ));
    }
    if !c.diags.is_empty() {
        c.diags.sort_by_key(|d| (d.line == 0, d.line, d.column));
        return Err(c.diags);
    }
    use sha2::{Digest, Sha256};
    Ok(CompiledStrategy {
        source: source.to_string(),
        source_hash: crate::hex(&Sha256::digest(source.as_bytes())),
        nodes: c.nodes,
        params: c.params,
        lets: c.lets,
        rules: c.rules,
        risk: c.risk,
    })
}

/// Evaluates one expression over candles, e.g. `rsi(close, 14)` or `macd(close, 12, 26, 9)`:
/// one `(name, column)` per output (MACD gives `….macd`, `….signal`, `….hist`); booleans as 1/0.
/// For `vortex indicator`.
///
/// # Errors
/// Diagnostics positioned in `expr`.
pub fn eval_series(
    expr: &str,
    candles: &Candles,
) -> Result<Vec<(String, Vec<f64>)>, Vec<Diagnostic>> {
    check_size(expr)?;
    let toks = lexer::lex(expr).map_err(|d| vec![d])?;
    let mut p = parser::Parser::new(expr, toks);
    let e = p.expr().map_err(|d| vec![d])?;
    p.expect_end().map_err(|d| vec![d])?;
    let mut c = Compiler::new(expr);
    let root = c.expr(&e).map_err(|d| vec![d])?;
    let mut ev = Evaluator::new(candles, c.nodes.len());
    for (i, node) in c.nodes.iter().enumerate() {
        ev.eval(i, node);
    }
    let label = expr.trim().to_string();
    match (&c.nodes[root].ty, &ev.values[root]) {
        (Ty::Multi(_), Some(Value::Multi(cols))) => {
            let outputs = match &c.nodes[root].op {
                Op::Func { func, .. } => functions::FUNCS[*func].outputs,
                _ => &[],
            };
            Ok(cols
                .iter()
                .enumerate()
                .map(|(k, col)| {
                    (
                        format!("{label}.{}", outputs.get(k).copied().unwrap_or("out")),
                        col.clone(),
                    )
                })
                .collect())
        }
        _ => Ok(vec![(label, ev.column(root))]),
    }
}

/// Names of every built-in indicator with a one-line summary and its outputs.
pub fn indicator_list() -> Vec<(&'static str, &'static str, &'static [&'static str])> {
    functions::FUNCS
        .iter()
        .map(|f| (f.name, f.summary, f.outputs))
        .collect()
}

#[cfg(test)]
mod tests;
