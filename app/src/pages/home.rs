//! The landing page.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;

#[component]
pub fn HomePage() -> impl IntoView {
    view! {
        <Title text="" />
        <section class="hero">
            <h1>"Research, test and paper-trade your strategies."</h1>
            <p class="lead">
                "Vortex runs your trading strategies against real historical candles and live data, "
                "on your own servers, and explains every trade it makes."
            </p>
            <div class="hero-actions">
                <A href="/status" attr:class="button primary">"Service status"</A>
            </div>
        </section>
        <section class="cards" aria-label="What Vortex does">
            <article class="card">
                <h2>"Backtest"</h2>
                <p>"Run strategies on historical candles with an explicit fill model, fees and slippage."</p>
            </article>
            <article class="card">
                <h2>"Understand"</h2>
                <p>"Equity and drawdown curves, every trade with the rule that fired and why."</p>
            </article>
            <article class="card">
                <h2>"Paper-trade"</h2>
                <p>"Follow a strategy on live data without risking money, with signals by email."</p>
            </article>
        </section>
    }
}
