//! Parser: tokens to a small AST with byte spans.

use super::lexer::{Tok, Token};
use super::{Diagnostic, limits};

pub(crate) type Span = (usize, usize);

#[derive(Debug, Clone)]
pub(crate) enum Expr {
    Num(f64, Span),
    Bool(bool, Span),
    Ident(String, Span),
    Call {
        name: String,
        name_span: Span,
        args: Vec<Expr>,
        field: Option<(String, Span)>,
        span: Span,
    },
    Index(Box<Expr>, Box<Expr>, Span),
    Unary(UnOp, Box<Expr>, Span),
    Binary(BinOp, Box<Expr>, Box<Expr>, Span),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum UnOp {
    Neg,
    Not,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
    And,
    Or,
}

impl BinOp {
    pub(crate) fn symbol(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::And => "and",
            BinOp::Or => "or",
        }
    }
}

impl Expr {
    pub(crate) fn span(&self) -> Span {
        match self {
            Expr::Num(_, s) | Expr::Bool(_, s) | Expr::Ident(_, s) => *s,
            Expr::Call { span, .. } => *span,
            Expr::Index(_, _, s) | Expr::Unary(_, _, s) | Expr::Binary(_, _, _, s) => *s,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ParamType {
    Int,
    Float,
    Bool,
}

#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)]
pub(crate) enum Stmt {
    Param {
        name: String,
        name_span: Span,
        ty: ParamType,
        default: Expr,
        range: Option<(Expr, Expr)>,
    },
    Let {
        name: String,
        name_span: Span,
        value: Expr,
    },
    Rule {
        entry: bool,
        short: bool,
        side_span: Span,
        cond: Expr,
    },
    Risk {
        key: String,
        key_span: Span,
        value: Expr,
        unit: Option<(String, Span)>,
    },
}

pub(crate) struct Parser<'a> {
    src: &'a str,
    toks: Vec<Token>,
    pos: usize,
    depth: usize,
}

type PResult<T> = Result<T, Diagnostic>;

impl<'a> Parser<'a> {
    pub(crate) fn new(src: &'a str, toks: Vec<Token>) -> Self {
        Self {
            src,
            toks,
            pos: 0,
            depth: 0,
        }
    }

    fn peek(&self) -> &Tok {
        &self.toks[self.pos].tok
    }
    fn token(&self) -> &Token {
        &self.toks[self.pos]
    }
    fn bump(&mut self) -> Token {
        let t = self.toks[self.pos].clone();
        if self.pos + 1 < self.toks.len() {
            self.pos += 1;
        }
        t
    }
    fn err_here(&self, msg: impl Into<String>) -> Diagnostic {
        let t = self.token();
        Diagnostic::at(self.src, t.start, t.end.max(t.start + 1), msg)
    }
    fn expect(&mut self, tok: Tok, what: &str) -> PResult<Token> {
        if *self.peek() == tok {
            Ok(self.bump())
        } else {
            Err(self.err_here(format!("expected {what}, found {}", self.peek().describe())))
        }
    }
    fn ident(&mut self, what: &str) -> PResult<(String, Span)> {
        match self.peek().clone() {
            Tok::Ident(s) => {
                let t = self.bump();
                Ok((s, (t.start, t.end)))
            }
            other => Err(self.err_here(format!("expected {what}, found {}", other.describe()))),
        }
    }
    fn is_kw(&self, kw: &str) -> bool {
        matches!(self.peek(), Tok::Ident(s) if s == kw)
    }
    fn end_of_statement(&mut self) -> PResult<()> {
        match self.peek() {
            Tok::Newline => {
                self.bump();
                Ok(())
            }
            Tok::Eof => Ok(()),
            other => Err(self.err_here(format!(
                "expected the end of the line, found {}",
                other.describe()
            ))),
        }
    }

    /// Parses the whole program. Stops at the first syntax error.
    pub(crate) fn program(&mut self) -> PResult<Vec<Stmt>> {
        let mut out = Vec::new();
        loop {
            while *self.peek() == Tok::Newline {
                self.bump();
            }
            if *self.peek() == Tok::Eof {
                return Ok(out);
            }
            if out.len() >= limits::MAX_STATEMENTS {
                return Err(self.err_here(format!(
                    "too many statements (limit {})",
                    limits::MAX_STATEMENTS
                )));
            }
            self.statement(&mut out)?;
        }
    }

    fn statement(&mut self, out: &mut Vec<Stmt>) -> PResult<()> {
        let (kw, kw_span) =
            self.ident("a statement (`param`, `let`, `entry`, `exit` or `risk`)")?;
        match kw.as_str() {
            "param" => {
                let (name, name_span) = self.ident("a parameter name")?;
                self.expect(Tok::Colon, "`:` and a type (`int`, `float` or `bool`)")?;
                let (ty_name, ty_span) = self.ident("a type (`int`, `float` or `bool`)")?;
                let ty = match ty_name.as_str() {
                    "int" => ParamType::Int,
                    "float" => ParamType::Float,
                    "bool" => ParamType::Bool,
                    _ => {
                        return Err(Diagnostic::at(
                            self.src,
                            ty_span.0,
                            ty_span.1,
                            format!("unknown type `{ty_name}`: use `int`, `float` or `bool`"),
                        ));
                    }
                };
                self.expect(Tok::Assign, "`=` and a default value")?;
                let default = self.expr()?;
                let range = if self.is_kw("in") {
                    self.bump();
                    let lo = self.expr()?;
                    self.expect(Tok::DotDot, "`..` in the range (e.g. `in 2..200`)")?;
                    let hi = self.expr()?;
                    Some((lo, hi))
                } else {
                    None
                };
                self.end_of_statement()?;
                out.push(Stmt::Param {
                    name,
                    name_span,
                    ty,
                    default,
                    range,
                });
            }
            "let" => {
                let (name, name_span) = self.ident("a series name")?;
                self.expect(Tok::Assign, "`=`")?;
                let value = self.expr()?;
                self.end_of_statement()?;
                out.push(Stmt::Let {
                    name,
                    name_span,
                    value,
                });
            }
            "entry" | "exit" => {
                let (side, side_span) = self.ident("`long` or `short`")?;
                let short = match side.as_str() {
                    "long" => false,
                    "short" => true,
                    _ => {
                        return Err(Diagnostic::at(
                            self.src,
                            side_span.0,
                            side_span.1,
                            format!("expected `long` or `short`, found `{side}`"),
                        ));
                    }
                };
                if !self.is_kw("when") {
                    return Err(self.err_here(format!(
                        "expected `when` and a condition, found {}",
                        self.peek().describe()
                    )));
                }
                self.bump();
                let cond = self.expr()?;
                self.end_of_statement()?;
                out.push(Stmt::Rule {
                    entry: kw == "entry",
                    short,
                    side_span,
                    cond,
                });
            }
            "risk" => {
                if *self.peek() == Tok::LBrace {
                    self.bump();
                    loop {
                        while *self.peek() == Tok::Newline {
                            self.bump();
                        }
                        if *self.peek() == Tok::RBrace {
                            self.bump();
                            break;
                        }
                        if *self.peek() == Tok::Eof {
                            return Err(self.err_here("expected `}` to close the risk block"));
                        }
                        let stmt = self.risk_item()?;
                        out.push(stmt);
                        match self.peek() {
                            Tok::Newline | Tok::RBrace => {}
                            Tok::Comma => {
                                self.bump();
                            }
                            other => {
                                return Err(self.err_here(format!(
                                    "expected the end of the line, found {}",
                                    other.describe()
                                )));
                            }
                        }
                    }
                    self.end_of_statement()?;
                } else {
                    let stmt = self.risk_item()?;
                    out.push(stmt);
                    self.end_of_statement()?;
                }
            }
            _ => {
                let hint = super::suggest(
                    &kw,
                    ["param", "let", "entry", "exit", "risk"].iter().copied(),
                )
                .map(|s| format!(", did you mean `{s}`?"))
                .unwrap_or_default();
                return Err(Diagnostic::at(
                    self.src,
                    kw_span.0,
                    kw_span.1,
                    format!(
                        "unknown statement `{kw}`{hint} (statements start with `param`, `let`, `entry`, `exit` or `risk`)"
                    ),
                ));
            }
        }
        Ok(())
    }

    fn risk_item(&mut self) -> PResult<Stmt> {
        let (key, key_span) = self.ident("a risk setting")?;
        if *self.peek() == Tok::Assign || *self.peek() == Tok::Colon {
            self.bump();
        } else {
            return Err(self.err_here(format!("expected `=` after `{key}`")));
        }
        let value = self.expr()?;
        let unit = match self.peek().clone() {
            Tok::Percent => {
                let t = self.bump();
                Some(("%".to_string(), (t.start, t.end)))
            }
            Tok::Ident(u) => {
                let t = self.bump();
                Some((u, (t.start, t.end)))
            }
            _ => None,
        };
        Ok(Stmt::Risk {
            key,
            key_span,
            value,
            unit,
        })
    }

    fn too_deep(&self, start: usize, end: usize) -> Diagnostic {
        Diagnostic::at(
            self.src,
            start,
            end.max(start + 1),
            format!(
                "expression nested too deeply (limit {}): operators, `not`, `-`, calls, look-backs `[n]` and \
                 parentheses all count; split it into named series with `let`",
                limits::MAX_DEPTH
            ),
        )
    }

    /// Recursion guard: every recursive descent (parentheses, arguments, look-backs, `not`, `-`)
    /// passes here, and each such level also adds at least one to the height of the tree it builds,
    /// so the parser's own recursion is bounded by the same limit as the trees.
    fn enter(&mut self) -> PResult<()> {
        self.depth += 1;
        if self.depth > limits::MAX_DEPTH {
            let t = self.token();
            return Err(self.too_deep(t.start, t.end));
        }
        Ok(())
    }

    /// The height of a node built over children of heights `hs`, refused beyond
    /// [`limits::MAX_DEPTH`] with a diagnostic at `at` (the operator or bracket that went too deep).
    /// Every tree the parser returns is therefore at most `MAX_DEPTH` high, so the compiler's
    /// recursion (and `collect_refs`) and the recursive `Drop` of the tree are bounded too.
    fn height(&self, hs: &[usize], at: Span) -> PResult<usize> {
        let h = 1 + hs.iter().copied().max().unwrap_or(0);
        if h > limits::MAX_DEPTH {
            return Err(self.too_deep(at.0, at.1));
        }
        Ok(h)
    }

    pub(crate) fn expr(&mut self) -> PResult<Expr> {
        self.expr_h().map(|(e, _)| e)
    }

    fn expr_h(&mut self) -> PResult<(Expr, usize)> {
        self.enter()?;
        let r = self.or();
        self.depth -= 1;
        r
    }

    /// A left-associative chain `lhs op rhs op rhs …`: each operator adds one to the height.
    fn binary(
        &mut self,
        mut lhs: (Expr, usize),
        op: BinOp,
        rhs: (Expr, usize),
        at: Span,
    ) -> PResult<(Expr, usize)> {
        let h = self.height(&[lhs.1, rhs.1], at)?;
        let span = (lhs.0.span().0, rhs.0.span().1);
        lhs.0 = Expr::Binary(op, Box::new(lhs.0), Box::new(rhs.0), span);
        lhs.1 = h;
        Ok(lhs)
    }

    fn or(&mut self) -> PResult<(Expr, usize)> {
        let mut lhs = self.and()?;
        while self.is_kw("or") {
            let t = self.bump();
            let rhs = self.and()?;
            lhs = self.binary(lhs, BinOp::Or, rhs, (t.start, t.end))?;
        }
        Ok(lhs)
    }

    fn and(&mut self) -> PResult<(Expr, usize)> {
        let mut lhs = self.not()?;
        while self.is_kw("and") {
            let t = self.bump();
            let rhs = self.not()?;
            lhs = self.binary(lhs, BinOp::And, rhs, (t.start, t.end))?;
        }
        Ok(lhs)
    }

    fn not(&mut self) -> PResult<(Expr, usize)> {
        if self.is_kw("not") {
            let t = self.bump();
            self.enter()?;
            let inner = self.not();
            self.depth -= 1;
            let (inner, h) = inner?;
            let h = self.height(&[h], (t.start, t.end))?;
            let span = (t.start, inner.span().1);
            return Ok((Expr::Unary(UnOp::Not, Box::new(inner), span), h));
        }
        self.cmp()
    }

    fn cmp(&mut self) -> PResult<(Expr, usize)> {
        let lhs = self.add()?;
        let op = match self.peek() {
            Tok::Lt => BinOp::Lt,
            Tok::Le => BinOp::Le,
            Tok::Gt => BinOp::Gt,
            Tok::Ge => BinOp::Ge,
            Tok::Eq => BinOp::Eq,
            Tok::Ne => BinOp::Ne,
            Tok::Assign => {
                return Err(self.err_here("use `==` to compare (a single `=` assigns)"));
            }
            _ => return Ok(lhs),
        };
        let t = self.bump();
        let rhs = self.add()?;
        if matches!(
            self.peek(),
            Tok::Lt | Tok::Le | Tok::Gt | Tok::Ge | Tok::Eq | Tok::Ne
        ) {
            return Err(self.err_here("comparisons cannot be chained: write `a < b and b < c`"));
        }
        self.binary(lhs, op, rhs, (t.start, t.end))
    }

    fn add(&mut self) -> PResult<(Expr, usize)> {
        let mut lhs = self.mul()?;
        loop {
            let op = match self.peek() {
                Tok::Plus => BinOp::Add,
                Tok::Minus => BinOp::Sub,
                _ => return Ok(lhs),
            };
            let t = self.bump();
            let rhs = self.mul()?;
            lhs = self.binary(lhs, op, rhs, (t.start, t.end))?;
        }
    }

    fn mul(&mut self) -> PResult<(Expr, usize)> {
        let mut lhs = self.unary()?;
        loop {
            let op = match self.peek() {
                Tok::Star => BinOp::Mul,
                Tok::Slash => BinOp::Div,
                _ => return Ok(lhs),
            };
            let t = self.bump();
            let rhs = self.unary()?;
            lhs = self.binary(lhs, op, rhs, (t.start, t.end))?;
        }
    }

    fn unary(&mut self) -> PResult<(Expr, usize)> {
        if *self.peek() == Tok::Minus {
            let t = self.bump();
            self.enter()?;
            let inner = self.unary();
            self.depth -= 1;
            let (inner, h) = inner?;
            let h = self.height(&[h], (t.start, t.end))?;
            let span = (t.start, inner.span().1);
            return Ok((Expr::Unary(UnOp::Neg, Box::new(inner), span), h));
        }
        self.postfix()
    }

    fn postfix(&mut self) -> PResult<(Expr, usize)> {
        let (mut e, mut h) = self.primary()?;
        while *self.peek() == Tok::LBracket {
            let open = self.bump();
            let (idx, hi) = self.expr_h()?;
            let close = self.expect(Tok::RBracket, "`]`")?;
            h = self.height(&[h, hi], (open.start, close.end))?;
            let span = (e.span().0, close.end);
            e = Expr::Index(Box::new(e), Box::new(idx), span);
        }
        Ok((e, h))
    }

    fn primary(&mut self) -> PResult<(Expr, usize)> {
        let t = self.token().clone();
        match t.tok.clone() {
            Tok::Num(v, _) => {
                self.bump();
                Ok((Expr::Num(v, (t.start, t.end)), 1))
            }
            Tok::LParen => {
                self.bump();
                let (e, h) = self.expr_h()?;
                let close = self.expect(Tok::RParen, "`)`")?;
                // Parentheses count as a level (they are a level of the parser's recursion).
                let h = self.height(&[h], (t.start, close.end))?;
                Ok((e, h))
            }
            Tok::Ident(name) => {
                self.bump();
                let span = (t.start, t.end);
                match name.as_str() {
                    "true" => return Ok((Expr::Bool(true, span), 1)),
                    "false" => return Ok((Expr::Bool(false, span), 1)),
                    "and" | "or" | "when" | "in" | "param" | "let" | "entry" | "exit" => {
                        return Err(Diagnostic::at(
                            self.src,
                            t.start,
                            t.end,
                            format!("expected a value, found the keyword `{name}`"),
                        ));
                    }
                    _ => {}
                }
                if *self.peek() != Tok::LParen {
                    return Ok((Expr::Ident(name, span), 1));
                }
                self.bump();
                let mut args = Vec::new();
                let mut hs = Vec::new();
                if *self.peek() != Tok::RParen {
                    loop {
                        if args.len() >= limits::MAX_ARGS {
                            return Err(self.err_here("too many arguments"));
                        }
                        let (a, h) = self.expr_h()?;
                        args.push(a);
                        hs.push(h);
                        if *self.peek() == Tok::Comma {
                            self.bump();
                        } else {
                            break;
                        }
                    }
                }
                let close = self.expect(Tok::RParen, "`,` or `)`")?;
                let h = self.height(&hs, span)?;
                let mut end = close.end;
                let field = if *self.peek() == Tok::Dot {
                    self.bump();
                    let (f, fs) = self.ident("an output name after `.`")?;
                    end = fs.1;
                    Some((f, fs))
                } else {
                    None
                };
                Ok((
                    Expr::Call {
                        name,
                        name_span: span,
                        args,
                        field,
                        span: (t.start, end),
                    },
                    h,
                ))
            }
            other => Err(self.err_here(format!("expected a value, found {}", other.describe()))),
        }
    }
}

impl Parser<'_> {
    /// Requires that only blank lines remain (for single-expression input).
    pub(crate) fn expect_end(&mut self) -> PResult<()> {
        while *self.peek() == Tok::Newline {
            self.bump();
        }
        if *self.peek() == Tok::Eof {
            Ok(())
        } else {
            Err(self.err_here(format!(
                "unexpected {} after the expression",
                self.peek().describe()
            )))
        }
    }
}
