//! The admin console (docs/admin.md): `/admin` (overview), `/admin/users` and `/admin/users/{id}`, `/admin/signups`,
//! `/admin/plans`, `/admin/subscriptions`, `/admin/catalogue` and `/admin/catalogue/{id}`, `/admin/jobs`,
//! `/admin/market`, `/admin/audit` and `/admin/kill`, with the notifications page (`/admin/notifications`) under the same
//! navigation. Each page reads through one server function of `crate::api::admin` (admins only: 403
//! for everyone else, anonymous visitors are sent to sign in); each change is a plain HTML form post with the
//! CSRF field, handled in `server::routes::admin_forms` by one backend action, and answered with
//! Post/Redirect/Get back to the page (a refusal names the field in place). No JavaScript is needed.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};

use crate::{
    api::admin::{
        self as api, AuditPageView, CatalogueEntryView, CatalogueView, JobView, KillView,
        MarketAdminView, OverviewView, PlanLimitField, PlansView, ReconcileRunView, SignupsView,
        SubscriptionsView, SwitchView, UserView, UsersView,
    },
    components::forms::{CsrfField, Flash},
    pages::error::ErrorTemplate,
};

/// The admin pages, in the navigation's order.
const SECTIONS: &[(&str, &str)] = &[
    ("/admin", "Overview"),
    ("/admin/users", "Users"),
    ("/admin/signups", "Sign-ups"),
    ("/admin/plans", "Plans"),
    ("/admin/subscriptions", "Subscriptions"),
    ("/admin/catalogue", "Catalogue"),
    ("/admin/jobs", "Jobs"),
    ("/admin/market", "Market data"),
    ("/admin/audit", "Audit log"),
    ("/admin/kill", "Kill switches"),
    ("/admin/notifications", "Notifications"),
];

/// The navigation shared by the admin pages.
#[component]
pub fn AdminNav(current: &'static str) -> impl IntoView {
    view! {
        <nav class="admin-nav tabs" aria-label="Admin" id="admin-nav">
            {SECTIONS.iter().map(|(href, label)| {
                let here = *href == current;
                view! {
                    <a href=*href class=if here { "tab active" } else { "tab" }
                       aria-current=if here { Some("page") } else { None }>{*label}</a>
                }
            }).collect_view()}
        </nav>
    }
}

/// The refused field and message of the last form post (from the form handler's cookie).
#[component]
fn FormError(error: Option<(String, String)>) -> impl IntoView {
    error.map(|(field, message)| {
        view! { <p class="flash error" role="alert" id="form-error" data-field=field>{message}</p> }
    })
}

#[component]
pub fn AdminOverviewPage() -> impl IntoView {
    let data = Resource::new(|| (), |_| api::get_admin_overview());
    view! {
        <Title text="Admin" />
        <div class="page-head"><h1>"Admin"</h1></div>
        <AdminNav current="/admin" />
        <Flash />
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            <ErrorBoundary fallback=|errors| view! { <ErrorTemplate errors /> }>
                {move || Suspend::new(async move { data.await.map(|v| view! { <Overview v /> }) })}
            </ErrorBoundary>
        </Transition>
    }
}

#[component]
fn Overview(v: OverviewView) -> impl IntoView {
    let max = v
        .signups
        .iter()
        .map(|d| d.signups)
        .max()
        .unwrap_or(0)
        .max(1);
    view! {
        <section class="card" id="overview">
            <div class="stat-grid">
                <div class="stat"><span class="stat-label">"Users"</span><span class="stat-value" id="stat-users">{v.users}</span></div>
                <div class="stat"><span class="stat-label">"Pending sign-ups"</span><span class="stat-value" id="stat-pending"><a href="/admin/signups">{v.pending_signups}</a></span></div>
                <div class="stat"><span class="stat-label">"Active admins"</span><span class="stat-value">{v.admins}</span></div>
                <div class="stat"><span class="stat-label">"Suspended"</span><span class="stat-value" id="stat-suspended">{v.suspended}</span></div>
                <div class="stat"><span class="stat-label">"Backtests queued / running"</span><span class="stat-value">{v.backtests_queued} " / " {v.backtests_running}</span></div>
                <div class="stat"><span class="stat-label">"Paper runs active / paused"</span><span class="stat-value" id="stat-paper">{v.paper_runs_active} " / " {v.paper_runs_paused}</span></div>
                <div class="stat"><span class="stat-label">"Jobs queued / running / failed"</span><span class="stat-value" id="stat-jobs">{v.jobs_queued} " / " {v.jobs_running} " / " {v.jobs_failed}</span></div>
            </div>
        </section>
        <section class="card" id="signups">
            <h2>"Sign-ups, last 14 days (UTC)"</h2>
            <div class="table-wrap"><table class="data">
                <thead><tr><th scope="col">"Day"</th><th scope="col">"Sign-ups"</th><th scope="col"></th></tr></thead>
                <tbody>
                    {v.signups.into_iter().map(|d| {
                        let width = format!("width: {}%", d.signups * 100 / max);
                        view! { <tr><td>{d.day}</td><td>{d.signups}</td><td><span class="bar" style=width></span></td></tr> }
                    }).collect_view()}
                </tbody>
            </table></div>
        </section>
        <section class="card" id="switch-state">
            <h2>"Kill switches"</h2>
            {if v.switches.is_empty() {
                view! { <p class="muted" id="no-switches">"No kill switch is thrown."</p> }.into_any()
            } else {
                view! { <SwitchTable switches=v.switches release=false /> }.into_any()
            }}
            <p class="small"><a href="/admin/kill">"Throw or release switches"</a></p>
        </section>
        <section class="card" id="settings">
            <h2>"Platform settings"</h2>
            <FormError error=v.form_error />
            <form method="post" action="/admin/settings" class="stack-form" id="settings-form">
                <CsrfField />
                <label>"Sign-up " <select name="signup_policy" id="signup-policy">
                    <option value="open" selected=v.signup_policy == "open">"open: anyone may sign up"</option>
                    <option value="invite" selected=v.signup_policy == "invite">"by invitation: with a single-use link"</option>
                    <option value="approval" selected=v.signup_policy == "approval">"by approval: anyone may apply with a reason, an admin approves"</option>
                    <option value="closed" selected=v.signup_policy == "closed">"closed: admins create accounts"</option>
                </select></label>
                <label>"Only addresses at these domains may sign up (one per line; empty: any) "
                    <textarea name="signup_allowed_domains" rows="3" id="signup-allowed-domains" placeholder="example.com">{v.signup_allowed_domains}</textarea></label>
                <label>"Addresses at these domains may never sign up (one per line) "
                    <textarea name="signup_denied_domains" rows="3" id="signup-denied-domains" placeholder="mailinator.com">{v.signup_denied_domains}</textarea></label>
                <label>"Maintenance banner (empty: none) " <input type="text" name="banner" maxlength="500" id="banner-text" value=v.banner /></label>
                <label class="check"><input type="checkbox" name="admin_two_factor_required" value="on" id="admin-two-factor-required" checked=v.admin_two_factor_required /> "Two-factor sign-in is mandatory for admins"</label>
                <button class="button" type="submit" id="save-settings">"Save"</button>
            </form>
            <p class="small muted">"A domain covers its subdomains. The domain lists apply to every sign-up, with or without an invitation. The banner shows at the top of every page, for everyone."</p>
            <h3>"Invitations"</h3>
            {v.new_invite.map(|link| view! {
                <p class="flash ok" id="new-invite">"New invitation link (shown once, works once, for 14 days): " <code id="invite-link">{link}</code></p>
            })}
            <form method="post" action="/admin/invites" class="inline-form" id="invite-form">
                <CsrfField />
                <button class="button" type="submit" id="create-invite">"Create an invitation link"</button>
            </form>
        </section>
    }
}

#[component]
pub fn AdminUsersPage() -> impl IntoView {
    let query = use_query_map();
    let args = move || {
        let q = query.read();
        (
            q.get("q").unwrap_or_default(),
            q.get("role").unwrap_or_default(),
            q.get("status").unwrap_or_default(),
            q.get("page")
                .and_then(|p| p.parse::<i64>().ok())
                .unwrap_or(1),
        )
    };
    let data = Resource::new(args, |(q, role, status, page)| {
        api::get_admin_users(q, role, status, page)
    });
    view! {
        <Title text="Users · Admin" />
        <div class="page-head"><h1>"Users"</h1></div>
        <AdminNav current="/admin/users" />
        <Flash />
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            <ErrorBoundary fallback=|errors| view! { <ErrorTemplate errors /> }>
                {move || Suspend::new(async move { data.await.map(|v| view! { <Users v /> }) })}
            </ErrorBoundary>
        </Transition>
    }
}

#[component]
fn Users(v: UsersView) -> impl IntoView {
    let UsersView {
        q,
        role,
        status,
        page,
        total,
        users,
        form_error,
        bulk_result,
    } = v;
    let pages = (total + api::PAGE - 1) / api::PAGE;
    // "All on this page" ticks every row's box (in the browser; each box can still be changed on its own).
    let all = RwSignal::new(false);
    // The bulk form returns to this list: its filters and page.
    let back = url_query(&[
        ("q", &q),
        ("role", &role),
        ("status", &status),
        ("page", &page.to_string()),
    ]);
    let link = {
        let (q, role, status) = (q.clone(), role.clone(), status.clone());
        move |p: i64| {
            let query = url_query(&[
                ("q", &q),
                ("role", &role),
                ("status", &status),
                ("page", &p.to_string()),
            ]);
            format!("/admin/users?{query}")
        }
    };
    let prev = (page > 1).then(|| link(page - 1));
    let next = (page < pages).then(|| link(page + 1));
    let opt = |value: &'static str, label: &'static str, current: &str| {
        let selected = value == current;
        view! { <option value=value selected=selected>{label}</option> }
    };
    view! {
        <FormError error=form_error />
        <section class="card" id="user-search">
            <form method="get" action="/admin/users" class="inline-form">
                <label>"Email or name " <input type="search" name="q" id="user-q" maxlength="254" value=q /></label>
                <label>"Role " <select name="role" id="user-role">
                    {opt("", "Any", &role)}{opt("admin", "Admin", &role)}{opt("trader", "Trader", &role)}{opt("viewer", "Viewer", &role)}
                </select></label>
                <label>"Status " <select name="status" id="user-status">
                    {opt("", "Any", &status)}{opt("active", "Active", &status)}{opt("suspended", "Suspended", &status)}{opt("unverified", "Unconfirmed email", &status)}{opt("pending", "Awaiting approval", &status)}
                </select></label>
                <button class="button" type="submit">"Search"</button>
            </form>
        </section>
        {bulk_result.map(|r| view! { <p class="flash ok" role="status" id="bulk-result">{r}</p> })}
        <section class="card" id="users">
            <p class="small muted" id="user-total">{total} " users match."</p>
            <form method="post" action="/admin/users/bulk" id="bulk-form">
            <CsrfField />
            <input type="hidden" name="back" value=back />
            <div class="table-wrap"><table class="data" id="user-list">
                <thead><tr>
                    <th scope="col"><label class="small"><input type="checkbox" id="bulk-all" on:change=move |ev| all.set(event_target_checked(&ev)) />" All on this page"</label></th>
                    <th scope="col">"Email"</th><th scope="col">"Name"</th><th scope="col">"Role"</th>
                    <th scope="col">"Status"</th><th scope="col">"Plan"</th><th scope="col">"Joined"</th>
                </tr></thead>
                <tbody>
                    {users.into_iter().map(|u| view! {
                        <tr data-user-id=u.id.clone()>
                            <td><input type="checkbox" name="user_id" value=u.id.clone() class="bulk-pick" prop:checked=move || all.get() aria-label=format!("Select {}", u.email) /></td>
                            <td><a href=format!("/admin/users/{}", u.id)>{u.email}</a></td>
                            <td>{u.display_name}</td>
                            <td>{u.role}</td>
                            <td>{if u.pending { view! { <span class="badge">"awaiting approval"</span> }.into_any() }
                                 else if u.suspended { view! { <span class="badge bad">"suspended"</span> }.into_any() }
                                 else if !u.verified { view! { <span class="badge">"unconfirmed"</span> }.into_any() }
                                 else { view! { <span class="badge ok">"active"</span> }.into_any() }}</td>
                            <td>{u.plan}</td>
                            <td class="small">{u.created_at}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table></div>
            <fieldset class="inline-form" id="bulk-actions">
                <legend>"With the ticked users (at most 100)"</legend>
                <label>"Action " <select name="action" id="bulk-action">
                    <option value="suspend">"Suspend"</option>
                    <option value="unsuspend">"Lift the suspension"</option>
                    <option value="sign_out">"Sign out everywhere"</option>
                </select></label>
                <label>"Reason (for a suspension; shown to the users) " <input type="text" name="reason" id="bulk-reason" maxlength="500" /></label>
                <label>"Until (optional, UTC) " <input type="date" name="until" id="bulk-until" /></label>
                <button class="button danger" type="submit" id="bulk-apply">"Apply"</button>
            </fieldset>
            </form>
            <p class="pager">
                {prev.map(|h| view! { <a href=h id="prev-page">"← Previous"</a> " " })}
                <span class="small muted">"Page " {page} " of " {pages.max(1)}</span>
                {next.map(|h| view! { " " <a href=h id="next-page">"Next →"</a> })}
            </p>
        </section>
    }
}

/// A URL query string: `a=b&c=d` of the non-empty pairs, percent-encoded.
pub fn url_query(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| {
            let v: String = v
                .bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                        (b as char).to_string()
                    }
                    _ => format!("%{b:02X}"),
                })
                .collect();
            format!("{k}={v}")
        })
        .collect::<Vec<_>>()
        .join("&")
}

#[component]
pub fn AdminUserPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.read().get("id").unwrap_or_default();
    let data = Resource::new(id, api::get_admin_user);
    view! {
        <Title text="User · Admin" />
        <div class="page-head"><h1>"User"</h1></div>
        <AdminNav current="/admin/users" />
        <Flash />
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            <ErrorBoundary fallback=|errors| view! { <ErrorTemplate errors /> }>
                {move || Suspend::new(async move { data.await.map(|v| view! { <UserDetail v /> }) })}
            </ErrorBoundary>
        </Transition>
    }
}

#[component]
fn UserDetail(v: UserView) -> impl IntoView {
    let UserView {
        user,
        time_zone,
        suspension,
        plan_name,
        plan_note,
        limits,
        overages,
        plans,
        sessions,
        tokens,
        active_paper_runs,
        two_factor,
        signup_approver,
        signup_pending,
        audit,
        form_error,
    } = v;
    let base = format!("/admin/users/{}", user.id);
    let act = move |what: &str| format!("{base}/{what}");
    let role = user.role.clone();
    let suspended = user.suspended;
    let full_audit = format!("/admin/audit?user={}", user.id);
    let export_href = act("export.json");
    let (verified, is_admin) = (user.verified, user.role == "admin");
    view! {
        <FormError error=form_error />
        <section class="card" id="profile" data-user-id=user.id.clone()>
            <h2>{user.display_name.clone()} " " <span class="muted small">{user.email.clone()}</span></h2>
            <p class="small">
                "Role " <strong id="user-role-now">{user.role.clone()}</strong>
                " · " {if user.verified { "email confirmed" } else { "email not confirmed" }}
                " · joined " {user.created_at.clone()} " · time zone " {time_zone}
            </p>
            <p class="small">
                <span id="user-sessions">{sessions}</span> " live sessions · "
                <span id="user-tokens">{tokens}</span> " API tokens · "
                <span id="user-runs">{active_paper_runs}</span> " active paper runs · two-factor sign-in "
                <strong id="user-two-factor">{if two_factor { "on" } else { "off" }}</strong>
            </p>
            {suspension.map(|s| view! { <p class="field-error" id="suspension">{s}</p> })}
            {signup_pending.then(|| view! {
                <p class="field-error" id="signup-pending">"This account waits for sign-up approval: decide on the " <a href="/admin/signups">"pending sign-ups"</a> " page."</p>
            })}
        </section>
        <section class="card" id="actions">
            <h2>"Actions"</h2>
            {if suspended {
                view! {
                    <form method="post" action=act("unsuspend") class="inline-form" id="unsuspend-form">
                        <CsrfField />
                        <button class="button" type="submit" id="unsuspend">"Lift the suspension"</button>
                        <span class="small muted">"Paused paper runs stay paused until their owner resumes them."</span>
                    </form>
                }.into_any()
            } else {
                view! {
                    <form method="post" action=act("suspend") class="inline-form" id="suspend-form">
                        <CsrfField />
                        <label>"Reason (shown to the user) " <input type="text" name="reason" id="suspend-reason" required maxlength="500" /></label>
                        <label>"Until (optional, UTC) " <input type="date" name="until" id="suspend-until" /></label>
                        <button class="button danger" type="submit" id="suspend">"Suspend"</button>
                    </form>
                    <p class="small muted">"Suspending ends every session, revokes every API token and pauses the user's active paper runs."</p>
                }.into_any()
            }}
            <form method="post" action=act("role") class="inline-form" id="role-form">
                <CsrfField />
                <label>"Role " <select name="role" id="role-select">
                    {["admin", "trader", "viewer"].into_iter().map(|r| {
                        let selected = r == role;
                        view! { <option value=r selected=selected>{r}</option> }
                    }).collect_view()}
                </select></label>
                <button class="button" type="submit" id="change-role">"Change role"</button>
                <span class="small muted">"The user's sessions end; they sign in again with the new role."</span>
            </form>
            <form method="post" action=act("sign-out") class="inline-form" id="signout-form">
                <CsrfField />
                <button class="button" type="submit" id="force-signout">"Sign out everywhere"</button>
                <span class="small muted">"Ends browser sessions; API tokens keep working."</span>
            </form>
            {is_admin.then(|| view! {
                <form method="post" action=act("approver") class="inline-form" id="approver-form">
                    <CsrfField />
                    <label class="check"><input type="checkbox" name="approver" value="on" id="approver" checked=signup_approver /> "Sign-up approver"</label>
                    <button class="button" type="submit" id="save-approver">"Save"</button>
                    <span class="small muted">"Approvers are emailed about new sign-up requests; while no admin is an approver, every admin is."</span>
                </form>
            })}
            {two_factor.then(|| view! {
                <form method="post" action=act("two-factor/reset") class="inline-form" id="two-factor-reset-form">
                    <CsrfField />
                    <button class="button danger" type="submit" id="two-factor-reset">"Reset two-factor sign-in"</button>
                    <span class="small muted">"For a user who lost their authenticator and recovery codes: they sign in with their password only and are told by email."</span>
                </form>
            })}
        </section>
        <section class="card" id="account-data">
            <h2>"Account"</h2>
            {(!verified).then(|| view! {
                <form method="post" action=act("verification") class="inline-form" id="resend-verification-form">
                    <CsrfField />
                    <button class="button" type="submit" id="resend-verification">"Resend the confirmation email"</button>
                    <span class="small muted">"A new link to confirm their address; earlier links stop working."</span>
                </form>
            })}
            <form method="post" action=export_href class="inline-form" id="user-export-form">
                <CsrfField />
                <button class="button" type="submit" id="user-export">"Download their data"</button>
                <span class="small muted">"JSON: profile, strategies, runs and trades, paper runs; the same file as their own \"Download my data\"; recorded in the audit log."</span>
            </form>
            {if is_admin {
                view! { <p class="small muted" id="delete-admin-note">"An administrator's account is not deleted here: change its role first."</p> }.into_any()
            } else {
                view! {
                    <form method="post" action=act("delete") class="stack-form" id="delete-user-form">
                        <CsrfField />
                        <label>"Type their email address to delete the account " <input type="text" name="confirm_email" required maxlength="254" autocomplete="off" id="delete-confirm" /></label>
                        <button class="button danger" type="submit" id="delete-user">"Delete the account"</button>
                    </form>
                    <p class="small muted">"Download their data first: deletion is refused without an administrator's export of the last 24 hours. Their strategies, runs, trades, paper runs, sessions and tokens go; the audit log keeps its entries with the user id but without the address. Suspend them first if they have paper runs (it pauses them); a running subscription must be cancelled with the payment provider."</p>
                }.into_any()
            }}
        </section>
        <section class="card" id="plan">
            <h2>"Plan: " <span id="plan-name">{plan_name}</span></h2>
            {(!plan_note.is_empty()).then(|| view! { <p class="small muted">{plan_note}</p> })}
            <div class="table-wrap"><table class="data" id="limits">
                <thead><tr><th scope="col">"Limit"</th><th scope="col">"Value"</th><th scope="col">"Usage"</th></tr></thead>
                <tbody>
                    {limits.into_iter().map(|l| view! { <tr><td>{l.label}</td><td>{l.value}</td><td>{l.usage}</td></tr> }).collect_view()}
                </tbody>
            </table></div>
            {(!overages.is_empty()).then(|| view! {
                <div class="notice" id="plan-overages">
                    {overages.into_iter().map(|(text, restricted)| view! {
                        <p class="overage">{text}</p>
                        {(!restricted.is_empty()).then(|| view! {
                            <ul class="restricted">{restricted.into_iter().map(|n| view! { <li>{n}</li> }).collect_view()}</ul>
                        })}
                    }).collect_view()}
                    <p class="small muted">"Assigning a larger plan or an override lifts it at once (docs/plans.md)."</p>
                </div>
            })}
            <form method="post" action=act("plan") class="inline-form" id="plan-form">
                <CsrfField />
                <label>"Plan " <select name="plan" id="plan-select">
                    {plans.into_iter().map(|p| { let value = p.slug.clone(); view! { <option value=value>{p.name} " (" {p.slug} ")"</option> } }).collect_view()}
                </select></label>
                <label>"Reason " <input type="text" name="reason" maxlength="500" id="plan-reason" /></label>
                <button class="button" type="submit" id="assign-plan">"Assign"</button>
            </form>
            <p class="small muted">"Per-limit overrides: " <code>"PUT /api/v1/admin/users/{id}/plan"</code> " or " <code>"vortex plans assign"</code> "."</p>
        </section>
        <section class="card" id="audit">
            <h2>"Recent audit entries"</h2>
            <p class="small"><a href=full_audit id="user-full-audit">"Everything about this user in the audit log"</a></p>
            <div class="table-wrap"><table class="data" id="audit-log">
                <thead><tr><th scope="col">"When"</th><th scope="col">"Event"</th><th scope="col">"Detail"</th></tr></thead>
                <tbody>
                    {audit.into_iter().map(|a| { let event = a.event.clone(); view! {
                        <tr data-event=event><td class="small">{a.at}</td><td><code>{a.event}</code></td><td class="small">{a.detail}</td></tr>
                    } }).collect_view()}
                </tbody>
            </table></div>
        </section>
    }
}

#[component]
pub fn AdminSignupsPage() -> impl IntoView {
    let data = Resource::new(|| (), |_| api::get_admin_signups());
    view! {
        <Title text="Pending sign-ups · Admin" />
        <div class="page-head"><h1>"Pending sign-ups"</h1></div>
        <AdminNav current="/admin/signups" />
        <Flash />
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            <ErrorBoundary fallback=|errors| view! { <ErrorTemplate errors /> }>
                {move || Suspend::new(async move { data.await.map(|v| view! { <Signups v /> }) })}
            </ErrorBoundary>
        </Transition>
    }
}

#[component]
fn Signups(v: SignupsView) -> impl IntoView {
    let policy_note = (v.signup_policy != "approval").then(|| {
        format!(
            "Sign-up is {} now, so no new requests arrive; those below still wait for a decision.",
            v.signup_policy
        )
    });
    let approvers = if v.approvers.is_empty() {
        "No admin is marked as a sign-up approver, so every active admin is emailed about new requests (mark approvers on their user page).".to_owned()
    } else {
        format!("Emailed about new requests: {}.", v.approvers.join(", "))
    };
    let shown = v.signups.len() as i64;
    let waiting_note = (v.waiting > 0).then(|| {
        let mut note = format!("{} request(s) waiting", v.waiting);
        if v.waiting > shown {
            note.push_str(&format!("; the oldest {shown} are listed (decide them to see the rest)"));
        }
        if v.waiting >= v.max_pending {
            note.push_str(&format!(
                ". At {} waiting requests new applications are not taken (applicants see the usual answer).",
                v.max_pending
            ));
        } else {
            note.push('.');
        }
        note
    });
    view! {
        <FormError error=v.form_error />
        <section class="card" id="signups">
            {policy_note.map(|n| view! { <p class="small muted" id="signup-policy-note">{n}</p> })}
            {waiting_note.map(|n| view! { <p class="small" id="signups-waiting">{n}</p> })}
            <p class="small muted" id="approvers">{approvers}</p>
            {if v.signups.is_empty() {
                view! { <p class="muted" id="no-signups">"No sign-up waits for approval."</p> }.into_any()
            } else {
                view! {
                    <div class="table-wrap"><table class="data" id="pending-signups">
                        <thead><tr>
                            <th scope="col">"Applicant"</th><th scope="col">"Domain"</th><th scope="col">"Reason"</th>
                            <th scope="col">"Applied"</th><th scope="col">"Decision"</th>
                        </tr></thead>
                        <tbody>
                            {v.signups.into_iter().map(|p| {
                                let approve = format!("/admin/signups/{}/approve", p.id);
                                let reject = format!("/admin/signups/{}/reject", p.id);
                                let row_id = p.id.clone();
                                let confirmed = if p.verified { "address confirmed" } else { "address not confirmed yet" };
                                view! {
                                    <tr data-user-id=row_id>
                                        <td>{p.email}<br /><span class="small muted">{p.display_name} " · " {confirmed}</span></td>
                                        <td>{p.domain}</td>
                                        <td class="small pre-wrap">{p.reason}</td>
                                        <td class="small">{p.requested_at}</td>
                                        <td>
                                            <form method="post" action=approve class="inline-form approve-form">
                                                <CsrfField />
                                                <button class="button" type="submit" disabled=!p.verified title=(!p.verified).then_some("The applicant has not confirmed the address yet")>"Approve"</button>
                                            </form>
                                            {(!p.verified).then(|| view! { <p class="small muted unconfirmed-note">"Approve once the applicant has confirmed the address."</p> })}
                                            <form method="post" action=reject class="inline-form reject-form">
                                                <CsrfField />
                                                <label>"Reason (mailed to the applicant) " <input type="text" name="reason" required maxlength="500" /></label>
                                                <button class="button danger" type="submit">"Reject"</button>
                                            </form>
                                        </td>
                                    </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table></div>
                }.into_any()
            }}
            <p class="small muted">"Approving lets the applicant sign in and emails them. Rejecting deletes the account and emails them your reason; the address may apply again after 30 days. Both are recorded in the audit log."</p>
        </section>
    }
}

#[component]
pub fn AdminPlansPage() -> impl IntoView {
    let data = Resource::new(|| (), |_| api::get_admin_plans());
    view! {
        <Title text="Plans · Admin" />
        <div class="page-head"><h1>"Plans"</h1></div>
        <AdminNav current="/admin/plans" />
        <Flash />
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            <ErrorBoundary fallback=|errors| view! { <ErrorTemplate errors /> }>
                {move || Suspend::new(async move { data.await.map(|v| view! { <Plans v /> }) })}
            </ErrorBoundary>
        </Transition>
    }
}

#[component]
fn Plans(v: PlansView) -> impl IntoView {
    view! {
        <FormError error=v.form_error />
        <p class="small muted">"A limit left empty is not set by the plan: the instance's setting applies (none: unlimited). The same edits: " <code>"PATCH /api/v1/admin/plans/{id}"</code> " or " <code>"vortex plans"</code> " (docs/plans.md). Lowering a plan never deletes data: work over the new limits gets a grace period, then is paused or read-only."</p>
        {v.plans.into_iter().map(|p| {
            let action = format!("/admin/plans/{}", p.id);
            view! {
                <section class="card plan" data-plan=p.slug.clone()>
                    <h2>{p.name.clone()} " " <span class="muted small">{p.slug.clone()}</span>
                        {p.is_default.then(|| view! { " " <span class="badge ok">"default"</span> })}
                        {p.archived.then(|| view! { " " <span class="badge">"archived"</span> })}
                    </h2>
                    <p class="small muted">{p.users} " users assigned explicitly"</p>
                    <form method="post" action=action class="stack-form">
                        <CsrfField />
                        <label>"Name " <input type="text" name="name" required maxlength="80" value=p.name /></label>
                        <label>"Description " <input type="text" name="description" maxlength="500" value=p.description /></label>
                        <label>"Price (minor units) " <input type="number" name="price_minor" min="0" max="100000000000" value=p.price_minor.to_string() /></label>
                        <label>"Currency " <input type="text" name="currency" pattern="[A-Z]{3}" maxlength="3" value=p.currency /></label>
                        <label>"Billing period " <select name="billing_period">
                            <option value="month" selected=p.billing_period == "month">"month"</option>
                            <option value="year" selected=p.billing_period == "year">"year"</option>
                        </select></label>
                        <label>"Trial days " <input type="number" name="trial_days" min="0" max="365" value=p.trial_days.to_string() /></label>
                        <label>"Payment provider price id " <input type="text" name="provider_price_id" maxlength="100" pattern="[A-Za-z0-9_]*" placeholder="price_… (empty: not sold by checkout)" value=p.provider_price_id /></label>
                        <PlanLimitFields fields=p.limits />
                        <label><input type="checkbox" name="archived" value="true" checked=p.archived /> " Archived"</label>
                        <button class="button" type="submit">"Save"</button>
                    </form>
                </section>
            }
        }).collect_view()}
        <section class="card" id="new-plan">
            <h2>"New plan"</h2>
            <form method="post" action="/admin/plans" class="stack-form" id="new-plan-form">
                <CsrfField />
                <label>"Slug " <input type="text" name="slug" required maxlength="40" pattern="[a-z0-9][a-z0-9\\-]*" /></label>
                <label>"Name " <input type="text" name="name" required maxlength="80" /></label>
                <label>"Description " <input type="text" name="description" maxlength="500" /></label>
                <label>"Price (minor units) " <input type="number" name="price_minor" min="0" max="100000000000" value="0" /></label>
                <label>"Currency " <input type="text" name="currency" pattern="[A-Z]{3}" maxlength="3" value="USD" /></label>
                <label>"Billing period " <select name="billing_period"><option value="month">"month"</option><option value="year">"year"</option></select></label>
                <label>"Trial days " <input type="number" name="trial_days" min="0" max="365" value="0" /></label>
                <label>"Payment provider price id " <input type="text" name="provider_price_id" maxlength="100" pattern="[A-Za-z0-9_]*" placeholder="price_… (empty: not sold by checkout)" /></label>
                <PlanLimitFields fields=v.new_limits />
                <button class="button primary" type="submit" id="create-plan">"Create plan"</button>
            </form>
        </section>
    }
}

/// A plan's limits as number fields (`limit_<key>`; empty: the plan sets none).
#[component]
fn PlanLimitFields(fields: Vec<PlanLimitField>) -> impl IntoView {
    view! {
        <fieldset class="plan-limits">
            <legend>"Limits"</legend>
            {fields.into_iter().map(|f| {
                let name = format!("limit_{}", f.key);
                view! {
                    <label>{f.label} " "
                        <input type="number" name=name data-limit=f.key min=f.min.to_string() max=f.max.to_string()
                            placeholder="instance setting" value=f.value.map(|n| n.to_string()).unwrap_or_default() />
                    </label>
                }
            }).collect_view()}
        </fieldset>
    }
}

#[component]
pub fn AdminCataloguePage() -> impl IntoView {
    let data = Resource::new(|| (), |_| api::get_admin_catalogue());
    view! {
        <Title text="Catalogue · Admin" />
        <div class="page-head"><h1>"Strategy catalogue"</h1></div>
        <AdminNav current="/admin/catalogue" />
        <Flash />
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            <ErrorBoundary fallback=|errors| view! { <ErrorTemplate errors /> }>
                {move || Suspend::new(async move { data.await.map(|v| view! { <Catalogue v /> }) })}
            </ErrorBoundary>
        </Transition>
    }
}

#[component]
fn Catalogue(v: CatalogueView) -> impl IntoView {
    view! {
        <FormError error=v.form_error />
        <p class="small muted">"Traders create strategies from the published entries (featured ones first). A changed source is a new version; strategies already created keep their copy. Entries are hidden, never deleted."</p>
        <table class="data" id="catalogue-list">
            <thead><tr><th>"Name"</th><th>"Slug"</th><th>"State"</th><th class="num">"Version"</th><th class="num">"Parameters"</th><th>"Changed"</th></tr></thead>
            <tbody>
                {v.entries.into_iter().map(|e| view! {
                    <tr data-slug=e.slug.clone()>
                        <td><a href=format!("/admin/catalogue/{}", e.id)>{e.name}</a>
                            {e.builtin.then(|| view! { " " <span class="badge">"built-in"</span> })}</td>
                        <td><code>{e.slug.clone()}</code></td>
                        <td>
                            {if e.published { view! { <span class="badge ok">"published"</span> }.into_any() } else { view! { <span class="badge">"hidden"</span> }.into_any() }}
                            {e.featured.then(|| view! { " " <span class="badge ok">"featured"</span> })}
                        </td>
                        <td class="num">{e.version}</td>
                        <td class="num">{e.params}</td>
                        <td>{e.updated_at}</td>
                    </tr>
                }).collect_view()}
            </tbody>
        </table>
        <section class="card" id="new-catalogue">
            <h2>"New catalogue strategy"</h2>
            <p class="small muted">"The source is checked like any strategy; write and test it in a strategy's editor first, then paste it here."</p>
            <form method="post" action="/admin/catalogue" class="stack-form" id="new-catalogue-form">
                <CsrfField />
                <label>"Slug " <input type="text" name="slug" id="catalogue-slug" required maxlength="48" pattern="[a-z0-9][a-z0-9_\\-]*" placeholder="donchian_breakout" /></label>
                <label>"Name " <input type="text" name="name" id="catalogue-name" required maxlength="80" /></label>
                <label>"Description " <textarea name="description" id="catalogue-description" maxlength="2000" rows="2"></textarea></label>
                <label>"Source " <textarea name="source" id="catalogue-source" required rows="10" class="code" spellcheck="false"></textarea></label>
                <label>"Version note " <input type="text" name="note" maxlength="500" placeholder="first version" /></label>
                <label><input type="checkbox" name="published" value="true" id="catalogue-published" /> " Published (traders see it)"</label>
                <label><input type="checkbox" name="featured" value="true" /> " Featured (listed first)"</label>
                <button class="button primary" type="submit" id="create-catalogue">"Create"</button>
            </form>
        </section>
    }
}

#[component]
pub fn AdminCatalogueEntryPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.read().get("id").unwrap_or_default();
    let data = Resource::new(id, api::get_admin_catalogue_entry);
    view! {
        <Title text="Catalogue strategy · Admin" />
        <div class="page-head"><h1>"Catalogue strategy"</h1></div>
        <AdminNav current="/admin/catalogue" />
        <Flash />
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            <ErrorBoundary fallback=|errors| view! { <ErrorTemplate errors /> }>
                {move || Suspend::new(async move { data.await.map(|v| view! { <CatalogueEntry v /> }) })}
            </ErrorBoundary>
        </Transition>
    }
}

#[component]
fn CatalogueEntry(v: CatalogueEntryView) -> impl IntoView {
    let CatalogueEntryView {
        row,
        source,
        versions,
        strategies,
        form_error,
    } = v;
    let action = format!("/admin/catalogue/{}", row.id);
    view! {
        <FormError error=form_error />
        <p id="catalogue-state">
            <code>{row.slug.clone()}</code> " · version " {row.version} " · "
            {if row.published { "published" } else { "hidden" }}
            {row.featured.then_some(" · featured")}
            " · " {strategies} " strategies created from it"
        </p>
        <section class="card">
            <form method="post" action=action class="stack-form" id="catalogue-edit-form">
                <CsrfField />
                <label>"Name " <input type="text" name="name" required maxlength="80" value=row.name /></label>
                <label>"Description " <textarea name="description" maxlength="2000" rows="2">{row.description}</textarea></label>
                <label>"Source " <textarea name="source" id="catalogue-source" required rows="14" class="code" spellcheck="false">{source}</textarea></label>
                <label>"Version note (when the source changes) " <input type="text" name="note" maxlength="500" /></label>
                <label><input type="checkbox" name="published" value="true" id="catalogue-published" checked=row.published /> " Published (traders see it)"</label>
                <label><input type="checkbox" name="featured" value="true" id="catalogue-featured" checked=row.featured /> " Featured (listed first)"</label>
                <button class="button primary" type="submit" id="save-catalogue">"Save"</button>
            </form>
        </section>
        <h2>"Versions"</h2>
        <table class="data" id="catalogue-versions">
            <thead><tr><th class="num">"Version"</th><th>"Note"</th><th>"By"</th><th>"Saved"</th></tr></thead>
            <tbody>
                {versions.into_iter().map(|ver| view! {
                    <tr><td class="num">{ver.version}</td><td>{ver.note}</td><td>{ver.created_by}</td><td>{ver.created_at}</td></tr>
                }).collect_view()}
            </tbody>
        </table>
    }
}

#[component]
pub fn AdminJobsPage() -> impl IntoView {
    let data = Resource::new(|| (), |_| api::get_admin_jobs());
    view! {
        <Title text="Jobs · Admin" />
        <div class="page-head"><h1>"Jobs"</h1></div>
        <AdminNav current="/admin/jobs" />
        <Flash />
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            <ErrorBoundary fallback=|errors| view! { <ErrorTemplate errors /> }>
                {move || Suspend::new(async move { data.await.map(|v| view! { <Jobs v /> }) })}
            </ErrorBoundary>
        </Transition>
    }
}

#[component]
fn Jobs(v: crate::api::admin::JobsView) -> impl IntoView {
    view! {
        <FormError error=v.form_error />
        <section class="card" id="queues">
            <h2>"Queues"</h2>
            <div class="table-wrap"><table class="data" id="queue-table">
                <thead><tr><th scope="col">"Queue"</th><th scope="col">"Queued"</th><th scope="col">"Scheduled"</th><th scope="col">"Running"</th><th scope="col">"Failed (7 days)"</th></tr></thead>
                <tbody>
                    {v.queues.into_iter().map(|q| { let name = q.queue.clone(); view! {
                        <tr data-queue=name><td>{q.queue}</td><td>{q.queued}</td><td>{q.scheduled}</td><td>{q.running}</td><td>{q.failed}</td></tr>
                    } }).collect_view()}
                </tbody>
            </table></div>
            <form method="post" action="/admin/jobs/housekeeping" class="inline-form">
                <CsrfField />
                <button class="button" type="submit" id="housekeeping">"Run housekeeping now"</button>
            </form>
        </section>
        <section class="card" id="running">
            <h2>"Running"</h2>
            <JobTable jobs=v.running retry=false />
        </section>
        <section class="card" id="failed">
            <h2>"Failed"</h2>
            <JobTable jobs=v.failed retry=true />
        </section>
        <section class="card" id="waiting">
            <h2>"Waiting"</h2>
            <p class="small muted">"Due now or scheduled for later (retries after a failure, scheduled work), soonest first. A cancelled job does not run; it can be retried later."</p>
            <WaitingTable jobs=v.waiting />
        </section>
    }
}

#[component]
fn WaitingTable(jobs: Vec<JobView>) -> impl IntoView {
    if jobs.is_empty() {
        return view! { <p class="muted">"None."</p> }.into_any();
    }
    view! {
        <div class="table-wrap"><table class="data" id="waiting-table">
            <thead><tr>
                <th scope="col">"Job"</th><th scope="col">"Queue"</th><th scope="col">"Kind"</th><th scope="col">"Attempts"</th>
                <th scope="col">"Due"</th><th scope="col">"Last error"</th><th scope="col"></th>
            </tr></thead>
            <tbody>
                {jobs.into_iter().map(|j| {
                    let action = format!("/admin/jobs/{}/cancel", j.id);
                    view! {
                        <tr data-job-id=j.id.clone()>
                            <td class="small"><code>{j.id.chars().take(8).collect::<String>()}</code></td>
                            <td>{j.queue}</td><td>{j.kind}</td><td>{j.attempts}</td>
                            <td class="small">{j.at}</td><td class="small">{j.error}</td>
                            <td><form method="post" action=action>
                                <CsrfField />
                                <button class="button small danger" type="submit">"Cancel"</button>
                            </form></td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table></div>
    }
    .into_any()
}

#[component]
pub fn AdminAuditPage() -> impl IntoView {
    let query = use_query_map();
    let args = move || {
        let q = query.read();
        let get = |k: &str| q.get(k).unwrap_or_default();
        (
            get("user"),
            get("actor"),
            get("event"),
            get("since"),
            get("until"),
            get("before"),
        )
    };
    let data = Resource::new(args, |(user, actor, event, since, until, before)| {
        api::get_admin_audit(user, actor, event, since, until, before)
    });
    view! {
        <Title text="Audit log · Admin" />
        <div class="page-head"><h1>"Audit log"</h1></div>
        <AdminNav current="/admin/audit" />
        <Flash />
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            <ErrorBoundary fallback=|errors| view! { <ErrorTemplate errors /> }>
                {move || Suspend::new(async move { data.await.map(|v| view! { <Audit v /> }) })}
            </ErrorBoundary>
        </Transition>
    }
}

#[component]
fn Audit(v: AuditPageView) -> impl IntoView {
    let csv = if v.query.is_empty() {
        "/admin/audit.csv".to_owned()
    } else {
        format!("/admin/audit.csv?{}", v.query)
    };
    let next = v.next.map(|q| format!("/admin/audit?{q}"));
    let failed = v.filter_error.is_some();
    view! {
        <FormError error=v.form_error />
        <section class="card" id="audit-filter">
            <form method="get" action="/admin/audit" class="filter-form" id="audit-filter-form">
                <label>"User (address or id) " <input type="text" name="user" maxlength="320" value=v.user id="audit-user" /></label>
                <label>"Acted by (address or id) " <input type="text" name="actor" maxlength="320" value=v.actor id="audit-actor" /></label>
                <label>"Event " <input type="text" name="event" maxlength="64" placeholder="e.g. signin_failed" value=v.event id="audit-event" /></label>
                <label>"From (UTC) " <input type="date" name="since" value=v.since id="audit-since" /></label>
                <label>"To (UTC, inclusive) " <input type="date" name="until" value=v.until id="audit-until" /></label>
                <button class="button" type="submit" id="audit-apply">"Filter"</button>
                " " <a href="/admin/audit" class="small">"Clear"</a>
            </form>
            {v.filter_error.map(|(field, message)| {
                let text = format!("{field}: {message}");
                view! { <p class="flash error" role="alert" id="audit-filter-error" data-field=field>{text}</p> }
            })}
        </section>
        <section class="card" id="audit-events">
            {(!failed).then(|| view! {
                <p class="small"><a href=csv id="audit-csv" download="">"Download everything this filter matches as CSV"</a>
                    " (newest first, at most 100,000 events; the download is itself recorded)."</p>
            })}
            {if v.events.is_empty() {
                view! { <p class="muted" id="audit-empty">"No events match."</p> }.into_any()
            } else {
                view! {
                    <div class="table-wrap"><table class="data" id="audit-table">
                        <thead><tr>
                            <th scope="col">"Time"</th><th scope="col">"Event"</th><th scope="col">"User"</th>
                            <th scope="col">"Acted by"</th><th scope="col">"IP"</th><th scope="col">"Detail"</th>
                        </tr></thead>
                        <tbody>
                            {v.events.into_iter().map(|e| {
                                let user_href = (!e.user_id.is_empty()).then(|| format!("/admin/users/{}", e.user_id));
                                let actor_href = (!e.actor_id.is_empty()).then(|| format!("/admin/users/{}", e.actor_id));
                                let user = if e.user.is_empty() { e.user_id.clone() } else { e.user.clone() };
                                let acted = if e.actor.is_empty() { e.actor_id.clone() } else { e.actor.clone() };
                                let event = e.event.clone();
                                view! {
                                    <tr data-audit-id=e.id data-event=event>
                                        <td class="small">{e.at}</td>
                                        <td><code>{e.event}</code></td>
                                        <td class="small">{match user_href {
                                            Some(h) => view! { <a href=h>{user}</a> }.into_any(),
                                            None => view! { <span>{user}</span> }.into_any(),
                                        }}</td>
                                        <td class="small">{match actor_href {
                                            Some(h) => view! { <a href=h>{acted}</a> }.into_any(),
                                            None => view! { <span>{acted}</span> }.into_any(),
                                        }}</td>
                                        <td class="small">{e.ip}</td>
                                        <td class="small"><code>{e.detail}</code></td>
                                    </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table></div>
                }.into_any()
            }}
            <p class="pager">{next.map(|h| view! { <a href=h id="audit-older">"Older →"</a> })}</p>
        </section>
    }
}

#[component]
pub fn AdminSubscriptionsPage() -> impl IntoView {
    let data = Resource::new(|| (), |_| api::get_admin_subscriptions());
    view! {
        <Title text="Subscriptions · Admin" />
        <div class="page-head"><h1>"Subscriptions"</h1></div>
        <AdminNav current="/admin/subscriptions" />
        <Flash />
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            <ErrorBoundary fallback=|errors| view! { <ErrorTemplate errors /> }>
                {move || Suspend::new(async move { data.await.map(|v| view! { <Subscriptions v /> }) })}
            </ErrorBoundary>
        </Transition>
    }
}

#[component]
fn Subscriptions(v: SubscriptionsView) -> impl IntoView {
    view! {
        <FormError error=v.form_error />
        {(!v.billing_enabled).then(|| view! {
            <p class="flash" id="billing-off">"Payments are off on this instance (PAYMENT_PROVIDER=none): plans are assigned by admins, nobody pays. Subscriptions recorded earlier are listed as they were last seen."</p>
        })}
        <Reconciliation
            enabled=v.billing_enabled
            run=v.reconcile
            pending=v.reconcile_pending
            schedule=v.reconcile_schedule
        />
        <section class="card" id="subscription-counts">
            <div class="stat-grid">
                {v.counts.into_iter().map(|(state, n)| {
                    let key = state.clone();
                    view! { <div class="stat" data-state=key><span class="stat-label">{state}</span><span class="stat-value">{n}</span></div> }
                }).collect_view()}
            </div>
        </section>
        <section class="card" id="subscriptions">
            <p class="small muted">"Each trader's subscription as the payment provider last reported it (its webhooks and the trader's return from checkout keep it current), most recently changed first. Access follows the state: past_due keeps the plan while the provider retries; unpaid and canceled go back to the default plan at the period's end."</p>
            {if v.subscriptions.is_empty() {
                view! { <p class="muted" id="no-subscriptions">"No subscriptions yet."</p> }.into_any()
            } else {
                view! {
                    <div class="table-wrap"><table class="data" id="subscription-table">
                        <thead><tr>
                            <th scope="col">"Trader"</th><th scope="col">"Plan"</th><th scope="col">"State"</th>
                            <th scope="col">"Period ends"</th><th scope="col">"Trial ends"</th>
                            <th scope="col">"Provider customer"</th><th scope="col">"Last seen"</th>
                        </tr></thead>
                        <tbody>
                            {v.subscriptions.into_iter().map(|s| {
                                let href = format!("/admin/users/{}", s.user_id);
                                let badge = format!("badge status-{}", s.status.replace(' ', "-"));
                                let (user_id, state) = (s.user_id.clone(), s.status.clone());
                                view! {
                                    <tr data-user-id=user_id data-state=state>
                                        <td><a href=href>{s.email}</a></td>
                                        <td>{s.plan}</td>
                                        <td><span class=badge>{s.status}</span>
                                            {s.cancel_at_period_end.then(|| view! { <span class="small muted">" (cancels at period end)"</span> })}</td>
                                        <td class="small">{s.period_end}</td>
                                        <td class="small">{s.trial_end}</td>
                                        <td class="small"><code>{s.customer_id}</code></td>
                                        <td class="small">{s.observed_at}</td>
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

/// The last reconciliation with the payment provider and "Reconcile now".
#[component]
fn Reconciliation(
    enabled: bool,
    run: Option<ReconcileRunView>,
    pending: bool,
    schedule: String,
) -> impl IntoView {
    view! {
        <section class="card" id="reconciliation">
            <h2>"Reconciliation with the provider"</h2>
            <p class="small muted">"Lists the provider's events of the last days and processes those whose webhook never arrived (an outage), then reads every subscription that is not over from the provider and stores it. Runs "{schedule}" while payments are on; each event is processed once, however it arrives."</p>
            {match run {
                None => view! { <p class="muted" id="reconcile-never">"No reconciliation has run yet."</p> }.into_any(),
                Some(r) => {
                    let badge = match r.outcome.as_str() {
                        "ok" => "badge ok",
                        "failed" => "badge bad",
                        "partial" | "abandoned" => "badge warn",
                        _ => "badge",
                    };
                    let outcome = r.outcome.clone();
                    let resume = (!r.events_resume.is_empty()).then(|| r.events_resume.clone());
                    view! {
                        <dl class="kv" id="reconcile-last" data-outcome=outcome>
                            <dt>"Last run"</dt>
                            <dd>{r.started_at}" ("{r.trigger}")"{(!r.finished_at.is_empty()).then(|| format!(", finished {}", r.finished_at))}</dd>
                            <dt>"Outcome"</dt>
                            <dd><span class=badge>{r.outcome}</span></dd>
                            <dt>"Events"</dt>
                            <dd id="reconcile-events">{format!("{} listed, {} processed now, {} processed before", r.events_seen, r.events_processed, r.events_duplicate)}</dd>
                            <dt>"Subscriptions"</dt>
                            <dd id="reconcile-subscriptions">{format!("{} read and stored, {} failed", r.subscriptions_synced, r.subscriptions_failed)}</dd>
                            {resume.map(|t| view! { <dt>"Continues"</dt><dd>"with events created up to "{t}</dd> })}
                        </dl>
                        {(!r.errors.is_empty()).then(|| view! {
                            <ul class="small" id="reconcile-errors">
                                {r.errors.into_iter().map(|e| view! { <li><code>{e}</code></li> }).collect_view()}
                            </ul>
                        })}
                    }.into_any()
                }
            }}
            {pending.then(|| view! { <p class="small" id="reconcile-pending">"A reconciliation is queued or running."</p> })}
            {if enabled {
                view! {
                    <form method="post" action="/admin/billing/reconcile" class="inline-form">
                        <CsrfField />
                        <button class="button" type="submit" id="reconcile-now">"Reconcile now"</button>
                    </form>
                }.into_any()
            } else {
                view! { <p class="small muted" id="reconcile-off">"Nothing to reconcile: payments are off."</p> }.into_any()
            }}
        </section>
    }
}

#[component]
fn JobTable(jobs: Vec<JobView>, retry: bool) -> impl IntoView {
    if jobs.is_empty() {
        return view! { <p class="muted">"None."</p> }.into_any();
    }
    view! {
        <div class="table-wrap"><table class="data">
            <thead><tr>
                <th scope="col">"Job"</th><th scope="col">"Queue"</th><th scope="col">"Kind"</th><th scope="col">"Attempts"</th>
                <th scope="col">"Worker"</th><th scope="col">{if retry { "Finished" } else { "Lease until" }}</th>
                <th scope="col">{if retry { "Error" } else { "" }}</th><th scope="col"></th>
            </tr></thead>
            <tbody>
                {jobs.into_iter().map(|j| {
                    let action = format!("/admin/jobs/{}/retry", j.id);
                    view! {
                        <tr data-job-id=j.id.clone()>
                            <td class="small"><code>{j.id.chars().take(8).collect::<String>()}</code></td>
                            <td>{j.queue}</td><td>{j.kind}</td><td>{j.attempts}</td>
                            <td class="small">{j.worker}</td><td class="small">{j.at}</td>
                            <td class="small">{j.error}</td>
                            <td>{retry.then(|| view! {
                                <form method="post" action=action>
                                    <CsrfField />
                                    <button class="button small" type="submit">"Retry"</button>
                                </form>
                            })}</td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table></div>
    }
    .into_any()
}

#[component]
pub fn AdminKillPage() -> impl IntoView {
    let data = Resource::new(|| (), |_| api::get_admin_kill());
    view! {
        <Title text="Kill switches · Admin" />
        <div class="page-head"><h1>"Kill switches"</h1></div>
        <AdminNav current="/admin/kill" />
        <Flash />
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            <ErrorBoundary fallback=|errors| view! { <ErrorTemplate errors /> }>
                {move || Suspend::new(async move { data.await.map(|v| view! { <Kill v /> }) })}
            </ErrorBoundary>
        </Transition>
    }
}

#[component]
fn Kill(v: KillView) -> impl IntoView {
    view! {
        <FormError error=v.form_error />
        <section class="card" id="active-switches">
            <h2>"Active switches"</h2>
            {if v.switches.is_empty() {
                view! { <p class="muted" id="no-switches">"No kill switch is thrown."</p> }.into_any()
            } else {
                view! { <SwitchTable switches=v.switches release=true /> }.into_any()
            }}
        </section>
        <section class="card" id="throw">
            <h2>"Throw a switch"</h2>
            <form method="post" action="/admin/kill" class="stack-form" id="throw-form">
                <CsrfField />
                <label>"Over " <select name="scope" id="throw-scope">
                    <option value="platform">"the whole platform"</option>
                    <option value="user">"one user (give the email address)"</option>
                </select></label>
                <label>"User's email address (user switches) " <input type="email" name="email" maxlength="254" id="throw-email" /></label>
                <label>"Mode " <select name="mode" id="throw-mode">
                    <option value="halt">"halt: no new orders"</option>
                    <option value="reduce_only">"reduce only: orders may only shrink positions"</option>
                    <option value="flatten">"flatten: sell open positions, then halt"</option>
                </select></label>
                <label>"Reason " <input type="text" name="reason" required maxlength="500" id="throw-reason" /></label>
                <button class="button danger" type="submit" id="throw-switch">"Throw"</button>
            </form>
            <p class="small muted">"Affected users are notified. Paper runs check the switches at every candle."</p>
        </section>
    }
}

#[component]
fn SwitchTable(switches: Vec<SwitchView>, release: bool) -> impl IntoView {
    view! {
        <div class="table-wrap"><table class="data" id="switch-table">
            <thead><tr>
                <th scope="col">"Scope"</th><th scope="col">"Covers"</th><th scope="col">"Mode"</th>
                <th scope="col">"Reason"</th><th scope="col">"Thrown"</th><th scope="col"></th>
            </tr></thead>
            <tbody>
                {switches.into_iter().map(|s| {
                    let action = format!("/admin/kill/{}/release", s.id);
                    let (sid, scope) = (s.id.clone(), s.scope.clone());
                    view! {
                        <tr data-switch-id=sid data-scope=scope>
                            <td>{s.scope}</td><td class="small">{s.target}</td><td>{s.mode}</td>
                            <td>{s.reason}</td><td class="small">{s.thrown_at}</td>
                            <td>{release.then(|| view! {
                                <form method="post" action=action class="inline-form">
                                    <CsrfField />
                                    <input type="text" name="reason" maxlength="500" placeholder="Why (optional)" />
                                    <button class="button small" type="submit">"Release"</button>
                                </form>
                            })}</td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table></div>
    }
}

#[component]
pub fn AdminMarketPage() -> impl IntoView {
    let data = Resource::new(|| (), |_| api::get_admin_market());
    view! {
        <Title text="Market data · Admin" />
        <div class="page-head"><h1>"Market data"</h1></div>
        <AdminNav current="/admin/market" />
        <Flash />
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            <ErrorBoundary fallback=|errors| view! { <ErrorTemplate errors /> }>
                {move || Suspend::new(async move { data.await.map(|v| view! { <MarketAdmin v /> }) })}
            </ErrorBoundary>
        </Transition>
    }
}

/// A timeframe picker with the given options.
#[component]
fn TimeframeSelect(timeframes: Vec<String>, id: &'static str) -> impl IntoView {
    view! {
        <select name="timeframe" id=id>
            {timeframes.into_iter().map(|t| { let v = t.clone(); view! { <option value=v>{t}</option> } }).collect_view()}
        </select>
    }
}

#[component]
fn MarketAdmin(v: MarketAdminView) -> impl IntoView {
    let exchange = v.exchange.clone();
    view! {
        <FormError error=v.form_error />
        <section class="card" id="etl-schedule">
            <h2>"Schedule"</h2>
            <p>"Candles are fetched from " <code>{v.source}</code> " and stored as exchange " <code id="market-exchange">{v.exchange}</code>
               ". Tracked series are updated " <strong id="update-every">{v.update_every}</strong>
               " (MARKET_UPDATE_INTERVAL_SECS); the last update: " <span id="last-update">{v.last_update}</span>
               ". Chunk jobs waiting or running: " <span id="chunks-pending">{v.chunks_pending}</span> "."</p>
            <form method="post" action="/admin/market/update" class="inline-form">
                <CsrfField />
                <button class="button" type="submit" id="update-now">"Update tracked series now"</button>
            </form>
        </section>
        <section class="card" id="series">
            <h2>"Series"</h2>
            {if v.series.is_empty() {
                view! { <p class="muted" id="no-series">"No candles stored yet."</p> }.into_any()
            } else {
                view! {
                    <div class="table-wrap"><table class="data" id="series-table">
                        <thead><tr>
                            <th scope="col">"Exchange"</th><th scope="col">"Pair"</th><th scope="col">"Timeframe"</th>
                            <th scope="col">"Candles"</th><th scope="col">"First"</th><th scope="col">"Last"</th>
                            <th scope="col">"Behind"</th><th scope="col">"Updated"</th><th scope="col">"Kept updated"</th>
                        </tr></thead>
                        <tbody>
                            {v.series.into_iter().map(|s| {
                                let key = format!("{}:{}", s.pair, s.timeframe);
                                let (pair, tf) = (s.pair.clone(), s.timeframe.clone());
                                let tracked = s.tracked;
                                let action = view! {
                                    <form method="post" action="/admin/market/track" class="inline-form">
                                        <CsrfField />
                                        <input type="hidden" name="pair" value=pair />
                                        <input type="hidden" name="timeframe" value=tf />
                                        <input type="hidden" name="tracked" value=if tracked { "false" } else { "true" } />
                                        <button class="button small" type="submit">{if tracked { "Stop" } else { "Track" }}</button>
                                    </form>
                                };
                                view! {
                                    <tr data-series=key data-tracked=if tracked { "true" } else { "false" }>
                                        <td>{s.exchange}</td><td>{s.pair}</td><td>{s.timeframe}</td><td>{s.candles}</td>
                                        <td class="small">{s.first}</td><td class="small">{s.last}</td>
                                        <td class="small">{s.lag}</td><td class="small">{s.last_update}</td>
                                        <td>{if tracked { "yes " } else { "no " }}{s.fetchable.then_some(action)}</td>
                                    </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table></div>
                }.into_any()
            }}
            <h3>"Keep a new series updated"</h3>
            <form method="post" action="/admin/market/track" class="inline-form" id="track-form">
                <CsrfField />
                <input type="hidden" name="tracked" value="true" />
                <label>"Pair " <input type="text" name="pair" maxlength="33" placeholder="ETH/BTC" required id="track-pair" /></label>
                <label>"Timeframe " <TimeframeSelect timeframes=v.timeframes.clone() id="track-timeframe" /></label>
                <button class="button" type="submit" id="track">"Track"</button>
            </form>
            <p class="small muted">"The next update fetches a tracked series' last day (or everything since its newest candle); a backfill fetches more."</p>
        </section>
        <section class="card" id="backfill">
            <h2>"Backfill"</h2>
            <p class="small muted">"Fetches a range of one series of " {exchange} " from the source, in chunk jobs on the market queue; chunks fetched completely before are skipped."</p>
            <form method="post" action="/admin/market/backfill" class="inline-form" id="backfill-form">
                <CsrfField />
                <label>"Pair " <input type="text" name="pair" maxlength="33" placeholder="ETH/BTC" required id="backfill-pair" /></label>
                <label>"Timeframe " <TimeframeSelect timeframes=v.timeframes id="backfill-timeframe" /></label>
                <label>"From (UTC) " <input type="date" name="from" required id="backfill-from" /></label>
                <label>"To (UTC, excluded) " <input type="date" name="to" required id="backfill-to" /></label>
                <button class="button" type="submit" id="backfill-start">"Backfill"</button>
            </form>
        </section>
        <section class="card" id="etl-runs">
            <h2>"Newest ETL runs"</h2>
            {if v.runs.is_empty() {
                view! { <p class="muted">"None yet."</p> }.into_any()
            } else {
                view! {
                    <div class="table-wrap"><table class="data" id="runs-table">
                        <thead><tr>
                            <th scope="col">"Started"</th><th scope="col">"Series"</th><th scope="col">"Mode"</th>
                            <th scope="col">"Range"</th><th scope="col">"Chunks"</th><th scope="col">"Candles"</th>
                            <th scope="col">"Status"</th>
                        </tr></thead>
                        <tbody>
                            {v.runs.into_iter().map(|r| {
                                let status = r.status.clone();
                                let series = format!("{} {}", r.symbol, r.timeframe);
                                view! {
                                    <tr data-status=status>
                                        <td class="small">{r.created_at}</td><td>{series}</td><td>{r.mode}</td>
                                        <td class="small">{r.range}</td><td>{r.chunks}</td><td>{r.candles}</td>
                                        <td>{r.status} " " <span class="small">{r.error}</span></td>
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
