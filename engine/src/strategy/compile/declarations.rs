//! Declarations: statements, parameters (and their overrides) and risk settings.

use super::*;

impl Compiler<'_> {
    pub(crate) fn statement(
        &mut self,
        s: &Stmt,
        overrides: &HashMap<String, String>,
    ) -> Result<(), Diagnostic> {
        match s {
            Stmt::Param {
                name,
                name_span,
                ty,
                default,
                range,
            } => self.param(name, *name_span, *ty, default, range.as_ref(), overrides),
            Stmt::Let {
                name,
                name_span,
                value,
            } => {
                self.check_new_name(name, *name_span)?;
                if self.lets.len() >= limits::MAX_SERIES {
                    return Err(self.diag(
                        *name_span,
                        format!("too many named series (limit {})", limits::MAX_SERIES),
                    ));
                }
                let id = self.expr(value)?;
                let id = if let Ty::Multi(_) = self.nodes[id].ty {
                    self.push(Op::Pick(id, 0), Ty::Num, value.span())?
                } else {
                    id
                };
                self.names
                    .insert(name.clone(), (Binding::Series(id), *name_span));
                self.lets.push((name.clone(), id));
                Ok(())
            }
            Stmt::Rule {
                entry,
                short,
                side_span,
                cond,
            } => {
                if *short {
                    return Err(self.diag(*side_span, "the short side is not supported yet: strategies are long-only (use `long`)"));
                }
                let what = if *entry {
                    "an entry condition"
                } else {
                    "an exit condition"
                };
                let id = self.expr(cond)?;
                let id = self.as_bool(id, cond.span(), what)?;
                let mut refs = Vec::new();
                self.collect_refs(cond, &mut refs);
                let line_start = self.src[..side_span.0].rfind('\n').map_or(0, |i| i + 1);
                let line_end = self.src[side_span.0..]
                    .find('\n')
                    .map_or(self.src.len(), |i| side_span.0 + i);
                self.rules.push(Rule {
                    entry: *entry,
                    text: self.src[line_start..line_end].trim().to_string(),
                    node: id,
                    refs,
                });
                Ok(())
            }
            Stmt::Risk {
                key,
                key_span,
                value,
                unit,
            } => self.risk_item(key, *key_span, value, unit.as_ref()),
        }
    }

    pub(super) fn check_new_name(&self, name: &str, span: Span) -> Result<(), Diagnostic> {
        if FIELDS.contains(&name)
            || functions::find(name).is_some()
            || HELPERS.iter().any(|h| h.0 == name)
            || ["true", "false"].contains(&name)
        {
            return Err(self.diag(span, format!("`{name}` is a built-in name; choose another")));
        }
        if let Some((_, prev)) = self.names.get(name) {
            let line = Diagnostic::at(self.src, prev.0, prev.1, "").line;
            return Err(self.diag(span, format!("`{name}` is already defined on line {line}")));
        }
        Ok(())
    }

    pub(super) fn param(
        &mut self,
        name: &str,
        span: Span,
        ty: ParamType,
        default: &Expr,
        range: Option<&(Expr, Expr)>,
        overrides: &HashMap<String, String>,
    ) -> Result<(), Diagnostic> {
        self.check_new_name(name, span)?;
        if self.params.len() >= limits::MAX_PARAMS {
            return Err(self.diag(
                span,
                format!("too many parameters (limit {})", limits::MAX_PARAMS),
            ));
        }
        let type_name = match ty {
            ParamType::Int => "int",
            ParamType::Float => "float",
            ParamType::Bool => "bool",
        };
        let default_v = match ty {
            ParamType::Bool => match default {
                Expr::Bool(b, _) => ParamValue::Bool(*b),
                e => {
                    return Err(self.diag(
                        e.span(),
                        format!("the default of bool parameter `{name}` must be `true` or `false`"),
                    ));
                }
            },
            ParamType::Int | ParamType::Float => {
                let v = self.const_value(default, "a parameter default")?;
                if ty == ParamType::Int {
                    if v.fract() != 0.0 {
                        return Err(self.diag(default.span(), format!("`{name}` is an int parameter, but its default {v} is not a whole number")));
                    }
                    ParamValue::Int(v as i64)
                } else {
                    ParamValue::Float(v)
                }
            }
        };
        let (min, max) = match range {
            None => (None, None),
            Some((lo, hi)) => {
                if ty == ParamType::Bool {
                    return Err(self.diag(lo.span(), "a bool parameter cannot have a range"));
                }
                let l = self.const_value(lo, "a range bound")?;
                let h = self.const_value(hi, "a range bound")?;
                if l > h {
                    return Err(self.diag(
                        (lo.span().0, hi.span().1),
                        format!("empty range: {l} is greater than {h}"),
                    ));
                }
                (Some(l), Some(h))
            }
        };
        let in_range = |v: f64| min.is_none_or(|m| v >= m) && max.is_none_or(|m| v <= m);
        if let Some(d) = default_v.as_f64()
            && !in_range(d)
        {
            return Err(self.diag(
                default.span(),
                format!(
                    "default {d} of `{name}` is outside its range {}..{}",
                    fmt_num(min),
                    fmt_num(max)
                ),
            ));
        }
        let mut value = default_v;
        if let Some(text) = overrides.get(name) {
            match self.override_value(name, span, ty, text, &in_range, min, max) {
                Ok(v) => value = v,
                Err(d) => self.diags.push(d),
            }
        }
        self.names
            .insert(name.to_string(), (Binding::Param(value), span));
        self.params.push(ParamInfo {
            name: name.to_string(),
            kind: type_name.to_string(),
            default: default_v,
            value,
            min,
            max,
        });
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn override_value(
        &self,
        name: &str,
        span: Span,
        ty: ParamType,
        text: &str,
        in_range: &dyn Fn(f64) -> bool,
        min: Option<f64>,
        max: Option<f64>,
    ) -> Result<ParamValue, Diagnostic> {
        let value;
        {
            let t = text.trim();
            value = match ty {
                ParamType::Bool => match t {
                    "true" => ParamValue::Bool(true),
                    "false" => ParamValue::Bool(false),
                    _ => {
                        return Err(Diagnostic::global(format!(
                            "parameter `{name}` is a bool: use true or false, not `{t}`"
                        )));
                    }
                },
                ParamType::Int => match t.parse::<i64>() {
                    Ok(v) => ParamValue::Int(v),
                    Err(_) => {
                        return Err(Diagnostic::global(format!(
                            "parameter `{name}` is an int: `{t}` is not a whole number"
                        )));
                    }
                },
                ParamType::Float => match t.parse::<f64>() {
                    Ok(v) if v.is_finite() => ParamValue::Float(v),
                    _ => {
                        return Err(Diagnostic::global(format!(
                            "parameter `{name}` is a float: `{t}` is not a number"
                        )));
                    }
                },
            };
            if let Some(v) = value.as_f64()
                && !in_range(v)
            {
                return Err(Diagnostic::global(format!(
                    "parameter `{name}` = {t} is out of range: it must be in {}..{} (declared on line {})",
                    fmt_num(min),
                    fmt_num(max),
                    Diagnostic::at(self.src, span.0, span.1, "").line
                )));
            }
        }
        Ok(value)
    }

    pub(super) fn risk_item(
        &mut self,
        key: &str,
        span: Span,
        value: &Expr,
        unit: Option<&(String, Span)>,
    ) -> Result<(), Diagnostic> {
        const KEYS: [&str; 5] = [
            "stop_loss",
            "take_profit",
            "trailing_stop",
            "size",
            "max_bars",
        ];
        if !KEYS.contains(&key) {
            let hint = suggest(key, KEYS.iter().copied())
                .map(|s| format!(", did you mean `{s}`?"))
                .unwrap_or_default();
            return Err(self.diag(
                span,
                format!(
                    "unknown risk setting `{key}`{hint} (settings: {})",
                    KEYS.join(", ")
                ),
            ));
        }
        if self.risk_seen.iter().any(|k| k == key) {
            return Err(self.diag(span, format!("`{key}` is set twice")));
        }
        self.risk_seen.push(key.to_string());
        let v = self.const_value(value, "a risk setting")?;
        let unit_name = unit.map(|u| u.0.as_str());
        let vspan = (value.span().0, unit.map_or(value.span().1, |u| u.1.1));
        match key {
            "stop_loss" | "take_profit" | "trailing_stop" => {
                if unit_name != Some("%") {
                    return Err(self.diag(vspan, format!("`{key}` is a percentage: write it with `%`, e.g. `{key} = 5%`")));
                }
                if !(v > 0.0 && v < 1000.0) || (key != "take_profit" && v >= 100.0) {
                    return Err(self.diag(vspan, format!("`{key}` = {v}% is out of range (0% < value < {}%)", if key == "take_profit" { 1000 } else { 100 })));
                }
                let f = Some(v / 100.0);
                match key {
                    "stop_loss" => self.risk.stop_loss = f,
                    "take_profit" => self.risk.take_profit = f,
                    _ => self.risk.trailing_stop = f,
                }
            }
            "size" => match unit_name {
                Some("%") => {
                    if !(v > 0.0 && v <= 100.0) {
                        return Err(self.diag(vspan, format!("`size` = {v}% must be in (0%, 100%] of equity")));
                    }
                    self.risk.size = Some(PositionSize::PercentOfEquity(v / 100.0));
                }
                Some("quote") => {
                    if v.is_nan() || v <= 0.0 {
                        return Err(self.diag(vspan, "`size` must be a positive amount"));
                    }
                    self.risk.size = Some(PositionSize::FixedQuote(v));
                }
                _ => return Err(self.diag(vspan, "`size` is a percentage of equity (`size = 50%`) or a fixed quote amount (`size = 1000 quote`)")),
            },
            _ => {
                if unit.is_some() || v.fract() != 0.0 || !(1.0..=1e9).contains(&v) {
                    return Err(self.diag(vspan, "`max_bars` is a whole number of bars, e.g. `max_bars = 48`"));
                }
                self.risk.max_bars = Some(v as usize);
            }
        }
        Ok(())
    }
}
