//! Preferences: rules with wildcards, resolved to one mode per event × channel (docs/design/notifications.md
//! §4.2), plus quiet hours and the digest schedule.
//!
//! * [`resolve`] is pure; [`load`] reads a user's rules; [`locked`] names the channels nobody can turn off.
//! * [`doc`]: the preferences document ([`Preferences`], the REST body), its validation and the
//!   [`catalogue()`] document (types, categories, channels, locks, defaults).
//! * [`actions`]: [`get`], [`put`] (validates, enforces the locks, lifts unsubscribe vetoes the user overrides,
//!   audits, recomputes the next digest) and [`reschedule`] (after a time-zone change); [`UserSchedule`], the
//!   quiet hours and digest schedule the release decision and the tick read.

use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use uuid::Uuid;

use super::catalogue::{Category, Channel, EventSpec, Mode};

pub mod actions;
pub mod doc;

pub use actions::{UserSchedule, get, put, reschedule, schedule_of};
pub use doc::{
    Catalogue, CategoryEntry, ChannelEntry, DigestDoc, MAX_RULES, Preferences, QuietAction,
    QuietHours, RuleDoc, TypeEntry, catalogue,
};

/// Where a rule came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleSource {
    #[default]
    /// The preferences page or the API.
    User,
    /// A one-click unsubscribe: a veto on its category's email until the user sets that email again.
    Unsubscribe,
    Admin,
}

impl RuleSource {
    pub fn as_str(self) -> &'static str {
        match self {
            RuleSource::User => "user",
            RuleSource::Unsubscribe => "unsubscribe",
            RuleSource::Admin => "admin",
        }
    }
}

/// One preference rule; `None` fields are wildcards (`*` in the table).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// `None`: every run.
    pub paper_run_id: Option<Uuid>,
    pub category: Option<String>,
    pub event_type: Option<String>,
    pub channel: Option<Channel>,
    pub mode: Mode,
    pub source: RuleSource,
}

impl Rule {
    /// The rule's key: (run, category, event type, channel); at most one rule per key and user.
    pub fn key(&self) -> (Option<Uuid>, Option<&str>, Option<&str>, Option<Channel>) {
        (
            self.paper_run_id,
            self.category.as_deref(),
            self.event_type.as_deref(),
            self.channel,
        )
    }

    fn matches(&self, spec: &EventSpec, channel: Channel, run: Option<Uuid>) -> bool {
        self.paper_run_id.is_none_or(|r| Some(r) == run)
            && self
                .category
                .as_deref()
                .is_none_or(|c| c == spec.category.as_str())
            && self.event_type.as_deref().is_none_or(|t| t == spec.name)
            && self.channel.is_none_or(|c| c == channel)
    }

    /// The precedence key: a run override above all, then event, category, channel (global rules lowest).
    fn specificity(&self) -> (bool, bool, bool, bool) {
        (
            self.paper_run_id.is_some(),
            self.event_type.is_some(),
            self.category.is_some(),
            self.channel.is_some(),
        )
    }
}

/// Whether `channel` of `spec` is locked on (criticals: in-app and email; security: email).
pub fn locked(spec: &EventSpec, channel: Channel) -> bool {
    match channel {
        Channel::InApp => spec.critical,
        Channel::Email => spec.critical || spec.category == Category::Security,
        Channel::Webhook => false,
    }
}

/// The mode of `channel` for an event of type `spec` (about paper run `run`, if any) under `rules`.
///
/// The most specific matching rule wins (run set, then event type, category, channel; global rules lowest),
/// else the type's default. An unsubscribe veto turns the category's email off above more specific rules.
/// Locked channels ([`locked`]) are always immediate; in-app knows only off and immediate.
pub fn resolve(spec: &EventSpec, channel: Channel, run: Option<Uuid>, rules: &[Rule]) -> Mode {
    if locked(spec, channel) {
        return Mode::Immediate;
    }
    let matching = || rules.iter().filter(|r| r.matches(spec, channel, run));
    let vetoed = channel == Channel::Email
        && matching().any(|r| r.source == RuleSource::Unsubscribe && r.mode == Mode::Off);
    let mode = if vetoed {
        Mode::Off
    } else {
        matching()
            .max_by_key(|r| r.specificity())
            .map_or_else(|| spec.default_mode(channel), |r| r.mode)
    };
    match (channel, mode) {
        (Channel::InApp, Mode::Digest) => Mode::Immediate,
        (_, m) => m,
    }
}

/// The rules of `user_id`.
///
/// # Errors
/// Database errors.
pub async fn load(conn: &mut PgConnection, user_id: Uuid) -> sqlx::Result<Vec<Rule>> {
    let rows = sqlx::query!(
        r#"select paper_run_id, category, event_type, channel, mode, source
           from notify_rule where user_id = $1"#,
        user_id,
    )
    .fetch_all(conn)
    .await?;
    let wild = |s: String| (s != "*").then_some(s);
    Ok(rows
        .into_iter()
        .filter_map(|r| {
            let channel = if r.channel == "*" {
                None
            } else {
                Some(Channel::parse(&r.channel)?)
            };
            Some(Rule {
                paper_run_id: r.paper_run_id,
                category: wild(r.category),
                event_type: wild(r.event_type),
                channel,
                mode: Mode::parse(&r.mode)?,
                source: match r.source.as_str() {
                    "unsubscribe" => RuleSource::Unsubscribe,
                    "admin" => RuleSource::Admin,
                    _ => RuleSource::User,
                },
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::catalogue::find;

    /// `"[run|]category|event_type|channel=mode"`, `*` a wildcard, a leading `!` an unsubscribe veto.
    fn rule(s: &str) -> Rule {
        let (veto, s) = s.strip_prefix('!').map_or((false, s), |r| (true, r));
        let (key, mode) = s.split_once('=').unwrap();
        let mut parts: Vec<&str> = key.split('|').collect();
        let run = (parts.len() == 4).then(|| Uuid::from_u128(parts.remove(0).parse().unwrap()));
        let w = |s: &str| (s != "*").then(|| s.to_owned());
        Rule {
            paper_run_id: run,
            category: w(parts[0]),
            event_type: w(parts[1]),
            channel: (parts[2] != "*").then(|| Channel::parse(parts[2]).unwrap()),
            mode: Mode::parse(mode).unwrap(),
            source: if veto {
                RuleSource::Unsubscribe
            } else {
                RuleSource::User
            },
        }
    }

    use Channel::{Email, InApp, Webhook};
    use Mode::{Digest, Immediate, Off};

    /// (rules, event type, channel, paper run, expected mode).
    type Case = (
        &'static [&'static str],
        &'static str,
        Channel,
        Option<u128>,
        Mode,
    );

    /// Precedence reads global → category → event → channel, with a run override above all and an
    /// unsubscribe veto above everything but the locks.
    #[rustfmt::skip]
    const CASES: &[Case] = &[
        // No rules: the defaults.
        (&[], "backtest.finished", InApp, None, Immediate),
        (&[], "backtest.finished", Email, None, Digest),
        (&[], "backtest.finished", Webhook, None, Off),
        (&[], "backtest.failed", Email, None, Immediate),
        // A global rule applies to everything…
        (&["*|*|*=off"], "backtest.finished", Email, None, Off),
        (&["*|*|*=off"], "backtest.finished", InApp, None, Off),
        // …a global channel rule is more specific than the global one…
        (&["*|*|*=off", "*|*|email=immediate"], "backtest.finished", Email, None, Immediate),
        // …a category beats a global channel rule (category before channel)…
        (&["*|*|email=off", "backtests|*|*=immediate"], "backtest.finished", Email, None, Immediate),
        // …and a category × channel rule beats the category alone; the order of the rules does not matter.
        (&["backtests|*|*=immediate", "backtests|*|email=off"], "backtest.finished", Email, None, Off),
        (&["backtests|*|email=off", "backtests|*|*=immediate"], "backtest.finished", Email, None, Off),
        // An event rule beats any category rule, even one naming the channel, for its type only.
        (&["backtests|*|email=off", "backtests|backtest.finished|*=immediate"], "backtest.finished", Email, None, Immediate),
        (&["backtests|*|email=off", "backtests|backtest.finished|*=immediate"], "backtest.failed", Email, None, Off),
        // Rules of another category or channel do not match.
        (&["paper|*|*=off"], "backtest.finished", InApp, None, Immediate),
        (&["backtests|*|webhook=immediate"], "backtest.finished", Email, None, Digest),
        (&["backtests|*|webhook=immediate"], "backtest.finished", Webhook, None, Immediate),
        // A run override beats everything, for that run only.
        (&["paper|paper.fill|email=off", "9|*|*|*=immediate"], "paper.fill", Email, Some(9), Immediate),
        (&["paper|paper.fill|email=off", "9|*|*|*=immediate"], "paper.fill", Email, Some(10), Off),
        (&["9|*|*|*=immediate"], "paper.fill", Email, None, Immediate),
        // In-app has no digest.
        (&["*|*|*=digest"], "backtest.finished", InApp, None, Immediate),
        (&["*|*|*=digest"], "backtest.finished", Webhook, None, Digest),
        // Criticals: in-app and email locked on, the webhook free; security email locked on.
        (&["*|*|*=off", "risk|kill_switch.thrown|*=off"], "kill_switch.thrown", InApp, None, Immediate),
        (&["*|*|*=off", "risk|kill_switch.thrown|*=off"], "kill_switch.thrown", Email, None, Immediate),
        (&["*|*|*=off", "risk|kill_switch.thrown|*=off"], "kill_switch.thrown", Webhook, None, Off),
        (&["security|*|email=digest", "!security|*|email=off"], "security.token_created", Email, None, Immediate),
        // An unsubscribe vetoes its category's email above more specific rules, and nothing else.
        (&["backtests|backtest.finished|email=immediate", "!backtests|*|email=off"], "backtest.finished", Email, None, Off),
        (&["backtests|backtest.finished|email=immediate", "!backtests|*|email=off"], "backtest.finished", InApp, None, Immediate),
        (&["!backtests|*|email=off"], "system.test", Email, None, Immediate),
    ];

    #[test]
    fn notif_prefs_resolve_table() {
        for (i, (rules, ty, ch, run, want)) in CASES.iter().enumerate() {
            let rules: Vec<Rule> = rules.iter().map(|r| rule(r)).collect();
            let spec = find(ty).unwrap();
            assert_eq!(
                resolve(spec, *ch, run.map(Uuid::from_u128), &rules),
                *want,
                "case {i}: {ty} {ch:?} under {rules:?}"
            );
        }
    }

    #[test]
    fn notif_prefs_locks() {
        assert!(locked(find("security.token_created").unwrap(), Email));
        assert!(!locked(find("backtest.failed").unwrap(), Email));
        assert!(locked(find("kill_switch.thrown").unwrap(), InApp));
        assert!(!locked(find("kill_switch.thrown").unwrap(), Webhook));
    }
}
