//! The event catalogue: one static [`EventSpec`] per event type (name, category, critical flag, audience,
//! coalescing, mail class, default mode per channel), docs/design/notifications.md §2. The typed events with
//! their payloads are in [`super::event`]; `Event::spec()` ties the two.
//!
//! Types whose emitters land with later features (paper trading, billing, …) are listed already, so
//! preferences and the catalogue document are complete; their payload variants arrive with their emitters.

use serde::{Deserialize, Serialize};

/// What a user groups preferences by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    Backtests,
    Paper,
    Risk,
    Billing,
    Security,
    Account,
    Admin,
    System,
}

impl Category {
    pub const ALL: [Category; 8] = [
        Category::Backtests,
        Category::Paper,
        Category::Risk,
        Category::Billing,
        Category::Security,
        Category::Account,
        Category::Admin,
        Category::System,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Category::Backtests => "backtests",
            Category::Paper => "paper",
            Category::Risk => "risk",
            Category::Billing => "billing",
            Category::Security => "security",
            Category::Account => "account",
            Category::Admin => "admin",
            Category::System => "system",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// Where a notification goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    InApp,
    Email,
    Webhook,
}

impl Channel {
    pub const ALL: [Channel; 3] = [Channel::InApp, Channel::Email, Channel::Webhook];

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::InApp => "inapp",
            Channel::Email => "email",
            Channel::Webhook => "webhook",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// How a channel delivers an event type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Off,
    Immediate,
    Digest,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Off => "off",
            Mode::Immediate => "immediate",
            Mode::Digest => "digest",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Mode::Off, Mode::Immediate, Mode::Digest]
            .into_iter()
            .find(|m| m.as_str() == s)
    }
}

/// Who receives an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Audience {
    /// The subject user (`notify_event.user_id`).
    User,
    /// Every enabled administrator.
    Admins,
    /// The enabled administrators marked as sign-up approvers; every enabled administrator when none is.
    Approvers,
    /// An address (the account flow mails), outside the fan-out.
    Address,
}

impl Audience {
    pub fn as_str(self) -> &'static str {
        match self {
            Audience::User => "user",
            Audience::Admins => "admins",
            Audience::Approvers => "approvers",
            Audience::Address => "address",
        }
    }
}

/// Which sender and footer an email of this type gets (docs/design/notifications.md §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MailClass {
    Transactional,
    Subscription,
}

/// Everything the pipeline knows about an event type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventSpec {
    /// `backtest.finished`.
    pub name: &'static str,
    pub category: Category,
    /// Bypasses digests, quiet hours, coalescing; in-app and email cannot be turned off.
    pub critical: bool,
    pub audience: Audience,
    /// Bursts of it are coalesced into one message (its `coalesce_key`).
    pub coalescible: bool,
    /// The default mode of in-app, email and webhook, in [`Channel::ALL`] order.
    pub defaults: [Mode; 3],
}

impl EventSpec {
    /// The default mode of `channel`.
    pub fn default_mode(&self, channel: Channel) -> Mode {
        match channel {
            Channel::InApp => self.defaults[0],
            Channel::Email => self.defaults[1],
            Channel::Webhook => self.defaults[2],
        }
    }

    /// Transactional (critical, security, account, the reminder before a trial's first charge) or
    /// subscription mail. The other billing notices (a usage warning, a plan change, being over a limit) are
    /// subscription mail: they carry one-click unsubscribe, which turns the billing category's email off (the
    /// in-app notice stays; a failed payment and a trial's end are still mailed: the first is critical, the
    /// second the notice before an automatic charge that consumer law asks for).
    pub fn mail_class(&self) -> MailClass {
        if self.critical
            || matches!(self.category, Category::Security | Category::Account)
            || self.name == "billing.trial_ending"
        {
            MailClass::Transactional
        } else {
            MailClass::Subscription
        }
    }
}

use Mode::{Digest as D, Immediate as I, Off as O};

const fn spec(
    name: &'static str,
    category: Category,
    critical: bool,
    audience: Audience,
    coalescible: bool,
    defaults: [Mode; 3],
) -> EventSpec {
    EventSpec {
        name,
        category,
        critical,
        audience,
        coalescible,
        defaults,
    }
}

use Audience::{Address, Admins, Approvers, User};
use Category as C;

/// Every event type (docs/design/notifications.md §2). Criticals' locked channels say `Immediate`.
pub static SPECS: &[EventSpec] = &[
    spec(
        "backtest.finished",
        C::Backtests,
        false,
        User,
        true,
        [I, D, O],
    ),
    spec(
        "backtest.failed",
        C::Backtests,
        false,
        User,
        true,
        [I, I, O],
    ),
    spec(
        "optimisation.finished",
        C::Backtests,
        false,
        User,
        false,
        [I, D, O],
    ),
    spec("paper.signal", C::Paper, false, User, true, [I, D, O]),
    spec(
        "paper.entry_submitted",
        C::Paper,
        false,
        User,
        true,
        [I, D, O],
    ),
    spec("paper.fill", C::Paper, false, User, true, [I, I, O]),
    spec(
        "paper.order_cancelled",
        C::Paper,
        false,
        User,
        true,
        [I, D, O],
    ),
    spec("paper.exit", C::Paper, false, User, true, [I, D, O]),
    spec(
        "paper.stopped_error",
        C::Paper,
        false,
        User,
        false,
        [I, I, I],
    ),
    spec(
        "paper.feed_stalled",
        C::Paper,
        false,
        User,
        false,
        [I, I, O],
    ),
    spec("paper.data_gap", C::Paper, false, User, false, [I, I, O]),
    spec("risk.limit_hit", C::Risk, true, User, false, [I, I, I]),
    spec("kill_switch.thrown", C::Risk, true, User, false, [I, I, I]),
    spec(
        "kill_switch.released",
        C::Risk,
        false,
        User,
        false,
        [I, I, I],
    ),
    spec(
        "billing.trial_ending",
        C::Billing,
        false,
        User,
        false,
        [I, I, O],
    ),
    spec(
        "billing.payment_failed",
        C::Billing,
        true,
        User,
        false,
        [I, I, O],
    ),
    spec(
        "billing.usage_warning",
        C::Billing,
        false,
        User,
        false,
        [I, I, O],
    ),
    spec(
        "billing.over_limit",
        C::Billing,
        false,
        User,
        false,
        [I, I, O],
    ),
    spec(
        "billing.plan_changed",
        C::Billing,
        false,
        User,
        false,
        [I, I, O],
    ),
    spec(
        "security.signin_new_device",
        C::Security,
        true,
        User,
        false,
        [I, I, O],
    ),
    spec(
        "security.password_changed",
        C::Security,
        true,
        User,
        false,
        [I, I, O],
    ),
    spec(
        "security.email_changed",
        C::Security,
        true,
        User,
        false,
        [I, I, O],
    ),
    spec(
        "security.two_factor_changed",
        C::Security,
        true,
        User,
        false,
        [I, I, O],
    ),
    spec(
        "security.two_factor_failed",
        C::Security,
        true,
        User,
        false,
        [I, I, O],
    ),
    spec(
        "security.token_created",
        C::Security,
        true,
        User,
        false,
        [I, I, O],
    ),
    // The flow mails (one-time links) go through `notify::flow`, never the fan-out.
    spec(
        "account.verification_requested",
        C::Account,
        false,
        Address,
        false,
        [O, O, O],
    ),
    spec(
        "account.password_reset_requested",
        C::Account,
        false,
        Address,
        false,
        [O, O, O],
    ),
    spec(
        "account.signup_attempt_existing",
        C::Account,
        false,
        Address,
        false,
        [O, O, O],
    ),
    spec(
        "notify.webhook_disabled",
        C::Account,
        false,
        User,
        false,
        [I, I, O],
    ),
    spec(
        "notify.email_undeliverable",
        C::Account,
        false,
        User,
        false,
        [I, O, O],
    ),
    spec("admin.job_dead", C::Admin, false, Admins, true, [I, I, O]),
    spec(
        "admin.etl_failing",
        C::Admin,
        false,
        Admins,
        false,
        [I, I, O],
    ),
    spec(
        "admin.user_suspended",
        C::Admin,
        false,
        Admins,
        false,
        [I, I, O],
    ),
    spec(
        "admin.signup_requested",
        C::Admin,
        false,
        Approvers,
        false,
        [I, I, O],
    ),
    spec("system.test", C::System, false, User, false, [I, I, I]),
];

/// The spec of `name`, if it is a known type.
pub fn find(name: &str) -> Option<&'static EventSpec> {
    SPECS.iter().find(|s| s.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notif_catalogue_names_are_unique_and_prefixed_by_a_known_area() {
        for (i, s) in SPECS.iter().enumerate() {
            assert!(
                SPECS[i + 1..].iter().all(|o| o.name != s.name),
                "{} twice",
                s.name
            );
            let (area, rest) = s.name.split_once('.').expect("area.name");
            assert!(!area.is_empty() && !rest.is_empty() && !rest.contains('.'));
            assert!(
                s.name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c == '.' || c == '_')
            );
            assert_eq!(find(s.name), Some(s));
        }
        assert!(find("nope.nope").is_none());
    }

    #[test]
    fn notif_criticals_default_to_immediate_in_app_and_email_and_are_transactional() {
        for s in SPECS.iter().filter(|s| s.critical) {
            assert_eq!(
                s.default_mode(Channel::InApp),
                Mode::Immediate,
                "{}",
                s.name
            );
            assert_eq!(
                s.default_mode(Channel::Email),
                Mode::Immediate,
                "{}",
                s.name
            );
            assert_eq!(s.mail_class(), MailClass::Transactional);
            assert!(!s.coalescible, "{} is critical and coalescible", s.name);
        }
        for s in SPECS.iter().filter(|s| s.category == Category::Security) {
            assert_eq!(
                s.default_mode(Channel::Email),
                Mode::Immediate,
                "{}",
                s.name
            );
        }
        assert_eq!(
            find("backtest.finished").unwrap().mail_class(),
            MailClass::Subscription
        );
        // Billing notices carry one-click unsubscribe, except a failed payment and a trial's end.
        for (name, class) in [
            ("billing.payment_failed", MailClass::Transactional),
            ("billing.usage_warning", MailClass::Subscription),
            ("billing.over_limit", MailClass::Subscription),
            ("billing.plan_changed", MailClass::Subscription),
            ("billing.trial_ending", MailClass::Transactional),
        ] {
            assert_eq!(find(name).unwrap().mail_class(), class, "{name}");
        }
    }

    #[test]
    fn notif_names_round_trip() {
        for c in Category::ALL {
            assert_eq!(Category::parse(c.as_str()), Some(c));
        }
        for c in Channel::ALL {
            assert_eq!(Channel::parse(c.as_str()), Some(c));
        }
        for m in [Mode::Off, Mode::Immediate, Mode::Digest] {
            assert_eq!(Mode::parse(m.as_str()), Some(m));
        }
    }
}
