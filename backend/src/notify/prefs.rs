//! Preferences: rules with wildcards, resolved to one mode per event × channel (docs/design/notifications.md
//! §4.2). [`resolve`] is pure; [`load`] reads a user's rules. The actions that change rules (`get`, `put`,
//! the catalogue document) come with the REST API.

use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use uuid::Uuid;

use super::catalogue::{Category, Channel, EventSpec, Mode};

/// Where a rule came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleSource {
    /// The preferences page or the API.
    User,
    /// A one-click unsubscribe: a veto on its category's email until the user sets that email again.
    Unsubscribe,
    Admin,
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

    fn rule(run: Option<u128>, cat: &str, ty: &str, ch: &str, mode: Mode) -> Rule {
        let w = |s: &str| (s != "*").then(|| s.to_owned());
        Rule {
            paper_run_id: run.map(Uuid::from_u128),
            category: w(cat),
            event_type: w(ty),
            channel: (ch != "*").then(|| Channel::parse(ch).unwrap()),
            mode,
            source: RuleSource::User,
        }
    }

    use Channel::{Email, InApp, Webhook};
    use Mode::{Digest, Immediate, Off};

    #[test]
    fn notif_prefs_resolve_by_precedence_global_category_event_channel_and_run() {
        let finished = find("backtest.finished").unwrap();
        let failed = find("backtest.failed").unwrap();
        let fill = find("paper.fill").unwrap();
        let run = Some(Uuid::from_u128(9));
        // (rules, spec, channel, run, expected)
        type Case = (Vec<Rule>, &'static EventSpec, Channel, Option<Uuid>, Mode);
        let cases: Vec<Case> = vec![
            // No rules: the defaults.
            (vec![], finished, InApp, None, Immediate),
            (vec![], finished, Email, None, Digest),
            (vec![], finished, Webhook, None, Off),
            (vec![], failed, Email, None, Immediate),
            // A global rule applies to everything…
            (
                vec![rule(None, "*", "*", "*", Off)],
                finished,
                Email,
                None,
                Off,
            ),
            (
                vec![rule(None, "*", "*", "*", Off)],
                finished,
                InApp,
                None,
                Off,
            ),
            // …a global channel rule is more specific than the global one…
            (
                vec![
                    rule(None, "*", "*", "*", Off),
                    rule(None, "*", "*", "email", Immediate),
                ],
                finished,
                Email,
                None,
                Immediate,
            ),
            // …a category beats a global channel rule (category before channel)…
            (
                vec![
                    rule(None, "*", "*", "email", Off),
                    rule(None, "backtests", "*", "*", Immediate),
                ],
                finished,
                Email,
                None,
                Immediate,
            ),
            // …and a category × channel rule beats the category alone.
            (
                vec![
                    rule(None, "backtests", "*", "*", Immediate),
                    rule(None, "backtests", "*", "email", Off),
                ],
                finished,
                Email,
                None,
                Off,
            ),
            // An event rule beats any category rule, even one naming the channel.
            (
                vec![
                    rule(None, "backtests", "*", "email", Off),
                    rule(None, "backtests", "backtest.finished", "*", Immediate),
                ],
                finished,
                Email,
                None,
                Immediate,
            ),
            // …and applies to its type only.
            (
                vec![
                    rule(None, "backtests", "*", "email", Off),
                    rule(None, "backtests", "backtest.finished", "*", Immediate),
                ],
                failed,
                Email,
                None,
                Off,
            ),
            // Rules of another category or channel do not match.
            (
                vec![rule(None, "paper", "*", "*", Off)],
                finished,
                InApp,
                None,
                Immediate,
            ),
            (
                vec![rule(None, "backtests", "*", "webhook", Immediate)],
                finished,
                Email,
                None,
                Digest,
            ),
            (
                vec![rule(None, "backtests", "*", "webhook", Immediate)],
                finished,
                Webhook,
                None,
                Immediate,
            ),
            // A run override beats everything, for that run only.
            (
                vec![
                    rule(None, "paper", "paper.fill", "email", Off),
                    rule(Some(9), "*", "*", "*", Immediate),
                ],
                fill,
                Email,
                run,
                Immediate,
            ),
            (
                vec![
                    rule(None, "paper", "paper.fill", "email", Off),
                    rule(Some(9), "*", "*", "*", Immediate),
                ],
                fill,
                Email,
                Some(Uuid::from_u128(10)),
                Off,
            ),
            (
                vec![rule(Some(9), "*", "*", "*", Immediate)],
                fill,
                Email,
                None,
                Immediate,
            ),
            // In-app has no digest.
            (
                vec![rule(None, "*", "*", "*", Digest)],
                finished,
                InApp,
                None,
                Immediate,
            ),
            (
                vec![rule(None, "*", "*", "*", Digest)],
                finished,
                Webhook,
                None,
                Digest,
            ),
        ];
        for (i, (rules, spec, ch, run, want)) in cases.into_iter().enumerate() {
            assert_eq!(
                resolve(spec, ch, run, &rules),
                want,
                "case {i}: {} {ch:?}",
                spec.name
            );
        }
    }

    #[test]
    fn notif_prefs_criticals_and_security_email_cannot_be_turned_off() {
        let kill = find("kill_switch.thrown").unwrap();
        let token = find("security.token_created").unwrap();
        let off = vec![
            rule(None, "*", "*", "*", Off),
            rule(None, "risk", "kill_switch.thrown", "*", Off),
            rule(None, "security", "*", "email", Digest),
            Rule {
                source: RuleSource::Unsubscribe,
                ..rule(None, "security", "*", "email", Off)
            },
        ];
        assert_eq!(resolve(kill, InApp, None, &off), Immediate);
        assert_eq!(resolve(kill, Email, None, &off), Immediate);
        // The webhook of a critical may be turned off.
        assert_eq!(resolve(kill, Webhook, None, &off), Off);
        assert_eq!(resolve(token, Email, None, &off), Immediate);
        assert!(locked(token, Email) && !locked(find("backtest.failed").unwrap(), Email));
    }

    #[test]
    fn notif_prefs_an_unsubscribe_vetoes_its_category_email_above_more_specific_rules() {
        let finished = find("backtest.finished").unwrap();
        let rules = vec![
            rule(None, "backtests", "backtest.finished", "email", Immediate),
            Rule {
                source: RuleSource::Unsubscribe,
                ..rule(None, "backtests", "*", "email", Off)
            },
        ];
        assert_eq!(resolve(finished, Email, None, &rules), Off);
        // In-app and other categories are untouched.
        assert_eq!(resolve(finished, InApp, None, &rules), Immediate);
        assert_eq!(
            resolve(find("system.test").unwrap(), Email, None, &rules),
            Immediate
        );
    }
}
