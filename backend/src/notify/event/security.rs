//! The payloads of the security events: what happened to the account, enough for a reader to tell whether it
//! was them (docs/design/notifications.md §2). These are critical: email and in-app cannot be turned off.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A successful sign-in from an address and browser not seen on this account in the last 30 days.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SigninNewDevice {
    pub user_id: Uuid,
    /// The client's address as the proxy reported it.
    pub ip: String,
    /// "Firefox on Linux", from the user agent (never the raw string, which is attacker-controlled).
    pub device: String,
    pub at: DateTime<Utc>,
    /// The session's public id, as the account page lists it (to end it there).
    pub session_public_id: String,
}

/// The password was changed (with the current one) or reset (through an emailed link).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PasswordChanged {
    pub user_id: Uuid,
    pub reset: bool,
    /// Every session was ended and every API token revoked.
    pub everywhere: bool,
    pub sessions_ended: u64,
    pub tokens_revoked: u64,
    /// The change's audit id, so one change is one event.
    pub change_id: Uuid,
}

/// Two-factor sign-in was turned on or off, its recovery codes were replaced, or an administrator reset it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TwoFactorChanged {
    pub user_id: Uuid,
    /// `enabled`, `disabled`, `recovery_codes_regenerated` or `reset_by_admin`.
    pub change: String,
    /// One change is one event.
    pub change_id: Uuid,
}

impl TwoFactorChanged {
    pub fn title(&self) -> String {
        match self.change.as_str() {
            "enabled" => "Two-factor sign-in is now on for your Vortex account",
            "recovery_codes_regenerated" => "New two-factor recovery codes for your Vortex account",
            "reset_by_admin" => {
                "An administrator turned off two-factor sign-in on your Vortex account"
            }
            _ => "Two-factor sign-in is now off for your Vortex account",
        }
        .to_owned()
    }

    pub fn body(&self) -> String {
        let what = match self.change.as_str() {
            "enabled" => {
                "Two-factor sign-in was turned on: signing in now needs a code from your authenticator app \
                 or one of your recovery codes."
            }
            "recovery_codes_regenerated" => {
                "New recovery codes were made for two-factor sign-in; the old ones no longer work."
            }
            "reset_by_admin" => {
                "An administrator reset two-factor sign-in on your account (for example after you lost your \
                 authenticator): signing in needs only your password until you turn it on again on your \
                 account page."
            }
            _ => "Two-factor sign-in was turned off: signing in needs only your password now.",
        };
        format!(
            "{what} If this was not you, reset your password now, review your sessions and API tokens, and \
             turn two-factor sign-in on again."
        )
    }
}

/// Someone gave the account's password but not its second factor: a pending sign-in used up its attempts on
/// wrong codes, or the account reached its limit of wrong codes (the password is probably known to them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TwoFactorFailed {
    pub user_id: Uuid,
    /// The client's address as the proxy reported it.
    pub ip: String,
    /// "Firefox on Linux", from the user agent (never the raw string, which is attacker-controlled).
    pub device: String,
    pub at: DateTime<Utc>,
    /// Wrong two-factor codes on the account in the last 15 minutes, this one included.
    pub failures: i64,
    /// The account now refuses codes for a while (its limit of wrong codes was reached).
    pub locked: bool,
    /// The 15-minute window (Unix seconds / 900) of the notice: at most one per account and window.
    pub window: i64,
}

impl TwoFactorFailed {
    pub fn title(&self) -> String {
        "Someone entered your Vortex password but not your second factor".to_owned()
    }

    pub fn body(&self) -> String {
        let locked = if self.locked {
            " Two-factor codes for your account are refused for a while."
        } else {
            ""
        };
        format!(
            "A sign-in to your account from {} ({}) gave the right password and then wrong two-factor codes \
             ({} wrong code(s) on your account in the last 15 minutes).{locked} If this was you, there is nothing \
             to do. If it was not, your password is known to someone: change it now on your account page (or \
             reset it), and review your sessions and API tokens.",
            self.device, self.ip, self.failures
        )
    }
}

/// An API token was created.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenCreated {
    pub user_id: Uuid,
    pub token_id: Uuid,
    pub token_name: String,
    /// `read` or `read_write`.
    pub scope: String,
    pub expires_at: Option<DateTime<Utc>>,
}

/// An account flow mail (a one-time link, or the notice of a sign-up attempt with an existing address) was
/// queued. Its audience is the address: the event is born fanned out and the mail goes by the outbox row
/// `email_id` directly; the link's secret lives only there, never in a `notify_*` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlowMail {
    /// The account the address belongs to, when there is one.
    pub user_id: Option<Uuid>,
    pub email_id: Uuid,
}

/// What a reader calls a browser: "Firefox on Linux" (or "an unknown browser"), from a user agent string.
pub fn device(user_agent: &str) -> String {
    let ua = user_agent;
    // Order matters: Edge and Opera also say Chrome, Chrome also says Safari.
    let browser = [
        ("Edg/", "Edge"),
        ("OPR/", "Opera"),
        ("Firefox/", "Firefox"),
        ("Chromium/", "Chromium"),
        ("Chrome/", "Chrome"),
        ("Safari/", "Safari"),
        ("curl/", "curl"),
    ]
    .iter()
    .find(|(needle, _)| ua.contains(needle))
    .map(|(_, name)| *name);
    let os = [
        ("Android", "Android"),
        ("iPhone", "iOS"),
        ("iPad", "iPadOS"),
        ("Windows", "Windows"),
        ("Mac OS X", "macOS"),
        ("CrOS", "ChromeOS"),
        ("Linux", "Linux"),
    ]
    .iter()
    .find(|(needle, _)| ua.contains(needle))
    .map(|(_, name)| *name);
    match (browser, os) {
        (Some(b), Some(o)) => format!("{b} on {o}"),
        (Some(b), None) => b.to_owned(),
        (None, Some(o)) => format!("a browser on {o}"),
        (None, None) => "an unknown browser".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::device;

    #[test]
    fn notif_devices_are_named_from_common_user_agents() {
        let cases = [
            (
                "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
                "Firefox on Linux",
            ),
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) \
                 Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0",
                "Edge on Windows",
            ),
            (
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) \
                 Version/17.5 Safari/605.1.15",
                "Safari on macOS",
            ),
            (
                "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 \
                 Mobile Safari/537.36",
                "Chrome on Android",
            ),
            ("curl/8.5.0", "curl"),
            ("", "an unknown browser"),
            ("<script>", "an unknown browser"),
        ];
        for (ua, want) in cases {
            assert_eq!(device(ua), want, "{ua}");
        }
    }
}
