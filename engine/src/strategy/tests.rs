use super::*;
use crate::candles::{Candles, Timeframe};

fn candles(closes: &[f64]) -> Candles {
    let mut c = Candles::new(Timeframe::M1);
    for (i, &x) in closes.iter().enumerate() {
        c.push(i as i64 * 60_000, x, x + 1.0, x - 1.0, x, 1.0);
    }
    c
}

fn err(src: &str) -> Diagnostic {
    compile(src, &[]).unwrap_err().remove(0)
}

#[test]
fn unknown_indicator_suggests_and_points() {
    let src = "let r = rsj(close, 14)\nentry long when r < 30\n";
    let d = err(src);
    assert_eq!(d.message, "unknown indicator `rsj`, did you mean `rsi`?");
    assert_eq!((d.line, d.column, d.len), (1, 9, 3));
    let r = d.render(src);
    assert!(
        r.contains("1 | let r = rsj(close, 14)\n  |         ^^^\n"),
        "{r}"
    );
}

#[test]
fn type_errors_arity_and_ranges() {
    let d = err("entry long when (close > 1) > 2\n");
    assert!(
        d.message.contains("cannot compare a boolean with a number"),
        "{}",
        d.message
    );
    assert_eq!(d.column, 18);
    let d = err("entry long when sma(close, 10, 3) > 1\n");
    assert!(
        d.message
            .contains("`sma` takes 1 to 2 arguments (series, period), got 3"),
        "{}",
        d.message
    );
    let d = err("entry long when close and true\n");
    assert!(d.message.contains("needs a boolean"), "{}", d.message);
    let d = err("entry long when close + 1\n");
    assert!(
        d.message.contains("an entry condition needs a boolean"),
        "{}",
        d.message
    );
    let d = err("param fast: int = 500 in 2..200\nentry long when close > fast\n");
    assert!(
        d.message.contains("outside its range 2..200"),
        "{}",
        d.message
    );
    let e = compile(
        "param fast: int = 10 in 2..200\nentry long when close > fast\n",
        &[("fast".into(), "500".into())],
    )
    .unwrap_err();
    assert!(
        e[0].message.contains("`fast` = 500 is out of range"),
        "{}",
        e[0].message
    );
    let e = compile(
        "param fast: int = 10 in 2..200\nentry long when close > fast\n",
        &[("fsat".into(), "5".into())],
    )
    .unwrap_err();
    assert!(
        e[0].message
            .contains("unknown parameter `fsat`, did you mean `fast`?"),
        "{}",
        e[0].message
    );
    let d = err("entry long when sma(close, 0) > 1\n");
    assert!(
        d.message
            .contains("`period` of `sma` must be between 1 and 10000, got 0"),
        "{}",
        d.message
    );
    let d = err("entry long when close[20000] > 1\n");
    assert!(d.message.contains("limit of 10000"), "{}", d.message);
    let d = err("entry long when clsoe > 1\n");
    assert_eq!(d.message, "unknown name `clsoe`, did you mean `close`?");
    let d = err("entry long when macd(close).sig > 0\n");
    assert!(
        d.message.contains("did you mean `signal`?"),
        "{}",
        d.message
    );
    let d = err("entry short when close > 1\n");
    assert!(
        d.message.contains("short side is not supported"),
        "{}",
        d.message
    );
    let d = err("risk { stop_loss = 5 }\nentry long when close > 1\n");
    assert!(d.message.contains("is a percentage"), "{}", d.message);
    let d = err("let x = close\n");
    assert!(d.message.contains("no entry rule"), "{}", d.message);
}

#[test]
fn several_errors_are_reported() {
    let e = compile(
        "let a = foo(1)\nlet b = bar(2)\nentry long when close > 1\n",
        &[],
    )
    .unwrap_err();
    assert_eq!(e.len(), 2);
    assert_eq!((e[0].line, e[1].line), (1, 2));
}

#[test]
fn limits_are_enforced() {
    let deep = format!(
        "entry long when {}close{} > 1\n",
        "(".repeat(200),
        ")".repeat(200)
    );
    assert!(err(&deep).message.contains("nested too deeply"));
    let big = "#".repeat(limits::MAX_SOURCE_BYTES + 1);
    assert!(err(&big).message.contains("limit"));
    let mut many = String::new();
    for i in 0..(limits::MAX_SERIES + 1) {
        many.push_str(&format!("let s{i} = close + {i}\n"));
    }
    many.push_str("entry long when close > 1\n");
    assert!(
        compile(&many, &[])
            .unwrap_err()
            .iter()
            .any(|d| d.message.contains("too many named series"))
    );
}

#[test]
fn nan_semantics_and_crosses() {
    // a crosses above b at t when a[t-1] < b[t-1] and a[t] > b[t].
    let c = candles(&[1.0, 2.0, 3.0, 2.0, 1.0, 2.0, 2.0, 3.0]);
    let s = compile(
        "entry long when crosses_above(close, 1.5)\nexit long when crosses_below(close, 2.5)\n",
        &[],
    )
    .unwrap();
    let ev = s.evaluate(&c);
    assert_eq!(
        ev.entry[0],
        vec![false, true, false, false, false, true, false, false]
    );
    assert_eq!(
        ev.exit[0],
        vec![false, false, false, true, false, false, false, false]
    );
    // Comparisons with NaN (warm-up, look-back before the start) are false, also `!=`.
    let s = compile("entry long when close[1] != 5 or sma(close, 3) > 0\nexit long when not (close[1] == close[1])\n", &[]).unwrap();
    let ev = s.evaluate(&c);
    assert_eq!(&ev.entry[0][..3], &[false, true, true]);
    assert!(ev.exit[0][0] && !ev.exit[0][1]);
    // Division by zero is NaN, never a panic.
    let s = compile(
        "let z = close / 0\nentry long when z > 0 or z < 0 or z == z\n",
        &[],
    )
    .unwrap();
    assert!(s.evaluate(&c).entry[0].iter().all(|b| !b));
}

#[test]
fn eval_series_gives_all_outputs() {
    let c = candles(
        &(0..60)
            .map(|i| 100.0 + (i as f64).sin())
            .collect::<Vec<_>>(),
    );
    let m = eval_series("macd(close, 12, 26, 9)", &c).unwrap();
    assert_eq!(m.len(), 3);
    assert_eq!(m[1].0, "macd(close, 12, 26, 9).signal");
    let r = eval_series("rsi(close, 14)", &c).unwrap();
    assert_eq!(r.len(), 1);
    assert!(r[0].1[13].is_nan() && !r[0].1[14].is_nan());
    let e = eval_series("rsi(close, 14) +", &c).unwrap_err();
    assert_eq!(e[0].line, 1);
    let b = eval_series("close > 100", &c).unwrap();
    assert!(b[0].1.iter().all(|v| *v == 0.0 || *v == 1.0));
}

#[test]
fn params_and_risk_are_exposed() {
    let s = compile(
        "param fast: int = 10 in 2..200\nparam use: bool = true\nrisk {\n stop_loss = 5%\n take_profit = 2 * 5%\n size = 1000 quote\n max_bars = 48\n}\nentry long when use and close > fast\n",
        &[],
    )
    .unwrap();
    assert_eq!(s.params().len(), 2);
    assert_eq!(s.params()[0].min, Some(2.0));
    let r = s.risk();
    assert_eq!(r.stop_loss, Some(0.05));
    assert!((r.take_profit.unwrap() - 0.10).abs() < 1e-12);
    assert_eq!(r.size, Some(PositionSize::FixedQuote(1000.0)));
    assert_eq!(r.max_bars, Some(48));
}

#[test]
fn identical_entry_and_exit_rules_share_a_column_safely() {
    // Found by the fuzzer: the same condition used by two rules is one node.
    let c = candles(
        &(0..80)
            .map(|i| 100.0 + (i as f64 * 0.3).sin() * 5.0)
            .collect::<Vec<_>>(),
    );
    let src = "let f = ema(close, 5)\nlet s = ema(close, 9)\nentry long when crosses_below(f, s)\nexit long when crosses_below(f, s)\n";
    let s = compile(src, &[]).unwrap();
    let ev = s.evaluate(&c);
    assert_eq!(ev.entry[0], ev.exit[0]);
    assert_eq!(ev.entry[0].len(), c.len());
    assert!(crate::backtest::run(&c, &s, &crate::backtest::BacktestConfig::default()).is_ok());
}

/// Runs `f` on a thread with the stack of a tokio worker or blocking thread (2 MiB; an unoptimised
/// build needs about 18 KiB of it per level of nesting), so unbounded recursion anywhere in lexing,
/// parsing, compiling, evaluating or dropping shows as a crash.
fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(2 * 1024 * 1024)
        .spawn(f)
        .expect("spawn")
        .join()
        .expect("no stack overflow")
}

/// Hostile sources as large as the source limit allows: every kind of nesting and chaining.
fn hostile_sources() -> Vec<(&'static str, String)> {
    let max = limits::MAX_SOURCE_BYTES;
    let fill = |head: &str, unit: &str, tail: &str| {
        let n = (max - head.len() - tail.len()) / unit.len();
        format!("{head}{}{tail}", unit.repeat(n))
    };
    let nest = |open: &str, mid: &str, close: &str, head: &str, tail: &str| {
        let n = (max - head.len() - tail.len() - mid.len()) / (open.len() + close.len());
        format!("{head}{}{mid}{}{tail}", open.repeat(n), close.repeat(n))
    };
    vec![
        ("sum chain", fill("entry long when close > 1", "+1", "\n")),
        (
            "product chain",
            fill("entry long when close > 1", "*1", "\n"),
        ),
        (
            "and chain",
            fill("entry long when close > 1", " and true", "\n"),
        ),
        (
            "or chain",
            fill("entry long when close > 1", " or true", "\n"),
        ),
        (
            "look-back chain",
            fill("entry long when close", "[1]", " > 1\n"),
        ),
        ("minus chain", fill("entry long when close > ", "- ", "1\n")),
        ("not chain", fill("entry long when ", "not ", "close > 1\n")),
        (
            "parentheses",
            nest("(", "close", ")", "entry long when ", " > 1\n"),
        ),
        (
            "calls",
            nest("abs(", "close", ")", "entry long when ", " > 1\n"),
        ),
        (
            "look-back inside",
            nest("close[", "1", "]", "entry long when ", " > 1\n"),
        ),
        (
            "let chain",
            fill("let x = close", " - close", "\nentry long when x > 1\n"),
        ),
        (
            "param default",
            fill("param p: int = 1", "+1", "\nentry long when close > p\n"),
        ),
    ]
}

#[test]
fn deep_and_long_expressions_are_refused_with_a_position_not_a_crash() {
    for (what, src) in hostile_sources() {
        assert!(src.len() <= limits::MAX_SOURCE_BYTES, "{what}");
        let s = src.clone();
        let diags = on_small_stack(move || compile(&s, &[]).map(|_| ())).expect_err(what);
        let d = &diags[0];
        assert!(
            d.message.contains("nested too deeply"),
            "{what}: {}",
            d.message
        );
        assert!(d.line >= 1 && d.column >= 1, "{what}: {d:?}");
        assert!(d.render(&src).contains("-->"), "{what}");
        // The single-expression path (`vortex indicator`) too.
        let expr = src
            .lines()
            .next()
            .unwrap_or("")
            .trim_start_matches("entry long when ")
            .to_string();
        let r = on_small_stack(move || {
            let c = candles(&[1.0, 2.0, 3.0]);
            eval_series(&expr, &c).map(|_| ())
        });
        if let Err(d) = r {
            assert!(d[0].line >= 1, "{what}");
        }
    }
}

#[test]
fn expressions_up_to_the_depth_limit_compile_and_run_on_a_small_stack() {
    let d = limits::MAX_DEPTH;
    // `close + 1 + … + 1 > 0`: k additions are k + 1 high, the comparison one more.
    let chain = |k: usize| format!("entry long when close{} > 0\n", " + 1".repeat(k));
    let ok = on_small_stack(move || {
        let s = compile(&chain(d - 2), &[]).map_err(|e| e[0].message.clone())?;
        let ev = s.evaluate(&candles(&[1.0, 2.0, 3.0]));
        Ok::<_, String>(ev.entry[0].clone())
    });
    assert_eq!(ok, Ok(vec![true, true, true]));
    let e = err(&chain(d - 1));
    assert!(e.message.contains("nested too deeply"), "{}", e.message);
    // The diagnostic points at the operator that went one level too deep (here the comparison).
    assert_eq!(e.line, 1);
    assert_eq!(e.column, "entry long when close".len() + 4 * (d - 1) + 2);
    // Every kind of level counts towards the one limit: a mix at the limit compiles…
    let mixed = move |extra: usize| {
        let k = d - 6 + extra;
        format!(
            "entry long when not (abs(close[1]{}) > 0)\n",
            " - 1".repeat(k)
        )
    };
    // (heights: close[1] 2, chain +k, abs +1, > +1, parentheses +1, not +1)
    on_small_stack(move || compile(&mixed(0), &[]).map(|_| ()))
        .unwrap_or_else(|e| panic!("{:?}", e[0]));
    // …and one more level anywhere is refused.
    assert!(err(&mixed(1)).message.contains("nested too deeply"));
    let deeper_paren = format!(
        "entry long when not ((abs(close[1]{}) > 0))\n",
        " - 1".repeat(d - 6)
    );
    assert!(err(&deeper_paren).message.contains("nested too deeply"));
}
