//! The parity report of a paper run: its window backtested with the same version and settings, diffed
//! trade by trade, every difference with its cause.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

use crate::{
    api::paper::{ParityTrade, ParityView, get_paper_parity},
    pages::error::ErrorTemplate,
};

#[component]
pub fn ParityPage() -> impl IntoView {
    let params = use_params_map();
    let data = Resource::new(
        move || params.read().get("id").unwrap_or_default(),
        get_paper_parity,
    );
    view! {
        <Title text="Parity report" />
        <Transition fallback=|| view! { <p class="muted">"Backtesting the run's window…"</p> }>
            <ErrorBoundary fallback=|errors| view! { <ErrorTemplate errors /> }>
                {move || Suspend::new(async move { data.await.map(|v| view! { <Report v /> }) })}
            </ErrorBoundary>
        </Transition>
    }
}

fn trade_text(t: &Option<ParityTrade>) -> String {
    match t {
        None => "—".into(),
        Some(t) => format!(
            "{} @ {:.8} → {} @ {} · {:.8} units · fees {:.4}{}",
            t.entry,
            t.entry_price,
            t.exit.clone().unwrap_or_else(|| "open".into()),
            t.exit_price
                .map_or_else(|| "—".into(), |p| format!("{p:.8}")),
            t.units,
            t.fees,
            t.exit_reason
                .as_ref()
                .map(|r| format!(" · {r}"))
                .unwrap_or_default()
        ),
    }
}

#[component]
fn Report(v: ParityView) -> impl IntoView {
    let r = &v.row;
    let back = format!("/paper/{}", r.id);
    let title = format!("Parity: {} · {} {}", r.label(), r.symbol, r.timeframe);
    let clean = v.differences.is_empty();
    view! {
        <Title text=title.clone() />
        <div class="page-head">
            <h1>{title}</h1>
            <div class="actions"><a class="button" href=back>"Back to the run"</a></div>
        </div>
        <p class="muted small">"The run's window is backtested now with the same strategy version, parameters, settings \
            and warm-up, on the candles stored now, and compared trade by trade: entry and exit candle, price, units and fees. \
            The engine is the same code, so the expected result is no difference; each one found is listed with its cause."</p>
        <section class=if clean { "card ok" } else { "card notice" } id="parity-summary">
            <p><strong>{v.summary.clone()}</strong></p>
            <dl class="kv">
                <dt>"Window"</dt><dd>{format!("warm-up from {}, deciding from {} to {}", v.window_from, v.live_from, v.window_to.clone().unwrap_or_else(|| "—".into()))}</dd>
                <dt>"Candles"</dt><dd>{v.candles}</dd>
                <dt>"Trades"</dt><dd id="parity-counts">{format!("paper {} · backtest {} · matched {}", v.paper_trades, v.backtest_trades, v.matched)}</dd>
                <dt>"Open position"</dt><dd>{match v.open_position_matches {
                    None => "none".to_owned(),
                    Some(true) => "matches the backtest's".to_owned(),
                    Some(false) => "differs from the backtest's".to_owned(),
                }}</dd>
            </dl>
        </section>
        {if clean {
            view! { <p id="no-differences">"No differences: the paper run traded exactly as the backtest of its window."</p> }.into_any()
        } else {
            view! {
                <div class="table-wrap"><table class="data" id="differences">
                    <thead><tr>
                        <th scope="col">"Entry"</th><th scope="col">"Kind"</th><th scope="col">"Fields"</th>
                        <th scope="col">"Paper"</th><th scope="col">"Backtest"</th>
                        <th scope="col">"Cause"</th><th scope="col">"Detail"</th>
                    </tr></thead>
                    <tbody>
                        {v.differences.iter().map(|d| view! {
                            <tr class="difference">
                                <td class="small">{d.entry.clone()}</td>
                                <td>{d.kind.replace('_', " ")}</td>
                                <td class="small">{d.fields.join(", ")}</td>
                                <td class="small">{trade_text(&d.paper)}</td>
                                <td class="small">{trade_text(&d.backtest)}</td>
                                <td><strong>{d.cause.clone()}</strong></td>
                                <td class="small">{d.detail.clone()}</td>
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table></div>
            }.into_any()
        }}
    }
}
