//! Market data: a coverage bar per series (what is stored, where candles are missing) and a candlestick chart
//! with volume for a chosen series and range.
//!
//! Without JavaScript the page shows coverage, the runs and the range form (a plain GET form). The chart needs
//! the hydrated page: an effect loads `/market-chart.js` (same origin, so the CSP allows it), which loads the
//! vendored TradingView lightweight-charts and draws the candles from `GET /api/v1/market/candles`.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::{
    api::market::{MarketOverview, SeriesDto, get_market_overview},
    pages::error::ErrorTemplate,
};

#[component]
pub fn MarketPage() -> impl IntoView {
    let overview = Resource::new(|| (), |()| get_market_overview());
    let query = use_query_map();
    let selection = move || {
        let q = query.get();
        (
            q.get("series").unwrap_or_default(),
            q.get("from").unwrap_or_default(),
            q.get("to").unwrap_or_default(),
        )
    };
    view! {
        <Title text="Market data" />
        <div class="page-head">
            <h1>"Market data"</h1>
        </div>
        <Transition fallback=|| view! { <p class="muted">"Loading market data…"</p> }>
            <ErrorBoundary fallback=|errors| view! { <ErrorTemplate errors /> }>
                {move || Suspend::new(async move {
                    let (series, from, to) = selection();
                    overview.await.map(|o| {
                        let detail = o.upload_detail.clone();
                        view! { <UploadOutcome detail /> <Overview o series from to /> }
                    })
                })}
            </ErrorBoundary>
        </Transition>
        <UploadSection />
    }
}

#[component]
fn Overview(o: MarketOverview, series: String, from: String, to: String) -> impl IntoView {
    if o.series.is_empty() {
        return view! {
            <section class="card">
                <h2>"No market data yet"</h2>
                <p>"Load the demo candles with " <code>"vortex run-etl --source csv:data/market"</code>
                   " or fetch from the exchange with "
                   <code>"vortex run-etl --assets BTC,ETH --mode backfill --timeframe 1h"</code> "."</p>
            </section>
        }
        .into_any();
    }
    let selected = o
        .series
        .iter()
        .find(|s| s.key() == series)
        .or_else(|| o.series.iter().find(|s| s.count > 0))
        .cloned();
    let chart = selected.map(|s| {
        let mut src = format!(
            "/api/v1/market/candles?instrument_id={}&timeframe={}",
            s.instrument_id, s.timeframe
        );
        for (k, v) in [("from", &from), ("to", &to)] {
            if is_plain_date(v) {
                src.push_str(&format!("&{k}={v}"));
            }
        }
        (s, src)
    });
    view! {
        <section aria-labelledby="chart-head">
            <h2 id="chart-head">"Chart"</h2>
            <form class="range-form" method="get" action="/market">
                <label>
                    "Series "
                    <select name="series">
                        {o.series.iter().map(|s| {
                            let is_sel = chart.as_ref().is_some_and(|(c, _)| c.key() == s.key());
                            view! { <option value=s.key() selected=is_sel>{s.label()}</option> }
                        }).collect_view()}
                    </select>
                </label>
                <label>"From " <input type="date" name="from" value=from.clone() /></label>
                <label>"To " <input type="date" name="to" value=to.clone() /></label>
                <button class="button" type="submit">"Show"</button>
            </form>
            {chart.map(|(s, src)| view! { <Chart series=s src /> })}
        </section>
        <section aria-labelledby="coverage-head">
            <h2 id="coverage-head">"Coverage"</h2>
            <p class="muted">"Each bar spans a series from its first to its last candle; red marks missing candles."</p>
            <table class="coverage">
                <thead>
                    <tr>
                        <th scope="col">"Series"</th>
                        <th scope="col">"Coverage"</th>
                        <th scope="col">"Candles"</th>
                        <th scope="col">"From – to"</th>
                        <th scope="col">"Missing"</th>
                        <th scope="col">"Updated"</th>
                    </tr>
                </thead>
                <tbody>
                    {o.series.into_iter().map(|s| view! { <CoverageRow s /> }).collect_view()}
                </tbody>
            </table>
        </section>
        <section aria-labelledby="runs-head">
            <h2 id="runs-head">"Recent loads"</h2>
            <table class="runs">
                <thead>
                    <tr>
                        <th scope="col">"Series"</th>
                        <th scope="col">"Mode"</th>
                        <th scope="col">"Status"</th>
                        <th scope="col">"Progress"</th>
                        <th scope="col">"Updated"</th>
                    </tr>
                </thead>
                <tbody>
                    {o.runs.into_iter().map(|r| {
                        let class = format!("status-{}", r.status);
                        view! {
                            <tr data-run=r.run_id.clone()>
                                <td>{r.series}</td>
                                <td title=r.source>{r.mode}</td>
                                <td class=class>{r.status} {r.error.map(|e| view! { <div class="muted small">{e}</div> })}</td>
                                <td>{r.candles_fetched} " / " {r.candles_expected} " candles"
                                    {r.chunks.map(|(done, total)| view! { <span class="run-chunks">" · " {done} " / " {total} " chunks"</span> })}</td>
                                <td>{r.updated_at}</td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </section>
    }
    .into_any()
}

/// `YYYY-MM-DD` only: anything else is left out of the chart's URL.
fn is_plain_date(v: &str) -> bool {
    v.len() == 10
        && v.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        })
}

#[component]
fn CoverageRow(s: SeriesDto) -> impl IntoView {
    let key = s.key();
    let href = format!("/market?series={key}");
    let label = format!("{} {}", s.pair, s.timeframe);
    let span = match (s.first_ms, s.last_ms) {
        (Some(f), Some(l)) if l > f => Some((f, l)),
        _ => None,
    };
    let pct = if s.expected > 0 {
        s.count as f64 * 100.0 / s.expected as f64
    } else {
        0.0
    };
    let bar_title = format!(
        "{pct:.2}% of candles present, {} missing in {} gap(s)",
        s.missing, s.gap_count
    );
    let gaps = s.gaps.clone();
    view! {
        <tr data-series=key>
            <th scope="row">
                <a href=href>{label}</a>
                <div class="muted small">{s.exchange.clone()} {s.tracked.then_some(" · tracked")}</div>
            </th>
            <td class="coverage-cell">
                <div class="coverage-bar" role="img" aria-label=bar_title.clone() title=bar_title>
                    {span.map(|(f, l)| {
                        let width = (l - f) as f64;
                        gaps.into_iter().map(|g| {
                            let left = (g.from_ms - f) as f64 * 100.0 / width;
                            let w = ((g.to_ms - g.from_ms) as f64 * 100.0 / width).max(0.4);
                            let style = format!("left:{left:.3}%;width:{w:.3}%");
                            let title = format!("{} missing: {} – {}", g.missing, g.from, g.to);
                            view! { <span class="gap" style=style title=title></span> }
                        }).collect_view()
                    })}
                </div>
            </td>
            <td class="num">{s.count}</td>
            <td class="small">{s.first.unwrap_or_default()} " – " {s.last.unwrap_or_default()}</td>
            <td class="num" data-missing=s.missing>{s.missing} <span class="muted small">" in " {s.gap_count} " gap(s)"</span></td>
            <td class="small">{s.last_update.unwrap_or_else(|| "—".into())}</td>
        </tr>
    }
}

#[component]
fn Chart(series: SeriesDto, src: String) -> impl IntoView {
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| {
        crate::chart::mount_charts();
    });
    view! {
        <p class="muted">{series.label()} " · " {series.count} " candles stored"</p>
        <div id="market-chart" class="market-chart" data-market-chart="" data-src=src data-status="chart-status"></div>
        <p id="chart-status" class="muted small">"The chart needs JavaScript; coverage below works without it."</p>
    }
}

/// What the last upload did, shown above the coverage: a fixed message for the query's code (or the counts in
/// the query, numbers only), with the details from the upload's flash cookie (`detail`, which only this site
/// can set). Free text in the query is never shown.
#[component]
fn UploadOutcome(detail: Option<String>) -> impl IntoView {
    let query = use_query_map();
    move || {
        let q = query.read();
        let detail = detail.clone();
        if let Some(code) = q.get("upload_error") {
            let message = crate::api::market::upload_error_message(&code)?;
            return Some(
                view! {
                    <p class="flash error" role="alert" id="upload-result">
                        "Upload refused: " {message}
                        {detail.map(|d| view! { <span class="small"> " " {d}</span> })}
                    </p>
                }
                .into_any(),
            );
        }
        let number = |k: &str| q.get(k).and_then(|v| v.parse::<u64>().ok());
        let rows = number("uploaded")?;
        let written = number("written").unwrap_or(0);
        let rejected = number("rejected").unwrap_or(0);
        Some(view! {
            <p class="flash ok" role="status" id="upload-result">
                "Upload stored: " {rows} " valid rows read, " {written} " candles written."
                {(rejected > 0).then(|| view! {
                    " Skipped " {rejected} " bad row(s)" {detail.map(|d| view! { ": " {d} })} "."
                })}
            </p>
        }.into_any())
    }
}

/// The CSV upload form, for admins (candles are shared by everyone).
#[component]
fn UploadSection() -> impl IntoView {
    let viewer = Resource::new(|| (), |()| crate::api::account::get_viewer());
    view! {
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                let admin = matches!(viewer.await, Ok(Some(v)) if v.role == "admin");
                admin.then(|| view! {
                    <section class="card" id="upload">
                        <h2>"Upload candles (CSV)"</h2>
                        <p class="muted">
                            "Header " <code>"timestamp,open,high,low,close,volume"</code>
                            " (any column order); ISO 8601 or epoch-millisecond times in UTC. A file with a bad row is "
                            "refused as a whole, naming the line, unless you choose to skip bad rows."
                        </p>
                        <form id="market-upload" method="post" action="/market/upload" enctype="multipart/form-data" class="inline-form">
                            <crate::components::forms::CsrfField />
                            <label>"Pair" <input type="text" name="pair" placeholder="ETH/BTC" required maxlength="40" /></label>
                            <label>"Exchange" <input type="text" name="exchange" placeholder="upload" maxlength="40" /></label>
                            <label>"Timeframe" <input type="text" name="timeframe" placeholder="auto" maxlength="4" /></label>
                            <label>"File" <input type="file" name="file" accept=".csv,text/csv" required /></label>
                            <label class="check"><input type="checkbox" name="skip_bad_rows" value="on" /> "Skip bad rows"</label>
                            <button class="button" type="submit">"Upload"</button>
                        </form>
                        <div id="upload-progress" class="upload-progress" hidden>
                            <progress max="100" value="0"></progress> <span class="muted" id="upload-progress-text"></span>
                        </div>
                    </section>
                })
            })}
        </Transition>
    }
}
