//! One paper run's page: status and gate, controls (pause, resume, stop with or without flattening),
//! account and position, equity curve, fills, recent decisions, gaps and settings. Updates live after
//! hydration ([`super::live`]).

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

use super::gate_words;
use crate::{
    api::paper::{CandleView, PaperRunView, get_paper_run, money, status_badge},
    components::forms::{CsrfField, Flash},
    pages::error::ErrorTemplate,
};

#[component]
pub fn PaperRunPage() -> impl IntoView {
    let params = use_params_map();
    let changes = RwSignal::new(0u32);
    let id = move || params.read().get("id").unwrap_or_default();
    let data = Resource::new(move || (id(), changes.get()), |(id, _)| get_paper_run(id));
    Effect::new(move |_| super::live::connect(id(), changes));
    view! {
        <Title text="Paper run" />
        <Flash />
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            <ErrorBoundary fallback=|errors| view! { <ErrorTemplate errors /> }>
                {move || Suspend::new(async move { data.await.map(|v| view! { <RunDetail v /> }) })}
            </ErrorBoundary>
        </Transition>
    }
}

#[component]
fn RunDetail(v: PaperRunView) -> impl IntoView {
    let r = v.row.clone();
    let id = r.id.clone();
    let live = r.live();
    let label = format!("{} · {} {}", r.label(), r.symbol, r.timeframe);
    let strategy_href = format!("/strategies/{}", r.strategy_id);
    let parity_href = format!("/paper/{id}/parity");
    let again = super::start_link(
        &r.strategy_id,
        r.version,
        &v.params,
        Some(r.instrument_id),
        Some(&r.timeframe),
        None,
    );
    view! {
        <Title text=label.clone() />
        <div class="page-head">
            <h1>{label}</h1>
            <div class="actions">
                <a class="button" href=strategy_href>"Strategy"</a>
                <a class="button" href=parity_href id="parity-link">"Compare with a backtest"</a>
                <a class="button" href=again>"Start another like it"</a>
            </div>
        </div>
        <section class="card" id="paper-status" aria-labelledby="status-head" data-status=r.status.clone()>
            <h2 id="status-head">"Status"</h2>
            <p>
                <span class=status_badge(&r.status) id="run-status">{r.status.clone()}</span>
                {(r.gate != "open").then(|| view! { " " <span class="badge warn" id="run-gate">{format!("gate: {}", r.gate)}</span> })}
            </p>
            <p class="small muted" id="gate-words">{format!("Gate {}", gate_words(&r.gate))}</p>
            {(v.effective_gate != r.gate).then(|| view! {
                <p class="notice" id="effective-gate">{format!("From its next candle: {} (a kill switch, a risk lock or your plan).", gate_words(&v.effective_gate))}</p>
            })}
            {v.plan_gate.clone().map(|g| view! { <p class="notice" id="plan-gate">{g} " " <a href="/account/plan">"Your plan and usage"</a></p> })}
            {r.error.clone().map(|e| view! { <p class="flash error" id="run-error">"Stopped by an error: " {e}</p> })}
            {r.stop_reason.clone().map(|s| view! { <p class="notice" id="stop-reason">"Stop reason: " {s}</p> })}
            {v.notice.clone().map(|n| view! { <p class="notice" id="run-notice">{n}</p> })}
            <dl class="kv">
                <dt>"Candles processed"</dt><dd id="candles-processed">{r.candles}</dd>
                <dt>"Last candle processed"</dt><dd id="last-candle">{r.last_candle.clone().unwrap_or_else(|| "none yet".into())}</dd>
                <dt>"Feed lag"</dt><dd id="feed-lag">{v.feed_lag.clone().map_or_else(|| "—".into(), |l| format!("{l} since that candle closed"))}</dd>
                <dt>"Deciding from"</dt><dd>{r.live_from.clone()} " (warm-up from " {v.warmup_from.clone()} ")"</dd>
                <dt>"Started"</dt><dd>{r.started.clone()}</dd>
                {r.stopped.clone().map(|s| view! { <dt>"Stopped"</dt><dd>{s}</dd> })}
            </dl>
            {live.then(|| view! { <p class="small muted">"This page updates by itself as candles arrive; without JavaScript, reload it."</p> })}
            {(live && v.can_control).then(|| view! { <Controls id=id.clone() status=r.status.clone() holding=v.position.is_some() /> })}
        </section>
        <KillSwitches v=v.clone() />
        <RiskLimits v=v.clone() />
        <Signals v=v.clone() />
        <div class="two-col">
            <section class="card" aria-labelledby="account-head" id="account">
                <h2 id="account-head">"Account"</h2>
                <dl class="kv">
                    <dt>"Equity"</dt><dd id="equity">{money(r.equity)}</dd>
                    <dt>"Cash"</dt><dd id="cash">{money(r.cash)}</dd>
                    <dt>"Initial cash"</dt><dd>{money(r.initial_cash)}</dd>
                    <dt>"Realised P&L"</dt><dd id="realised-pnl">{money(r.realised_pnl)}</dd>
                    <dt>"Fees paid"</dt><dd>{money(v.fees_paid)}</dd>
                    <dt>"Closed trades"</dt><dd id="trade-count">{r.trades}</dd>
                </dl>
            </section>
            <section class="card" aria-labelledby="position-head" id="position">
                <h2 id="position-head">"Position"</h2>
                {match v.position.clone() {
                    None => view! { <p class="muted" id="flat">"Flat (no position)."</p> }.into_any(),
                    Some(p) => view! {
                        <dl class="kv">
                            <dt>"Units"</dt><dd id="position-units">{format!("{:.8}", p.units)}</dd>
                            <dt>"Entry price"</dt><dd>{format!("{:.8}", p.entry_price)}</dd>
                            <dt>"Entered"</dt><dd>{p.entry_time.clone()} " · " <code>{p.entry_rule.clone()}</code></dd>
                            <dt>"Unrealised P&L"</dt>
                            <dd id="unrealised">{match (p.unrealised, p.last_close) {
                                (Some(u), Some(c)) => format!("{} at the last close ({c:.8})", money(u)),
                                _ => "—".into(),
                            }}</dd>
                        </dl>
                    }.into_any(),
                }}
                {v.pending.clone().map(|p| view! { <p class="small" id="pending">"Order pending: " {p}</p> })}
            </section>
        </div>
        <section aria-labelledby="equity-head">
            <h2 id="equity-head">"Equity"</h2>
            <EquityCurve points=v.equity.clone() />
        </section>
        <Fills v=v.clone() />
        <Decisions candles=v.candles.clone() />
        {(!v.gaps.is_empty()).then(|| view! {
            <section class="card" id="gaps" aria-labelledby="gaps-head">
                <h2 id="gaps-head">"Gaps in the feed"</h2>
                <p class="small muted">"Candles missing from the feed are never filled in or skipped silently; the run processed the next candle it got."</p>
                <ul>{v.gaps.iter().map(|g| view! { <li>{format!("{} → {}: {} candle(s) missing", g.from, g.to, g.candles)}</li> }).collect_view()}</ul>
            </section>
        })}
        <section class="card" aria-labelledby="settings-head">
            <h2 id="settings-head">"Settings"</h2>
            <dl class="kv">
                <dt>"Parameters"</dt>
                <dd>{if v.params.is_empty() { "defaults".to_owned() } else { v.params.iter().map(|(k, x)| format!("{k} = {x}")).collect::<Vec<_>>().join(", ") }}</dd>
                <dt>"Fee per side"</dt><dd>{format!("{} %", v.fee * 100.0)}</dd>
                <dt>"Slippage"</dt><dd>{format!("{} bps", v.slippage_bps)}</dd>
                <dt>"Fill"</dt><dd>{v.fill.clone()}</dd>
                <dt>"Batch"</dt><dd><a href=format!("/paper?batch={}", r.batch_id)>{r.batch_id.clone()}</a></dd>
            </dl>
        </section>
    }
}

/// Pause / Resume / Stop (with or without flattening first).
#[component]
fn Controls(id: String, status: String, holding: bool) -> impl IntoView {
    let pause = format!("/paper/{id}/pause");
    let resume = format!("/paper/{id}/resume");
    let stop = format!("/paper/{id}/stop");
    let stopping = status == "stopping";
    view! {
        <div class="controls" id="controls">
            {(status == "active").then(|| view! {
                <form method="post" action=pause.clone() class="inline"><CsrfField />
                    <button class="button" type="submit" id="pause-run">"Pause"</button></form>
            })}
            {(status == "paused").then(|| view! {
                <form method="post" action=resume.clone() class="inline"><CsrfField />
                    <button class="button" type="submit" id="resume-run">"Resume"</button></form>
            })}
            <form method="post" action=stop class="inline" id="stop-form"><CsrfField />
                {(holding && !stopping).then(|| view! {
                    <button class="button" type="submit" name="flatten" value="1" id="stop-flatten">"Stop, selling first"</button>
                    " "
                })}
                <button class="button danger" type="submit" name="flatten" value="0" id="stop-run">
                    {if holding { "Stop, keep the position" } else { "Stop" }}
                </button>
            </form>
            <p class="small muted">
                "Pause: the run keeps processing candles (equity, protective stops and targets keep working) but places no new orders. "
                {holding.then_some("Stop, selling first: the run decides to sell at the next candle's close and the sale fills at the open after it (with the next-open fill model), then the run stops. Stop, keep the position: the run stops now and the position stays as it is, valued at the last close, with no stops managed any more. ")}
                "A stopped run cannot be restarted; start a new one."
            </p>
        </div>
    }
}

/// The error of a form on this page, if it was about one of `fields`.
fn form_error(v: &PaperRunView, fields: &[&str]) -> Option<String> {
    v.error
        .as_ref()
        .filter(|(f, _)| fields.contains(&f.as_str()))
        .map(|(f, m)| format!("{}: {m}", f.trim_start_matches("kill_").replace('_', " ")))
}

/// Active kill switches over the run; the owner throws or releases the run's own (modes as the gate table).
#[component]
fn KillSwitches(v: PaperRunView) -> impl IntoView {
    let id = v.row.id.clone();
    let throw = format!("/paper/{id}/kill");
    let error = form_error(&v, &["kill_mode", "kill_reason"]);
    let can = v.can_control && v.row.live();
    view! {
        <section class="card" id="kill-switch" aria-labelledby="kill-head">
            <h2 id="kill-head">"Kill switch"</h2>
            {if v.kill_switches.is_empty() {
                view! { <p class="muted" id="no-switches">"No kill switch applies to this run."</p> }.into_any()
            } else {
                view! {
                    <ul id="switches">
                        {v.kill_switches.iter().map(|k| {
                            let release = format!("/paper/{id}/kill/{}/release", k.id);
                            let mine = k.scope == "run" && !k.by_admin;
                            view! {
                                <li class="switch" data-scope=k.scope.clone()>
                                    <strong>{format!("{} ({} level)", k.mode.replace('_', "-"), k.scope)}</strong>
                                    {format!(" since {}: {}", k.thrown, k.reason)}
                                    {k.by_admin.then_some(" — thrown by an administrator, who alone can release it")}
                                    {(mine && can).then(|| view! {
                                        <form method="post" action=release class="inline"><CsrfField />
                                            <button class="button" type="submit" id="release-switch">"Release"</button></form>
                                    })}
                                </li>
                            }
                        }).collect_view()}
                    </ul>
                }.into_any()
            }}
            {error.map(|e| view! { <p class="flash error" role="alert" id="kill-error">{e}</p> })}
            {can.then(|| view! {
                <form method="post" action=throw id="kill-form" class="stack">
                    <CsrfField />
                    <label for="kill-mode">"Mode"</label>
                    <select id="kill-mode" name="mode">
                        <option value="halt">"halt: no new orders"</option>
                        <option value="reduce_only">"reduce-only: exits only"</option>
                        <option value="flatten">"flatten: sell the position, then halt"</option>
                    </select>
                    <label for="kill-reason">"Reason (required, at most 500 characters)"</label>
                    <input id="kill-reason" name="reason" type="text" maxlength="500" required />
                    <button class="button danger" type="submit" id="throw-switch">"Throw the run's kill switch"</button>
                    <p class="small muted">"Applies from the run's next candle; protective stops keep working in every mode. Throwing again replaces the run's switch."</p>
                </form>
            })}
        </section>
    }
}

fn opt<T: std::fmt::Display>(x: Option<T>) -> String {
    x.map_or_else(String::new, |x| x.to_string())
}

/// The run's risk limits, its locks (release) and the form to change the limits.
#[component]
fn RiskLimits(v: PaperRunView) -> impl IntoView {
    let id = v.row.id.clone();
    let l = v.risk_limits.clone();
    let set = format!("/paper/{id}/risk");
    let release = format!("/paper/{id}/risk/release");
    let fields = [
        "risk_mode",
        "mode",
        "max_drawdown_pct",
        "daily_loss",
        "daily_loss_pct",
        "max_consecutive_losses",
        "max_position_value",
        "max_orders_per_day",
        "stale_feed_secs",
        "reason",
        "risk",
    ];
    let error = form_error(&v, &fields);
    let can = v.can_control && v.row.live();
    let any_active = v.risk_locks.iter().any(|x| x.active);
    let shown = |x: Option<String>| x.unwrap_or_else(|| "off".into());
    let mode = l.mode.clone();
    view! {
        <section class="card" id="risk" aria-labelledby="risk-head">
            <h2 id="risk-head">"Risk limits"</h2>
            <dl class="kv" id="risk-limits">
                <dt>"On a breach"</dt><dd id="risk-mode">{gate_words(&l.mode)}</dd>
                <dt>"Max drawdown"</dt><dd>{shown(l.max_drawdown_pct.map(|x| format!("{x} %")))}</dd>
                <dt>"Daily loss"</dt><dd>{shown(match (l.daily_loss, l.daily_loss_pct) {
                    (None, None) => None,
                    (a, p) => Some([a.map(money), p.map(|p| format!("{p} %"))].into_iter().flatten().collect::<Vec<_>>().join(" or ")),
                })}</dd>
                <dt>"Losing trades in a row"</dt><dd>{shown(l.max_consecutive_losses.map(|x| x.to_string()))}</dd>
                <dt>"Max position value"</dt><dd>{shown(l.max_position_value.map(money))}</dd>
                <dt>"Max orders per day"</dt><dd>{shown(l.max_orders_per_day.map(|x| x.to_string()))}</dd>
                <dt>"Stale-feed timeout"</dt><dd>{shown(l.stale_feed_secs.map(|x| format!("{x} s")))}</dd>
            </dl>
            {(!v.risk_locks.is_empty()).then(|| view! {
                <h3>"Risk locks"</h3>
                <div class="table-wrap"><table class="data" id="risk-locks">
                    <thead><tr>
                        <th scope="col">"Limit"</th><th scope="col">"Mode"</th><th scope="col">"Found at"</th>
                        <th scope="col">"Why"</th><th scope="col">"Until"</th><th scope="col">"State"</th>
                    </tr></thead>
                    <tbody>
                        {v.risk_locks.iter().map(|x| view! {
                            <tr class="risk-lock" data-limit=x.limit.clone() data-active=x.active.to_string()>
                                <td>{x.limit.replace('_', " ")}</td>
                                <td>{x.mode.replace('_', "-")}</td>
                                <td class="small">{x.candle.clone()}</td>
                                <td class="small">{x.reason.clone()}</td>
                                <td class="small">{x.until.clone().unwrap_or_else(|| "released".into())}</td>
                                <td>{if x.active { "active".to_owned() } else { x.released.clone().map_or_else(|| "ended".into(), |r| format!("released {r}")) }}</td>
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table></div>
            })}
            {error.map(|e| view! { <p class="flash error" role="alert" id="risk-error">{e}</p> })}
            {(can && any_active).then(|| view! {
                <form method="post" action=release id="risk-release-form" class="inline"><CsrfField />
                    <label for="risk-release-reason">"Reason (optional)"</label>
                    <input id="risk-release-reason" name="reason" type="text" maxlength="500" />
                    <button class="button" type="submit" id="release-risk">"Release the risk locks"</button>
                </form>
            })}
            {can.then(|| view! {
                <details id="risk-change">
                    <summary>"Change the limits"</summary>
                    <form method="post" action=set id="risk-form" class="stack">
                        <CsrfField />
                        <p class="small muted">"Empty keeps a limit as it is; 0 turns it off. Changes apply from the run's next candle."</p>
                        <label for="risk_mode">"On a breach"</label>
                        <select id="risk_mode" name="risk_mode">
                            {["halt", "reduce_only", "flatten"].into_iter().map(|m| view! {
                                <option value=m selected=m == mode>{gate_words(m)}</option>
                            }).collect_view()}
                        </select>
                        <label for="max_drawdown_pct">"Max drawdown (%)"</label>
                        <input id="max_drawdown_pct" name="max_drawdown_pct" type="number" min="0" max="100" step="any" placeholder=opt(l.max_drawdown_pct) />
                        <label for="daily_loss">"Daily loss (quote currency)"</label>
                        <input id="daily_loss" name="daily_loss" type="number" min="0" step="any" placeholder=opt(l.daily_loss) />
                        <label for="daily_loss_pct">"Daily loss (%)"</label>
                        <input id="daily_loss_pct" name="daily_loss_pct" type="number" min="0" max="100" step="any" placeholder=opt(l.daily_loss_pct) />
                        <label for="max_consecutive_losses">"Losing trades in a row"</label>
                        <input id="max_consecutive_losses" name="max_consecutive_losses" type="number" min="0" max="100000" step="1" placeholder=opt(l.max_consecutive_losses) />
                        <label for="max_position_value">"Max position value (quote currency)"</label>
                        <input id="max_position_value" name="max_position_value" type="number" min="0" step="any" placeholder=opt(l.max_position_value) />
                        <label for="max_orders_per_day">"Max orders per day"</label>
                        <input id="max_orders_per_day" name="max_orders_per_day" type="number" min="0" max="100000" step="1" placeholder=opt(l.max_orders_per_day) />
                        <label for="stale_feed_secs">"Stale-feed timeout (seconds)"</label>
                        <input id="stale_feed_secs" name="stale_feed_secs" type="number" min="0" max="2592000" step="1" placeholder=opt(l.stale_feed_secs) />
                        <button class="button" type="submit" id="set-risk">"Save the limits"</button>
                    </form>
                </details>
            })}
        </section>
    }
}

/// Inbound signals (TradingView alerts and other senders): the mode, the URL, an example alert message, the
/// settings form (mode, allow-list, a new secret shown once) and the newest requests with their verdicts.
#[component]
fn Signals(v: PaperRunView) -> impl IntoView {
    let id = v.row.id.clone();
    let s = v.signals.clone();
    let action = format!("/paper/{id}/signals");
    let can = v.can_control && v.row.live();
    let error = form_error(&v, &["signal_mode", "allow_ips"]);
    let gate = s.mode == "gate";
    let example = "{\"action\": \"{{strategy.order.action}}\", \"ticker\": \"{{ticker}}\", \"time\": \"{{timenow}}\", \"token\": \"<the run's secret>\"}";
    let ips = s.allow_ips.join(", ");
    view! {
        <section class="card" id="signals" aria-labelledby="signals-head" data-mode=s.mode.clone()>
            <h2 id="signals-head">"Inbound signals"</h2>
            <p id="signal-mode">{if gate {
                "Gate: an entry is taken only when a buy signal arrived since the previous candle; an exit (or sell) signal closes the position at the next open."
            } else {
                "Off: the strategy's rules alone decide."
            }}</p>
            {gate.then(|| view! {
                <dl class="kv">
                    <dt>"Webhook URL"</dt><dd><code id="signal-url">{s.url.clone()}</code></dd>
                    <dt>"Secret"</dt><dd>{if s.has_secret { s.rotated.clone().map_or_else(|| "set (shown once when made)".to_owned(), |r| format!("set {r} (shown once when made)")) } else { "none".to_owned() }}</dd>
                    <dt>"Senders allowed"</dt><dd>{if s.allow_ips.is_empty() { "any address".to_owned() } else { ips.clone() }}</dd>
                    <dt>"Example TradingView alert message"</dt><dd><code id="signal-example">{example}</code></dd>
                </dl>
                <p class="small muted">"Senders that can set headers may sign instead of sending the token: X-Vortex-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of \"t.body\" keyed with the signing key>. Signals older than 300 s and repeats (the same id, or ticker and time) change nothing."</p>
            })}
            {s.near_limit.then(|| view! {
                <p class="flash error" role="alert" id="signal-warning">{format!("{} signals in the last 3 minutes: TradingView stops an alert that triggers about 15 times in 3 minutes.", s.recent)}</p>
            })}
            {error.map(|e| view! { <p class="flash error" role="alert" id="signals-error">{e}</p> })}
            {can.then(|| view! {
                <details id="signals-change">
                    <summary>"Change the signal settings"</summary>
                    <form method="post" action=action id="signals-form" class="stack">
                        <CsrfField />
                        <label for="signal_mode">"Mode"</label>
                        <select id="signal_mode" name="signal_mode">
                            <option value="off" selected=!gate>"off: the strategy's rules alone"</option>
                            <option value="gate" selected=gate>"gate: entries need a buy signal; exit signals close"</option>
                        </select>
                        <label for="allow_ips">"Sender addresses allowed (comma-separated; empty: any)"</label>
                        <input id="allow_ips" name="allow_ips" type="text" maxlength="1000" value=ips.clone() />
                        <label><input type="checkbox" name="rotate" value="1" id="rotate" />" Make a new secret (the old one stops working at once)"</label>
                        <button class="button" type="submit" id="save-signals">"Save"</button>
                    </form>
                </details>
            })}
            {(!s.received.is_empty()).then(|| view! {
                <h3>"Received"</h3>
                <div class="table-wrap"><table class="data" id="signals-received">
                    <thead><tr>
                        <th scope="col">"Received"</th><th scope="col">"Verdict"</th><th scope="col">"Action"</th>
                        <th scope="col">"Ticker"</th><th scope="col">"Id"</th><th scope="col">"Why"</th>
                        <th scope="col">"Auth"</th><th scope="col">"From"</th><th scope="col">"Used at candle"</th>
                    </tr></thead>
                    <tbody>
                        {s.received.iter().map(|x| view! {
                            <tr class="signal" data-verdict=x.verdict.clone() data-status=x.status.to_string()>
                                <td class="small">{x.received.clone()}</td>
                                <td>{format!("{} ({})", x.verdict, x.status)}</td>
                                <td>{x.action.clone().unwrap_or_default()}</td>
                                <td>{x.ticker.clone().unwrap_or_default()}</td>
                                <td class="small">{x.id.clone().unwrap_or_default()}</td>
                                <td class="small">{x.reason.clone().unwrap_or_default()}</td>
                                <td>{x.auth.clone().unwrap_or_default()}</td>
                                <td class="small">{x.ip.clone().unwrap_or_default()}</td>
                                <td class="small">{x.applied.clone().unwrap_or_default()}</td>
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table></div>
            })}
        </section>
    }
}

/// The equity curve as a server-rendered SVG line.
#[component]
fn EquityCurve(points: Vec<(i64, f64)>) -> impl IntoView {
    if points.len() < 2 {
        return view! { <p class="muted" id="equity-curve-empty">"The curve appears after two processed candles."</p> }.into_any();
    }
    let (w, h) = (600.0_f64, 160.0_f64);
    let (t0, t1) = (points[0].0 as f64, points[points.len() - 1].0 as f64);
    let lo = points.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
    let hi = points.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
    let span_t = (t1 - t0).max(1.0);
    // A flat curve is drawn across the middle.
    let span_v = if hi > lo { hi - lo } else { 0.0 };
    let line = points
        .iter()
        .map(|(t, e)| {
            let x = (*t as f64 - t0) / span_t * w;
            let y = if span_v > 0.0 {
                h - 4.0 - (e - lo) / span_v * (h - 8.0)
            } else {
                h / 2.0
            };
            format!("{x:.1},{y:.1}")
        })
        .collect::<Vec<_>>()
        .join(" ");
    let last = points[points.len() - 1].1;
    view! {
        <figure class="equity-curve" id="equity-curve" data-points=points.len().to_string()>
            <svg viewBox=format!("0 0 {w} {h}") preserveAspectRatio="none" role="img" width="100%" height="160"
                aria-label=format!("Equity from {:.2} to {:.2}, low {lo:.2}, high {hi:.2}", points[0].1, last)>
                <polyline points=line fill="none" stroke="currentColor" stroke-width="1.5" vector-effect="non-scaling-stroke" />
            </svg>
            <figcaption class="small muted">{format!("{} candles · low {lo:.2} · high {hi:.2} · now {last:.2}", points.len())}</figcaption>
        </figure>
    }
    .into_any()
}

#[component]
fn Fills(v: PaperRunView) -> impl IntoView {
    view! {
        <section aria-labelledby="fills-head" id="fills">
            <h2 id="fills-head">{format!("Fills ({})", v.fills.len())}</h2>
            {if v.fills.is_empty() {
                view! { <p class="muted" id="no-fills">"No fills yet."</p> }.into_any()
            } else {
                view! {
                    <div class="table-wrap"><table class="data">
                        <thead><tr>
                            <th scope="col">"Candle"</th><th scope="col">"Side"</th>
                            <th scope="col" class="num">"Price"</th><th scope="col" class="num">"Units"</th>
                            <th scope="col" class="num">"Fee"</th><th scope="col">"Reason"</th><th scope="col">"Rule and values"</th>
                        </tr></thead>
                        <tbody>
                            {v.fills.iter().map(|f| view! {
                                <tr class="fill" data-side=f.side.clone()>
                                    <td class="small">{f.time.clone()}</td>
                                    <td>{f.side.clone()}</td>
                                    <td class="num">{format!("{:.8}", f.price)}</td>
                                    <td class="num">{format!("{:.8}", f.units)}</td>
                                    <td class="num">{format!("{:.4}", f.fee)}</td>
                                    <td>{f.reason.clone()}</td>
                                    <td class="small">{f.rule.clone().map(|r| view! { <code>{r}</code> })}
                                        <div class="muted">{f.values.clone()}</div></td>
                                </tr>
                            }).collect_view()}
                        </tbody>
                    </table></div>
                }.into_any()
            }}
        </section>
    }
}

/// The recent processed candles with what each rule said and what the engine did (the backtest's "why").
#[component]
fn Decisions(candles: Vec<CandleView>) -> impl IntoView {
    let rules = |list: &[(String, bool)]| {
        list.iter()
            .map(|(text, ok)| {
                let class = if *ok { "rule true" } else { "rule false" };
                view! { <li class=class><span aria-hidden="true">{if *ok { "✓ " } else { "✗ " }}</span>
                    <code>{text.clone()}</code> <span class="visually-hidden">{if *ok { " (true)" } else { " (false)" }}</span></li> }
            })
            .collect_view()
    };
    view! {
        <section aria-labelledby="decisions-head" id="decisions">
            <h2 id="decisions-head">"Recent candles and decisions"</h2>
            {if candles.is_empty() {
                view! { <p class="muted" id="no-candles">"No candle processed yet: the first decision is on the first candle that closes after the start."</p> }.into_any()
            } else {
                view! {
                    <div class="table-wrap"><table class="data decisions">
                        <thead><tr>
                            <th scope="col">"Candle"</th><th scope="col" class="num">"Open / high / low / close"</th>
                            <th scope="col">"Gate"</th><th scope="col">"Entry rules"</th><th scope="col">"Exit rules"</th>
                            <th scope="col">"Values"</th><th scope="col">"Actions"</th><th scope="col" class="num">"Equity"</th>
                        </tr></thead>
                        <tbody>
                            {candles.iter().map(|c| {
                                let values = c.values.iter().map(|(k, x)| format!("{k} = {}", x.map_or_else(|| "n/a".into(), |x| format!("{x:.6}")))).collect::<Vec<_>>().join(", ");
                                view! {
                                    <tr class="processed-candle">
                                        <td class="small">{c.time.clone()}</td>
                                        <td class="num small">{format!("{:.8} / {:.8} / {:.8} / {:.8}", c.open, c.high, c.low, c.close)}</td>
                                        <td>{c.gate.clone()}</td>
                                        <td><ul class="rules">{rules(&c.entry_rules)}</ul></td>
                                        <td><ul class="rules">{rules(&c.exit_rules)}</ul></td>
                                        <td class="small muted">{values}</td>
                                        <td class="small">{if c.actions.is_empty() { "nothing".to_owned() } else { c.actions.join("; ") }}</td>
                                        <td class="num">{money(c.equity)}</td>
                                    </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table></div>
                }.into_any()
            }}
        </section>
    }
}
