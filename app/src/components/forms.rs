//! Form helpers: the CSRF field every form carries, and the message shown after a form post.

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

/// The CSRF token of this page: rendered by the server into `<meta name="csrf-token">`, read from there in the
/// browser, so server rendering and hydration agree.
pub fn csrf_token() -> String {
    #[cfg(feature = "ssr")]
    {
        use_context::<http::request::Parts>()
            .and_then(|p| {
                p.extensions
                    .get::<backend::web::CsrfToken>()
                    .map(|t| t.0.clone())
            })
            .unwrap_or_default()
    }
    #[cfg(not(feature = "ssr"))]
    {
        document()
            .query_selector("meta[name=csrf-token]")
            .ok()
            .flatten()
            .and_then(|e| e.get_attribute("content"))
            .unwrap_or_default()
    }
}

/// The hidden `csrf` input.
#[component]
pub fn CsrfField() -> impl IntoView {
    view! { <input type="hidden" name="csrf" value=csrf_token() /> }
}

/// Text for the `ok=` and `error=` codes that the form handlers redirect with.
pub fn message_for(code: &str) -> Option<&'static str> {
    Some(match code {
        // outcomes
        "check_email" => {
            "Thanks! Check your inbox for a link to confirm your email address, then sign in."
        }
        "verified" => "Your email address is confirmed.",
        "signed_out" => "You are signed out.",
        "password_reset" => {
            "Your password was changed and all sessions were signed out. Sign in with the new password."
        }
        "sent" => {
            "If an account exists for that address, we sent a link to reset the password. It expires in 30 minutes."
        }
        "profile" => "Profile saved.",
        "password" => "Password changed.",
        "session_revoked" => "The session was signed out.",
        "token_created" => "API token created. Copy it now: it is shown only once.",
        "token_revoked" => "The API token was revoked.",
        "verification_sent" => "We sent a new confirmation link.",
        "strategy_created" => "Strategy created. Edit it below or run a backtest.",
        "strategy_saved" => "Saved as a new version.",
        "strategy_unchanged" => "Saved. The source did not change, so no new version was made.",
        "strategy_duplicated" => "This is your copy of the strategy.",
        "strategy_archived" => "The strategy was archived. Its runs are kept.",
        "strategy_restored" => "The strategy was restored.",
        "draft_discarded" => "The draft was discarded; the editor shows the newest saved version.",
        "cancel_requested" => "Cancelling the backtest.",
        // errors
        "invalid" => "The email or password is not correct.",
        "strategy_invalid" => {
            "The strategy does not compile, so it was not saved as a version. Your edit is kept as a draft; the problems are listed under the editor."
        }
        "strategy_stale" => {
            "A newer version was saved while you were editing (another tab?). Your edit was not saved as a version: it is kept as the draft shown below. Check it against the newest version (listed under Versions) and save again."
        }
        "strategy_is_archived" => {
            "This strategy is archived, so it cannot be edited; your edit is kept as its draft. Restore it from My strategies first."
        }
        "strategy_draft_stale" => {
            "The draft was changed in another tab or window after this page was opened, so this edit was not stored (the editor shows that newer draft). Copy your change in again and save."
        }
        "strategy_quota" => {
            "Your account has reached its limit of strategies or saved versions, so nothing was stored."
        }
        "strategy_name" => "Give the strategy a name of 1 to 80 characters.",
        "strategy_description" => "Use at most 2000 characters for the description.",
        "strategy_template" => "Choose one of the listed templates.",
        "strategy_source" => "The source is too long (at most 64 KiB).",
        "already_finished" => "This backtest has already finished.",
        "signin_required" => "Please sign in to continue.",
        "email" => "Enter a valid email address.",
        "display_name" => "Use at most 80 characters for your name.",
        "time_zone" => "Unknown time zone; use a name like Europe/Zurich or UTC.",
        "invalid_token" => "This link is invalid, already used or expired. Request a new one.",
        "current_password" => "The current password is not correct.",
        "read_only" => "Your account is read-only.",
        "token_name" => "Give the token a name of 1 to 80 characters.",
        "token_scope" => "Choose a scope for the token.",
        "token_expiry" => "The expiry must be between 1 and 3650 days, or never.",
        "token_exists" => "You already have a token with that name.",
        "token_unverified" => "Confirm your email address before creating API tokens.",
        "password_short" => "Use at least 12 characters for the password.",
        "password_long" => "Use at most 128 characters for the password.",
        "password_common" => {
            "This password is too common; choose another one (a phrase of several words works well)."
        }
        "password_repetitive" => "This password repeats too few characters; choose another one.",
        "password_email" => "The password must not be your email address.",
        "password_control" => "The password contains invisible control characters.",
        _ => return None,
    })
}

/// Shows the message for the page's `ok` / `error` query parameter.
#[component]
pub fn Flash() -> impl IntoView {
    let query = use_query_map();
    move || {
        let q = query.read();
        if let Some(m) = q.get("error").as_deref().and_then(message_for) {
            Some(view! { <p class="flash error" role="alert">{m}</p> }.into_any())
        } else {
            q.get("ok")
                .as_deref()
                .and_then(message_for)
                .map(|m| view! { <p class="flash ok" role="status">{m}</p> }.into_any())
        }
    }
}
