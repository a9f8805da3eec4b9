//! Sign-up, sign-in, email confirmation and password reset pages. Plain HTML forms posting to the server's
//! form handlers, so they work with and without JavaScript.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::{components::A, hooks::use_query_map};

use crate::components::forms::{CsrfField, Flash};

fn query(name: &'static str) -> impl Fn() -> String + Copy {
    let q = use_query_map();
    move || q.read().get(name).unwrap_or_default()
}

#[component]
pub fn SignInPage() -> impl IntoView {
    let next = query("next");
    view! {
        <Title text="Sign in" />
        <section class="auth-card">
            <h1>"Sign in"</h1>
            <Flash />
            <form method="post" action="/auth/signin" class="stack">
                <CsrfField />
                <input type="hidden" name="next" value=next />
                <label>"Email" <input type="email" name="email" autocomplete="username" required maxlength="254" /></label>
                <label>"Password" <input type="password" name="password" autocomplete="current-password" required maxlength="128" /></label>
                <button class="button primary" type="submit">"Sign in"</button>
            </form>
            <p class="muted">
                <A href="/forgot-password">"Forgot your password?"</A> " · " <A href="/signup">"Create an account"</A>
            </p>
        </section>
    }
}

/// The second step of a sign-in with two-factor sign-in on: the code from the authenticator app or a recovery
/// code (the pending sign-in itself is in an HttpOnly cookie).
#[component]
pub fn SignInCodePage() -> impl IntoView {
    let next = query("next");
    view! {
        <Title text="Two-factor sign-in" />
        <section class="auth-card">
            <h1>"Enter your code"</h1>
            <Flash />
            <form method="post" action="/auth/two-factor" class="stack" id="two-factor-form">
                <CsrfField />
                <input type="hidden" name="next" value=next />
                <label>"Code from your authenticator app, or a recovery code"
                    <input type="text" name="code" id="two-factor-code" autocomplete="one-time-code" inputmode="numeric" required maxlength="32" autofocus />
                </label>
                <button class="button primary" type="submit">"Sign in"</button>
            </form>
            <p class="muted">"The code changes every 30 seconds. Lost your phone? Use one of your recovery codes, or ask an administrator to reset two-factor sign-in. " <A href="/signin">"Start again"</A></p>
        </section>
    }
}

#[component]
pub fn SignUpPage() -> impl IntoView {
    // An invitation link's token (sign-up by invitation, docs/admin.md), passed on with the form.
    let invite = query("invite");
    // Sign-up by approval (docs/admin.md): the form asks why, and the account waits for an administrator.
    let needs_reason = Resource::new(|| (), |_| crate::api::admin::get_signup_needs_reason());
    view! {
        <Title text="Create an account" />
        <section class="auth-card">
            <h1>"Create an account"</h1>
            <Flash />
            <form method="post" action="/auth/signup" class="stack">
                <CsrfField />
                <input type="hidden" name="invite" value=invite />
                <label>"Email" <input type="email" name="email" autocomplete="email" required maxlength="254" /></label>
                <label>"Name " <span class="muted">"(optional)"</span>
                    <input type="text" name="display_name" autocomplete="name" maxlength="80" />
                </label>
                <label>"Password"
                    <input type="password" name="password" autocomplete="new-password" required minlength="12" maxlength="128" />
                    <small class="muted">"12 to 128 characters. A phrase of several words is easy to remember and hard to guess."</small>
                </label>
                <Suspense fallback=|| ()>
                    {move || Suspend::new(async move {
                        needs_reason.await.unwrap_or(false).then(|| view! {
                            <label>"Why do you want an account?"
                                <textarea name="reason" id="signup-reason" required maxlength="1000" rows="4"></textarea>
                                <small class="muted">"An administrator approves new accounts on this instance. Up to 1000 characters; you get an email when your request is decided."</small>
                            </label>
                        })
                    })}
                </Suspense>
                <button class="button primary" type="submit">"Create account"</button>
            </form>
            <p class="muted">"Already have an account? " <A href="/signin">"Sign in"</A></p>
        </section>
    }
}

#[component]
pub fn VerifyEmailPage() -> impl IntoView {
    let token = query("token");
    view! {
        <Title text="Confirm your email" />
        <section class="auth-card">
            <h1>"Confirm your email address"</h1>
            <Flash />
            <Show
                when=move || !token().is_empty()
                fallback=|| view! { <p class="muted">"Open the link from the email we sent you, or request a new one from your account page."</p> }
            >
                <form method="post" action="/auth/verify-email" class="stack">
                    <CsrfField />
                    <input type="hidden" name="token" value=token />
                    <button id="confirm-email" class="button primary" type="submit">"Confirm my email"</button>
                </form>
            </Show>
        </section>
    }
}

/// The new address's confirmation link (email change): a button, so a mail scanner following the link
/// changes nothing.
#[component]
pub fn ConfirmEmailChangePage() -> impl IntoView {
    let token = query("token");
    view! {
        <Title text="Confirm your new email address" />
        <section class="auth-card">
            <h1>"Confirm your new email address"</h1>
            <Flash />
            <Show
                when=move || !token().is_empty()
                fallback=|| view! { <p class="muted">"Open the link from the email we sent to your new address."</p> }
            >
                <form method="post" action="/auth/confirm-email-change" class="stack">
                    <CsrfField />
                    <input type="hidden" name="token" value=token />
                    <button id="confirm-email-change" class="button primary" type="submit">"Use this address"</button>
                </form>
            </Show>
        </section>
    }
}

#[component]
pub fn ForgotPasswordPage() -> impl IntoView {
    view! {
        <Title text="Reset your password" />
        <section class="auth-card">
            <h1>"Reset your password"</h1>
            <Flash />
            <form method="post" action="/auth/forgot-password" class="stack">
                <CsrfField />
                <label>"Email" <input type="email" name="email" autocomplete="email" required maxlength="254" /></label>
                <button class="button primary" type="submit">"Email me a link"</button>
            </form>
            <p class="muted"><A href="/signin">"Back to sign in"</A></p>
        </section>
    }
}

#[component]
pub fn ResetPasswordPage() -> impl IntoView {
    let token = query("token");
    view! {
        <Title text="Choose a new password" />
        <section class="auth-card">
            <h1>"Choose a new password"</h1>
            <Flash />
            <Show
                when=move || !token().is_empty()
                fallback=|| view! { <p><A href="/forgot-password">"Request a new link"</A></p> }
            >
                <form method="post" action="/auth/reset-password" class="stack">
                    <CsrfField />
                    <input type="hidden" name="token" value=token />
                    <label>"New password"
                        <input type="password" name="password" autocomplete="new-password" required minlength="12" maxlength="128" />
                    </label>
                    <button class="button primary" type="submit">"Set password"</button>
                </form>
            </Show>
        </section>
    }
}
