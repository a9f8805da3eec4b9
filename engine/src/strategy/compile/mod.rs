//! Type checking and lowering of the AST to a DAG of column operations.

mod declarations;

use std::collections::HashMap;

use super::functions::{self, ArgKind, FIELDS, FUNCS, HELPERS};
use super::parser::{BinOp, Expr, ParamType, Span, Stmt, UnOp};
use super::{Diagnostic, ParamInfo, ParamValue, PositionSize, RiskSpec, Rule, limits, suggest};

pub(crate) type NodeId = usize;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ty {
    Num,
    Bool,
    /// An indicator with several outputs (used as a number, it is its first output).
    Multi(usize),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Op {
    Field(u8),
    Const(f64),
    ConstBool(bool),
    Func {
        func: usize,
        params: Vec<u64>,
        input: Option<NodeId>,
    },
    Pick(NodeId, usize),
    Neg(NodeId),
    Not(NodeId),
    Abs(NodeId),
    Bin(BinOp, NodeId, NodeId),
    MinMax(bool, NodeId, NodeId),
    Shift(NodeId, usize),
    Cross(bool, NodeId, NodeId),
}

#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub op: Op,
    pub ty: Ty,
}

/// Bindings visible to expressions.
#[derive(Debug, Clone)]
enum Binding {
    Param(ParamValue),
    Series(NodeId),
}

pub(crate) struct Compiler<'a> {
    src: &'a str,
    pub nodes: Vec<Node>,
    dedup: HashMap<String, NodeId>,
    names: HashMap<String, (Binding, Span)>,
    pub params: Vec<ParamInfo>,
    pub lets: Vec<(String, NodeId)>,
    pub rules: Vec<Rule>,
    pub risk: RiskSpec,
    pub diags: Vec<Diagnostic>,
    risk_seen: Vec<String>,
}

fn op_key(op: &Op) -> String {
    format!("{op:?}")
}

impl<'a> Compiler<'a> {
    pub(crate) fn new(src: &'a str) -> Self {
        Self {
            src,
            nodes: Vec::new(),
            dedup: HashMap::new(),
            names: HashMap::new(),
            params: Vec::new(),
            lets: Vec::new(),
            rules: Vec::new(),
            risk: RiskSpec::default(),
            diags: Vec::new(),
            risk_seen: Vec::new(),
        }
    }

    fn diag(&self, span: Span, msg: impl Into<String>) -> Diagnostic {
        Diagnostic::at(self.src, span.0, span.1, msg)
    }

    fn push(&mut self, op: Op, ty: Ty, span: Span) -> Result<NodeId, Diagnostic> {
        let key = op_key(&op);
        if let Some(&id) = self.dedup.get(&key) {
            return Ok(id);
        }
        if self.nodes.len() >= limits::MAX_NODES {
            return Err(self.diag(
                span,
                format!(
                    "strategy too large: more than {} operations",
                    limits::MAX_NODES
                ),
            ));
        }
        self.nodes.push(Node { op, ty });
        let id = self.nodes.len() - 1;
        self.dedup.insert(key, id);
        Ok(id)
    }

    fn konst(&self, id: NodeId) -> Option<f64> {
        match self.nodes[id].op {
            Op::Const(v) => Some(v),
            _ => None,
        }
    }

    /// Numeric node (a multi-output indicator used as a number gives its first output).
    fn as_num(&mut self, id: NodeId, span: Span, what: &str) -> Result<NodeId, Diagnostic> {
        match self.nodes[id].ty {
            Ty::Num => Ok(id),
            Ty::Multi(_) => self.push(Op::Pick(id, 0), Ty::Num, span),
            Ty::Bool => Err(self.diag(
                span,
                format!("{what} needs a number, but this is a boolean (true/false)"),
            )),
        }
    }

    fn as_bool(&mut self, id: NodeId, span: Span, what: &str) -> Result<NodeId, Diagnostic> {
        match self.nodes[id].ty {
            Ty::Bool => Ok(id),
            _ => Err(self.diag(
                span,
                format!("{what} needs a boolean (true/false), but this is a number; compare it, e.g. `x > 0`"),
            )),
        }
    }

    /// Evaluates a constant expression (numbers, parameters and arithmetic).
    fn const_value(&mut self, e: &Expr, what: &str) -> Result<f64, Diagnostic> {
        let id = self.expr(e)?;
        if let Some(v) = self.konst(id) {
            return Ok(v);
        }
        Err(self.diag(
            e.span(),
            format!("{what} must be a constant (a number or a parameter), not a series"),
        ))
    }

    fn collect_refs(&self, e: &Expr, out: &mut Vec<(String, NodeId)>) {
        match e {
            Expr::Ident(name, _) => {
                if let Some((Binding::Series(id), _)) = self.names.get(name)
                    && !out.iter().any(|(n, _)| n == name)
                {
                    out.push((name.clone(), *id));
                }
            }
            Expr::Call {
                name, args, span, ..
            } => {
                if functions::find(name).is_some() {
                    let label = self.src[span.0..span.1].to_string();
                    if let Some(&id) = self.dedup_lookup(e)
                        && !out.iter().any(|(n, _)| *n == label)
                    {
                        out.push((label, id));
                    }
                }
                for a in args {
                    self.collect_refs(a, out);
                }
            }
            Expr::Index(a, _, _) | Expr::Unary(_, a, _) => self.collect_refs(a, out),
            Expr::Binary(_, a, b, _) => {
                self.collect_refs(a, out);
                self.collect_refs(b, out);
            }
            Expr::Num(..) | Expr::Bool(..) => {}
        }
    }

    /// Node id of an already compiled call expression (for rule context), via the span cache.
    fn dedup_lookup(&self, e: &Expr) -> Option<&NodeId> {
        self.dedup.get(&format!("span:{:?}", e.span()))
    }

    pub(crate) fn expr(&mut self, e: &Expr) -> Result<NodeId, Diagnostic> {
        let id = self.expr_inner(e)?;
        if matches!(e, Expr::Call { .. }) {
            self.dedup.insert(format!("span:{:?}", e.span()), id);
        }
        Ok(id)
    }

    fn expr_inner(&mut self, e: &Expr) -> Result<NodeId, Diagnostic> {
        match e {
            Expr::Num(v, s) => self.push(Op::Const(*v), Ty::Num, *s),
            Expr::Bool(b, s) => self.push(Op::ConstBool(*b), Ty::Bool, *s),
            Expr::Ident(name, s) => {
                if let Some(i) = FIELDS.iter().position(|f| f == name) {
                    return self.push(Op::Field(i as u8), Ty::Num, *s);
                }
                match self.names.get(name).cloned() {
                    Some((Binding::Param(ParamValue::Bool(b)), _)) => {
                        self.push(Op::ConstBool(b), Ty::Bool, *s)
                    }
                    Some((Binding::Param(p), _)) => {
                        self.push(Op::Const(p.as_f64().unwrap_or(f64::NAN)), Ty::Num, *s)
                    }
                    Some((Binding::Series(id), _)) => Ok(id),
                    None => {
                        if functions::find(name).is_some() || HELPERS.iter().any(|h| h.0 == name) {
                            return Err(self.diag(*s, format!("`{name}` is a function: call it with arguments, e.g. `{name}(…)`")));
                        }
                        let candidates: Vec<String> = FIELDS
                            .iter()
                            .map(|f| f.to_string())
                            .chain(self.names.keys().cloned())
                            .collect();
                        let hint = suggest(name, candidates.iter().map(String::as_str))
                            .map(|s| format!(", did you mean `{s}`?"))
                            .unwrap_or_default();
                        Err(self.diag(*s, format!("unknown name `{name}`{hint}")))
                    }
                }
            }
            Expr::Unary(op, inner, s) => {
                let id = self.expr(inner)?;
                match op {
                    UnOp::Neg => {
                        let id = self.as_num(id, inner.span(), "`-`")?;
                        if let Some(v) = self.konst(id) {
                            return self.push(Op::Const(-v), Ty::Num, *s);
                        }
                        self.push(Op::Neg(id), Ty::Num, *s)
                    }
                    UnOp::Not => {
                        let id = self.as_bool(id, inner.span(), "`not`")?;
                        self.push(Op::Not(id), Ty::Bool, *s)
                    }
                }
            }
            Expr::Binary(op, a, b, s) => self.binary(*op, a, b, *s),
            Expr::Index(inner, idx, s) => {
                let id = self.expr(inner)?;
                let id = if let Ty::Multi(_) = self.nodes[id].ty {
                    self.push(Op::Pick(id, 0), Ty::Num, inner.span())?
                } else {
                    id
                };
                let n = self.const_value(idx, "a look-back `[n]`")?;
                if n.fract() != 0.0 || n < 0.0 {
                    return Err(self.diag(
                        idx.span(),
                        format!("a look-back must be a whole number of bars ≥ 0, got {n}"),
                    ));
                }
                if n > limits::MAX_LOOKBACK as f64 {
                    return Err(self.diag(
                        idx.span(),
                        format!(
                            "look-back {n} is larger than the limit of {} bars",
                            limits::MAX_LOOKBACK
                        ),
                    ));
                }
                if n == 0.0 {
                    return Ok(id);
                }
                let ty = self.nodes[id].ty;
                if self.konst(id).is_some() || matches!(self.nodes[id].op, Op::ConstBool(_)) {
                    return Ok(id);
                }
                self.push(Op::Shift(id, n as usize), ty, *s)
            }
            Expr::Call {
                name,
                name_span,
                args,
                field,
                span,
            } => self.call(name, *name_span, args, field.as_ref(), *span),
        }
    }

    fn binary(&mut self, op: BinOp, a: &Expr, b: &Expr, s: Span) -> Result<NodeId, Diagnostic> {
        let x = self.expr(a)?;
        let y = self.expr(b)?;
        let sym = op.symbol();
        match op {
            BinOp::And | BinOp::Or => {
                let x = self.as_bool(x, a.span(), &format!("`{sym}`"))?;
                let y = self.as_bool(y, b.span(), &format!("`{sym}`"))?;
                self.push(Op::Bin(op, x, y), Ty::Bool, s)
            }
            BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
                let tx = self.nodes[x].ty;
                let ty = self.nodes[y].ty;
                let bx = tx == Ty::Bool;
                let by = ty == Ty::Bool;
                if bx != by {
                    let span = if bx { a.span() } else { b.span() };
                    return Err(self.diag(
                        span,
                        format!("cannot compare a boolean with a number using `{sym}`"),
                    ));
                }
                if bx {
                    if !matches!(op, BinOp::Eq | BinOp::Ne) {
                        return Err(self.diag(s, format!("`{sym}` compares numbers; booleans can only be compared with `==` or `!=`")));
                    }
                    return self.push(Op::Bin(op, x, y), Ty::Bool, s);
                }
                let x = self.as_num(x, a.span(), "a comparison")?;
                let y = self.as_num(y, b.span(), "a comparison")?;
                self.push(Op::Bin(op, x, y), Ty::Bool, s)
            }
            BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div => {
                let x = self.as_num(x, a.span(), &format!("`{sym}`"))?;
                let y = self.as_num(y, b.span(), &format!("`{sym}`"))?;
                if let (Some(p), Some(q)) = (self.konst(x), self.konst(y)) {
                    let v = match op {
                        BinOp::Add => p + q,
                        BinOp::Sub => p - q,
                        BinOp::Mul => p * q,
                        _ => p / q,
                    };
                    return self.push(Op::Const(v), Ty::Num, s);
                }
                self.push(Op::Bin(op, x, y), Ty::Num, s)
            }
        }
    }

    fn call(
        &mut self,
        name: &str,
        name_span: Span,
        args: &[Expr],
        field: Option<&(String, Span)>,
        span: Span,
    ) -> Result<NodeId, Diagnostic> {
        if let Some(&(_, arity, _)) = HELPERS.iter().find(|h| h.0 == name) {
            if let Some((_, fs)) = field {
                return Err(self.diag(*fs, format!("`{name}` has a single output")));
            }
            if args.len() != arity {
                return Err(self.diag(
                    span,
                    format!(
                        "`{name}` takes {arity} argument{}, got {}",
                        if arity == 1 { "" } else { "s" },
                        args.len()
                    ),
                ));
            }
            let mut ids = Vec::new();
            for a in args {
                let id = self.expr(a)?;
                ids.push(self.as_num(id, a.span(), &format!("`{name}`"))?);
            }
            return match name {
                "crosses_above" => self.push(Op::Cross(true, ids[0], ids[1]), Ty::Bool, span),
                "crosses_below" => self.push(Op::Cross(false, ids[0], ids[1]), Ty::Bool, span),
                "abs" => {
                    if let Some(v) = self.konst(ids[0]) {
                        return self.push(Op::Const(v.abs()), Ty::Num, span);
                    }
                    self.push(Op::Abs(ids[0]), Ty::Num, span)
                }
                _ => self.push(Op::MinMax(name == "max", ids[0], ids[1]), Ty::Num, span),
            };
        }
        let Some((fidx, spec)) = functions::find(name) else {
            let all = FUNCS
                .iter()
                .map(|f| f.name)
                .chain(HELPERS.iter().map(|h| h.0));
            let hint = suggest(name, all)
                .map(|s| format!(", did you mean `{s}`?"))
                .unwrap_or_default();
            return Err(self.diag(name_span, format!("unknown indicator `{name}`{hint}")));
        };
        let min_args = usize::from(spec.series);
        let max_args = min_args + spec.params.len();
        if args.len() < min_args || args.len() > max_args {
            let sig: Vec<&str> = (if spec.series { vec!["series"] } else { vec![] })
                .into_iter()
                .chain(spec.params.iter().map(|p| p.0))
                .collect();
            let count = if min_args == max_args {
                format!("{max_args}")
            } else {
                format!("{min_args} to {max_args}")
            };
            return Err(self.diag(
                span,
                format!(
                    "`{name}` takes {count} argument{} ({}), got {}",
                    if max_args == 1 { "" } else { "s" },
                    sig.join(", "),
                    args.len()
                ),
            ));
        }
        let input = if spec.series {
            let id = self.expr(&args[0])?;
            let id = self.as_num(
                id,
                args[0].span(),
                &format!("the series argument of `{name}`"),
            )?;
            if self.konst(id).is_some() {
                return Err(self.diag(args[0].span(), format!("the first argument of `{name}` must be a series (e.g. `close`), not a constant")));
            }
            Some(id)
        } else {
            None
        };
        let mut params = Vec::new();
        for (k, &(pname, kind, default, lo, hi)) in spec.params.iter().enumerate() {
            let v = match args.get(min_args + k) {
                Some(a) => {
                    let v = self.const_value(a, &format!("`{pname}` of `{name}`"))?;
                    if kind == ArgKind::Int && v.fract() != 0.0 {
                        return Err(self.diag(
                            a.span(),
                            format!("`{pname}` of `{name}` must be a whole number, got {v}"),
                        ));
                    }
                    if !(v >= lo && v <= hi) {
                        return Err(self.diag(
                            a.span(),
                            format!("`{pname}` of `{name}` must be between {lo} and {hi}, got {v}"),
                        ));
                    }
                    v
                }
                None => default,
            };
            params.push(v);
        }
        // Cross-parameter checks that the indicator constructors would otherwise reject.
        let probe = functions::compute(
            fidx,
            &params,
            Some(&[]),
            &crate::candles::Candles::new(crate::candles::Timeframe::M1),
        );
        if let Err(e) = probe {
            return Err(self.diag(span, format!("`{name}`: {e}")));
        }
        let ty = if spec.outputs.len() > 1 {
            Ty::Multi(spec.outputs.len())
        } else {
            Ty::Num
        };
        let id = self.push(
            Op::Func {
                func: fidx,
                params: params.iter().map(|v| v.to_bits()).collect(),
                input,
            },
            ty,
            span,
        )?;
        match field {
            None => Ok(id),
            Some((f, fs)) => {
                if spec.outputs.len() <= 1 {
                    return Err(
                        self.diag(*fs, format!("`{name}` has a single output; remove `.{f}`"))
                    );
                }
                match spec.outputs.iter().position(|o| o == f) {
                    Some(k) => self.push(Op::Pick(id, k), Ty::Num, span),
                    None => {
                        let hint = suggest(f, spec.outputs.iter().copied())
                            .map(|s| format!(", did you mean `{s}`?"))
                            .unwrap_or_default();
                        Err(self.diag(
                            *fs,
                            format!(
                                "`{name}` has no output `{f}`{hint} (outputs: {})",
                                spec.outputs.join(", ")
                            ),
                        ))
                    }
                }
            }
        }
    }
}

fn fmt_num(v: Option<f64>) -> String {
    v.map_or(String::new(), |v| format!("{v}"))
}
