//! The self-contained HTML report of a finished run, which opens offline (the chart library, the chart script
//! and the data are inlined; no network access). Its trade table lists the first [`REPORT_MAX_TRADES`] trades;
//! the trades CSV and the result JSON ([`super::export`]) carry them all.

use sqlx::PgPool;
use uuid::Uuid;

use super::{Error, runs};

/// The chart library and our chart script, inlined into every report.
const CHART_LIB: &str =
    include_str!("../../../public/vendor/lightweight-charts-5.2.1.standalone.production.js");
const CHART_LIB_LICENSE: &str =
    include_str!("../../../public/vendor/lightweight-charts-5.2.1.LICENSE");
const CHART_SCRIPT: &str = include_str!("../../../public/backtest-chart.js");

/// Trades listed in the HTML report's table; the rest are counted in a note that points to the trades CSV
/// (a report must be one document, so it cannot be streamed row by row the way the CSV is).
pub const REPORT_MAX_TRADES: i64 = 5_000;

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// JSON safe inside a `<script type="application/json">` element.
fn script_json(v: &impl serde::Serialize) -> String {
    serde_json::to_string(v)
        .unwrap_or_else(|_| "null".into())
        .replace('<', "\\u003c")
}

fn metric_value(value: Option<f64>, unit: &str) -> String {
    match value {
        None => "n/a".into(),
        Some(v) => match unit {
            "fraction" => format!("{:.2} %", v * 100.0),
            "count" | "bars" => format!("{v:.0}"),
            _ => format!("{v:.2}"),
        },
    }
}

/// The HTML report of a finished run.
///
/// # Errors
/// [`Error::NotFound`] (no such run for this user, or not finished), database errors.
pub async fn html(db: &PgPool, user: Uuid, id: Uuid) -> Result<String, Error> {
    let run = runs::get(db, user, id).await?;
    let result = runs::result(db, user, id).await?;
    let chart = runs::chart(db, user, id).await?;
    let (trades, total) = runs::trades(db, user, id, None, None, REPORT_MAX_TRADES, 0).await?;
    let shown = i64::try_from(trades.len()).unwrap_or(i64::MAX);
    let s = &run.summary;
    let title = escape(&format!("{} · {}", s.label(), s.instrument));
    let mut metrics = String::new();
    for (name, m) in result.metrics.iter() {
        metrics.push_str(&format!(
            "<div class=\"metric\"><div class=\"n\">{}</div><div class=\"v\">{}</div><div class=\"b\">{}</div>{}</div>",
            escape(&name.replace('_', " ")),
            escape(&metric_value(m.value, &m.unit)),
            escape(&m.basis),
            m.na_reason
                .as_deref()
                .map(|r| format!("<div class=\"b\">{}</div>", escape(r)))
                .unwrap_or_default()
        ));
    }
    let mut rows = String::new();
    for t in &trades {
        rows.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.2}</td><td>{:.2} %</td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
            t.seq,
            escape(&t.entry_time.format("%Y-%m-%d %H:%M").to_string()),
            escape(&t.exit_time.format("%Y-%m-%d %H:%M").to_string()),
            t.entry_price,
            t.exit_price,
            t.pnl,
            t.return_pct * 100.0,
            t.bars_held,
            escape(&t.exit_reason),
            escape(&t.entry_rule),
        ));
    }
    let p = &result.provenance;
    let provenance = [
        ("Engine", p.engine_version.clone()),
        ("Data hash", p.candles_hash.clone()),
        ("Candles", format!("{} × {}", p.bars, p.timeframe)),
        (
            "Strategy version",
            format!("v{} ({})", s.version, run.strategy_version_id),
        ),
        ("Source hash", p.strategy_source_hash.clone()),
        (
            "Parameters",
            p.params
                .iter()
                .map(|(k, v)| format!("{k} = {v}"))
                .collect::<Vec<_>>()
                .join(", "),
        ),
        ("Fill model", p.fill_model.clone()),
        (
            "Fees",
            format!(
                "{} % per side, {} bps slippage",
                p.fee * 100.0,
                p.slippage_bps
            ),
        ),
        ("Initial cash", format!("{:.2}", p.initial_cash)),
        ("Semantics", p.semantics.join(" · ")),
    ]
    .iter()
    .map(|(k, v)| format!("<dt>{}</dt><dd>{}</dd>", escape(k), escape(v)))
    .collect::<String>();
    Ok(format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
:root{{--bg:#fff;--fg:#1b1f24;--muted:#5b6470;--border:#d8dde3;--up:#16a34a;--down:#dc2626;--accent:#2563eb}}
body{{font:14px/1.45 system-ui,sans-serif;color:var(--fg);background:var(--bg);margin:0 auto;max-width:1200px;padding:24px}}
h1{{font-size:22px;margin:0 0 4px}} h2{{font-size:17px;margin:28px 0 8px}} .muted{{color:var(--muted)}}
.metrics{{display:grid;grid-template-columns:repeat(auto-fill,minmax(170px,1fr));gap:8px}}
.metric{{border:1px solid var(--border);border-radius:8px;padding:8px}} .metric .n{{color:var(--muted);text-transform:capitalize}}
.metric .v{{font-size:18px;font-weight:600}} .metric .b{{font-size:11px;color:var(--muted)}}
table{{border-collapse:collapse;width:100%;font-size:12px}} td,th{{border-bottom:1px solid var(--border);padding:4px 6px;text-align:left}}
dl{{display:grid;grid-template-columns:max-content 1fr;gap:4px 16px}} dt{{color:var(--muted)}} dd{{margin:0;word-break:break-all}}
</style></head>
<body>
<h1>{title}</h1>
<p class="muted">{range} · status {status} · exported by Vortex</p>
<h2>Metrics</h2><div class="metrics">{metrics}</div>
<h2>Price, equity and drawdown</h2>
<div class="backtest-chart" data-backtest-chart="" data-inline="chart-data"></div>
<h2>Trades ({trade_count})</h2>{left_out}
<table><thead><tr><th>#</th><th>Entry (UTC)</th><th>Exit (UTC)</th><th>Entry price</th><th>Exit price</th><th>P&amp;L</th><th>Return</th><th>Bars</th><th>Exit reason</th><th>Rule</th></tr></thead>
<tbody>{rows}</tbody></table>
<h2>Provenance</h2><dl>{provenance}</dl>
<script type="application/json" id="chart-data">{data}</script>
<script>/* TradingView Lightweight Charts — licence below */
{lib}
</script>
<script>
{script}
</script>
<!-- Lightweight Charts licence:
{license}
-->
</body></html>
"#,
        // The end is exclusive; the last day shown is the one it ends (as on the run's page).
        range = escape(&format!(
            "{} → {}",
            s.range_from.format("%Y-%m-%d"),
            (s.range_to - chrono::Duration::milliseconds(1)).format("%Y-%m-%d")
        )),
        status = s.status,
        trade_count = total,
        left_out = if total > shown {
            format!(
                "\n<p class=\"muted\">The table lists the first {} of {total} trades; the other {} are left out \
                 here. Every trade is in the trades CSV (<code>backtest-{id}-trades.csv</code>) and the result JSON.</p>",
                shown,
                total - shown
            )
        } else {
            String::new()
        },
        data = script_json(&chart),
        lib = CHART_LIB,
        script = CHART_SCRIPT,
        license = CHART_LIB_LICENSE.replace("--", "- -"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn text_and_script_data_cannot_break_out() {
        assert_eq!(
            escape("<b a=\"x\">&'"),
            "&lt;b a=&quot;x&quot;&gt;&amp;&#39;"
        );
        let s = script_json(&json!({ "x": "</script><script>alert(1)</script>" }));
        assert!(!s.contains("</script"));
        assert!(s.contains("\\u003c/script"));
    }
}
