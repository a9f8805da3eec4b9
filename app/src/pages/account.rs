//! The account page: profile, password, sessions, API tokens and the user's own security events.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::{
    api::account::{AccountView, TwoFactorView, get_account},
    components::forms::{CsrfField, Flash},
    pages::error::ErrorTemplate,
};

const TIME_ZONES: &[&str] = &[
    "UTC",
    "Europe/London",
    "Europe/Zurich",
    "Europe/Berlin",
    "Europe/Paris",
    "Europe/Madrid",
    "Europe/Rome",
    "Europe/Warsaw",
    "Europe/Istanbul",
    "Africa/Johannesburg",
    "Asia/Dubai",
    "Asia/Kolkata",
    "Asia/Singapore",
    "Asia/Hong_Kong",
    "Asia/Shanghai",
    "Asia/Tokyo",
    "Australia/Sydney",
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Los_Angeles",
    "America/Sao_Paulo",
];

#[component]
pub fn AccountPage() -> impl IntoView {
    let account = Resource::new(|| (), |_| get_account());
    view! {
        <Title text="Account" />
        <h1>"Your account"</h1>
        <Flash />
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            <ErrorBoundary fallback=|errors| view! { <ErrorTemplate errors /> }>
                {move || Suspend::new(async move { account.await.map(|a| view! { <AccountSections a /> }) })}
            </ErrorBoundary>
        </Transition>
    }
}

#[component]
fn AccountSections(a: AccountView) -> impl IntoView {
    let AccountView {
        viewer,
        time_zone,
        sessions,
        tokens,
        events,
        new_token,
        two_factor,
    } = a;
    let verified = viewer.email_verified;
    view! {
        <Show when=move || !verified>
            <div class="card notice" id="verify-banner">
                <p>"Your email address is not confirmed yet. Until it is, you cannot run backtests or paper trading, or create API tokens."</p>
                <form method="post" action="/account/verification"><CsrfField />
                    <button class="button" type="submit">"Send a new confirmation link"</button>
                </form>
            </div>
        </Show>
        <div class="account-grid">
            <section class="card" id="profile">
                <h2>"Profile"</h2>
                <p class="muted">{viewer.email.clone()} " · " <span class="role">{viewer.role.clone()}</span></p>
                {(viewer.role == "admin").then(|| view! {
                    <p class="small"><a href="/admin/notifications" id="admin-notifications-link">"Notification deliveries (admin)"</a></p>
                })}
                <form method="post" action="/account/profile" class="stack">
                    <CsrfField />
                    <label>"Name" <input type="text" name="display_name" maxlength="80" value=viewer.display_name.clone() /></label>
                    <label>"Time zone (used to show times)"
                        <input type="text" name="time_zone" list="time-zones" required value=time_zone />
                        <datalist id="time-zones">
                            {TIME_ZONES.iter().map(|z| view! { <option value=*z></option> }).collect_view()}
                        </datalist>
                    </label>
                    <button class="button" type="submit">"Save profile"</button>
                </form>
                <p class="small"><a href="/account/plan" id="plan-link">"Your plan, limits and usage"</a></p>
            </section>
            <section class="card" id="email">
                <h2>"Email address"</h2>
                <p class="muted">"Now: " {viewer.email.clone()} ". A confirmation link goes to the new address; the change happens when you open it, and the current address is told."</p>
                <form method="post" action="/account/email" class="stack" id="email-form">
                    <CsrfField />
                    <label>"New email address" <input type="email" name="new_email" autocomplete="email" required maxlength="254" /></label>
                    <label>"Current password" <input type="password" name="current_password" autocomplete="current-password" required maxlength="128" /></label>
                    <button class="button" type="submit">"Change email address"</button>
                </form>
            </section>
            <section class="card" id="password">
                <h2>"Password"</h2>
                <form method="post" action="/account/password" class="stack">
                    <CsrfField />
                    <label>"Current password" <input type="password" name="current_password" autocomplete="current-password" required maxlength="128" /></label>
                    <label>"New password" <input type="password" name="new_password" autocomplete="new-password" required minlength="12" maxlength="128" /></label>
                    <label class="check"><input type="checkbox" name="sign_out_others" value="on" checked /> "Sign out everywhere: end my other sessions and revoke my API tokens"</label>
                    <button class="button" type="submit">"Change password"</button>
                </form>
            </section>
        </div>
        <TwoFactorSection tf=two_factor />
        <section class="card" id="sessions">
            <h2>"Active sessions"</h2>
            <div class="table-wrap"><table>
                <thead><tr><th>"Device"</th><th>"IP"</th><th>"Signed in"</th><th>"Last seen"</th><th></th></tr></thead>
                <tbody>
                {sessions.into_iter().map(|s| {
                    let action = format!("/account/sessions/{}/revoke", s.public_id);
                    view! {
                        <tr data-session=s.public_id.clone()>
                            <td>{s.device}{s.current.then(|| view! { <span class="badge">"this device"</span> })}</td>
                            <td>{s.ip}</td><td>{s.created}</td><td>{s.last_seen}</td>
                            <td><form method="post" action=action><CsrfField />
                                <button class="button small" type="submit">{if s.current { "Sign out" } else { "Revoke" }}</button>
                            </form></td>
                        </tr>
                    }
                }).collect_view()}
                </tbody>
            </table></div>
        </section>
        <section class="card" id="tokens">
            <h2>"API tokens"</h2>
            {new_token.map(|t| view! {
                <div class="new-token" role="status">
                    <p>"Your new token (shown only once):"</p>
                    <code id="new-token">{t}</code>
                </div>
            })}
            <form method="post" action="/account/tokens" class="inline-form">
                <CsrfField />
                <label>"Name" <input type="text" name="name" required maxlength="80" /></label>
                <label>"Scope" <select name="scope">
                    <option value="read">"read"</option>
                    <option value="read_write">"read-write"</option>
                </select></label>
                <label>"Expires in (days)" <input type="number" name="expires_in_days" min="1" max="3650" value="90" /></label>
                <label>"Current password" <input type="password" name="current_password" autocomplete="current-password" required maxlength="128" /></label>
                <button class="button" type="submit">"Create token"</button>
            </form>
            <div class="table-wrap"><table>
                <thead><tr><th>"Name"</th><th>"Scope"</th><th>"Token"</th><th>"Expires"</th><th>"Last used"</th><th></th></tr></thead>
                <tbody>
                {tokens.into_iter().map(|t| {
                    let action = format!("/account/tokens/{}/revoke", t.id);
                    view! {
                        <tr data-token=t.id.clone()>
                            <td>{t.name}</td><td>{t.scope}</td><td><code>{t.prefix}"…"</code></td>
                            <td>{t.expires}</td><td>{t.last_used}</td>
                            <td><form method="post" action=action><CsrfField />
                                <button class="button small" type="submit">"Revoke"</button>
                            </form></td>
                        </tr>
                    }
                }).collect_view()}
                </tbody>
            </table></div>
        </section>
        <section class="card" id="your-data">
            <h2>"Your data"</h2>
            <p>"Download everything of yours as one JSON file: your profile, your strategies with every version, your backtest runs with their results and trades (the newest 500 runs, up to 50 000 trades), your paper runs with their trades and fills, and your notification preferences. Secrets (password, two-factor secret, API tokens, webhook addresses, signal secrets) are not included."</p>
            <p><a class="button" href="/account/export.json" download id="export-link">"Download my data"</a></p>
        </section>
        <section class="card" id="delete">
            <h2>"Delete my account"</h2>
            <p>"First " <a href="/account/export.json" download>"download your data"</a> " if you want to keep it. Deleting the account removes it for good: your sessions, API tokens, strategies and their versions, backtests, paper runs, notifications and preferences, and the mail queued to you."</p>
            <p class="small muted">"Kept for security: the audit trail's entries about your account (sign-ins, changes) with its id, the client address and browser of each, but without your email address. Not possible while you are the last administrator, while a paid subscription runs (cancel it on your plan page first) or while backtests or paper runs are still running."</p>
            <form method="post" action="/account/delete" class="stack" id="delete-form">
                <CsrfField />
                <label>"Type your email address to confirm" <input type="email" name="confirm_email" autocomplete="off" required maxlength="254" /></label>
                <label>"Current password" <input type="password" name="current_password" autocomplete="current-password" required maxlength="128" /></label>
                <button class="button danger" type="submit">"Delete my account for good"</button>
            </form>
        </section>
        <section class="card" id="activity">
            <h2>"Security activity"</h2>
            <div class="table-wrap"><table>
                <thead><tr><th>"When"</th><th>"Event"</th><th>"IP"</th><th>"Device"</th></tr></thead>
                <tbody>
                {events.into_iter().map(|e| view! {
                    <tr><td>{e.at}</td><td>{e.event}</td><td>{e.ip}</td><td>{e.device}</td></tr>
                }).collect_view()}
                </tbody>
            </table></div>
        </section>
    }
}

/// Two-factor sign-in: turn it on (password, then the first code), show the recovery codes once, make new
/// ones, turn it off (a code, a recovery code or the password).
#[component]
fn TwoFactorSection(tf: TwoFactorView) -> impl IntoView {
    let TwoFactorView {
        enabled,
        enabled_at,
        recovery_codes_left,
        pending_secret,
        pending_uri,
        required,
        new_codes,
    } = tf;
    view! {
        <section class="card" id="two-factor">
            <h2>"Two-factor sign-in"</h2>
            {required.then(|| view! {
                <p class="flash error" id="two-factor-required">"Administrators of this instance must turn on two-factor sign-in before they can use anything else."</p>
            })}
            {new_codes.map(|codes| view! {
                <div class="new-token" role="status" id="recovery-codes">
                    <p>"Your recovery codes (shown only once). Each works once, instead of a code, if you lose your authenticator:"</p>
                    <ul class="codes">{codes.into_iter().map(|c| view! { <li><code class="recovery-code">{c}</code></li> }).collect_view()}</ul>
                </div>
            })}
            {if enabled {
                view! {
                    <p id="two-factor-status">"On since " {enabled_at} ". Signing in needs a code from your authenticator app. Recovery codes left: " <span id="codes-left">{recovery_codes_left}</span></p>
                    <form method="post" action="/account/two-factor/recovery-codes" class="inline-form" id="two-factor-codes-form">
                        <CsrfField />
                        <label>"Code or recovery code" <input type="text" name="code" autocomplete="one-time-code" maxlength="32" /></label>
                        <label>"or current password" <input type="password" name="current_password" autocomplete="current-password" maxlength="128" /></label>
                        <button class="button" type="submit">"Make new recovery codes"</button>
                    </form>
                    <form method="post" action="/account/two-factor/disable" class="inline-form" id="two-factor-disable-form">
                        <CsrfField />
                        <label>"Code or recovery code" <input type="text" name="code" autocomplete="one-time-code" maxlength="32" /></label>
                        <label>"or current password" <input type="password" name="current_password" autocomplete="current-password" maxlength="128" /></label>
                        <button class="button" type="submit">"Turn off two-factor sign-in"</button>
                    </form>
                }.into_any()
            } else if let (Some(secret), Some(uri)) = (pending_secret, pending_uri) {
                view! {
                    <p>"Add this account to your authenticator app (any TOTP app: 6 digits, 30 seconds), by typing the secret or opening the link on your phone, then enter the code it shows."</p>
                    <p>"Secret: " <code id="two-factor-secret">{secret}</code></p>
                    <p class="small">"Link: " <code id="two-factor-uri">{uri}</code></p>
                    <form method="post" action="/account/two-factor/confirm" class="inline-form" id="two-factor-confirm-form">
                        <CsrfField />
                        <label>"Code" <input type="text" name="code" autocomplete="one-time-code" inputmode="numeric" required maxlength="32" /></label>
                        <button class="button primary" type="submit">"Turn on"</button>
                    </form>
                }.into_any()
            } else {
                view! {
                    <p id="two-factor-status">"Off. With two-factor sign-in, signing in also needs a code from an app on your phone, so a stolen password is not enough. The REST API and the command line keep using API tokens."</p>
                    <form method="post" action="/account/two-factor/start" class="inline-form" id="two-factor-start-form">
                        <CsrfField />
                        <label>"Current password" <input type="password" name="current_password" autocomplete="current-password" required maxlength="128" /></label>
                        <button class="button" type="submit">"Set up two-factor sign-in"</button>
                    </form>
                }.into_any()
            }}
        </section>
    }
}
