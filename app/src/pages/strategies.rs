//! "My strategies" (list, create from a template or from scratch, duplicate, archive) and one strategy's page
//! with the editor. Every change is an HTML form post handled in `server::routes::backtests` (works without
//! JavaScript); after hydration the textarea becomes a CodeMirror editor that the server validates as the
//! trader types (`POST /strategies/validate`).

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};

use crate::{
    api::backtest::{StrategiesView, StrategyView, get_strategies, get_strategy},
    components::forms::{CsrfField, Flash},
    pages::{backtests::RunsTable, error::ErrorTemplate},
};

#[component]
pub fn StrategiesPage() -> impl IntoView {
    let query = use_query_map();
    let archived = move || query.read().get("archived").is_some_and(|v| v == "1");
    let data = Resource::new(archived, get_strategies);
    view! {
        <Title text="My strategies" />
        <div class="page-head">
            <h1>"My strategies"</h1>
            <a class="button" href="/backtests">"All runs"</a>
        </div>
        <Flash />
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            <ErrorBoundary fallback=|errors| view! { <ErrorTemplate errors /> }>
                {move || Suspend::new(async move {
                    let show_archived = archived();
                    data.await.map(|v| view! { <StrategyList v show_archived /> })
                })}
            </ErrorBoundary>
        </Transition>
    }
}

#[component]
fn StrategyList(v: StrategiesView, show_archived: bool) -> impl IntoView {
    let StrategiesView {
        strategies,
        templates,
        can_write,
    } = v;
    let empty = strategies.is_empty();
    view! {
        {can_write.then(|| view! {
            <section class="card" aria-labelledby="new-head">
                <h2 id="new-head">"New strategy"</h2>
                <form method="post" action="/strategies/create" class="inline-form" id="new-strategy">
                    <CsrfField />
                    <label>"Start from "
                        <select name="template">
                            <option value="">"a blank strategy"</option>
                            {templates.iter().map(|t| view! {
                                <option value=t.name.clone() title=t.description.clone()>
                                    {format!("{}{} ({})", if t.featured { "★ " } else { "" }, t.title, t.name)}
                                </option>
                            }).collect_view()}
                        </select>
                    </label>
                    <label>"Name " <input type="text" name="name" maxlength="80" placeholder="(the template's name)" /></label>
                    <button class="button primary" type="submit">"Create"</button>
                </form>
                <details class="small muted">
                    <summary>"What the catalogue strategies do"</summary>
                    <dl id="catalogue">
                        {templates.into_iter().map(|t| view! { <dt>{t.title} " " <code>{t.name}</code></dt><dd>{t.description}</dd> }).collect_view()}
                    </dl>
                </details>
            </section>
        })}
        <section aria-labelledby="list-head">
            <h2 id="list-head">{if show_archived { "All strategies, archived included" } else { "Active strategies" }}</h2>
            <p class="small">
                {if show_archived {
                    view! { <a href="/strategies">"Hide archived"</a> }.into_any()
                } else {
                    view! { <a href="/strategies?archived=1">"Show archived"</a> }.into_any()
                }}
            </p>
            {if empty {
                view! { <p class="muted" id="no-strategies">"No strategies yet. Create one from a template above."</p> }.into_any()
            } else {
                view! {
                    <div class="table-wrap"><table class="data" id="strategies">
                        <thead><tr>
                            <th scope="col">"Name"</th>
                            <th scope="col">"Version"</th>
                            <th scope="col">"Runs"</th>
                            <th scope="col">"Changed"</th>
                            <th scope="col">"Actions"</th>
                        </tr></thead>
                        <tbody>
                            {strategies.into_iter().map(|s| {
                                let href = format!("/strategies/{}", s.id);
                                let run = format!("/backtests/new?strategy={}", s.id);
                                let dup = format!("/strategies/{}/duplicate", s.id);
                                let arch = if s.archived { format!("/strategies/{}/restore", s.id) } else { format!("/strategies/{}/archive", s.id) };
                                view! {
                                    <tr>
                                        <td>
                                            <a href=href>{s.name.clone()}</a>
                                            {s.archived.then(|| view! { " " <span class="badge">"archived"</span> })}
                                            {s.has_draft.then(|| view! { " " <span class="badge warn">"unsaved draft"</span> })}
                                            <div class="small muted">{s.description.clone()}</div>
                                        </td>
                                        <td class="num">"v" {s.version}</td>
                                        <td class="num"><a href=format!("/backtests?strategy={}", s.id)>{s.runs}</a></td>
                                        <td class="small">{s.updated.clone()}</td>
                                        <td class="actions">
                                            <Show when=move || can_write && !s.archived><a class="button small" href=run.clone()>"Run backtest"</a></Show>
                                            <Show when=move || can_write>
                                                <form method="post" action=dup.clone()><CsrfField /><button class="button small" type="submit">"Duplicate"</button></form>
                                                <form method="post" action=arch.clone()><CsrfField />
                                                    <button class="button small" type="submit">{if s.archived { "Restore" } else { "Archive" }}</button>
                                                </form>
                                            </Show>
                                        </td>
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

#[component]
pub fn StrategyPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.read().get("id").unwrap_or_default();
    let data = Resource::new(id, get_strategy);
    view! {
        <Title text="Strategy" />
        <Flash />
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            <ErrorBoundary fallback=|errors| view! { <ErrorTemplate errors /> }>
                {move || Suspend::new(async move { data.await.map(|v| view! { <StrategyEditor v /> }) })}
            </ErrorBoundary>
        </Transition>
    }
}

#[component]
fn StrategyEditor(v: StrategyView) -> impl IntoView {
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| {
        crate::chart::mount_editor();
    });
    let StrategyView {
        row,
        source,
        draft,
        draft_rev,
        problems,
        params,
        versions,
        recent_runs,
        can_write,
        read_only,
    } = v;
    let id = row.id.clone();
    let sid = row.id.clone();
    let del = format!("/strategies/{}/delete", row.id);
    let archived = row.archived;
    let editable = can_write && !archived && read_only.is_none();
    let rows = source.lines().count().clamp(12, 40);
    view! {
        <Title text=row.name.clone() />
        <div class="page-head">
            <h1>{row.name.clone()} " " <span class="muted">"v" {row.version}</span></h1>
            <div class="actions">
                <Show when=move || editable>
                    <a class="button primary" href=format!("/backtests/new?strategy={}", row.id) id="run-strategy">"Run backtest"</a>
                    <a class="button" href=format!("/paper/new?strategy={}&version={}", row.id, row.version) id="paper-strategy">"Paper-trade this"</a>
                </Show>
                <a class="button" href=format!("/backtests?strategy={}", id)>"Runs"</a>
            </div>
        </div>
        {archived.then(|| view! {
            <div class="card notice">"This strategy is archived: it cannot be edited or run. Restore it from "<a href="/strategies?archived=1">"My strategies"</a>"."</div>
        })}
        {read_only.map(|r| view! {
            <div class="card notice" id="read-only-notice">{r} " " <a href="/account/plan">"Your plan and usage"</a></div>
        })}
        {draft.then(|| {
            let discard = format!("/strategies/{}/discard-draft", id);
            view! {
                <div class="card notice" id="draft-notice">
                    <p>"The editor shows your unsaved draft: it was not saved as a version (it does not compile, or the save was refused). Fix it and save, or discard it."</p>
                    <form method="post" action=discard><CsrfField /><button class="button small" type="submit">"Discard draft"</button></form>
                </div>
            }
        })}
        <form method="post" action=format!("/strategies/{}/save", id) class="stack" id="strategy-form">
            <CsrfField />
            <input type="hidden" name="base_version" value=row.version />
            <input type="hidden" name="draft_rev" value=draft_rev />
            <div class="inline-form">
                <label>"Name " <input type="text" name="name" maxlength="80" required value=row.name.clone() disabled=!editable /></label>
                <label class="grow">"Description " <input type="text" name="description" maxlength="2000" value=row.description.clone() disabled=!editable /></label>
            </div>
            <label for="source">"Strategy source "
                <span class="small muted">"(params, let, entry/exit rules and a risk block; reference: docs/strategy-language.md)"</span>
            </label>
            <div class="editor-wrap">
                <textarea id="source" name="source" rows=rows spellcheck="false" class="code"
                    data-strategy-editor="" data-validate-url="/strategies/validate" data-status="editor-status"
                    readonly=!editable>{source}</textarea>
            </div>
            <p id="editor-status" class="small muted" role="status" aria-live="polite"></p>
            {(!problems.is_empty()).then(|| view! {
                <ul class="problems" id="problems">
                    {problems.into_iter().map(|p| view! {
                        <li>{if p.line > 0 { format!("line {}, column {}: ", p.line, p.column) } else { String::new() }}{p.message}</li>
                    }).collect_view()}
                </ul>
            })}
            <Show when=move || editable>
                <div><button class="button primary" type="submit" id="save-strategy">"Save as new version"</button></div>
            </Show>
        </form>
        <div class="two-col">
            <section class="card" aria-labelledby="params-head">
                <h2 id="params-head">"Parameters"</h2>
                {if params.is_empty() {
                    view! { <p class="muted">"This strategy declares no parameters."</p> }.into_any()
                } else {
                    view! {
                        <div class="table-wrap"><table class="data" id="params">
                            <thead><tr><th>"Name"</th><th>"Type"</th><th>"Default"</th><th>"Range"</th></tr></thead>
                            <tbody>
                                {params.into_iter().map(|p| view! {
                                    <tr>
                                        <td><code>{p.name}</code></td>
                                        <td>{p.kind}</td>
                                        <td class="num">{p.default.to_string()}</td>
                                        <td class="num">{match (p.min, p.max) {
                                            (Some(a), Some(b)) => format!("{a} – {b}"),
                                            (Some(a), None) => format!("≥ {a}"),
                                            (None, Some(b)) => format!("≤ {b}"),
                                            _ => "any".into(),
                                        }}</td>
                                    </tr>
                                }).collect_view()}
                            </tbody>
                        </table></div>
                    }.into_any()
                }}
            </section>
            <section class="card" aria-labelledby="versions-head">
                <h2 id="versions-head">"Versions"</h2>
                <p class="small muted">"Every save that changes the source is a new version; runs keep pointing at the version they ran."</p>
                <ul class="versions">
                    {versions.into_iter().map(|(v, at)| {
                        let run = format!("/backtests/new?strategy={}&version={}", sid, v);
                        view! { <li>"v" {v} " · " <span class="small">{at}</span>
                            {editable.then(|| view! { " · " <a href=run.clone()>"run this version"</a> })}
                        </li> }
                    }).collect_view()}
                </ul>
            </section>
        </div>
        <section aria-labelledby="recent-head">
            <h2 id="recent-head">"Recent runs"</h2>
            <RunsTable runs=recent_runs compare=false />
        </section>
        <Show when=move || can_write>
            <section class="card" aria-labelledby="delete-head" id="delete-strategy">
                <h2 id="delete-head">"Delete"</h2>
                <p class="small muted">"Deleting removes the strategy for good, with its versions, its backtests and its finished paper runs (archiving keeps them; archived strategies still count against your plan). It is refused while a paper run of it is live or a backtest of it is queued or running."</p>
                <form method="post" action=del.clone() class="inline-form"><CsrfField />
                    <label><input type="checkbox" name="confirm" value="yes" required /> " Delete it and everything it ran, for good"</label>
                    <button class="button small danger" type="submit" id="delete-strategy-button">"Delete strategy"</button>
                </form>
            </section>
        </Show>
    }
}
