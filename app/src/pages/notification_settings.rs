//! Notification settings (`/notifications/settings`): the email address's status, what goes where
//! (category × channel), quiet hours and the digest, and chat/generic webhooks. Every change is an HTML form
//! post (handled in `server::routes::notifications::forms`), so the page works without JavaScript.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::{
    api::notifications::{
        PrefsView, SettingsView, WebhookView, category_label, get_notification_settings,
    },
    components::forms::{CsrfField, Flash},
    pages::error::ErrorTemplate,
};

#[component]
pub fn NotificationSettingsPage() -> impl IntoView {
    let data = Resource::new(|| (), |_| get_notification_settings());
    view! {
        <Title text="Notification settings" />
        <div class="page-head">
            <h1>"Notification settings"</h1>
            <a class="button" href="/notifications">"All notifications"</a>
        </div>
        <Flash />
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            <ErrorBoundary fallback=|errors| view! { <ErrorTemplate errors /> }>
                {move || Suspend::new(async move {
                    data.await.map(|v| view! { <SettingsSections v /> })
                })}
            </ErrorBoundary>
        </Transition>
    }
}

#[component]
fn SettingsSections(v: SettingsView) -> impl IntoView {
    let SettingsView {
        prefs,
        email,
        email_verified,
        undeliverable,
        time_zone,
        webhooks,
        new_secret,
        form_error,
        categories,
    } = v;
    // A refused override is shown at its row; anything else at the top.
    let (override_error, form_error) = match form_error {
        Some((f, m)) if f.starts_with("override.") => (Some((f, m)), None),
        other => (None, other),
    };
    view! {
        {form_error.map(|(field, message)| view! {
            <p class="flash error" role="alert" id="form-error" data-field=field>{message}</p>
        })}
        <section class="card" id="email">
            <h2>"Email"</h2>
            <p>"Notifications are emailed to " <strong>{email}</strong> "."</p>
            {if undeliverable {
                view! {
                    <p class="field-error" id="email-undeliverable">"Your mail server refused this address permanently, so we send it no more notification email. Check the address (on your account page) or ask your mail provider, then try again."</p>
                    <form method="post" action="/notifications/email/retry">
                        <CsrfField />
                        <button class="button" type="submit" id="email-retry">"Try this address again"</button>
                    </form>
                }.into_any()
            } else if !email_verified {
                view! { <p class="field-error">"This address is not confirmed yet: only security messages are sent to it. Confirm it from your account page."</p> }.into_any()
            } else {
                view! { <p class="muted small" id="email-ok">"Deliverable and confirmed."</p> }.into_any()
            }}
            <p class="small muted">"Times below are in your time zone, " <strong id="time-zone">{time_zone}</strong> " (change it on your " <a href="/account">"account page"</a> ")."</p>
        </section>
        <PrefsForm prefs override_error />
        <section class="card" id="webhooks">
            <h2>"Webhooks"</h2>
            <p class="muted small">"Send notifications to Slack, Discord or your own HTTPS receiver (signed with Standard Webhooks). The URL is a secret: it is never shown again, only its hint."</p>
            {new_secret.map(|s| view! {
                <div class="new-token" role="status">
                    <p>"The signing secret (shown only once; store it in your receiver):"</p>
                    <code id="webhook-secret">{s}</code>
                </div>
            })}
            <WebhookList webhooks />
            <h3>"Add a webhook"</h3>
            <form method="post" action="/notifications/webhooks" class="stack" id="webhook-form">
                <CsrfField />
                <label>"Name" <input type="text" name="name" required maxlength="80" /></label>
                <label>"Kind" <select name="kind">
                    <option value="slack">"Slack"</option>
                    <option value="discord">"Discord"</option>
                    <option value="generic">"Generic (signed JSON)"</option>
                </select></label>
                <label>"URL" <input type="url" name="url" required maxlength="2000" placeholder="https://hooks.slack.com/services/…" /></label>
                <fieldset class="check-row">
                    <legend>"Categories"</legend>
                    {categories.into_iter().map(|(value, label)| {
                        let checked = value == "backtests";
                        view! { <label class="check"><input type="checkbox" name="categories" value=value checked=checked /> {label}</label> }
                    }).collect_view()}
                </fieldset>
                <button class="button" type="submit">"Add webhook"</button>
            </form>
        </section>
    }
}

#[component]
fn WebhookList(webhooks: Vec<WebhookView>) -> impl IntoView {
    if webhooks.is_empty() {
        return view! { <p class="muted" id="no-webhooks">"No webhooks yet."</p> }.into_any();
    }
    view! {
        <div class="table-wrap"><table class="data" id="webhook-list">
            <thead><tr>
                <th scope="col">"Name"</th>
                <th scope="col">"Destination"</th>
                <th scope="col">"Categories"</th>
                <th scope="col">"Status"</th>
                <th scope="col">"Last result"</th>
                <th scope="col"><span class="visually-hidden">"Actions"</span></th>
            </tr></thead>
            <tbody>
                {webhooks.into_iter().map(|w| {
                    let base = format!("/notifications/webhooks/{}", w.id);
                    let generic = w.kind == "generic";
                    let cats = w.categories.iter().map(|c| category_label(c)).collect::<Vec<_>>().join(", ");
                    view! {
                        <tr data-webhook-id=w.id.clone()>
                            <td>{w.name.clone()}<div class="small muted">{w.kind.clone()}</div></td>
                            <td class="small"><code>{w.url_hint.clone()}</code></td>
                            <td class="small">{cats}</td>
                            <td><span class=if w.disabled { "badge bad" } else { "badge ok" }>{w.status.clone()}</span></td>
                            <td class="small">{w.last_result.clone()}</td>
                            <td class="actions">
                                <form method="post" action=format!("{base}/test")><CsrfField /><button class="button small" type="submit">"Test"</button></form>
                                {w.disabled.then(|| view! {
                                    <form method="post" action=format!("{base}/enable")><CsrfField /><button class="button small" type="submit">"Enable"</button></form>
                                })}
                                {generic.then(|| view! {
                                    <form method="post" action=format!("{base}/rotate")><CsrfField /><button class="button small" type="submit">"Rotate secret"</button></form>
                                })}
                                <form method="post" action=format!("{base}/delete")><CsrfField /><button class="button small danger" type="submit">"Delete"</button></form>
                            </td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table></div>
    }.into_any()
}

const WEEKDAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

/// What goes where (category × channel, per-event overrides), quiet hours and the digest: one form, one save.
#[component]
fn PrefsForm(prefs: PrefsView, override_error: Option<(String, String)>) -> impl IntoView {
    let PrefsView {
        channels,
        rows,
        overrides,
        event_types,
        keep,
        quiet_enabled,
        quiet_start,
        quiet_end,
        quiet_action,
        digest_frequency,
        digest_weekday,
        digest_time,
    } = prefs;
    let override_channels = channels.clone();
    view! {
        <form method="post" action="/notifications/settings" id="prefs-form">
            <CsrfField />
            <input type="hidden" name="keep" value=keep />
            <section class="card" id="preferences">
                <h2>"What goes where"</h2>
                <p class="muted small">"For each kind of notification: in the app (the bell), by email, to your webhooks. \"In the digest\" collects them into one email at the time set below."</p>
                <div class="table-wrap"><table class="data pref-grid">
                    <thead><tr>
                        <th scope="col">"Category"</th>
                        {channels.iter().map(|(_, label)| view! { <th scope="col">{label.clone()}</th> }).collect_view()}
                    </tr></thead>
                    <tbody>
                        {rows.into_iter().map(|row| {
                            let category = row.category.clone();
                            view! {
                                <tr data-category=row.category.clone()>
                                    <th scope="row">{row.label.clone()}
                                        {row.note.clone().map(|n| view! { <div class="small muted">{n}</div> })}
                                    </th>
                                    {row.cells.into_iter().map(|cell| {
                                        let id = format!("pref-{category}-{}", cell.channel);
                                        let name = format!("pref.{category}.{}", cell.channel);
                                        let label = format!("{} – {}", row.label, cell.channel);
                                        let disabled = cell.locked.is_some();
                                        let value = cell.value.clone();
                                        view! {
                                            <td>
                                                <select id=id name=name disabled=disabled aria-label=label>
                                                    {cell.options.into_iter().map(|(v, l)| {
                                                        let selected = v == value;
                                                        view! { <option value=v selected=selected>{l}</option> }
                                                    }).collect_view()}
                                                </select>
                                                {cell.locked.map(|why| view! { <div class="small muted">{why}</div> })}
                                                {cell.note.map(|n| view! { <div class="small field-error">{n}</div> })}
                                            </td>
                                        }
                                    }).collect_view()}
                                </tr>
                            }
                        }).collect_view()}
                    </tbody>
                </table></div>
            </section>
            <Overrides overrides event_types channels=override_channels error=override_error />
            <section class="card" id="schedule">
                <h2>"Quiet hours and digest"</h2>
                <fieldset class="inline-form">
                    <legend>"Quiet hours"</legend>
                    <label class="check"><input type="checkbox" name="quiet_enabled" value="on" checked=quiet_enabled /> "Hold email and webhook messages"</label>
                    <label>"from " <input type="time" name="quiet_start" value=quiet_start required /></label>
                    <label>"until " <input type="time" name="quiet_end" value=quiet_end required /></label>
                    <label>"then " <select name="quiet_action">
                        <option value="defer" selected=quiet_action == "defer">"send them together"</option>
                        <option value="digest" selected=quiet_action == "digest">"put them in the digest"</option>
                    </select></label>
                </fieldset>
                <fieldset class="inline-form">
                    <legend>"Digest email"</legend>
                    <label>"Frequency " <select name="digest_frequency" id="digest-frequency">
                        <option value="off" selected=digest_frequency == "off">"Off"</option>
                        <option value="daily" selected=digest_frequency == "daily">"Daily"</option>
                        <option value="weekly" selected=digest_frequency == "weekly">"Weekly"</option>
                    </select></label>
                    <label>"On (weekly) " <select name="digest_weekday">
                        {WEEKDAYS.iter().enumerate().map(|(i, d)| {
                            let n = i + 1;
                            view! { <option value=n.to_string() selected=usize::from(digest_weekday) == n>{*d}</option> }
                        }).collect_view()}
                    </select></label>
                    <label>"At " <input type="time" name="digest_time" value=digest_time required /></label>
                </fieldset>
                <p class="small muted">"Critical events are never held or collected."</p>
            </section>
            <p><button class="button primary" type="submit" id="save-prefs">"Save notification settings"</button></p>
        </form>
    }
}

/// The modes an override may set, and `remove` (back to the category's setting).
const OVERRIDE_MODES: [(&str, &str); 4] = [
    ("off", "Off"),
    ("immediate", "Immediately"),
    ("digest", "In the digest"),
    ("remove", "Remove the override"),
];

/// The refusal of one override row, where it was made (`override.<i>.…`).
fn row_error(error: Option<&(String, String)>, row: &str) -> Option<impl IntoView + use<>> {
    error
        .filter(|(f, _)| f == row || f.starts_with(&format!("{row}.")))
        .map(|(field, message)| {
            view! {
                <p class="field-error" role="alert" id="override-error" data-field=field.clone()>{message.clone()}</p>
            }
        })
}

/// Per-event overrides: one kind of event on one channel, whatever its category's cell says. Each row's mode
/// can be changed or the row removed; the last row adds one. Part of the preferences form.
#[component]
fn Overrides(
    overrides: Vec<crate::api::notifications::OverrideRow>,
    event_types: Vec<(String, String)>,
    channels: Vec<(String, String)>,
    error: Option<(String, String)>,
) -> impl IntoView {
    let channel_label = {
        let channels = channels.clone();
        move |c: &str| {
            channels
                .iter()
                .find(|(n, _)| n == c)
                .map_or_else(|| c.to_owned(), |(_, l)| l.clone())
        }
    };
    let new_error = row_error(error.as_ref(), "override.new");
    view! {
        <section class="card" id="overrides">
            <h2>"Per-event overrides"</h2>
            <p class="muted small">"An override sets one kind of event on one channel, whatever its category says above (for example: every backtest failure by email at once, finished backtests only in the app). Security email and critical events cannot be turned off."</p>
            <div class="table-wrap"><table class="data" id="override-list">
                <thead><tr>
                    <th scope="col">"Event"</th>
                    <th scope="col">"Channel"</th>
                    <th scope="col">"Setting"</th>
                </tr></thead>
                <tbody>
                    {overrides.into_iter().enumerate().map(|(i, o)| {
                        let row = format!("override.{i}");
                        let err = row_error(error.as_ref(), &row);
                        let mode = o.mode.clone();
                        let label = format!("{} – {}", o.label, o.channel);
                        view! {
                            <tr data-override=format!("{}.{}", o.event_type, o.channel)>
                                <td>{o.label.clone()} <div class="small muted"><code>{o.event_type.clone()}</code></div>
                                    <input type="hidden" name=format!("{row}.event") value=o.event_type.clone() />
                                </td>
                                <td>{channel_label(&o.channel)}
                                    <input type="hidden" name=format!("{row}.channel") value=o.channel.clone() />
                                </td>
                                <td>
                                    <select id=format!("override-{i}-mode") name=format!("{row}.mode") aria-label=label>
                                        {OVERRIDE_MODES.iter().map(|(v, l)| {
                                            let selected = *v == mode;
                                            view! { <option value=*v selected=selected>{*l}</option> }
                                        }).collect_view()}
                                    </select>
                                    {err}
                                </td>
                            </tr>
                        }
                    }).collect_view()}
                    <tr id="override-new">
                        <td>
                            <select id="override-new-event" name="override.new.event" aria-label="Event of a new override">
                                <option value="" selected>"Add an override for…"</option>
                                {event_types.into_iter().map(|(v, l)| view! { <option value=v>{l}</option> }).collect_view()}
                            </select>
                        </td>
                        <td>
                            <select id="override-new-channel" name="override.new.channel" aria-label="Channel of a new override">
                                {channels.into_iter().map(|(v, l)| view! { <option value=v>{l}</option> }).collect_view()}
                            </select>
                        </td>
                        <td>
                            <select id="override-new-mode" name="override.new.mode" aria-label="Setting of a new override">
                                {OVERRIDE_MODES[..3].iter().map(|(v, l)| view! { <option value=*v>{*l}</option> }).collect_view()}
                            </select>
                            {new_error}
                        </td>
                    </tr>
                </tbody>
            </table></div>
            <p class="small muted">"Overrides are saved with the button at the bottom of the page."</p>
        </section>
    }
}
